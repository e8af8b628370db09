// `churn sample-data`: the deterministic synthetic sample dataset of the embedded default.
// Every row is generated in DuckDB SQL (pipelines/sample/sql/*.sql) from hash-based pseudo-randomness, so the same
// seed and size give byte-identical files on any number of threads; nothing is looped in JavaScript.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import { configSchema } from '../../config/schema.js';
import { Db, sqlString } from '../base/duckdb.js';
import { canonicalColumns } from '../stages/land.js';

export interface SampleOptions {
  dir: string;
  customers: number;
  seed: number;
  /** The last day of the history, YYYY-MM-DD (default 2026-06-30); the follow-up after it runs FOLLOW_UP_DAYS more. */
  asOf?: string;
  /**
   * The planted effect of the win-back e-mail sent the day after asOf: the share of customers who come back in the
   * follow-up only if they are e-mailed (default PLANTED_LIFT; 0 plants none, an A/A sample).
   */
  campaignLift?: number;
  /**
   * The population's app activity, as a multiple of the default (1: about 3 active days a month for the median
   * customer, a shop's visitors). 4 gives an app's daily users (about 12 a month) with noisier months (CV 0.5
   * instead of 0.4): the second population the early warning is judged on (`npm run bench -- --detection`).
   */
  activityScale?: number;
}

export interface SampleResult {
  dir: string;
  asOf: string;
  customers: number;
  /** Rows written per file (planted bad rows included), keyed by entity (and `ground_truth`). */
  rows: Record<string, number>;
  ms: number;
}

export const DEFAULT_SAMPLE_AS_OF = '2026-06-30';
/** The history starts here, or earlier when the as-of date leaves less than HISTORY_MIN_DAYS. */
const HISTORY_START = '2024-01-01';
const HISTORY_MIN_DAYS = 911;
/** Days between newsletter campaigns (every other Tuesday). */
const CAMPAIGN_EVERY_DAYS = 14;
/**
 * After the history, the sample runs this many more days (orders and activity at every customer's own pace, and the
 * win-back e-mail of the day after the as-of date), so that runs after the as-of date can measure the campaign.
 */
export const FOLLOW_UP_DAYS = 60;
/** The share of customers who come back in the follow-up if they get the win-back e-mail, and stay away if not. */
export const PLANTED_LIFT = 0.25;
/** The share of the target group the win-back e-mail never reaches (no `sent` event). */
export const NEVER_SENT_SHARE = 0.1;
/** The win-back campaign's id: this prefix and the day it is sent. */
export const WINBACK_CAMPAIGN_PREFIX = 'winback-';
/** Below this many customers the planted bad rows would exceed ~0.5% of some entity: none are planted. */
const PLANT_BAD_ROWS_MIN_CUSTOMERS = 250;
const MAX_CUSTOMERS = 20_000_000;
/**
 * DuckDB's memory for the generator: half the machine's, at least 4 GB. The big sorted writes spill to a temporary
 * folder beyond it, but the per-customer event lists of a million customers do not fit in 4 GB.
 */
const MEMORY_LIMIT = `${Math.max(4, Math.floor(totalmem() / 2 ** 31))}GB`;

export const ARCHETYPES = [
  'steady',
  'slow_regular',
  'one_time',
  'silent_churner',
  'cancelled',
  'resurrected',
  'new',
  'lost',
] as const;

/** The silent churners' kinds of decline (ground_truth.csv decay_kind). */
export const DECAY_KINDS = ['fast', 'slow', 'partial'] as const;

const SQL_DIR = fileURLToPath(new URL('./sql/', import.meta.url));

function sqlFile(name: string): string {
  return readFileSync(join(SQL_DIR, `${name}.sql`), 'utf8');
}

type Format = 'csv' | 'csv.gz' | 'parquet' | 'ndjson';

interface Output {
  /** Entity name (or `ground_truth`): the key in SampleResult.rows. */
  name: string;
  file: string;
  format: Format;
  /** A table built before, or the SQL file to stream from. */
  from: { table: string } | { sql: string };
  columns: readonly string[];
  orderBy: string;
}

/** The columns of ground_truth.csv, in order. */
export const GROUND_TRUTH_COLUMNS = [
  'customer_id',
  'archetype',
  'decay_start',
  'decay_kind',
  'base_orders_per_30d',
  'is_complainer',
  'is_late_payer',
  'customer_no',
  'holdout_group',
  'is_persuadable',
  'winback_sent',
] as const;

/** Tables built first: later files read them. Order matters. */
const TABLES: readonly { table: string; sql: string }[] = [
  { table: 'sample_planted', sql: 'planted_bad_rows' },
  { table: 'sample_poisson', sql: 'poisson' },
  { table: 'sample_profiles', sql: 'profiles' },
  { table: 'sample_segments', sql: 'segments' },
  { table: 'sample_customers', sql: 'customers' },
  { table: 'sample_subscriptions', sql: 'subscriptions' },
  { table: 'sample_tickets', sql: 'tickets' },
];

const OUTPUTS: readonly Output[] = [
  {
    name: 'customers',
    file: 'customers.csv',
    format: 'csv',
    from: { table: 'sample_customers' },
    columns: canonicalColumns('customers'),
    orderBy: 'customer_no',
  },
  {
    name: 'orders',
    file: 'orders.csv.gz',
    format: 'csv.gz',
    from: { sql: 'orders' },
    columns: canonicalColumns('orders'),
    orderBy: 'sort_no, ordered_at, amount',
  },
  {
    name: 'subscriptions',
    file: 'subscriptions.csv',
    format: 'csv',
    from: { table: 'sample_subscriptions' },
    columns: canonicalColumns('subscriptions'),
    orderBy: 'subscription_id',
  },
  {
    name: 'activity',
    file: 'activity.parquet',
    format: 'parquet',
    from: { sql: 'activity' },
    columns: canonicalColumns('activity'),
    orderBy: 'customer_no, slot',
  },
  {
    name: 'email_events',
    file: 'email_events.ndjson',
    format: 'ndjson',
    from: { sql: 'email_events' },
    columns: ['customer_id', 'email', 'occurred_at', 'event_type', 'campaign_id'],
    orderBy: 'customer_no, campaign_no, event_no',
  },
  {
    name: 'surveys',
    file: 'surveys.csv',
    format: 'csv',
    from: { sql: 'surveys' },
    columns: ['response_id', 'customer_id', 'responded_at', 'survey_type', 'score', 'comment'],
    orderBy: 'sort_no',
  },
  {
    name: 'tickets',
    file: 'tickets.csv',
    format: 'csv',
    from: { table: 'sample_tickets' },
    columns: canonicalColumns('tickets'),
    orderBy: 'ticket_id',
  },
  {
    name: 'invoices',
    file: 'invoices.csv',
    format: 'csv',
    from: { sql: 'invoices' },
    columns: canonicalColumns('invoices'),
    orderBy: 'invoice_id',
  },
  {
    name: 'ground_truth',
    file: 'ground_truth.csv',
    format: 'csv',
    from: { sql: 'ground_truth' },
    columns: GROUND_TRUTH_COLUMNS,
    orderBy: 'customer_no',
  },
];

const COPY_OPTIONS: Record<Format, string> = {
  csv: 'format csv, header true',
  // DuckDB writes the plain CSV; zlib compresses it (2-3x faster than COPY's gzip, and in parallel).
  'csv.gz': 'format csv, header true',
  parquet: 'format parquet',
  ndjson: 'format json',
};

/** Gzips `from` into `to` (deterministic: zlib writes no file name and a zero mtime) and removes `from`. */
async function gzipFile(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), createGzip({ level: 6 }), createWriteStream(to));
  await rm(from, { force: true });
}

function validate(opts: SampleOptions): string {
  if (!Number.isInteger(opts.customers) || opts.customers < 1 || opts.customers > MAX_CUSTOMERS) {
    throw new Error(
      `sample-data: customers must be a whole number from 1 to ${MAX_CUSTOMERS}, got ${opts.customers}`,
    );
  }
  const lift = opts.campaignLift ?? PLANTED_LIFT;
  if (!(lift >= 0 && lift <= 1)) {
    throw new Error(`sample-data: campaignLift must be a share from 0 to 1, got ${opts.campaignLift}`);
  }
  const scale = opts.activityScale ?? 1;
  if (!(scale >= 0.25 && scale <= 20)) {
    throw new Error(`sample-data: activityScale must be from 0.25 to 20, got ${opts.activityScale}`);
  }
  if (!Number.isSafeInteger(opts.seed)) {
    throw new Error(`sample-data: seed must be a whole number, got ${opts.seed}`);
  }
  const asOf = opts.asOf ?? DEFAULT_SAMPLE_AS_OF;
  const parsed = new Date(`${asOf}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(asOf) ||
    Number.isNaN(parsed.getTime()) ||
    parsed.toISOString().slice(0, 10) !== asOf
  ) {
    throw new Error(`sample-data: asOf must be a date YYYY-MM-DD, got ${asOf}`);
  }
  return asOf;
}

/** CPU time of this process (all DuckDB threads included) since `since`, in ms. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return Math.round((used.user + used.system) / 1000);
}

/** The holdout of the pipeline's default config: the sample's campaign targets the customers it targets. */
const HOLDOUT = configSchema.parse({}).audience;

/** The planted win-back campaign, as meta.json records it (the ground truth per customer is in ground_truth.csv). */
function campaignMeta(asOf: string, lift: number) {
  const day = (offset: number) => {
    const d = new Date(`${asOf}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + offset);
    return d.toISOString().slice(0, 10);
  };
  return {
    audience_as_of: asOf,
    campaign_id: `${WINBACK_CAMPAIGN_PREFIX}${day(1)}`,
    sent_on: day(1),
    follow_up_until: day(FOLLOW_UP_DAYS),
    holdout_salt: HOLDOUT.holdout_salt,
    control_share: HOLDOUT.control_share,
    never_sent_share: NEVER_SENT_SHARE,
    // Come-back rate of the customers e-mailed minus that of the control, in any window of 14 to FOLLOW_UP_DAYS days.
    planted_lift_sent: lift,
    // The same for the whole target group, of whom NEVER_SENT_SHARE were never e-mailed.
    planted_lift_targeted: Math.round(lift * (1 - NEVER_SENT_SHARE) * 1e6) / 1e6,
  };
}

/** The generator's parameters as DuckDB variables (read through the sample_* macros of pipelines/sample/sql/macros.sql). */
async function setParameters(db: Db, opts: SampleOptions, asOf: string): Promise<void> {
  const history = `least(date ${sqlString(HISTORY_START)}, date ${sqlString(asOf)} - ${HISTORY_MIN_DAYS})`;
  const activityScale = opts.activityScale ?? 1;
  await db.run(`
    set variable sample_seed = ${opts.seed}::bigint;
    set variable sample_customers = ${opts.customers}::bigint;
    set variable sample_as_of = date ${sqlString(asOf)};
    set variable sample_history_start = ${history};
    set variable sample_span_days = (date ${sqlString(asOf)} - ${history})::integer;
    set variable sample_first_campaign_day = ((9 - isodow(${history})) % 7)::integer;
    set variable sample_campaign_every_days = ${CAMPAIGN_EVERY_DAYS}::integer;
    set variable sample_plant_bad_rows = ${opts.customers >= PLANT_BAD_ROWS_MIN_CUSTOMERS};
    set variable sample_activity_scale = ${activityScale}::double;
    set variable sample_month_noise_cv = ${activityScale > 1 ? 0.5 : 0.4}::double;
    set variable sample_follow_up_days = ${FOLLOW_UP_DAYS}::integer;
    set variable sample_holdout_salt = ${sqlString(HOLDOUT.holdout_salt)};
    set variable sample_control_share = ${HOLDOUT.control_share}::double;
    set variable sample_campaign_lift = ${opts.campaignLift ?? PLANTED_LIFT}::double;
    set variable sample_never_sent_share = ${NEVER_SENT_SHARE}::double;
    set variable sample_winback_campaign_id = ${sqlString(WINBACK_CAMPAIGN_PREFIX)} || (date ${sqlString(asOf)} + 1)::varchar;
  `);
}

/** Writes the synthetic sample dataset (nine data files, ground_truth.csv and meta.json) into opts.dir. */
export async function generateSample(opts: SampleOptions, log?: Logger): Promise<SampleResult> {
  const started = performance.now();
  const asOf = validate(opts);
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const spill = await mkdtemp(join(tmpdir(), 'churn-sample-'));
  const db = await Db.open({ tempDirectory: spill, memoryLimit: MEMORY_LIMIT });
  const compressions: Promise<void>[] = [];
  try {
    await setParameters(db, opts, asOf);
    await db.run(sqlFile('macros'));
    for (const { table, sql } of TABLES) {
      const t = performance.now();
      const cpu = process.cpuUsage();
      await db.run(`create or replace table ${table} as\n${sqlFile(sql)}`);
      log?.debug({ table, ms: Math.round(performance.now() - t), cpu_ms: cpuMs(cpu) }, 'sample table built');
    }

    const rows: Record<string, number> = {};
    for (const output of OUTPUTS) {
      const t = performance.now();
      const cpu = process.cpuUsage();
      const source = 'table' in output.from ? output.from.table : `(\n${sqlFile(output.from.sql)}\n)`;
      const target = join(dir, output.file);
      const partial = `${target}.partial`;
      const written = output.format === 'csv.gz' ? join(spill, `${output.name}.csv`) : partial;
      const count = await db.number(
        `copy (select ${output.columns.join(', ')} from ${source} order by ${output.orderBy})
         to ${sqlString(written)} (${COPY_OPTIONS[output.format]})`,
      );
      rows[output.name] = count;
      if (output.format === 'csv.gz') {
        // compressed while DuckDB writes the next files
        const compressed = gzipFile(written, partial).then(() => rename(partial, target));
        compressed.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
        compressions.push(compressed);
      } else {
        await rename(partial, target);
      }
      log?.info(
        { file: output.file, rows: count, ms: Math.round(performance.now() - t), cpu_ms: cpuMs(cpu) },
        'sample file written',
      );
    }
    await Promise.all(compressions);

    const meta = await sampleMeta(db, opts, asOf, rows);
    await writeFile(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);

    const ms = Math.round(performance.now() - started);
    log?.info({ dir, customers: opts.customers, rows, ms }, 'sample dataset written');
    return { dir, asOf, customers: opts.customers, rows, ms };
  } catch (error) {
    await Promise.allSettled(compressions);
    await Promise.all(OUTPUTS.map((o) => rm(join(dir, `${o.file}.partial`), { force: true })));
    throw error;
  } finally {
    db.close();
    await rm(spill, { recursive: true, force: true });
  }
}

/** What meta.json says about a generated sample (rows: written per file, as SampleResult.rows). */
async function sampleMeta(db: Db, opts: SampleOptions, asOf: string, rows: Record<string, number>) {
  return {
    seed: opts.seed,
    customers: opts.customers,
    as_of: asOf,
    history_start: (await db.one<{ d: string }>(`select getvariable('sample_history_start')::varchar as d`))
      ?.d,
    generated_by: 'churn sample-data',
    campaign: campaignMeta(asOf, opts.campaignLift ?? PLANTED_LIFT),
    archetypes: await archetypeCounts(db),
    rows,
    planted_bad_rows: await db.all<{ entity: string; key: string; reason: string }>(
      `select entity, key, reason from sample_planted order by entity, key`,
    ),
  };
}

/** The contents of meta.json. */
export type SampleMeta = Awaited<ReturnType<typeof sampleMeta>>;

async function archetypeCounts(db: Db): Promise<Record<string, number>> {
  const found = await db.all<{ archetype: string; n: string }>(
    `select archetype, count(*)::varchar as n from sample_profiles group by archetype`,
  );
  return Object.fromEntries(
    ARCHETYPES.map((name) => [name, Number(found.find((r) => r.archetype === name)?.n ?? 0)]),
  );
}
