-- Churn, retention and revenue retention per period. Grain: segment_by x segment x period_start.
--
-- customers_start = active in p-1; churned = active in p-1, not in p (so customers_start = retained + churned).
-- churn_rate_pct = churned / customers_start x 100; retention_rate_pct = retained / customers_start x 100.
-- Transactional NRR/GRR of the customers_start base: their revenue in p against their revenue in p-1
-- (GRR caps each customer at their p-1 revenue). MRR movements follow ChartMogul:
-- mrr_start + new + expansion - contraction - churned + reactivation = mrr_end.
-- The period containing the as-of date is incomplete unless the as-of date ends it: its row has
-- is_complete = false and no rates.
-- Small numbers: every rate is null when its start base has fewer than metrics.min_base_customers customers
-- (customers_start for churn, retention, NRR and GRR; mrr_customers_start, the customers with MRR at the
-- start, for the MRR-based ones); the base stays published beside it.

with

customer_periods as (
    select * from fct_customer_period
),

segments as (
    select * from int_customer_segments
),

params as (
    select * from run_params
),

with_previous as (
    select
        *,
        coalesce(lag(is_active) over customer_history, false) as was_active,
        coalesce(lag(revenue) over customer_history, 0) as previous_revenue,
        coalesce(lag(mrr) over customer_history, 0) as previous_mrr,
        coalesce(max(mrr) over (
            partition by customer_id order by period_start
            rows between unbounded preceding and 2 preceding
        ), 0) > 0 as had_mrr_before_previous
    from customer_periods
    window customer_history as (partition by customer_id order by period_start)
),

movements as (
    select
        *,
        case when previous_mrr = 0 and mrr > 0 and not had_mrr_before_previous then mrr else 0 end as mrr_new,
        case when previous_mrr = 0 and mrr > 0 and had_mrr_before_previous then mrr else 0 end as mrr_reactivation,
        case when previous_mrr > 0 and mrr > previous_mrr then mrr - previous_mrr else 0 end as mrr_expansion,
        case when previous_mrr > 0 and mrr > 0 and mrr < previous_mrr then previous_mrr - mrr else 0 end as mrr_contraction,
        case when previous_mrr > 0 and mrr = 0 then previous_mrr else 0 end as mrr_churned
    from with_previous
),

by_segment as (
    select
        segments.segment_by,
        segments.segment,
        movements.period_start,
        any_value(movements.period_end) as period_end,
        bool_and(movements.is_complete) as is_complete,

        -- customers
        count(*) filter (where movements.was_active) as customers_start,
        count(*) filter (where movements.previous_mrr > 0) as mrr_customers_start,
        count(*) filter (where movements.lifecycle = 'new') as new_customers,
        count(*) filter (where movements.lifecycle = 'retained') as retained,
        count(*) filter (where movements.lifecycle = 'resurrected') as resurrected,
        count(*) filter (where movements.lifecycle = 'churned') as churned,
        count(*) filter (where movements.is_active) as active_customers,

        -- revenue of the start base
        coalesce(sum(movements.previous_revenue) filter (where movements.was_active), 0) as revenue_start,
        coalesce(sum(movements.revenue) filter (where movements.was_active), 0) as revenue_retained,
        coalesce(sum(least(movements.revenue, movements.previous_revenue)) filter (where movements.was_active), 0)
            as revenue_retained_capped,
        sum(movements.revenue) as revenue,

        -- mrr movements
        sum(movements.previous_mrr) as mrr_start,
        sum(movements.mrr_new) as mrr_new,
        sum(movements.mrr_expansion) as mrr_expansion,
        sum(movements.mrr_contraction) as mrr_contraction,
        sum(movements.mrr_churned) as mrr_churned,
        sum(movements.mrr_reactivation) as mrr_reactivation,
        sum(movements.mrr) as mrr_end

    from movements
    inner join segments using (customer_id)
    group by segments.segment_by, segments.segment, movements.period_start
),

summary as (
    select
        -- grain
        segment_by,
        segment,
        period_start,
        period_end,

        -- customers
        customers_start,
        new_customers,
        retained,
        resurrected,
        churned,
        active_customers,
        case when rated then round(100.0 * churned / customers_start, 4) end as churn_rate_pct,
        case when rated then round(100.0 * retained / customers_start, 4) end as retention_rate_pct,

        -- revenue retention
        revenue::decimal(18, 2) as revenue,
        revenue_start::decimal(18, 2) as revenue_start,
        case when rated and revenue_start > 0 then round(100.0 * revenue_retained / revenue_start, 4)::double end as nrr_pct,
        case when rated and revenue_start > 0 then round(100.0 * revenue_retained_capped / revenue_start, 4)::double end as grr_pct,

        -- mrr (null when there are no subscriptions)
        case when has_subscriptions then mrr_customers_start end as mrr_customers_start,
        case when has_subscriptions then mrr_start::decimal(18, 2) end as mrr_start,
        case when has_subscriptions then mrr_new::decimal(18, 2) end as mrr_new,
        case when has_subscriptions then mrr_expansion::decimal(18, 2) end as mrr_expansion,
        case when has_subscriptions then mrr_contraction::decimal(18, 2) end as mrr_contraction,
        case when has_subscriptions then mrr_churned::decimal(18, 2) end as mrr_churned,
        case when has_subscriptions then mrr_reactivation::decimal(18, 2) end as mrr_reactivation,
        case when has_subscriptions then mrr_end::decimal(18, 2) end as mrr_end,
        case when has_subscriptions and mrr_rated and mrr_start > 0
            then round(100.0 * (mrr_start - mrr_contraction - mrr_churned) / mrr_start, 4)::double end as mrr_grr_pct,
        case when has_subscriptions and mrr_rated and mrr_start > 0
            then round(100.0 * (mrr_start + mrr_expansion - mrr_contraction - mrr_churned) / mrr_start, 4)::double end as mrr_nrr_pct,

        is_complete

    from (
        select
            by_segment.*,
            by_segment.is_complete and by_segment.customers_start >= params.metrics_min_base_customers as rated,
            by_segment.is_complete and by_segment.mrr_customers_start >= params.metrics_min_base_customers as mrr_rated,
            list_contains(params.configured_entities, 'subscriptions') as has_subscriptions
        from by_segment
        cross join params
    )
)

select * from summary
