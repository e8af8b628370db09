// The report's data: small aggregates of the published tables, computed by DuckDB over their Parquet files, and
// the parts of the run's manifest it shows (quarantine, quality gates, reconciliation). Every query returns at
// most a few hundred rows; nothing here loops over customers.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckResult } from '../../transforms/checks.js';
import type { Reconciliation } from '../../transforms/reconciliation.js';
import { Db, type Row, sqlIdent, sqlString } from '../base/duckdb.js';

/** Where a run's files are: its manifest and one folder of Parquet files per table. */
export interface ReportSource {
  manifestFile: string;
  /** The folder holding the Parquet file(s) of a table, or undefined when this run has none. */
  tableDir(table: string): string | undefined;
}

/** The fields of _manifest.json that the report reads (the rest is left alone). */
export interface ReportManifest {
  run_id: string;
  as_of: string;
  finished_at?: string;
  tables: Record<string, { rows: number }>;
  quarantine?: Record<string, { rows: number; quarantined: number; share: number }>;
  reconciliation?: Reconciliation;
  checks?: CheckResult[];
  notes?: string[];
}

export interface CohortCell {
  cohort: string;
  period_index: number;
  cohort_size: number;
  active_customers: number;
  retention_pct: number | null;
}

export interface PeriodRow {
  period: string;
  customers_start: number;
  new_customers: number;
  retained: number;
  resurrected: number;
  churned: number;
  active_customers: number;
  churn_rate_pct: number | null;
  nrr_pct: number | null;
  grr_pct: number | null;
  /** The rates are withheld: the start base is under metrics.min_base_customers. */
  small_base: boolean;
}

export interface MrrRow {
  period: string;
  mrr_start: number;
  mrr_new: number;
  mrr_expansion: number;
  mrr_reactivation: number;
  mrr_contraction: number;
  mrr_churned: number;
  mrr_end: number;
  mrr_nrr_pct: number | null;
  mrr_grr_pct: number | null;
}

export interface SurveyRow {
  survey_type: 'nps' | 'csat';
  period: string;
  responses: number;
  score: number | null;
  moe95: number | null;
  significant_change: boolean;
}

export interface CountRow {
  label: string;
  customers: number;
}

export interface BacktestOverall {
  backtest_as_of: string;
  outcome_as_of: string;
  horizon_days: number;
  customers: number;
  churned: number;
  churn_rate: number;
  auc: number | null;
  auc_recency: number | null;
  brier_score: number | null;
  precision: number | null;
  recall: number | null;
  flagged_share: number | null;
  median_lead_days: number | null;
}

export interface DecileRow {
  risk_decile: number;
  customers: number;
  churned: number;
  churn_rate: number;
  predicted_p_churn: number;
  lift: number;
}

export interface ExclusionRow {
  reason: string;
  step: number;
  customers: number;
  candidates: number;
}

export interface AudienceGroupRow {
  audience_group: string;
  status: string;
  customers: number;
}

export interface QuarantineRow {
  entity: string;
  reason: string;
  rows: number;
}

/** One audience date's reactivation in one group (reactivation_outcomes, when the run publishes it). */
export interface OutcomeRow {
  audience_as_of: string;
  window_days: number;
  audience_group: string;
  customers: number;
  reactivated: number;
  reactivation_pct: number | null;
  ci_low: number | null;
  ci_high: number | null;
  /** Target - control in percentage points, with its 95% interval (the same on both rows of an audience). */
  lift: number | null;
  lift_low: number | null;
  lift_high: number | null;
  lift_significant: boolean | null;
  /** complete, incomplete (the window is still open), no_control, no_target. */
  status: string;
}

export interface ReportData {
  manifest: ReportManifest;
  cohorts: CohortCell[];
  periods: PeriodRow[];
  mrr: MrrRow[];
  surveys: SurveyRow[];
  customers: number;
  statuses: CountRow[];
  reasons: CountRow[];
  flagged: number;
  backtest: BacktestOverall | null;
  deciles: DecileRow[];
  exclusions: ExclusionRow[];
  audience: AudienceGroupRow[];
  quarantine: QuarantineRow[];
  /** null when the run publishes no reactivation_outcomes table (an earlier release). */
  outcomes: OutcomeRow[] | null;
}

/** How many recent periods and cohorts the charts show (a daily grain would otherwise draw thousands). */
export const MAX_PERIODS = 36;

export class ReportError extends Error {
  override readonly name = 'ReportError';
}

export function readManifest(file: string): ReportManifest {
  let parsed: ReportManifest;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as ReportManifest;
  } catch (err) {
    throw new ReportError(
      `cannot read the run's manifest ${file} (${(err as Error).message}); the report is built from a published run`,
    );
  }
  if (typeof parsed.as_of !== 'string' || typeof parsed.run_id !== 'string' || !parsed.tables) {
    throw new ReportError(`${file} is not a manifest written by churn (no run_id, as_of or tables)`);
  }
  return parsed;
}

/** Opens an in-memory DuckDB with one view per table of the run that has Parquet files. */
async function openTables(source: ReportSource): Promise<{ db: Db; tables: Set<string> }> {
  const db = await Db.open({ timeZone: 'UTC' });
  const tables = new Set<string>();
  try {
    for (const table of TABLES) {
      const dir = source.tableDir(table);
      if (!dir || !existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.parquet'))) continue;
      await db.run(
        `create view ${sqlIdent(table)} as select * from read_parquet(${sqlString(join(dir, '*.parquet'))})`,
      );
      tables.add(table);
    }
  } catch (err) {
    db.close();
    throw err;
  }
  return { db, tables };
}

const TABLES = [
  'cohort_retention',
  'churn_summary',
  'survey_trends',
  'customer_health',
  'early_warning_backtest',
  'reactivation_audience',
  'audience_exclusions',
  'quarantine',
  'reactivation_outcomes',
] as const;

/** Numbers arrive from DuckDB as numbers or (BIGINT, DECIMAL) strings. */
function num(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value);
}

function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function str(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

/** A period label: YYYY-MM when every period starts on the 1st (month, quarter), else the start date. */
const PERIOD_LABEL = (column: string) =>
  `case when bool_and(day(${column}) = 1) over () then strftime(${column}, '%Y-%m') else strftime(${column}, '%Y-%m-%d') end`;

async function columnsOf(db: Db, table: string): Promise<Set<string>> {
  const rows = await db.all<{ column_name: string }>(`describe ${sqlIdent(table)}`);
  return new Set(rows.map((r) => r.column_name));
}

async function cohorts(db: Db): Promise<CohortCell[]> {
  const rows = await db.all(`
    with cells as (
        select cohort_period, period_index, cohort_size, active_customers, retention_pct
        from cohort_retention
        where segment_by = 'all' and period_index <= ${MAX_PERIODS}
    ),
    recent as (
        select distinct cohort_period from cells order by cohort_period desc limit ${MAX_PERIODS}
    )
    select ${PERIOD_LABEL('cohort_period')} as cohort, period_index, cohort_size, active_customers, retention_pct
    from cells
    where cohort_period in (select cohort_period from recent)
    order by cohort_period, period_index`);
  return rows.map((r) => ({
    cohort: str(r.cohort),
    period_index: num(r.period_index),
    cohort_size: num(r.cohort_size),
    active_customers: num(r.active_customers),
    retention_pct: numOrNull(r.retention_pct),
  }));
}

async function periods(db: Db): Promise<{ periods: PeriodRow[]; mrr: MrrRow[] }> {
  const rows = await db.all(`
    with recent as (
        select * from churn_summary
        where segment_by = 'all' and is_complete
        order by period_start desc limit ${MAX_PERIODS}
    )
    select ${PERIOD_LABEL('period_start')} as period, customers_start, new_customers, retained, resurrected,
        churned, active_customers, churn_rate_pct, nrr_pct, grr_pct, churn_rate_pct is null as small_base,
        mrr_start::double as mrr_start, mrr_new::double as mrr_new, mrr_expansion::double as mrr_expansion,
        mrr_reactivation::double as mrr_reactivation, mrr_contraction::double as mrr_contraction,
        mrr_churned::double as mrr_churned, mrr_end::double as mrr_end, mrr_nrr_pct, mrr_grr_pct,
        coalesce(max(abs(mrr_end)) over () > 0 or max(abs(mrr_start)) over () > 0, false) as has_mrr
    from recent
    order by period_start`);
  const periodRows = rows.map((r) => ({
    period: str(r.period),
    customers_start: num(r.customers_start),
    new_customers: num(r.new_customers),
    retained: num(r.retained),
    resurrected: num(r.resurrected),
    churned: num(r.churned),
    active_customers: num(r.active_customers),
    churn_rate_pct: numOrNull(r.churn_rate_pct),
    nrr_pct: numOrNull(r.nrr_pct),
    grr_pct: numOrNull(r.grr_pct),
    small_base: r.small_base === true,
  }));
  const mrr = rows
    .filter((r) => r.has_mrr === true)
    .map((r) => ({
      period: str(r.period),
      mrr_start: num(r.mrr_start),
      mrr_new: num(r.mrr_new),
      mrr_expansion: num(r.mrr_expansion),
      mrr_reactivation: num(r.mrr_reactivation),
      mrr_contraction: num(r.mrr_contraction),
      mrr_churned: num(r.mrr_churned),
      mrr_end: num(r.mrr_end),
      mrr_nrr_pct: numOrNull(r.mrr_nrr_pct),
      mrr_grr_pct: numOrNull(r.mrr_grr_pct),
    }));
  return { periods: periodRows, mrr };
}

async function surveys(db: Db): Promise<SurveyRow[]> {
  const rows = await db.all(`
    with recent as (
        select * from survey_trends
        where segment_by = 'all' and is_complete and survey_type in ('nps', 'csat')
        qualify row_number() over (partition by survey_type order by period_start desc) <= ${MAX_PERIODS}
    )
    select survey_type, ${PERIOD_LABEL('period_start')} as period, responses, score, moe95,
        coalesce(significant_change, false) as significant_change
    from recent
    order by survey_type, period_start`);
  return rows.map((r) => ({
    survey_type: r.survey_type === 'nps' ? 'nps' : 'csat',
    period: str(r.period),
    responses: num(r.responses),
    score: numOrNull(r.score),
    moe95: numOrNull(r.moe95),
    significant_change: r.significant_change === true,
  }));
}

async function health(db: Db): Promise<Pick<ReportData, 'customers' | 'statuses' | 'reasons' | 'flagged'>> {
  const statuses = await db.all(
    `select status as label, count(*) as customers from customer_health group by all order by customers desc, label`,
  );
  const reasons = await db.all(`
    select reason as label, count(*) as customers
    from (select unnest(reasons) as reason from customer_health where status in ('at_risk', 'silent_churn'))
    group by all order by customers desc, label limit 10`);
  const toCounts = (rows: Row[]) => rows.map((r) => ({ label: str(r.label), customers: num(r.customers) }));
  const counts = toCounts(statuses);
  return {
    customers: counts.reduce((n, s) => n + s.customers, 0),
    statuses: counts,
    reasons: toCounts(reasons),
    flagged: counts
      .filter((s) => s.label === 'at_risk' || s.label === 'silent_churn')
      .reduce((n, s) => n + s.customers, 0),
  };
}

async function backtest(db: Db): Promise<Pick<ReportData, 'backtest' | 'deciles'>> {
  const overall = await db.one(`
    select strftime(backtest_as_of, '%Y-%m-%d') as backtest_as_of, strftime(outcome_as_of, '%Y-%m-%d') as outcome_as_of,
        horizon_days, customers, churned, churn_rate, auc, auc_recency, brier_score, precision, recall,
        flagged_share, median_lead_days
    from early_warning_backtest where section = 'overall'`);
  const deciles = await db.all(`
    select risk_decile, customers, churned, churn_rate, predicted_p_churn, lift
    from early_warning_backtest where section = 'decile' order by risk_decile`);
  return {
    backtest: overall
      ? {
          backtest_as_of: str(overall.backtest_as_of),
          outcome_as_of: str(overall.outcome_as_of),
          horizon_days: num(overall.horizon_days),
          customers: num(overall.customers),
          churned: num(overall.churned),
          churn_rate: num(overall.churn_rate),
          auc: numOrNull(overall.auc),
          auc_recency: numOrNull(overall.auc_recency),
          brier_score: numOrNull(overall.brier_score),
          precision: numOrNull(overall.precision),
          recall: numOrNull(overall.recall),
          flagged_share: numOrNull(overall.flagged_share),
          median_lead_days: numOrNull(overall.median_lead_days),
        }
      : null,
    deciles: deciles.map((r) => ({
      risk_decile: num(r.risk_decile),
      customers: num(r.customers),
      churned: num(r.churned),
      churn_rate: num(r.churn_rate),
      predicted_p_churn: num(r.predicted_p_churn),
      lift: num(r.lift),
    })),
  };
}

/** The audience's group column: `audience_group`, or `group` as earlier releases named it. */
async function groupColumn(db: Db, table: string): Promise<string | undefined> {
  const columns = await columnsOf(db, table);
  return ['audience_group', 'group'].find((c) => columns.has(c));
}

async function audience(db: Db, tables: Set<string>): Promise<Pick<ReportData, 'exclusions' | 'audience'>> {
  const exclusions = tables.has('audience_exclusions')
    ? await db.all(
        `select reason, step, customers, candidates from audience_exclusions order by step, reason`,
      )
    : [];
  const group = tables.has('reactivation_audience')
    ? await groupColumn(db, 'reactivation_audience')
    : undefined;
  const groups = group
    ? await db.all(`
        select ${sqlIdent(group)} as audience_group, status, count(*) as customers
        from reactivation_audience group by all order by audience_group desc, status`)
    : [];
  return {
    exclusions: exclusions.map((r) => ({
      reason: str(r.reason),
      step: num(r.step),
      customers: num(r.customers),
      candidates: num(r.candidates),
    })),
    audience: groups.map((r) => ({
      audience_group: str(r.audience_group),
      status: str(r.status),
      customers: num(r.customers),
    })),
  };
}

async function quarantine(db: Db): Promise<QuarantineRow[]> {
  const rows = await db.all(
    `select entity, reason, count(*) as rows from quarantine group by all order by rows desc, entity, reason limit 15`,
  );
  return rows.map((r) => ({ entity: str(r.entity), reason: str(r.reason), rows: num(r.rows) }));
}

const OUTCOME_COLUMNS = [
  'audience_as_of',
  'window_days',
  'audience_group',
  'segment_by',
  'customers',
  'reactivated',
  'reactivation_rate_pct',
  'reactivation_rate_ci_low',
  'reactivation_rate_ci_high',
  'rate_lift_pct_points',
  'rate_lift_ci_low',
  'rate_lift_ci_high',
  'rate_lift_significant',
  'status',
];

/**
 * The reactivation of earlier audiences, target against control (reactivation_outcomes): all segments, the
 * shortest window, the most recent audience dates. Empty when the table lacks a column the chart reads.
 */
export async function outcomes(db: Db): Promise<OutcomeRow[]> {
  const columns = await columnsOf(db, 'reactivation_outcomes');
  if (OUTCOME_COLUMNS.some((c) => !columns.has(c))) return [];
  const rows = await db.all(`
    with shortest as (select min(window_days) as window_days from reactivation_outcomes),
    recent as (
        select distinct audience_as_of from reactivation_outcomes order by audience_as_of desc limit ${MAX_PERIODS}
    )
    select strftime(audience_as_of, '%Y-%m-%d') as audience_as_of, window_days, audience_group, customers,
        reactivated, reactivation_rate_pct, reactivation_rate_ci_low, reactivation_rate_ci_high,
        rate_lift_pct_points, rate_lift_ci_low, rate_lift_ci_high, rate_lift_significant, status
    from reactivation_outcomes
    where segment_by = 'all'
      and window_days = (select window_days from shortest)
      and audience_as_of in (select audience_as_of from recent)
    order by audience_as_of, audience_group desc`);
  return rows.map((r) => ({
    audience_as_of: str(r.audience_as_of),
    window_days: num(r.window_days),
    audience_group: str(r.audience_group),
    customers: num(r.customers),
    reactivated: num(r.reactivated),
    reactivation_pct: numOrNull(r.reactivation_rate_pct),
    ci_low: numOrNull(r.reactivation_rate_ci_low),
    ci_high: numOrNull(r.reactivation_rate_ci_high),
    lift: numOrNull(r.rate_lift_pct_points),
    lift_low: numOrNull(r.rate_lift_ci_low),
    lift_high: numOrNull(r.rate_lift_ci_high),
    lift_significant: typeof r.rate_lift_significant === 'boolean' ? r.rate_lift_significant : null,
    status: str(r.status),
  }));
}

/** Everything the report draws, from one run's files. */
export async function loadReportData(source: ReportSource): Promise<ReportData> {
  const manifest = readManifest(source.manifestFile);
  const { db, tables } = await openTables(source);
  try {
    const missing = ['cohort_retention', 'churn_summary', 'customer_health'].filter((t) => !tables.has(t));
    if (missing.length) {
      throw new ReportError(
        `the run of ${manifest.as_of} has no Parquet file for ${missing.join(', ')}; the report needs the published tables of a complete run`,
      );
    }
    const has = (table: string) => tables.has(table);
    return {
      manifest,
      cohorts: await cohorts(db),
      ...(await periods(db)),
      surveys: has('survey_trends') ? await surveys(db) : [],
      ...(await health(db)),
      ...(has('early_warning_backtest') ? await backtest(db) : { backtest: null, deciles: [] }),
      ...(await audience(db, tables)),
      quarantine: has('quarantine') ? await quarantine(db) : [],
      outcomes: has('reactivation_outcomes') ? await outcomes(db) : null,
    };
  } finally {
    db.close();
  }
}
