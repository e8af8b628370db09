-- The silent-churn early warning, as of the as-of date D. Grain: customer_id (every known customer).
--
-- The verdict (status, p_churn, risk_score, reasons, value_at_risk) and its evidence come from
-- int_health_status (snapshot `score`), which documents every rule; p_churn (the calibrated probability of no
-- qualifying activity in the next health_horizon_days days) from health_scores (transforms/models/
-- health_scores.ts): a logistic regression learned each night from the customers' own history, or MBG/NBD when
-- the history is too short (risk_model says which). Customers with no qualifying activity yet are
-- `never_active`, with null evidence.
--
-- Evidence columns: recent = the health_recent_days days up to D, baseline = the health_baseline_days days before,
-- both cut to the customer's tenure; rates are per day of the window. *_expected_recent is what the own baseline
-- rate predicts for the recent window; activity_decline_p / orders_decline_p are the decline tests' tail
-- probabilities (int_health_features, sql/macros/stats.sql), small when a recent count is far below the own rate,
-- *_decline_window_days the window (last 14, 30, 60, recent or 120 days) where it is smallest, drop_p both tests as
-- one (what ACTIVITY_DROP and SPEND_DROP need), and activity_dispersion the population's month-to-month noise the tests allowed for.
--
-- RFM: quintiles (ntile 5) over the customers with purchases in customer_purchase_summary, 5 = best:
-- R by last_purchase_date, F by purchase_days, M by lifetime_revenue; tied values share the lowest
-- quintile among them. rfm_segment maps R and FM = round((F + M) / 2) on the common 5 x 5 grid:
--   R 5, FM 4-5 Champions            R 3-4, FM 4-5 Loyal               R 4-5, FM 2-3 Potential Loyalist
--   R 5, FM 1 New Customers          R 4, FM 1 Promising               R 3, FM 3 Need Attention
--   R 3, FM 1-2 About To Sleep       R 1-2, FM 3-4 At Risk             R 1-2, FM 5 Can't Lose Them
--   R 2, FM 1-2 Hibernating          R 1, FM 1-2 Lost                  no purchases: No Purchases

with

params as (
    select * from run_params
),

customers as (
    select * from stg_customers
),

verdicts as (
    select * from int_health_status
    where snapshot_role = 'score'
),

orders as (
    select * from stg_orders
),

activity as (
    select * from stg_activity
),

purchase_summary as (
    select * from customer_purchase_summary
),

-- The instant of the last qualifying event, for last_active_at.
event_instants as (
    select orders.customer_id, orders.ordered_at as occurred_at
    from orders
    where orders.status = 'completed' and orders.amount > 0
      and (select list_contains(active_when, 'orders') from params)
    union all
    select activity.customer_id, activity.occurred_at
    from activity
    where (select list_contains(active_when, 'activity') from params)
),

last_event_instants as (
    select
        customer_id,
        max(occurred_at) as last_event_at
    from event_instants
    group by customer_id
),

purchasers as (
    select
        customer_id,
        last_purchase_date,
        purchase_days,
        lifetime_revenue
    from purchase_summary
    where coalesce(purchase_days, 0) > 0
),

rfm_tiles as (
    select
        *,
        ntile(5) over (order by last_purchase_date, customer_id) as r_tile,
        ntile(5) over (order by purchase_days, customer_id) as f_tile,
        ntile(5) over (order by lifetime_revenue, customer_id) as m_tile
    from purchasers
),

rfm_scores as (
    select
        customer_id,
        min(r_tile) over (partition by last_purchase_date) as rfm_r,
        min(f_tile) over (partition by purchase_days) as rfm_f,
        min(m_tile) over (partition by lifetime_revenue) as rfm_m
    from rfm_tiles
),

statuses as (
    select
        customers.customer_id,
        coalesce(verdicts.status, 'never_active') as status,
        verdicts.* exclude (customer_id, status, cancelled_at),
        case
            when verdicts.last_event_date >= coalesce(verdicts.last_subscription_date, date '0001-01-01')
                then last_event_instants.last_event_at
            else timezone(params.time_zone, verdicts.last_active_date::timestamp)
        end as last_active_at,
        active_days_recent / recent_window_days as activity_rate_recent,
        active_days_baseline / nullif(baseline_window_days, 0) as activity_rate_baseline,
        orders_recent / recent_window_days as order_rate_recent,
        orders_baseline / nullif(baseline_window_days, 0) as order_rate_baseline,
        revenue_recent / recent_window_days as spend_rate_recent,
        revenue_baseline / nullif(baseline_window_days, 0) as spend_rate_baseline,
        case when emails_sent_recent > 0 then least(emails_opened_recent / emails_sent_recent, 1) end
            as email_open_rate_recent,
        case when emails_sent_baseline > 0 then least(emails_opened_baseline / emails_sent_baseline, 1) end
            as email_open_rate_baseline,
        customers.cancelled_at,
        rfm_scores.rfm_r,
        rfm_scores.rfm_f,
        rfm_scores.rfm_m,
        round((coalesce(rfm_scores.rfm_f, 0) + coalesce(rfm_scores.rfm_m, 0)) / 2) as rfm_fm
    from customers
    cross join params
    left join verdicts using (customer_id)
    left join last_event_instants using (customer_id)
    left join rfm_scores using (customer_id)
),

customer_health as (
    select
        -- ids
        customer_id,

        -- verdict
        status,
        p_churn,
        risk_score,
        reasons,
        risk_model,
        p_decline,

        -- activity
        first_active_date,
        last_active_date,
        last_active_at,
        days_since_last_activity::integer as days_since_last_activity,
        typical_gap_days,
        inactive_after_days,
        tenure_days::integer as tenure_days,
        active_days_total::integer as active_days_total,

        -- recent vs baseline windows (days, cut to tenure) and per-day rates
        recent_window_days::integer as recent_window_days,
        baseline_window_days::integer as baseline_window_days,
        active_days_recent::integer as active_days_recent,
        active_days_baseline::integer as active_days_baseline,
        orders_recent::integer as orders_recent,
        orders_baseline::integer as orders_baseline,
        revenue_recent::decimal(18, 2) as revenue_recent,
        revenue_baseline::decimal(18, 2) as revenue_baseline,
        active_days_expected_recent,
        orders_expected_recent,
        activity_decline_p,
        activity_decline_window_days::integer as activity_decline_window_days,
        orders_decline_p,
        orders_decline_window_days::integer as orders_decline_window_days,
        drop_p,
        activity_dispersion,
        activity_rate_recent,
        activity_rate_baseline,
        order_rate_recent,
        order_rate_baseline,
        spend_rate_recent,
        spend_rate_baseline,

        -- e-mail
        emails_sent_recent::integer as emails_sent_recent,
        email_open_rate_recent,
        email_open_rate_baseline,
        emails_since_last_open::integer as emails_since_last_open,
        email_open_p,

        -- support and billing
        complaints_recent::integer as complaints_recent,
        complaints_baseline::integer as complaints_baseline,
        late_payments_recent::integer as late_payments_recent,
        max_days_late_recent::integer as max_days_late_recent,
        mrr::decimal(18, 2) as mrr,

        -- surveys
        last_nps,
        nps_change,
        last_nps_date,
        min_csat_recent,

        -- model and value
        p_alive,
        expected_purchases_next_90d,
        lifetime_revenue::decimal(18, 2) as lifetime_revenue,
        value_at_risk,

        -- rfm
        rfm_r::integer as rfm_r,
        rfm_f::integer as rfm_f,
        rfm_m::integer as rfm_m,
        case
            when rfm_r is null then 'No Purchases'
            when rfm_r = 5 and rfm_fm >= 4 then 'Champions'
            when rfm_r in (3, 4) and rfm_fm >= 4 then 'Loyal'
            when rfm_r >= 4 and rfm_fm in (2, 3) then 'Potential Loyalist'
            when rfm_r = 5 and rfm_fm = 1 then 'New Customers'
            when rfm_r = 4 and rfm_fm = 1 then 'Promising'
            when rfm_r = 3 and rfm_fm = 3 then 'Need Attention'
            when rfm_r = 3 then 'About To Sleep'
            when rfm_fm = 5 then 'Can''t Lose Them'
            when rfm_fm in (3, 4) then 'At Risk'
            when rfm_r = 2 then 'Hibernating'
            else 'Lost'
        end as rfm_segment,

        -- timestamps
        cancelled_at

    from statuses
)

select * from customer_health
