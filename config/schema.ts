// The configuration contract: one YAML file, validated here at start-up.
// Every key has a default so that a config only says what differs from the embedded default.
import { z } from 'zod';

export const ENTITIES = [
  'customers',
  'orders',
  'subscriptions',
  'activity',
  'email_events',
  'surveys',
  'tickets',
  'invoices',
] as const;
export type Entity = (typeof ENTITIES)[number];

/** Canonical columns of each entity (spec: "Inputs: the data contract"). Required ones first. */
export const ENTITY_COLUMNS: Record<Entity, { required: readonly string[]; optional: readonly string[] }> = {
  customers: {
    required: ['customer_id'],
    optional: [
      'email',
      'first_name',
      'last_name',
      'country',
      'segment',
      'signup_at',
      'marketing_consent',
      'consent_at',
      'cancelled_at',
    ],
  },
  orders: { required: ['order_id', 'customer_id', 'ordered_at', 'amount'], optional: ['status', 'currency'] },
  subscriptions: {
    required: ['subscription_id', 'customer_id', 'started_at'],
    optional: ['ended_at', 'mrr', 'plan'],
  },
  activity: { required: ['customer_id', 'occurred_at'], optional: ['event_type', 'quantity'] },
  email_events: {
    required: ['occurred_at', 'event_type'],
    optional: ['customer_id', 'email', 'campaign_id'],
  },
  surveys: {
    required: ['customer_id', 'responded_at', 'survey_type', 'score'],
    optional: ['response_id', 'comment'],
  },
  tickets: {
    required: ['ticket_id', 'customer_id', 'opened_at'],
    optional: ['resolved_at', 'category', 'is_complaint'],
  },
  invoices: {
    required: ['invoice_id', 'customer_id', 'issued_at', 'due_at'],
    optional: ['paid_at', 'amount'],
  },
};

/** A canonical column comes from a source column, a source column parsed with a strptime format, or a SQL expression. */
const columnMapping = z.union([
  z.string().min(1),
  z.strictObject({ column: z.string().min(1), format: z.string().min(1) }),
  z.strictObject({ expr: z.string().min(1) }),
]);
export type ColumnMapping = z.infer<typeof columnMapping>;

const csvOptions = z.strictObject({
  delimiter: z.string().min(1).max(4).optional().describe('auto-detected when absent'),
  header: z.boolean().default(true),
  quote: z.string().max(1).default('"'),
  escape: z.string().max(1).default('"'),
  skip: z.int().min(0).default(0),
  null_strings: z.array(z.string()).default(['']),
  /** Column names to use when the file has no header. */
  names: z.array(z.string()).optional(),
  encoding: z.enum(['utf-8', 'utf-16', 'latin-1']).default('utf-8'),
  /** Longest CSV record (line) in bytes; DuckDB's default is 2 000 000. */
  max_line_size: z.int().min(1024).optional(),
});
export type CsvOptions = z.infer<typeof csvOptions>;

const fileFormat = z.enum(['csv', 'parquet', 'ndjson']);
export type FileFormat = z.infer<typeof fileFormat>;

/** What every source kind shares: how the landed rows map to the canonical entity. */
const mappingFields = {
  columns: z.record(z.string(), columnMapping).default({}),
  /**
   * One SQL boolean expression over the source columns (DuckDB syntax); rows where it is not true are left out
   * (not quarantined). Checked with DuckDB's parser: one expression, never further statements or clauses. A
   * warehouse source sends it to the warehouse with the extraction query.
   */
  where: z.string().min(1).optional(),
};

const localSource = z.strictObject({
  type: z.literal('local'),
  /** A file path or glob, relative to the config file's folder. */
  path: z.string().min(1),
  format: fileFormat.default('csv'),
  csv: csvOptions.prefault({}),
  ...mappingFields,
});

const s3Source = z.strictObject({
  type: z.literal('s3'),
  bucket: z.string().min(1),
  prefix: z.string().default(''),
  /** A glob matched against the key below the prefix, e.g. `orders/*.csv.gz`. */
  glob: z.string().default('**'),
  region: z.string().default('us-east-1'),
  endpoint: z.string().url().optional(),
  force_path_style: z.boolean().default(false),
  format: fileFormat.default('csv'),
  csv: csvOptions.prefault({}),
  ...mappingFields,
});

const warehouseSource = z.strictObject({
  type: z.literal('warehouse'),
  dialect: z.enum(['postgres', 'mysql']),
  /** A connection URL, normally `${ENV_VAR}`. */
  connection: z.string().min(1),
  schema: z.string().optional(),
  table: z.string().min(1).optional(),
  query: z.string().min(1).optional(),
  /** Column that grows with every new or changed row (updated_at, id): enables incremental extraction. */
  cursor_column: z.string().optional(),
  /** How far behind the last cursor value to re-read, for rows committed late (e.g. "2 hours", or a number for id cursors). */
  overlap: z.union([z.string(), z.number()]).optional(),
  /** The entity key used to deduplicate re-read rows (defaults to the entity's id column). */
  key: z.array(z.string()).optional(),
  batch_size: z.int().min(100).default(50_000),
  ...mappingFields,
});

/** A DuckDB query over local files (joins of several exports, e.g. reviews -> orders -> customers). */
const sqlSource = z.strictObject({
  type: z.literal('sql'),
  /** DuckDB SQL; relative file paths in it resolve against the config file's folder. */
  query: z.string().min(1),
  ...mappingFields,
});

export const sourceSchema = z.discriminatedUnion('type', [localSource, s3Source, warehouseSource, sqlSource]);
export type SourceConfig = z.infer<typeof sourceSchema>;
export type LocalSourceConfig = z.infer<typeof localSource>;
export type S3SourceConfig = z.infer<typeof s3Source>;
export type WarehouseSourceConfig = z.infer<typeof warehouseSource>;
export type SqlSourceConfig = z.infer<typeof sqlSource>;

const localOutput = z.strictObject({
  type: z.literal('local'),
  /** Output folder, relative to the config file's folder. */
  path: z.string().min(1).default('out'),
});
const s3Output = z.strictObject({
  type: z.literal('s3'),
  bucket: z.string().min(1),
  prefix: z.string().default(''),
  region: z.string().default('us-east-1'),
  endpoint: z.string().url().optional(),
  force_path_style: z.boolean().default(false),
  /** Local folder for the catalog file and staging (the catalog reads the local copy of current/). */
  local_path: z.string().default('out'),
});
export const outputSchema = z.discriminatedUnion('type', [localOutput, s3Output]);
export type OutputConfig = z.infer<typeof outputSchema>;

const health = z.strictObject({
  recent_days: z.int().min(1).default(90),
  baseline_days: z.int().min(1).default(180),
  inactive_min_days: z.int().min(1).default(30),
  inactive_gap_multiple: z.number().positive().default(3),
  lost_after_days: z.int().min(1).default(365),
  /**
   * A drop: a count below this share of what the own rate predicts (the decline tests judge only such windows); also
   * the decline outcome that p_decline learns.
   */
  drop_ratio: z.number().positive().max(1).default(0.5),
  /** Drops are only judged when the baseline window (cut to the customer's tenure) covers at least this many days. */
  min_baseline_days: z.int().min(1).default(30),
  /** ...and when the baseline rate predicts at least this many orders (active days) for the recent window: fewer is noise. */
  drop_min_expected: z.number().min(0).default(2),
  /** EMAIL_DISENGAGED when none of the last N emails sent was opened. */
  email_no_open_last_n: z.int().min(1).default(5),
  complaints_min_recent: z.int().min(1).default(2),
  late_payment_min_days: z.int().min(0).default(7),
  nps_drop_points: z.number().positive().default(3),
  low_csat_max: z.number().default(2),
  low_p_alive: z.number().min(0).max(1).default(0.3),
  /** p_churn is the probability of no qualifying activity in the next horizon_days days. */
  horizon_days: z.int().min(7).default(90),
  /**
   * A decline test (the customer's own rate before the window against the window) flags at this tail probability. With
   * the drops and the silence test each at this level, a steady customer is flagged about this often (2-3% at 0.03
   * on the bench's populations; 3.6-5.8% at 0.05).
   */
  decline_p_value: z.number().gt(0).lt(1).default(0.03),
  /** at_risk: a customer with a rhythm, idle beyond it, and p_churn at least this; dormant above it without a rhythm. */
  at_risk_p_churn: z.number().min(0).max(1).default(0.5),
  /**
   * A drop (ACTIVITY_DROP, SPEND_DROP) sets at_risk on its own only where, at the snapshot before, customers with a
   * drop declined at least this many times as often as steady ones (int_health_status drop_record); 0 trusts drops.
   */
  drop_min_lift: z.number().min(0).default(1.25),
  /** silent_churn: p_churn at least this together with a drop or an inactivity in the customer's own history. */
  silent_churn_p_churn: z.number().min(0).max(1).default(0.5),
  /** A customer with this many active days, spread over at least min_baseline_days, has a rhythm of their own. */
  rhythm_min_active_days: z.int().min(2).default(3),
  /** Idle longer than this and twice the own INACTIVE threshold (not yet lost): dormant, past the early warning. */
  dormant_after_days: z.int().min(1).default(180),
  /** Below this many training customers (with a known outcome) the learned risk model falls back to MBG/NBD. */
  model_min_training_customers: z.int().min(10).default(200),
  /** L2 penalty of the learned risk model (logistic regression on standardised features). */
  model_l2: z.number().min(0).default(1),
  /**
   * The learned risk model is fitted on at most this many customers per snapshot (a deterministic hash sample): a
   * few dozen features are learned as well from 50,000 rows as from more (at 100,000 customers the backtest's AUC and
   * Brier score move in the fourth decimal), and the fit's cost stops growing with the population.
   */
  model_max_training_rows: z.int().min(100).default(50_000),
  /**
   * The BG/NBD and MBG/NBD fits see at most this many customers (a deterministic hash sample), so that their cost
   * stops growing with the population; every customer is scored with the fitted parameters.
   */
  model_max_fit_customers: z.int().min(10).default(50_000),
  /** Unit of recency and T for the BG/NBD model. */
  model_time_unit: z.enum(['days', 'weeks']).default('weeks'),
  /** Minimum number of repeat buyers to fit the BG/NBD model. */
  model_min_repeat_buyers: z.int().min(1).default(20),
});

/** The tools the audience has an import file for (pipelines/stages/exports.ts knows each one's format). */
export const AUDIENCE_EXPORT_PROFILES = [
  'mailchimp',
  'klaviyo',
  'hubspot',
  'braze',
  'google_ads',
  'meta',
] as const;
export type AudienceExportProfile = (typeof AUDIENCE_EXPORT_PROFILES)[number];
/** The model (sql/audiences/<model>.sql) whose rows a tool's audience file holds. */
export function audienceExportModel(
  profile: AudienceExportProfile,
): `reactivation_audience_${AudienceExportProfile}` {
  return `reactivation_audience_${profile}`;
}
const audienceExportProfile = z.enum(AUDIENCE_EXPORT_PROFILES);
const audienceExport = z.union([
  audienceExportProfile,
  z.strictObject({ profile: audienceExportProfile, excel: z.boolean().default(false) }),
]);
export type AudienceExportEntry = z.infer<typeof audienceExport>;

const audience = z.strictObject({
  include_churned: z.boolean().default(false),
  suppression_days: z.int().min(0).default(30),
  control_share: z.number().min(0).max(0.9).default(0.1),
  /** Salt of the hash that assigns the control group; change it to draw a new holdout. */
  holdout_salt: z.string().default('churn-pipeline'),
  /** Offer tiers by value-at-risk quantile of the audience (first = highest value at risk). */
  offer_tiers: z.array(z.string()).min(1).default(['premium', 'standard', 'basic']),
  /**
   * The import files written for the target group (exports/reactivation_audience/reactivation_audience_<tool>.csv),
   * one per tool: a tool's name, or `{ profile, excel }` where `excel: true` starts the file with a UTF-8 byte
   * order mark (Excel then reads accents right; leave it off for files a tool imports). List only the tools you use:
   * each file is a copy of personal data.
   */
  exports: z
    .array(audienceExport)
    .default([...AUDIENCE_EXPORT_PROFILES])
    .superRefine((entries, ctx) => {
      const seen = new Set<string>();
      entries.forEach((entry, i) => {
        const profile = typeof entry === 'string' ? entry : entry.profile;
        if (seen.has(profile))
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `"${profile}" is listed twice: list each tool once`,
          });
        seen.add(profile);
      });
    }),
});

/** The early-warning flags for a CRM import (exports/crm_flags/crm_flags.csv): every known customer, with `flagged`. */
const crmFlags = z.strictObject({
  enabled: z.boolean().default(true),
  /** Start the file with a UTF-8 byte order mark, for Excel. */
  excel: z.boolean().default(false),
});

/** A regular expression (RE2, as DuckDB's regexp_matches reads it) that must at least compile. */
const campaignPattern = z
  .string()
  .min(1)
  .refine(
    (pattern) => {
      try {
        new RegExp(pattern);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected a regular expression such as "^winback-" (searched anywhere in campaign_id)' },
  );

/** reactivation_outcomes: who of each published audience came back, target against control. */
const outcomes = z.strictObject({
  /** Days after the audience date in which a qualifying activity or purchase counts as a return; one row set per window. */
  window_days: z
    .array(z.int().min(1).max(365))
    .min(1)
    .default([30])
    .refine((days) => new Set(days).size === days.length, { message: 'list each window once' }),
  /** Published audiences up to this many days before the as-of date are measured (read from the output's history). */
  lookback_days: z.int().min(1).default(365),
  /**
   * The send log: e-mail events (sent, delivered, open, click) whose campaign_id matches this regular expression mark
   * who of an audience was really e-mailed; unset: no send log, only the lift of the whole target group.
   */
  campaign_id_pattern: campaignPattern.nullable().default(null),
});

/** Small numbers (spec "Small numbers"): no rate on a tiny base, no survey change called significant on a handful of answers. */
const metrics = z.strictObject({
  /** Churn, retention, NRR and GRR (also MRR-based, and cohort retention) are null when their start base has fewer customers; the base is published beside them. */
  min_base_customers: z.int().min(1).default(10),
  /** survey_trends.significant_change is never true with fewer responses than this in either period. */
  min_survey_responses: z.int().min(1).default(30),
});

/**
 * Customer columns the metric tables can be split by (segment_by). A timestamp column splits by its period
 * (of period_grain, e.g. the signup month); a missing value is `unknown`.
 */
export const SEGMENT_COLUMNS = [
  'segment',
  'country',
  'marketing_consent',
  'signup_at',
  'consent_at',
  'cancelled_at',
] as const;
/** Customer columns that cannot split a published table, and why. */
const NOT_SEGMENT_COLUMNS: Record<string, string> = {
  customer_id: 'has one value per customer',
  email: 'is personal data',
  first_name: 'is personal data',
  last_name: 'is personal data',
};

const segmentBy = z
  .array(z.string().min(1))
  .default(['segment'])
  .superRefine((columns, ctx) => {
    const expected = `use customer columns among ${SEGMENT_COLUMNS.join(', ')} (map an export's own attribute onto segment or country with sources.customers.columns)`;
    columns.forEach((column, i) => {
      if ((SEGMENT_COLUMNS as readonly string[]).includes(column)) {
        if (columns.indexOf(column) < i)
          ctx.addIssue({ code: 'custom', path: [i], message: `"${column}" is listed twice: list it once` });
        return;
      }
      const why = NOT_SEGMENT_COLUMNS[column];
      ctx.addIssue({
        code: 'custom',
        path: [i],
        message: why
          ? `customer column "${column}" ${why} and cannot split the metric tables: ${expected}`
          : `"${column}" is not a customer column: ${expected}`,
      });
    });
  });

const quality = z.strictObject({
  /** The run fails when the quarantined share of an entity exceeds this. */
  max_quarantine_share: z.number().min(0).max(1).default(0.01),
});

const schedule = z.strictObject({
  cron: z.string().default('0 3 * * *'),
  time_zone: z.string().optional(),
  catch_up: z.enum(['latest', 'all']).default('latest'),
  /** The as-of date of a scheduled run: the day before the tick (nightly), or the tick's own day (demos, tests). */
  as_of: z.enum(['yesterday', 'today']).default('yesterday'),
  /** Catch-up after downtime looks back at most this many days for missed runs. */
  max_catch_up_days: z.int().min(1).max(366).default(31),
});

/** One run per output at a time: a lock not refreshed for stale_seconds belongs to a dead process and is taken over. */
const lock = z.strictObject({
  stale_seconds: z.number().min(2).max(3600).default(10),
});

/** Data-quality gates (transforms/checks.ts): `error` fails the run before publishing, `warn` publishes and flags. */
const checkSeverity = z.enum(['error', 'warn', 'off']);
const checks = z.strictObject({
  /** The grain of each published table is unique. */
  unique: checkSeverity.default('error'),
  /** The grain columns of each published table are never null. */
  not_null: checkSeverity.default('error'),
  /** lifecycle, status, survey_type and group only take their documented values. */
  accepted_values: checkSeverity.default('error'),
  /** customer_ids of the facts, health and audience exist where they come from. */
  relationships: checkSeverity.default('error'),
  freshness: z
    .strictObject({
      /** A stale entity: `error` fails the run, `warn` publishes and flags it, `off` skips the check. */
      severity: checkSeverity.default('warn'),
      /**
       * No reactivation audience from stale inputs: when an activity-bearing entity (orders, activity, subscriptions)
       * is stale, `error` fails the run before publishing anything, `warn` publishes the metric tables with a
       * warning and an empty audience (nobody is mailed from old data), `off` publishes the audience anyway.
       */
      audience: checkSeverity.default('error'),
      /** Per entity: its newest timestamp may be at most this many days before the as-of date (configured sources only). */
      max_age_days: z.partialRecord(z.enum(ENTITIES), z.int().min(0)).default({ orders: 3, activity: 3 }),
    })
    .prefault({}),
  volume: z
    .strictObject({
      severity: checkSeverity.default('error'),
      /** An entity's raw row count may not fall by this share (or more) against the previous successful run. */
      max_drop_share: z.number().gt(0).max(1).default(0.5),
    })
    .prefault({}),
  /** The quarantined share of an entity above quality.max_quarantine_share. */
  quarantine: checkSeverity.default('error'),
  /**
   * The manifest's reconciliation (transforms/reconciliation.ts) does not balance: a row or an amount of the input
   * is neither staged, quarantined, left out by `where`, after the as-of date nor in the published facts.
   */
  reconciliation: checkSeverity.default('error'),
});

const notifications = z.strictObject({
  webhook_url: z.string().optional(),
  on_success: z.boolean().default(false),
});

const ianaZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected an IANA time zone name such as "UTC" or "Europe/Berlin"' },
);

export const configSchema = z.strictObject({
  business_time_zone: ianaZone.default('UTC'),
  period_grain: z.enum(['day', 'week', 'month', 'quarter']).default('month'),
  /** Fixed as-of date (YYYY-MM-DD); default: yesterday in the business time zone. */
  as_of: z.iso.date().optional(),
  sources: z.partialRecord(z.enum(ENTITIES), sourceSchema).default({}),
  /** Which entities make a customer active in a period. */
  active_when: z
    .array(z.enum(['orders', 'activity', 'subscriptions']))
    .min(1)
    .default(['orders', 'activity', 'subscriptions']),
  cohort_by: z.enum(['first_active', 'signup']).default('first_active'),
  /** Customer columns that split cohort_retention, churn_summary and survey_trends (an `all` row is always there). */
  segment_by: segmentBy,
  csat_scale: z.union([z.literal(5), z.literal(10)]).default(5),
  health: health.prefault({}),
  audience: audience.prefault({}),
  crm_flags: crmFlags.prefault({}),
  metrics: metrics.prefault({}),
  outcomes: outcomes.prefault({}),
  quality: quality.prefault({}),
  output: outputSchema.default({ type: 'local', path: 'out' }),
  /** Folder for the run ledger, lock, landed files and incremental state, relative to the config file. */
  state_dir: z.string().default('.churn'),
  schedule: schedule.prefault({}),
  notifications: notifications.prefault({}),
  checks: checks.prefault({}),
  lock: lock.prefault({}),
  duckdb: z
    .strictObject({
      memory_limit: z.string().default('4GB'),
      threads: z.int().min(1).optional(),
      /**
       * Where the run's tables live: `memory` (fastest), or `file`, a database file in the run's scratch folder that
       * DuckDB writes compressed and evicts under memory_limit (about 20% more CPU, a third less peak memory and a
       * third of the spill, for populations beyond the machine's memory). Deleted with the run's scratch folder.
       */
      storage: z.enum(['memory', 'file']).default('memory'),
      /**
       * Models whose yml says `batch_by: customer_id` (the early-warning features, the customer-period facts, the
       * active days) are built in ranges of customer_id of at most about this many customers each, once the
       * population is larger:
       * a hash table of every customer's windows stops fitting in the CPU's caches and in memory_limit, and time
       * grows faster than the rows. 0: always in one pass. The tables are the same either way.
       */
      customers_per_batch: z.int().min(0).default(100_000),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type HealthConfig = Config['health'];
export type AudienceConfig = Config['audience'];
export type MetricsConfig = Config['metrics'];
export type OutcomesConfig = Config['outcomes'];
export type ChecksConfig = Config['checks'];
export type CheckSeverity = z.infer<typeof checkSeverity>;
