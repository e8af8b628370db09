// Every documented option works: one small generated sample, run end to end (land, models, quality gates,
// export, publish) under every value of every enum of the config schema that changes what a run computes
// (period_grain, cohort_by, csat_scale, each subset of active_when, audience.include_churned,
// health.model_time_unit, output type local; S3 is covered by test/s3.test.ts) and every segment_by column.
// Each run must pass all of its gates and the published tables must hold the invariants.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, parseConfig } from '../config/load.js';
import { configSchema, SEGMENT_COLUMNS } from '../config/schema.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { type RunResult, runPipeline } from '../pipelines/run/index.js';
import { generateSample } from '../pipelines/sample/generate.js';
import { PUBLISHED_TABLES } from '../pipelines/stages/export.js';
import { PUBLISHED_INVARIANTS } from './support/invariants.js';

type ActiveSource = 'orders' | 'activity' | 'subscriptions';
const ACTIVE_SOURCES: readonly ActiveSource[] = ['orders', 'activity', 'subscriptions'];

interface Variant {
  name: string;
  period_grain?: 'day' | 'week' | 'month' | 'quarter';
  cohort_by?: 'first_active' | 'signup';
  csat_scale?: 5 | 10;
  active_when?: ActiveSource[];
  include_churned?: boolean;
  model_time_unit?: 'days' | 'weeks';
  segment_by?: string[];
}

// A covering design rather than the full product: every value of every option appears at least once.
const VARIANTS: Variant[] = [
  { name: 'defaults' },
  { name: 'day', period_grain: 'day', active_when: ['orders'], model_time_unit: 'days' },
  {
    name: 'week-signup',
    period_grain: 'week',
    cohort_by: 'signup',
    active_when: ['activity'],
    include_churned: true,
    segment_by: ['marketing_consent', 'signup_at'],
  },
  {
    name: 'quarter-subscriptions',
    period_grain: 'quarter',
    cohort_by: 'signup',
    active_when: ['subscriptions'],
  },
  { name: 'csat10', csat_scale: 10, active_when: ['orders', 'activity'], include_churned: true },
  {
    name: 'week-orders-subscriptions',
    period_grain: 'week',
    active_when: ['orders', 'subscriptions'],
    segment_by: ['country', 'consent_at', 'cancelled_at'],
  },
  {
    name: 'signup-activity-subscriptions',
    cohort_by: 'signup',
    active_when: ['activity', 'subscriptions'],
    include_churned: true,
    model_time_unit: 'days',
  },
];

// The sample's CSAT is 1-5; for csat_scale 10 its top two boxes (4, 5) become 9 and 10, so the 1-10 run must
// report exactly what the 1-5 run reports.
const RESCALED_SCORE =
  "case when survey_type = 'csat' and try_cast(score as integer) >= 4 then (try_cast(score as integer) + 5)::varchar else score end";

/** The schema's own enum values, so that a new value without a run here fails the coverage test. */
function schemaOptions() {
  const shape = configSchema.shape;
  const sources: ActiveSource[] = shape.active_when.unwrap().element.options;
  expect(sources).toEqual(ACTIVE_SOURCES);
  const subsets = [...Array(2 ** sources.length).keys()]
    .slice(1)
    .map((mask) => sources.filter((_, i) => mask & (1 << i)).join(','));
  return {
    period_grain: shape.period_grain.unwrap().options as string[],
    cohort_by: shape.cohort_by.unwrap().options as string[],
    csat_scale: shape.csat_scale.unwrap().options.map((o) => o.value),
    active_when: subsets,
    include_churned: [false, true],
    model_time_unit: shape.health.unwrap().shape.model_time_unit.unwrap().options as string[],
    segment_by: [...SEGMENT_COLUMNS],
  };
}

function resolved(variant: Variant) {
  const defaults = configSchema.parse(parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')));
  return {
    period_grain: variant.period_grain ?? defaults.period_grain,
    cohort_by: variant.cohort_by ?? defaults.cohort_by,
    csat_scale: variant.csat_scale ?? defaults.csat_scale,
    active_when: variant.active_when ?? defaults.active_when,
    include_churned: variant.include_churned ?? defaults.audience.include_churned,
    model_time_unit: variant.model_time_unit ?? defaults.health.model_time_unit,
    segment_by: variant.segment_by ?? defaults.segment_by,
  };
}

describe('config: segment_by takes customer columns, with a clear error otherwise', () => {
  const parseYaml = (text: string) => parseConfig(text, 'churn.yaml', {});
  it('accepts every customer attribute column', () => {
    const { config } = parseYaml(`segment_by: [${SEGMENT_COLUMNS.join(', ')}]`);
    expect(config.segment_by).toEqual([...SEGMENT_COLUMNS]);
  });
  it('names an unknown column, a personal one and a repeated one, on one line', () => {
    const problem = (text: string) => {
      try {
        parseYaml(text);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        const message = (err as Error).message;
        expect(message).not.toContain('\n');
        return message;
      }
      throw new Error('expected a config error');
    };
    expect(problem('segment_by: [segment, plan]')).toContain(
      'config key "segment_by.1": found "plan", "plan" is not a customer column: use customer columns among ' +
        'segment, country, marketing_consent, signup_at, consent_at, cancelled_at ' +
        "(map an export's own attribute onto segment or country with sources.customers.columns)",
    );
    expect(problem('segment_by: [email]')).toContain(
      'config key "segment_by.0": found "email", customer column "email" is personal data and cannot split the metric tables',
    );
    expect(problem('segment_by: [country, country]')).toContain(
      'config key "segment_by.1": found "country", "country" is listed twice: list it once',
    );
  });
  it('has a metrics section with the small-number defaults', () => {
    const { config } = parseYaml('{}');
    expect(config.metrics).toEqual({ min_base_customers: 10, min_survey_responses: 30 });
    expect(() => parseYaml('metrics: { min_base_customers: 0 }')).toThrow(/metrics.min_base_customers/);
  });
});

describe('every documented option, end to end on one generated sample', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-options-'));
  const results = new Map<string, RunResult>();
  const failures = new Map<string, string>();
  let db: Db;

  beforeAll(async () => {
    const sample = await generateSample({ dir: join(dir, 'data', 'sample'), customers: 300, seed: 11 });
    const base = parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8'));
    const runVariant = async (variant: Variant): Promise<void> => {
      const { name, include_churned, model_time_unit, ...top } = variant;
      const config = {
        ...base,
        ...top,
        sources:
          variant.csat_scale === 10
            ? {
                ...base.sources,
                surveys: { ...base.sources.surveys, columns: { score: { expr: RESCALED_SCORE } } },
              }
            : base.sources,
        audience: include_churned === undefined ? undefined : { include_churned },
        health: model_time_unit === undefined ? undefined : { model_time_unit },
        output: { type: 'local', path: `out/${name}` },
        state_dir: `.churn/${name}`,
      };
      const file = join(dir, `${name}.yaml`);
      // YAML is a superset of JSON: the file goes through the same loader as a user's config.
      writeFileSync(file, JSON.stringify(config, null, 2));
      try {
        results.set(name, await runPipeline(loadConfig(file), { asOf: sample.asOf, log: silentLogger() }));
      } catch (err) {
        failures.set(name, (err as Error).message);
      }
    };
    // Each variant has its own output and state folder: two run side by side (the SQL overlaps the model fits).
    const queue = [...VARIANTS];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await runVariant(next);
    };
    await Promise.all([worker(), worker()]);
    db = await Db.open();
  }, 180_000);

  /** Views over one run's published tables (current/), in the shared database. */
  async function open(name: string): Promise<void> {
    for (const { name: table } of PUBLISHED_TABLES) {
      const file = join(dir, 'out', name, 'current', table, 'part-0.parquet');
      await db.run(`create or replace view ${table} as select * from read_parquet(${sqlString(file)})`);
    }
  }

  it('covers every value of every option', () => {
    const options = schemaOptions();
    const covered = {
      period_grain: new Set<unknown>(),
      cohort_by: new Set<unknown>(),
      csat_scale: new Set<unknown>(),
      active_when: new Set<unknown>(),
      include_churned: new Set<unknown>(),
      model_time_unit: new Set<unknown>(),
      segment_by: new Set<unknown>(),
    };
    for (const variant of VARIANTS) {
      const r = resolved(variant);
      covered.period_grain.add(r.period_grain);
      covered.cohort_by.add(r.cohort_by);
      covered.csat_scale.add(r.csat_scale);
      covered.active_when.add(ACTIVE_SOURCES.filter((s) => r.active_when.includes(s)).join(','));
      covered.include_churned.add(r.include_churned);
      covered.model_time_unit.add(r.model_time_unit);
      for (const column of r.segment_by) covered.segment_by.add(column);
    }
    for (const [option, values] of Object.entries(options)) {
      for (const value of values)
        expect(covered[option as keyof typeof covered].has(value), `${option}: ${value}`).toBe(true);
    }
  });

  it.each(VARIANTS.map((v) => v.name))('%s: runs, passes every gate and publishes every table', (name) => {
    expect(failures.get(name), name).toBeUndefined();
    const result = results.get(name)!;
    const notPassed = result.manifest.checks.filter((c) => c.status !== 'pass');
    expect(notPassed, name).toEqual([]);
    for (const { name: table } of PUBLISHED_TABLES)
      expect(result.manifest.tables[table], table).toBeDefined();
    expect(result.manifest.tables.fct_customer_period!.rows).toBeGreaterThan(0);
  });

  it.each(VARIANTS.map((v) => v.name))('%s: the published tables hold the invariants', async (name) => {
    if (!results.has(name)) throw new Error(`${name} did not run: ${failures.get(name)}`);
    const options = resolved(VARIANTS.find((v) => v.name === name)!);
    await open(name);
    expect(PUBLISHED_INVARIANTS.split('union all').length).toBeGreaterThanOrEqual(10);
    expect(await db.all(PUBLISHED_INVARIANTS)).toEqual([]);

    // Periods are buckets of the configured grain.
    const misaligned = await db.number(`
      select count(*) from fct_customer_period
      where period_start <> case ${sqlString(options.period_grain)}
          when 'day' then period_start
          when 'week' then date_trunc('week', period_start)::date
          when 'month' then date_trunc('month', period_start)::date
          when 'quarter' then date_trunc('quarter', period_start)::date
      end`);
    expect(misaligned, 'period_start not on the grain').toBe(0);

    // Active exactly when one of the configured sources qualifies.
    const orders = options.active_when.includes('orders');
    const activity = options.active_when.includes('activity');
    const subscriptions = options.active_when.includes('subscriptions');
    expect(
      await db.number(`
        select count(*) from fct_customer_period
        where is_active <> ((${orders} and orders > 0) or (${activity} and activity_events > 0)
                            or (${subscriptions} and coalesce(subscription_active, false)))`),
      'is_active against active_when',
    ).toBe(0);

    // not_yet_active: before the customer's first activity only; signup cohorts have such periods.
    expect(
      await db.number(`
        select count(*) from fct_customer_period as later
        where later.lifecycle = 'not_yet_active' and exists (
            select 1 from fct_customer_period as earlier
            where earlier.customer_id = later.customer_id and earlier.is_active
              and earlier.period_start <= later.period_start)`),
      'not_yet_active after an active period',
    ).toBe(0);
    if (options.cohort_by === 'signup') {
      expect(
        await db.number(`select count(*) from fct_customer_period where lifecycle = 'not_yet_active'`),
      ).toBeGreaterThan(0);
    }

    // Small numbers: no rate on a base below the minimum (default 10), none significant below 30 responses.
    expect(
      await db.number(`
        select count(*) from churn_summary
        where (customers_start < 10 and (churn_rate_pct is not null or retention_rate_pct is not null
                                          or nrr_pct is not null or grr_pct is not null))
           or (coalesce(mrr_customers_start, 0) < 10 and (mrr_grr_pct is not null or mrr_nrr_pct is not null))`),
      'churn_summary rate on a small base',
    ).toBe(0);
    expect(
      await db.number(
        `select count(*) from cohort_retention where cohort_size < 10 and (retention_pct is not null or unbounded_retention_pct is not null)`,
      ),
      'cohort_retention rate on a small cohort',
    ).toBe(0);
    expect(
      await db.number(
        `select count(*) from survey_trends where significant_change and (responses < 30 or previous_responses < 30)`,
      ),
      'significant change on few responses',
    ).toBe(0);

    // Every configured segment column splits the metric tables.
    for (const table of ['churn_summary', 'cohort_retention', 'survey_trends']) {
      const dims = await db.all<{ segment_by: string }>(
        `select distinct segment_by from ${table} order by 1`,
      );
      expect(
        dims.map((d) => d.segment_by),
        table,
      ).toEqual(['all', ...options.segment_by].sort());
    }
    // Each dimension's segments partition the customers.
    const partition = await db.all(`
      select segment_by, sum(cohort_size) as customers from cohort_retention where period_index = 0
      group by 1 having sum(cohort_size) <> (
          select sum(cohort_size) from cohort_retention where period_index = 0 and segment_by = 'all')`);
    expect(partition, 'segments do not add up to all').toEqual([]);

    // The audience: churned customers only when configured.
    const statuses = await db.all<{ status: string }>(`select distinct status from reactivation_audience`);
    const allowed = options.include_churned
      ? ['at_risk', 'silent_churn', 'churned']
      : ['at_risk', 'silent_churn'];
    for (const { status } of statuses) expect(allowed).toContain(status);
  });

  it('reports the same CSAT on the 1-10 scale as on the 1-5 scale for the same answers', async () => {
    const csat = async (name: string) => {
      await open(name);
      return db.all(`
        select segment_by, segment, period_start, responses, satisfied, csat_pct, csat_moe95, significant_change
        from survey_trends where survey_type = 'csat' order by all`);
    };
    const five = await csat('defaults');
    expect(five.length).toBeGreaterThan(0);
    expect(await csat('csat10')).toEqual(five);
  });

  it('keeps the churned customers out of the audience unless include_churned is set', async () => {
    const churned = async (name: string) => {
      await open(name);
      return db.number(`select count(*) from reactivation_audience where status = 'churned'`);
    };
    expect(await churned('defaults')).toBe(0);
    expect(await churned('csat10')).toBeGreaterThan(0);
  });
});
