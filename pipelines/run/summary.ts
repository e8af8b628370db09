// The run's summary: the headline numbers of the built tables (the CLI prints them, the webhook and the run's
// last log line carry them).
import type { ChecksOutcome } from '../../transforms/checks.js';
import type { Db } from '../base/duckdb.js';
import { readOutcomeSummary, type Summary } from '../outcomes/summary.js';

async function readTotals(db: Db): Promise<Summary> {
  const row = await db.one(`
    with last_period as (
        select * from churn_summary
        where segment_by = 'all' and is_complete
        order by period_start desc limit 1
    ),
    last_nps as (
        select * from survey_trends
        where segment_by = 'all' and survey_type = 'nps' and is_complete
        order by period_start desc limit 1
    )
    select
        (select count(*) from stg_customers) as customers,
        (select strftime(period_start, '%Y-%m-%d') from last_period) as last_complete_period,
        (select churn_rate_pct from last_period) as churn_rate_pct,
        (select nps from last_nps) as nps,
        (select count(*) from customer_health where status in ('at_risk', 'silent_churn')) as customers_flagged,
        (select count(*) from customer_health where status <> 'never_active') as customers_with_activity,
        (select risk_model from health_model where snapshot_role = 'score' and target = 'churn') as risk_model,
        (select auc from early_warning_backtest where section = 'overall') as backtest_auc,
        (select auc_recency from early_warning_backtest where section = 'overall') as backtest_auc_recency,
        (select auc_p_alive from early_warning_backtest where section = 'overall') as backtest_auc_p_alive,
        (select auc_p_decline from early_warning_backtest where section = 'overall') as backtest_auc_p_decline,
        (select precision from early_warning_backtest where section = 'overall') as backtest_precision,
        (select recall from early_warning_backtest where section = 'overall') as backtest_recall,
        (select drift_precision from early_warning_backtest where section = 'overall') as backtest_drift_precision,
        (select flagged_share from early_warning_backtest where section = 'overall') as backtest_flagged_share,
        (select churn_rate from early_warning_backtest where section = 'overall') as backtest_churn_rate,
        (select strftime(backtest_as_of, '%Y-%m-%d') from early_warning_backtest where section = 'overall') as backtest_as_of,
        (select count(*) from reactivation_audience where audience_group = 'target') as audience_target,
        (select count(*) from reactivation_audience where audience_group = 'control') as audience_control,
        (select count(*) from quarantine) as quarantined_rows`);
  const summary: Summary = {};
  for (const [k, v] of Object.entries(row ?? {})) {
    summary[k] =
      v === null ? null : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : (v as string);
  }
  return summary;
}

/** The summary of a run whose gates passed. */
export async function readSummary(db: Db, checks: ChecksOutcome): Promise<Summary> {
  const summary = await readTotals(db);
  Object.assign(summary, await readOutcomeSummary(db));
  summary.checks_warned = checks.warned;
  return summary;
}

/**
 * The manifest's notes about the early warning: a night whose drops (ACTIVITY_DROP, SPEND_DROP) foretold no more
 * declines than steady behaviour at the snapshot before, so that a drop alone sets no status (int_health_drop_record).
 */
export async function earlyWarningNotes(db: Db): Promise<string[]> {
  if (!(await db.tableExists('int_health_drop_record'))) return [];
  const row = await db.one<{ drop_lift: number | null; min_lift: number; at_risk_p_churn: number }>(`
    select drop_lift, health_drop_min_lift as min_lift, health_at_risk_p_churn as at_risk_p_churn
    from int_health_drop_record cross join run_params
    where snapshot_role = 'score' and not drops_trusted`);
  if (!row) return [];
  return [
    `early warning: at the snapshot before, customers with a drop (ACTIVITY_DROP, SPEND_DROP) declined ` +
      `${Number(row.drop_lift ?? 0).toFixed(2)}x as often as steady ones, below health.drop_min_lift ` +
      `${Number(row.min_lift)}: a drop alone sets no status tonight (at_risk needs p_churn >= ${Number(row.at_risk_p_churn)})`,
  ];
}
