// The books that must always balance, as one query over the built tables: every row it returns is a broken
// invariant (what, and the period or customer where it broke).
export const BROKEN_INVARIANTS = `
  select 'active <> new + retained + resurrected' as what, period_start::varchar as at from churn_summary
  where active_customers <> new_customers + retained + resurrected
  union all
  select 'customers_start <> retained + churned', period_start::varchar from churn_summary
  where customers_start <> retained + churned
  union all
  select 'mrr movements do not add up', period_start::varchar from churn_summary
  where mrr_start + mrr_new + mrr_expansion - mrr_contraction - mrr_churned + mrr_reactivation <> mrr_end
  union all
  select 'rate out of 0-100', period_start::varchar from churn_summary
  where not (churn_rate_pct between 0 and 100) or not (retention_rate_pct between 0 and 100)
     or not (grr_pct between 0 and 100) or not (mrr_grr_pct between 0 and 100)
     or churn_rate_pct + retention_rate_pct not between 99.999 and 100.001
  union all
  select 'mrr_start <> previous mrr_end', period_start::varchar from (
      select period_start, mrr_start, lag(mrr_end) over (partition by segment_by, segment order by period_start) as prev_end
      from churn_summary
  ) where prev_end is not null and mrr_start <> prev_end
  union all
  select 'cohort cell out of bounds', period_start::varchar from cohort_retention
  where not (retention_pct between 0 and 100) or unbounded_active < active_customers or unbounded_active > cohort_size
     or period_index < 0
  union all
  select 'customer periods not contiguous through the cohort period', customer_id from fct_customer_period
  group by customer_id
  having min(cohort_period) is not null
     and (count(*) <> max(period_index) - min(period_index) + 1 or min(period_index) > 0
          or min(period_start) filter (where period_index = 0) <> min(cohort_period))
  union all
  select 'a customer without a cohort has an active or indexed period', customer_id from fct_customer_period
  group by customer_id
  having min(cohort_period) is null and (count(period_index) > 0 or bool_or(lifecycle <> 'not_yet_active'))
  union all
  select 'active before the cohort period', customer_id from fct_customer_period
  where period_index < 0 and (is_active or lifecycle <> 'not_yet_active')
  union all
  select 'not exactly one new period', customer_id from fct_customer_period
  group by customer_id having count(*) filter (where lifecycle = 'new') > 1
  union all
  select 'lifecycle contradicts is_active', customer_id from fct_customer_period
  where is_active <> (lifecycle in ('new', 'retained', 'resurrected'))
  union all
  select 'staged order money missing from the facts', null from (
      select
          (select coalesce(sum(revenue), 0) from fct_customer_period) as revenue,
          (select coalesce(sum(refunds), 0) from fct_customer_period) as refunds,
          (select coalesce(sum(amount) filter (where status = 'completed' and amount > 0), 0) from stg_orders) as staged_revenue,
          (select coalesce(sum(abs(amount)) filter (where status = 'refunded' or amount < 0), 0) from stg_orders) as staged_refunds
  ) where revenue <> staged_revenue or refunds <> staged_refunds
`;

/**
 * The invariants that read only published tables: a branch that reads an internal model (stg_*, int_*) cannot run
 * on a run's published output and is left to the tests that build models.
 */
export const PUBLISHED_INVARIANTS = BROKEN_INVARIANTS.split(/\n {2}union all\n/)
  .filter((branch) => !/\b(stg|int|raw|chk)_\w+/.test(branch))
  .join('\n  union all\n');
