-- Did the e-mails work? Each published reactivation audience's target group against its control group, per
-- outcome window and segment. Grain: audience_as_of x window_days x audience_group x segment_by x segment; both
-- groups always have a row (customers 0 when a group is empty), and the comparison columns (status, *_lift_*) are
-- the same on the target and the control row of an audience, window and segment.
--
-- Per group (from reactivation_outcome_customers, which says who came back and what they spent):
--   reactivation_rate_pct = reactivated / customers x 100, with Wilson's 95% interval (reactivation_rate_ci_*)
--   revenue_per_customer  = revenue in the window / customers
--   sent_customers        = customers the send log saw e-mailed (null without outcomes_campaign_id_pattern);
--                           never_sent_customers = customers - sent_customers (for control: 0 unless it leaked)
-- Comparison, target - control:
--   rate_lift_pct_points     = target rate - control rate, with Newcombe's hybrid score 95% interval
--   revenue_lift_per_customer = target revenue per customer - control's, with Welch's 95% interval
--   sent_rate_lift_pct_points = the rate of the target customers actually sent - the control rate, with
--                               Newcombe's interval (the customers never sent are left out of the target side)
--   *_significant            = the 95% interval excludes 0 (null when there is no interval)
--   status: no_control (the control group of this audience and segment is empty: no lift, not a division by
--           zero), no_target (the target group is), incomplete (the window has not ended by D: the figures so far),
--           complete.
-- Segments: `all`, and each segment_by dimension of the config with the customer's value as of D
-- (int_customer_segments; `unknown` when the customer is no longer known).

with

params as (
    select * from run_params
),

outcome_customers as (
    select * from reactivation_outcome_customers
),

segments as (
    select * from int_customer_segments
),

dimensions as (
    select * from segment_dimensions
),

segmented as (
    select outcome_customers.*, 'all' as segment_by, 'all' as segment
    from outcome_customers
    union all
    select outcome_customers.*, dimensions.segment_by, coalesce(segments.segment, 'unknown') as segment
    from outcome_customers
    cross join dimensions
    left join segments
        on segments.customer_id = outcome_customers.customer_id
       and segments.segment_by = dimensions.segment_by
),

cells as (
    select distinct
        audience_as_of,
        window_days,
        segment_by,
        segment,
        window_end,
        observed_days,
        is_complete
    from segmented
),

groups as (
    select * from (values ('target'), ('control')) as groups (audience_group)
),

in_cents as (
    select *, (100 * revenue)::hugeint as revenue_cents
    from segmented
),

group_stats as (
    select
        audience_as_of,
        window_days,
        segment_by,
        segment,
        audience_group,
        count(*) as customers,
        count(*) filter (where reactivated) as reactivated,
        sum(revenue) as revenue,
        -- the sample variance from exact sums in cents: the same bits however the rows are split over threads
        case when count(*) >= 2 then
            (count(*) * sum(revenue_cents * revenue_cents) - sum(revenue_cents) * sum(revenue_cents))
                / (count(*) * (count(*) - 1)) / 10000
        end as revenue_variance,
        count(*) filter (where was_sent) as sent_customers,
        count(*) filter (where was_sent and reactivated) as sent_reactivated
    from in_cents
    group by all
),

group_rows as (
    select
        cells.*,
        groups.audience_group,
        coalesce(group_stats.customers, 0) as customers,
        coalesce(group_stats.reactivated, 0) as reactivated,
        coalesce(group_stats.revenue, 0) as revenue,
        group_stats.revenue_variance,
        params.outcomes_campaign_id_pattern is not null as has_send_log,
        coalesce(group_stats.sent_customers, 0) as sent_customers,
        coalesce(group_stats.sent_reactivated, 0) as sent_reactivated
    from cells
    cross join groups
    cross join params
    left join group_stats using (audience_as_of, window_days, segment_by, segment, audience_group)
),

pairs as (
    select
        target.audience_as_of,
        target.window_days,
        target.segment_by,
        target.segment,
        target.customers as n_t,
        target.reactivated as x_t,
        target.revenue::double as revenue_t,
        target.revenue_variance as variance_t,
        target.sent_customers as ns_t,
        target.sent_reactivated as xs_t,
        control.customers as n_c,
        control.reactivated as x_c,
        control.revenue::double as revenue_c,
        control.revenue_variance as variance_c
    from group_rows as target
    inner join group_rows as control using (audience_as_of, window_days, segment_by, segment)
    where target.audience_group = 'target' and control.audience_group = 'control'
),

comparisons as (
    select
        audience_as_of,
        window_days,
        segment_by,
        segment,
        case when n_t > 0 and n_c > 0 then 100 * (x_t / n_t - x_c / n_c) end as rate_lift_pct_points,
        100 * newcombe_low(x_t, n_t, x_c, n_c) as rate_lift_ci_low,
        100 * newcombe_high(x_t, n_t, x_c, n_c) as rate_lift_ci_high,
        case when n_t > 0 and n_c > 0 then revenue_t / n_t - revenue_c / n_c end as revenue_lift_per_customer,
        welch_half_width(variance_t, n_t, variance_c, n_c) as revenue_half_width,
        case when ns_t > 0 and n_c > 0 then 100 * (xs_t / ns_t - x_c / n_c) end as sent_rate_lift_pct_points,
        100 * newcombe_low(xs_t, ns_t, x_c, n_c) as sent_rate_lift_ci_low,
        100 * newcombe_high(xs_t, ns_t, x_c, n_c) as sent_rate_lift_ci_high,
        case
            when n_c = 0 then 'no_control'
            when n_t = 0 then 'no_target'
        end as missing_group
    from pairs
),

reactivation_outcomes as (
    select
        -- ids
        group_rows.audience_as_of,
        group_rows.window_days::integer as window_days,
        group_rows.audience_group,
        group_rows.segment_by,
        group_rows.segment,

        -- window
        coalesce(
            comparisons.missing_group,
            case when group_rows.is_complete then 'complete' else 'incomplete' end
        ) as status,
        group_rows.is_complete,
        group_rows.window_end,
        group_rows.observed_days,

        -- the group
        group_rows.customers::integer as customers,
        group_rows.reactivated::integer as reactivated,
        case when group_rows.customers > 0 then 100 * group_rows.reactivated / group_rows.customers end
            as reactivation_rate_pct,
        100 * wilson_low(group_rows.reactivated, group_rows.customers) as reactivation_rate_ci_low,
        100 * wilson_high(group_rows.reactivated, group_rows.customers) as reactivation_rate_ci_high,
        group_rows.revenue::decimal(18, 2) as revenue,
        case when group_rows.customers > 0 then group_rows.revenue::double / group_rows.customers end
            as revenue_per_customer,
        case when group_rows.has_send_log then group_rows.sent_customers::integer end as sent_customers,
        case when group_rows.has_send_log then (group_rows.customers - group_rows.sent_customers)::integer end
            as never_sent_customers,
        case when group_rows.has_send_log then group_rows.sent_reactivated::integer end as sent_reactivated,
        case when group_rows.has_send_log and group_rows.sent_customers > 0
            then 100 * group_rows.sent_reactivated / group_rows.sent_customers
        end as sent_reactivation_rate_pct,

        -- target - control
        comparisons.rate_lift_pct_points,
        comparisons.rate_lift_ci_low,
        comparisons.rate_lift_ci_high,
        not (comparisons.rate_lift_ci_low <= 0 and comparisons.rate_lift_ci_high >= 0) as rate_lift_significant,
        comparisons.revenue_lift_per_customer,
        comparisons.revenue_lift_per_customer - comparisons.revenue_half_width as revenue_lift_ci_low,
        comparisons.revenue_lift_per_customer + comparisons.revenue_half_width as revenue_lift_ci_high,
        not (
            comparisons.revenue_lift_per_customer - comparisons.revenue_half_width <= 0
            and comparisons.revenue_lift_per_customer + comparisons.revenue_half_width >= 0
        ) as revenue_lift_significant,
        comparisons.sent_rate_lift_pct_points,
        comparisons.sent_rate_lift_ci_low,
        comparisons.sent_rate_lift_ci_high,
        not (comparisons.sent_rate_lift_ci_low <= 0 and comparisons.sent_rate_lift_ci_high >= 0)
            as sent_rate_lift_significant

    from group_rows
    inner join comparisons using (audience_as_of, window_days, segment_by, segment)
)

select * from reactivation_outcomes
