// End to end on a small generated sample: every published file, the manifest against the files, the
// audience CSV as marketing imports it, detection quality against the ground truth, and a second run of
// the same as-of date giving byte-identical tables.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { type RunResult, runPipeline } from '../pipelines/run/index.js';
import { scoreHealth } from '../pipelines/sample/quality.js';
import { PUBLISHED_TABLES } from '../pipelines/stages/export.js';
import { PUBLISHED_INVARIANTS } from './support/invariants.js';
import { sampleProject } from './support/sample.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The columns the spec lists per table (more are welcome). */
const SPEC_COLUMNS: Record<string, string[]> = {
  fct_customer_period: [
    'customer_id',
    'period_start',
    'period_end',
    'cohort_period',
    'period_index',
    'is_active',
    'lifecycle',
    'orders',
    'revenue',
    'refunds',
    'activity_events',
    'emails_sent',
    'emails_opened',
    'emails_clicked',
    'nps_responses',
    'nps_avg',
    'csat_responses',
    'csat_avg',
    'tickets_opened',
    'complaints',
    'invoices_due',
    'invoices_paid_late',
    'avg_days_late',
    'subscription_active',
    'mrr',
    'is_complete',
  ],
  cohort_retention: [
    'cohort_period',
    'period_index',
    'segment',
    'cohort_size',
    'active_customers',
    'retention_pct',
    'unbounded_active',
    'unbounded_retention_pct',
    'revenue',
    'cumulative_revenue_per_customer',
  ],
  churn_summary: [
    'period_start',
    'segment',
    'customers_start',
    'new_customers',
    'retained',
    'resurrected',
    'churned',
    'active_customers',
    'churn_rate_pct',
    'retention_rate_pct',
    'nrr_pct',
    'grr_pct',
    'mrr_start',
    'mrr_new',
    'mrr_expansion',
    'mrr_contraction',
    'mrr_churned',
    'mrr_reactivation',
    'mrr_end',
    'mrr_grr_pct',
    'mrr_nrr_pct',
  ],
  survey_trends: [
    'period_start',
    'survey_type',
    'segment',
    'responses',
    'promoters',
    'passives',
    'detractors',
    'nps',
    'nps_moe95',
    'satisfied',
    'csat_pct',
    'score_avg',
    'rolling_3',
    'delta_vs_prev',
    'significant_change',
  ],
  customer_health: [
    'customer_id',
    'status',
    'risk_score',
    'reasons',
    'days_since_last_activity',
    'typical_gap_days',
    'p_alive',
    'expected_purchases_next_90d',
    'rfm_segment',
  ],
  reactivation_audience: [
    'email',
    'customer_id',
    'first_name',
    'last_name',
    'country',
    'segment',
    'status',
    'risk_score',
    'reasons',
    'last_active_at',
    'lifetime_revenue',
    'p_alive',
    'priority_rank',
    'offer_tier',
    'audience_group',
    'email_sha256',
  ],
  audience_exclusions: ['reason', 'customers'],
  quarantine: ['entity', 'source_file', 'source_row', 'column_name', 'reason'],
};

describe('end to end on a generated sample', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-e2e-'));
  let first: RunResult;
  let second: RunResult;
  let firstHashes: Record<string, string>;
  let db: Db;
  const out = join(dir, 'out');

  beforeAll(async () => {
    // The embedded default config, beside its own copy of the sample.
    const { asOf, loaded } = await sampleProject(dir, { customers: 600, seed: 7 });
    first = await runPipeline(loaded, { asOf, log: silentLogger() });
    firstHashes = hashes(join(out, 'current'));
    second = await runPipeline(loaded, { asOf, log: silentLogger() });
    db = await Db.open();
  });
  afterAll(() => db?.close());

  function hashes(root: string): Record<string, string> {
    const found: Record<string, string> = {};
    // The table folders (report.html, _manifest.json and _SUCCESS describe the run, they are not tables).
    const tables = readdirSync(root, { withFileTypes: true }).filter(
      (e) => e.isDirectory() && !e.name.startsWith('_'),
    );
    // Every file below them (exports/ has a folder per export).
    const walk = (rel: string): void => {
      for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
        const path = `${rel}/${entry.name}`;
        if (entry.isDirectory()) walk(path);
        else found[path] = sha(join(root, path));
      }
    };
    for (const table of tables.map((e) => e.name)) walk(table);
    return found;
  }

  it('publishes every table of the spec under current/ and as_of=, with _manifest.json and _SUCCESS', () => {
    for (const { name } of PUBLISHED_TABLES) {
      expect(existsSync(join(out, 'current', name, 'part-0.parquet')), name).toBe(true);
      expect(existsSync(join(out, name, `as_of=${first.asOf}`, 'part-0.parquet')), name).toBe(true);
    }
    expect(existsSync(join(out, 'current', '_SUCCESS'))).toBe(true);
    expect(existsSync(join(out, 'runs', `as_of=${first.asOf}`, '_SUCCESS'))).toBe(true);
    // The import files beside the tables, none inside a table's folder.
    for (const tool of ['mailchimp', 'klaviyo', 'hubspot', 'braze', 'google_ads', 'meta']) {
      const file = `reactivation_audience_${tool}.csv`;
      expect(existsSync(join(out, 'current', 'exports', 'reactivation_audience', file)), file).toBe(true);
      expect(
        existsSync(join(out, 'exports', `as_of=${first.asOf}`, 'reactivation_audience', file)),
        file,
      ).toBe(true);
    }
    expect(existsSync(join(out, 'current', 'exports', 'crm_flags', 'crm_flags.csv'))).toBe(true);
    for (const { name } of PUBLISHED_TABLES) {
      expect(readdirSync(join(out, 'current', name)), name).toEqual(['part-0.parquet']);
    }
  });

  it('has every column the spec lists, typed', async () => {
    for (const [table, columns] of Object.entries(SPEC_COLUMNS)) {
      const described = await db.all<{ column_name: string; column_type: string }>(
        `describe select * from read_parquet(${sqlString(join(out, 'current', table, 'part-0.parquet'))})`,
      );
      const names = described.map((c) => c.column_name);
      for (const column of columns) expect(names, `${table}.${column}`).toContain(column);
      const types = Object.fromEntries(described.map((c) => [c.column_name, c.column_type]));
      if (table === 'fct_customer_period') {
        expect(types.period_start).toBe('DATE');
        expect(types.revenue).toMatch(/DECIMAL/);
        expect(types.is_active).toBe('BOOLEAN');
      }
    }
  });

  it('keeps each table to its grain', async () => {
    for (const { name, grain } of PUBLISHED_TABLES) {
      const file = sqlString(join(out, 'current', name, 'part-0.parquet'));
      const dupes = await db.number(
        `select count(*) from (select ${grain.map((g) => `"${g}"`).join(', ')} from read_parquet(${file}) group by all having count(*) > 1)`,
      );
      expect(dupes, name).toBe(0);
    }
  });

  it('has a manifest whose row counts, schemas and checksums match the files', async () => {
    const manifest = JSON.parse(readFileSync(join(out, 'current', '_manifest.json'), 'utf8'));
    expect(manifest.as_of).toBe(first.asOf);
    for (const { name } of PUBLISHED_TABLES) {
      const entry = manifest.tables[name];
      const rows = await db.number(
        `select count(*) from read_parquet(${sqlString(join(out, 'current', name, 'part-0.parquet'))})`,
      );
      expect(entry.rows, name).toBe(rows);
      for (const f of entry.files) expect(sha(join(out, 'current', f.path)), f.path).toBe(f.sha256);
    }
    expect(Object.keys(manifest.quarantine)).toContain('orders');
    expect(manifest.quarantine.orders.quarantined).toBeGreaterThan(0);
  });

  it('gives byte-identical table files on a second run of the same as-of date', () => {
    expect(second.runId).not.toBe(first.runId);
    expect(hashes(join(out, 'current'))).toEqual(firstHashes);
  });

  it('balances every invariant on the published tables', async () => {
    for (const table of ['churn_summary', 'cohort_retention', 'fct_customer_period']) {
      await db.run(
        `create or replace view ${table} as select * from read_parquet(${sqlString(join(out, 'current', table, 'part-0.parquet'))})`,
      );
    }
    expect(await db.all(PUBLISHED_INVARIANTS)).toEqual([]);
  });

  it('catches the planted bad rows in quarantine', async () => {
    const reasons = await db.all<{ reason: string }>(
      `select distinct reason from read_parquet(${sqlString(join(out, 'current', 'quarantine', 'part-0.parquet'))}) order by 1`,
    );
    expect(reasons.map((r) => r.reason)).toEqual(
      expect.arrayContaining(['duplicate key', 'unparseable timestamp', 'timestamp before 1970']),
    );
  });

  it('writes an audience CSV marketing can import: tool headers, no live formula, no duplicate, nobody opted out', async () => {
    const csvPath = join(
      out,
      'current',
      'exports',
      'reactivation_audience',
      'reactivation_audience_mailchimp.csv',
    );
    const text = readFileSync(csvPath, 'utf8');
    expect(text.split('\r\n')[0]).toMatch(/^"Email Address","First Name","Last Name"/);
    const rows = await db.all<Record<string, string>>(
      `select * from read_csv(${sqlString(csvPath)}, all_varchar = true)`,
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      for (const value of Object.values(row)) if (value) expect(value).not.toMatch(/^[=+\-@\t\r]/);
    }
    const emails = rows.map((r) => r['Email Address']!);
    expect(new Set(emails).size).toBe(emails.length);
    const optedOut = await db.number(`
      with customers as (select * from read_csv(${sqlString(join(dir, 'data/sample/customers.csv'))}, all_varchar = true)),
           unsubscribed as (
             select distinct customer_id from read_json(${sqlString(join(dir, 'data/sample/email_events.ndjson'))})
             where event_type in ('unsubscribe', 'spam_complaint', 'bounce')),
           csv as (select "Customer ID" as customer_id from read_csv(${sqlString(csvPath)}, all_varchar = true))
      select count(*) from csv
      where customer_id in (select customer_id from unsubscribed)
         or customer_id in (select customer_id from customers where lower(marketing_consent) <> 'true')`);
    expect(optedOut).toBe(0);
  });

  // The sample is hard on purpose (partial and slow declines, noisy months, slow regular buyers): these are
  // floors that catch a regression, not the product's targets (npm run bench -- --detection measures those).
  it('flags planted silent churners far more often than steady customers', async () => {
    const quality = await scoreHealth(
      db,
      join(dir, 'data/sample'),
      join(out, 'current', 'customer_health', 'part-0.parquet'),
    );
    expect(quality.planted_silent_churners).toBeGreaterThan(30);
    expect(quality.recall).toBeGreaterThanOrEqual(0.35);
    expect(quality.precision).toBeGreaterThanOrEqual(0.4);
    const shares = await db.all<{ archetype: string; share: number }>(`
      select truth.archetype, avg((health.status in ('at_risk', 'silent_churn'))::integer)::double as share
      from read_parquet(${sqlString(join(out, 'current', 'customer_health', 'part-0.parquet'))}) as health
      inner join read_csv(${sqlString(join(dir, 'data/sample/ground_truth.csv'))}, all_varchar = true) as truth
          using (customer_id)
      group by all`);
    const share = (a: string) => shares.find((r) => r.archetype === a)?.share ?? 0;
    expect(share('silent_churner')).toBeGreaterThan(5 * share('steady'));
  });

  it('publishes the early-warning backtest and puts it in the manifest', async () => {
    const overall = first.manifest.early_warning_backtest.find((r) => r.section === 'overall');
    expect(overall?.customers).toBeDefined();
    expect(Number(overall?.auc)).toBeGreaterThan(0.5);
    expect(first.manifest.health_model.map((m) => `${m.target}/${m.snapshot_role}`)).toEqual([
      'churn/score',
      'churn/train',
      'decline/score',
      'decline/train',
    ]);
    expect(first.summary.backtest_auc).toBe(overall?.auc);
  });

  it('opens every table through the catalog file', async () => {
    // Its paths are relative to its folder: a reader there, or with file_search_path set to it.
    const catalog = await Db.open({ path: join(out, 'catalog.duckdb'), fileSearchPath: out });
    try {
      for (const { name } of PUBLISHED_TABLES)
        expect(await catalog.number(`select count(*) from ${name}`)).toBe(first.manifest.tables[name]!.rows);
    } finally {
      catalog.close();
    }
  });
});
