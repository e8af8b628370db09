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
