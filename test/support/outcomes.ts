// The reactivation outcome models (sql/metrics/reactivation_outcome_*.sql) run directly on hand-made or simulated
// input tables in one DuckDB database: the real run_params, the real macros and the real SQL, no landing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../config/schema.js';
import { Db } from '../../pipelines/base/duckdb.js';
import { createRunParams } from '../../transforms/params.js';
import { runMacros } from '../../transforms/runner.js';

const METRICS_DIR = fileURLToPath(new URL('../../sql/metrics/', import.meta.url));

/** The models, in the order they read each other. */
export const OUTCOME_MODELS = ['reactivation_outcome_customers', 'reactivation_outcomes'] as const;

/** The tables the outcome models read besides reactivation_audience_history (created by the macros), empty. */
const INPUTS = `
  create table int_customer_active_days (customer_id varchar, active_date date);
  create table stg_orders (order_id varchar, customer_id varchar, amount decimal(18, 2), status varchar, ordered_date date);
  create table stg_subscriptions (subscription_id varchar, customer_id varchar, started_date date, ended_date date);
  create table stg_email_events (customer_id varchar, email varchar, campaign_id varchar, event_type varchar, occurred_date date);
  create table int_customer_segments (customer_id varchar, segment_by varchar, segment varchar);
`;

/** A database with run_params for `asOf` under the config overrides, the macros and empty input tables. */
export async function outcomeDb(asOf: string, config: Record<string, unknown> = {}): Promise<Db> {
  const db = await Db.open({ timeZone: 'UTC' });
  const parsed = configSchema.parse({ business_time_zone: 'UTC', ...config });
  await createRunParams(db, parsed, {
    asOf,
    runStartedAt: new Date('2030-01-01T00:00:00Z'),
    configuredEntities: ['customers', 'orders', 'activity', 'subscriptions', 'email_events'],
  });
  await runMacros(db);
  await db.run(INPUTS);
  return db;
}

/** Builds both outcome models from their SQL files. */
export async function buildOutcomes(db: Db): Promise<void> {
  for (const model of OUTCOME_MODELS) {
    const sql = readFileSync(`${METRICS_DIR}${model}.sql`, 'utf8');
    await db.run(`create or replace table ${model} as\n${sql}`);
  }
}
