// run_params: the one-row table every SQL model reads its parameters from (as-of date, time zone, grain,
// thresholds). Models import it as a CTE (`params as (select * from run_params)`) instead of being templated.
import type { Config } from '../config/schema.js';
import { type Db, sqlString } from '../pipelines/base/duckdb.js';

export interface RunParams {
  asOf: string;
  /** Entities with a configured source (the others are empty tables). */
  configuredEntities: readonly string[];
  /** The moment the run started (rows stamped later are quarantined); never written to a published table. */
  runStartedAt: Date;
}

function literal(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? `${value}::integer` : `${value}::double`;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) return 'null::varchar';
  if (Array.isArray(value)) {
    const integers = value.length > 0 && value.every((v) => Number.isInteger(v));
    return `[${value.map((v) => literal(v)).join(', ')}]::${integers ? 'integer' : 'varchar'}[]`;
  }
  return `${sqlString(String(value))}::varchar`;
}

/** Flattens the config sections models need into `section_key` columns (health_recent_days, audience_control_share...). */
export function paramColumns(config: Config, params: RunParams): Record<string, string> {
  const columns: Record<string, string> = {
    as_of_date: `date ${sqlString(params.asOf)}`,
    // End of the as-of day in the business time zone: rows at or after it are outside the run.
    as_of_end: `timezone(${sqlString(config.business_time_zone)}, (date ${sqlString(params.asOf)} + interval 1 day)::timestamp)`,
    run_started_at: `${sqlString(params.runStartedAt.toISOString())}::timestamptz`,
    time_zone: literal(config.business_time_zone),
    period_grain: literal(config.period_grain),
    active_when: literal(config.active_when),
    cohort_by: literal(config.cohort_by),
    csat_scale: literal(config.csat_scale),
    configured_entities: literal([...params.configuredEntities]),
    // Orphan customer_ids are only detectable against a customers export.
    customers_exported: literal(params.configuredEntities.includes('customers')),
  };
  for (const [section, values] of [
    ['health', config.health],
    ['audience', config.audience],
    ['metrics', config.metrics],
    ['outcomes', config.outcomes],
  ] as const) {
    for (const [key, value] of Object.entries(values)) {
      columns[`${section}_${key}`] = literal(value);
    }
  }
  return columns;
}

export async function createRunParams(db: Db, config: Config, params: RunParams): Promise<void> {
  const columns = Object.entries(paramColumns(config, params))
    .map(([name, expr]) => `${expr} as ${name}`)
    .join(',\n  ');
  await db.run(`create or replace table run_params as select\n  ${columns}`);
  await db.run(
    `create or replace table segment_dimensions as select unnest(${literal(config.segment_by)}) as segment_by`,
  );
}
