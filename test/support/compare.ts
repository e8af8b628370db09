// Compares two outputs' published tables the way a reader would: per table the same rows by grain, every column
// equal (doubles to 1e-9 relative, as sums in another order may differ in their last bits), and the import files.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Db, sqlIdent, sqlString } from '../../pipelines/base/duckdb.js';
import { PUBLISHED_TABLES } from '../../pipelines/stages/export.js';

/** Columns whose values may differ in the last bits (sums of doubles in another order). */
const FLOATING = new Set(['DOUBLE', 'FLOAT']);

/** Differences between two outputs' current/ tables: per table, the columns that differ and how many rows. */
export async function differences(
  db: Db,
  reference: string,
  other: string,
): Promise<Record<string, unknown>> {
  const found: Record<string, unknown> = {};
  for (const { name, grain } of PUBLISHED_TABLES) {
    const part = (out: string) => `read_parquet(${sqlString(join(out, 'current', name, 'part-0.parquet'))})`;
    const difference = await relationDifference(db, part(reference), part(other), grain);
    if (difference) found[name] = difference;
  }
  return found;
}

/**
 * How two relations (a table name, `read_parquet(...)`) differ when rows are matched by `grain`: 'columns differ',
 * or the row counts and, per column, the rows whose values differ; null when they are the same.
 */
export async function relationDifference(
  db: Db,
  a: string,
  b: string,
  grain: readonly string[],
): Promise<unknown> {
  const columns = await db.all<{ column_name: string; column_type: string }>(`describe select * from ${a}`);
  const otherColumns = await db.all<{ column_name: string; column_type: string }>(
    `describe select * from ${b}`,
  );
  if (JSON.stringify(columns) !== JSON.stringify(otherColumns)) return 'columns differ';
  const on = grain.map((g) => `a.${sqlIdent(g)} is not distinct from b.${sqlIdent(g)}`).join(' and ');
  const tests = columns.map((c) => {
    const [x, y] = [`a.${sqlIdent(c.column_name)}`, `b.${sqlIdent(c.column_name)}`];
    const same = FLOATING.has(c.column_type)
      ? `(${x} is not distinct from ${y} or abs(${x} - ${y}) <= 1e-9 * greatest(1, abs(${x})))`
      : `${x} is not distinct from ${y}`;
    return `count(*) filter (where not ${same}) as ${sqlIdent(c.column_name)}`;
  });
  const row = await db.one(
    `select
        (select count(*) from ${a}) as rows_a,
        (select count(*) from ${b}) as rows_b,
        count(*) as joined, ${tests.join(', ')}
     from ${a} as a full join ${b} as b on ${on}`,
  );
  const counts = Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]));
  const { rows_a: rowsA, rows_b: rowsB, joined, ...perColumn } = counts;
  const bad = Object.fromEntries(Object.entries(perColumn).filter(([, n]) => n !== 0));
  return rowsA !== rowsB || rowsA !== joined || Object.keys(bad).length > 0
    ? { rows: [rowsA, rowsB, joined], columns: bad }
    : null;
}

/** Every import file under current/exports, by path, with its bytes' digest. */
export function exportFiles(out: string): Record<string, string> {
  const root = join(out, 'current', 'exports');
  const files: Record<string, string> = {};
  for (const entry of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    const path = join(root, entry);
    if (entry.endsWith('.csv')) files[entry] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return files;
}

/** The quarantine rows the sample's planted bad rows leave in every run of it (a shard's run is judged on them). */
export const PLANTED_QUARANTINE = [
  'orders order_id duplicate key O90000001',
  'orders ordered_at unparseable timestamp 2026-02-30 10:00:00',
  'orders customer_id missing required value',
  'surveys response_id duplicate key R9000001',
  'email_events email e-mail address of no known customer',
];

/** The quarantine an output publishes in current/, a row as `entity column_name reason value`. */
export async function publishedQuarantine(db: Db, out: string): Promise<string[]> {
  const quarantine = sqlString(join(out, 'current', 'quarantine', 'part-0.parquet'));
  const rows = await db.all<{ entity: string; column_name: string; reason: string; value: string | null }>(
    `select entity, column_name, reason, value from read_parquet(${quarantine}) order by all`,
  );
  return rows.map((r) => `${r.entity} ${r.column_name} ${r.reason} ${r.value ?? ''}`.trim());
}
