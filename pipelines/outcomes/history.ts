// The published audiences that reactivation_outcomes measures, read back from the output's own history (a local
// folder or S3, through Sink.history), never from the run's memory: a backfill or a new machine sees the same
// audiences and computes the same outcomes.
//
// The partitions are read column by name (`union all by name`), so partitions published before and after a
// column was added or renamed read together; the holdout group is `audience_group`, or `group` in partitions
// written before the rename (coalesced when both exist).
import type { OutcomesConfig } from '../../config/schema.js';
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';
import type { Sink } from '../sinks/sink.js';
import { SinkError } from '../sinks/sink.js';

/** The table sql/metrics/reactivation_outcome_customers.sql reads (created empty by sql/macros/outcomes.sql). */
export const AUDIENCE_HISTORY_TABLE = 'reactivation_audience_history';

/** The names the holdout group column has had, newest first. */
const GROUP_COLUMNS = ['audience_group', 'group'] as const;

export interface HistoryFile {
  asOf: string;
  path: string;
}

/** The first audience date a run as of `asOf` measures: `lookback_days` before it (YYYY-MM-DD). */
export function outcomesFrom(asOf: string, lookbackDays: number): string {
  const from = new Date(`${asOf}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - lookbackDays);
  return from.toISOString().slice(0, 10);
}

/**
 * Replaces reactivation_audience_history with the given Parquet partitions of reactivation_audience (one as-of
 * date each). Returns the number of audience rows loaded.
 */
export async function loadAudienceHistoryFiles(db: Db, files: readonly HistoryFile[]): Promise<number> {
  if (files.length === 0) {
    await db.run(`delete from ${AUDIENCE_HISTORY_TABLE}`);
    return 0;
  }
  const parts = files
    .map(
      (f) =>
        `select date ${sqlString(f.asOf)} as as_of, * from read_parquet(${sqlString(f.path)}, hive_partitioning = false)`,
    )
    .join('\nunion all by name\n');
  const described = await db.all<{ column_name: string }>(`describe select * from (${parts})`);
  const columns = new Set(described.map((c) => c.column_name));
  const groups = GROUP_COLUMNS.filter((c) => columns.has(c));
  const dates = `${files[0]!.asOf} to ${files[files.length - 1]!.asOf}`;
  if (!columns.has('customer_id') || groups.length === 0) {
    throw new SinkError(
      `the published reactivation_audience partitions (${dates}) have no ${columns.has('customer_id') ? 'audience_group or group' : 'customer_id'} ` +
        'column, so their outcomes cannot be measured: re-run those dates, or set outcomes.lookback_days so that they are left out',
    );
  }
  const group = `coalesce(${groups.map(sqlIdent).join(', ')})`;
  const email = columns.has('email') ? 'email' : 'null';
  await db.run(
    `create or replace table ${AUDIENCE_HISTORY_TABLE} as
     select as_of, customer_id::varchar as customer_id, ${email}::varchar as email, ${group}::varchar as audience_group
     from (${parts})`,
  );
  return db.number(`select count(*) from ${AUDIENCE_HISTORY_TABLE}`);
}

/**
 * Loads the audiences published in the `outcomes.lookback_days` before `asOf` from the sink's history (downloaded
 * into scratchDir when the sink is remote). Returns how many audience dates were found.
 */
export async function loadOutcomeAudiences(
  db: Db,
  sink: Sink,
  options: { asOf: string; outcomes: OutcomesConfig; scratchDir: string },
): Promise<number> {
  const from = outcomesFrom(options.asOf, options.outcomes.lookback_days);
  const files = await sink.history('reactivation_audience', from, options.asOf, options.scratchDir);
  await loadAudienceHistoryFiles(db, files);
  return new Set(files.map((f) => f.asOf)).size;
}
