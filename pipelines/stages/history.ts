// The history views of the catalog (`<table>_history`): every published table read over all its as_of=D
// partitions, with `as_of`, in one of two ways that never double-count:
//
// - A restated table (RESTATED_TABLES) is recomputed whole every night: the partition of D holds every period up to
//   D as that run computed it (fct_customer_period holds the whole customer x period history as of D), so reading
//   every partition returns each period once per later night. Its history view keeps, for each row of its grain,
//   the row of the latest as_of that has it: the newest computation of every period, including periods or
//   customers a later run no longer has.
// - A snapshot table (the others: customer_health, reactivation_audience, ...) is a state as of D: its history view
//   is every partition, one row per grain and as_of. Count per as_of (a sum over dates counts customer-nights).
//
// Paths are relative to the output folder (the catalog's folder), as the catalog's other views. Columns that an
// earlier release named differently (reactivation_audience.group, now audience_group) are read under the new name.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';

/** Tables whose every partition restates all periods up to its as-of date: their history keeps the latest as_of. */
export const RESTATED_TABLES: ReadonlySet<string> = new Set([
  'fct_customer_period',
  'cohort_retention',
  'churn_summary',
  'survey_trends',
  'reactivation_outcomes',
  'reactivation_outcome_customers',
]);

/** Columns renamed since an earlier release, per table: old name -> new name. */
export const RENAMED_COLUMNS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  reactivation_audience: { group: 'audience_group' },
};

export interface HistoryView {
  /** `<table>_history`. */
  name: string;
  table: string;
  kind: 'restated' | 'snapshot';
  sql: string;
  description: string;
}

/** The glob of a table's history, relative to the output folder. */
export function historyGlob(table: string): string {
  return `${table}/as_of=*/*.parquet`;
}

function reader(table: string): string {
  return `read_parquet(${sqlString(historyGlob(table))}, hive_partitioning = true, hive_types = {'as_of': date}, union_by_name = true)`;
}

/**
 * The history view of each table that has at least one partition under `root` (whose Parquet schemas `db` reads:
 * open it with file_search_path = root). `grain` is the table's grain, which a restated table is deduplicated on.
 */
export async function historyViews(
  db: Db,
  root: string,
  tables: readonly { name: string; grain: readonly string[] }[],
): Promise<HistoryView[]> {
  const views: HistoryView[] = [];
  for (const table of tables) {
    if (!hasPartition(join(root, table.name))) continue;
    const columns = new Set(
      (await db.all<{ column_name: string }>(`describe select * from ${reader(table.name)}`)).map(
        (c) => c.column_name,
      ),
    );
    const exclude = ['as_of'];
    const replace: string[] = [];
    const renamed: string[] = [];
    for (const [old, current] of Object.entries(RENAMED_COLUMNS[table.name] ?? {})) {
      if (!columns.has(old)) continue;
      exclude.push(old);
      if (columns.has(current))
        replace.push(`coalesce(${sqlIdent(current)}, ${sqlIdent(old)}) as ${sqlIdent(current)}`);
      else renamed.push(`${sqlIdent(old)} as ${sqlIdent(current)}`);
    }
    const select = [
      'as_of',
      `* exclude (${exclude.map(sqlIdent).join(', ')})${replace.length > 0 ? ` replace (${replace.join(', ')})` : ''}`,
      ...renamed,
    ].join(', ');
    const restated = RESTATED_TABLES.has(table.name) && table.grain.length > 0;
    const grain = table.grain.map(sqlIdent).join(', ');
    views.push({
      name: `${table.name}_history`,
      table: table.name,
      kind: restated ? 'restated' : 'snapshot',
      sql:
        `select ${select} from ${reader(table.name)}` +
        (restated ? ` qualify row_number() over (partition by ${grain} order by as_of desc) = 1` : ''),
      description: restated
        ? `${table.name} over its whole history: one row per ${table.grain.join(' x ')}, from the latest as_of ` +
          'partition that has it (each partition restates every period up to its date, so reading them all would ' +
          'count a period once per later night). as_of: the run date the row comes from.'
        : `${table.name} as of every published date: one row per ${table.grain.join(' x ')} and as_of (each ` +
          'partition is the state on its date; count per as_of, a sum over dates counts customer-nights).',
    });
  }
  return views;
}

function hasPartition(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some(
    (entry) =>
      /^as_of=\d{4}-\d{2}-\d{2}$/.test(entry) &&
      readdirSync(join(dir, entry)).some((f) => f.endsWith('.parquet')),
  );
}
