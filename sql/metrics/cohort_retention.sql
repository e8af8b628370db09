-- Cohort retention, Amplitude style. Grain: segment_by x segment x cohort_period x period_index.
-- retention_pct ("on"): share of the cohort active in exactly that period.
-- unbounded_retention_pct ("on or after"): share active in that period or any later one up to the as-of date.
-- Cells whose period is not complete are omitted.
-- Small numbers: both rates are null when the cohort has fewer than metrics.min_base_customers customers
-- (cohort_size, active_customers and unbounded_active stay published).

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

last_active as (
    select customer_id, max(period_index) filter (where is_active) as last_active_index
    from customer_periods
    group by customer_id
),

periods_by_segment as (
    select
        segments.segment_by,
        segments.segment,
        customer_periods.*,
        last_active.last_active_index
    from customer_periods
    inner join segments using (customer_id)
    inner join last_active using (customer_id)
    -- Periods before the cohort period (money before the first activity) and customers without a cohort
    -- are in the facts, not in a cohort.
    where customer_periods.period_index >= 0
),

cohort_sizes as (
    select segment_by, segment, cohort_period, count(*) as cohort_size
    from periods_by_segment
    where period_index = 0
    group by all
),

cells as (
    select
        segment_by,
        segment,
        cohort_period,
        period_index,
        any_value(period_start) as period_start,
        bool_and(is_complete) as is_complete,
        count(*) filter (where is_active) as active_customers,
        count(*) filter (where last_active_index >= period_index) as unbounded_active,
        sum(revenue) as revenue
    from periods_by_segment
    group by segment_by, segment, cohort_period, period_index
),

retention as (
    select
        -- grain
        cells.segment_by,
        cells.segment,
        cells.cohort_period,
        cells.period_index,
        cells.period_start,

        -- counts
        cohort_sizes.cohort_size,
        cells.active_customers,
        case when cohort_sizes.cohort_size >= params.metrics_min_base_customers
            then round(100.0 * cells.active_customers / cohort_sizes.cohort_size, 4) end as retention_pct,
        cells.unbounded_active,
        case when cohort_sizes.cohort_size >= params.metrics_min_base_customers
            then round(100.0 * cells.unbounded_active / cohort_sizes.cohort_size, 4) end as unbounded_retention_pct,

        -- revenue
        cells.revenue::decimal(18, 2) as revenue,
        round(
            sum(cells.revenue) over (
                partition by cells.segment_by, cells.segment, cells.cohort_period
                order by cells.period_index
            ) / cohort_sizes.cohort_size,
            4
        )::double as cumulative_revenue_per_customer,

        cells.is_complete

    from cells
    inner join cohort_sizes using (segment_by, segment, cohort_period)
    cross join params
),

final as (
    select * exclude (is_complete) from retention where is_complete
)

select * from final
