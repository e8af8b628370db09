-- The silent-churn early warning, as of the as-of date D. Grain: customer_id (every customer with any
-- activity up to D: an active day in int_customer_active_days, or a subscription when subscriptions
-- qualify under active_when).
--
-- Activity. last_active_date is the later of the last active day (a qualifying order or activity event)
-- and the last day a qualifying subscription covered (D while it runs): a paying subscriber is active by
-- the product's definition, so they are never INACTIVE or lost; their drift shows in the other reasons.
-- (Leave `subscriptions` out of active_when to judge subscribers by use alone.)
-- typical_gap_days is the median gap between consecutive active days (needs two or more).
--
-- Windows. recent = the health_recent_days days up to D; baseline = the health_baseline_days days before
-- them. Both start no earlier than the customer's first active day (tenure), so a new customer's baseline
-- is short or empty instead of padded with days before they existed. Rates are per day of the window.
-- A drop (ACTIVITY_DROP, SPEND_DROP) is only judged when the baseline covers at least
-- health_min_baseline_days days and its rate predicts at least health_drop_min_expected active days
-- (orders) for the recent window: one order in 180 days followed by none in 90 is not a drop, it is noise.
--
-- Reasons, in this fixed order (the order of `reasons`); each adds weight_<code> to the score:
--   INACTIVE          days_since_last_activity >= max(health_inactive_min_days,
--                     health_inactive_gap_multiple x typical_gap_days)
--   ACTIVITY_DROP     activity_rate_recent (active days per day) < health_drop_ratio x activity_rate_baseline
--   SPEND_DROP        spend_rate_recent < health_drop_ratio x spend_rate_baseline (completed orders, amount > 0)
--   EMAIL_DISENGAGED  none of the last health_email_no_open_last_n e-mails sent was opened (or clicked), or
--                     at least 2 sent in each window and the recent open rate < health_drop_ratio x baseline
--   COMPLAINTS_UP     complaints_recent >= health_complaints_min_recent and their per-day rate is above
--                     the baseline's (an empty baseline counts as 0)
--   LATE_PAYMENT      an invoice due in the recent window paid, or unpaid at D, at least
--                     health_late_payment_min_days (and at least 1) days after its due date
--   NPS_DETRACTOR     the last NPS answer is 0-6                     } only when the last answer was given
--   NPS_DROP          it is >= health_nps_drop_points below the one  } in the recent or baseline window:
--                     before (nps_change <= -points)                 } a stale survey raises no flag
--   LOW_CSAT          min_csat_recent <= health_low_csat_max (a 1-5 threshold; x 2 when csat_scale is 10)
--   LOW_P_ALIVE       BG/NBD p_alive < health_low_p_alive (never when the model could not be fitted)
-- risk_score = min(100, sum of the weights of the reasons present), rounded to a whole number.
--
-- Status, the first rule that holds:
--   churned       explicit cancellation: cancelled_at before the end of D and no activity after the
--                 cancellation day
--   lost          days_since_last_activity > health_lost_after_days
--   churned       every subscription has ended by D and no activity after the last end (a subscription that
--                 ended is a cancellation too, but after the lost horizon `lost` says more: it comes first)
--   silent_churn  risk_score >= health_silent_churn_score, or INACTIVE together with a drop
--                 (ACTIVITY_DROP, SPEND_DROP or LOW_P_ALIVE: gone quiet and below their own pace)
--   at_risk       risk_score >= health_at_risk_score
--   active        otherwise
-- With the default weights: INACTIVE alone (35) is at_risk; INACTIVE + ACTIVITY_DROP is silent_churn;
-- ACTIVITY_DROP + SPEND_DROP (35) is at_risk; one survey or e-mail signal alone (10) stays active.
--
-- value_at_risk: the revenue the customer brings in 90 days at their own average pace
-- (lifetime_revenue / max(tenure, health_recent_days days) x 90, plus 90 days of the MRR running at D),
-- times the probability of losing it: the larger of risk_score / 100 and 1 - p_alive (risk_score / 100
-- alone when the BG/NBD model could not be fitted).
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

active_days as (
    select * from int_customer_active_days
),

orders as (
    select * from stg_orders
),

activity as (
    select * from stg_activity
),

subscriptions as (
    select * from stg_subscriptions
),

email_events as (
    select * from stg_email_events
),

surveys as (
    select * from stg_surveys
),

tickets as (
    select * from stg_tickets
),

invoices as (
    select * from stg_invoices
),

model_scores as (
    select * from bgnbd_scores
),

purchase_summary as (
    select * from customer_purchase_summary
),

-- The calendar windows, shared by every customer.
windows as (
    select
        as_of_date,
        as_of_end,
        time_zone,
        (as_of_date - health_recent_days + 1)::date as recent_start,
        (as_of_date - health_recent_days)::date as baseline_end,
        (as_of_date - health_recent_days - health_baseline_days + 1)::date as baseline_start
    from params
),

completed_orders as (
    select *
    from orders
    where status = 'completed' and amount > 0
),

-- Active days (qualifying orders and activity events).
event_days as (
    select
        customer_id,
        min(active_date) as first_event_date,
        max(active_date) as last_event_date
    from active_days
    group by customer_id
),

day_gaps as (
    select
        customer_id,
        date_diff('day', lag(active_date) over (partition by customer_id order by active_date), active_date) as gap_days
    from active_days
),

typical_gaps as (
    select
        customer_id,
        median(gap_days)::double as typical_gap_days
    from day_gaps
    where gap_days is not null
    group by customer_id
),

-- The instant of the last qualifying event, for last_active_at.
event_instants as (
    select completed_orders.customer_id, completed_orders.ordered_at as occurred_at
    from completed_orders
    where (select list_contains(active_when, 'orders') from params)
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

-- Subscriptions: the days they cover (when they qualify), the MRR running at D, and whether all ended.
subscription_coverage as (
    select
        subscriptions.customer_id,
        min(subscriptions.started_date) as first_subscription_date,
        max(coalesce(subscriptions.ended_date - 1, windows.as_of_date))::date as last_subscription_date
    from subscriptions
    cross join windows
    where (subscriptions.ended_date is null or subscriptions.ended_date > subscriptions.started_date)
      and (select list_contains(active_when, 'subscriptions') from params)
    group by subscriptions.customer_id
),

subscription_states as (
    select
        customer_id,
        coalesce(sum(mrr) filter (where ended_date is null), 0) as mrr,
        bool_and(ended_date is not null) as all_subscriptions_ended,
        max(ended_date) as last_subscription_end
    from subscriptions
    group by customer_id
),

-- Per customer: first and last active day and the two windows cut to their tenure.
customer_windows as (
    select
        customers.customer_id,
        customers.cancelled_at,
        least(event_days.first_event_date, subscription_coverage.first_subscription_date) as first_active_date,
        greatest(event_days.last_event_date, subscription_coverage.last_subscription_date) as last_active_date,
        event_days.last_event_date,
        subscription_coverage.last_subscription_date,
        windows.recent_start,
        windows.baseline_start,
        windows.baseline_end,
        windows.as_of_date
    from customers
    cross join windows
    left join event_days using (customer_id)
    left join subscription_coverage using (customer_id)
    where event_days.customer_id is not null or subscription_coverage.customer_id is not null
),

tenure_windows as (
    select
        *,
        greatest(recent_start, first_active_date) as recent_from,
        greatest(baseline_start, first_active_date) as baseline_from,
        date_diff('day', greatest(recent_start, first_active_date), as_of_date) + 1 as recent_window_days,
        greatest(date_diff('day', greatest(baseline_start, first_active_date), baseline_end) + 1, 0) as baseline_window_days,
        date_diff('day', first_active_date, as_of_date) + 1 as tenure_days
    from customer_windows
),

active_days_in_windows as (
    select
        tenure_windows.customer_id,
        count(*) filter (where active_days.active_date >= tenure_windows.recent_from) as active_days_recent,
        count(*) filter (
            where active_days.active_date between tenure_windows.baseline_from and tenure_windows.baseline_end
        ) as active_days_baseline
    from tenure_windows
    inner join active_days using (customer_id)
    group by tenure_windows.customer_id
),

orders_in_windows as (
    select
        tenure_windows.customer_id,
        count(*) filter (where completed_orders.ordered_date >= tenure_windows.recent_from) as orders_recent,
        count(*) filter (
            where completed_orders.ordered_date between tenure_windows.baseline_from and tenure_windows.baseline_end
        ) as orders_baseline,
        coalesce(sum(completed_orders.amount) filter (
            where completed_orders.ordered_date >= tenure_windows.recent_from
        ), 0) as revenue_recent,
        coalesce(sum(completed_orders.amount) filter (
            where completed_orders.ordered_date between tenure_windows.baseline_from and tenure_windows.baseline_end
        ), 0) as revenue_baseline
    from tenure_windows
    inner join completed_orders using (customer_id)
    group by tenure_windows.customer_id
),

-- E-mails: opens (and clicks, which imply an open) counted once per campaign, as in fct_customer_period.
email_windows as (
    select
        email_events.customer_id,
        count(*) filter (
            where email_events.event_type = 'sent' and email_events.occurred_date >= windows.recent_start
        ) as emails_sent_recent,
        count(distinct coalesce(email_events.campaign_id, email_events.occurred_at::varchar)) filter (
            where email_events.event_type in ('open', 'click') and email_events.occurred_date >= windows.recent_start
        ) as emails_opened_recent,
        count(*) filter (
            where email_events.event_type = 'sent'
              and email_events.occurred_date between windows.baseline_start and windows.baseline_end
        ) as emails_sent_baseline,
        count(distinct coalesce(email_events.campaign_id, email_events.occurred_at::varchar)) filter (
            where email_events.event_type in ('open', 'click')
              and email_events.occurred_date between windows.baseline_start and windows.baseline_end
        ) as emails_opened_baseline,
        max(email_events.occurred_at) filter (where email_events.event_type in ('open', 'click')) as last_open_at
    from email_events
    cross join windows
    where email_events.customer_id is not null
    group by email_events.customer_id
),

emails_after_last_open as (
    select
        email_events.customer_id,
        count(*) as emails_since_last_open
    from email_events
    inner join email_windows using (customer_id)
    where email_events.event_type = 'sent'
      and (email_windows.last_open_at is null or email_events.occurred_at > email_windows.last_open_at)
    group by email_events.customer_id
),

complaints_in_windows as (
    select
        tenure_windows.customer_id,
        count(*) filter (where tickets.opened_date >= tenure_windows.recent_from) as complaints_recent,
        count(*) filter (
            where tickets.opened_date between tenure_windows.baseline_from and tenure_windows.baseline_end
        ) as complaints_baseline
    from tenure_windows
    inner join tickets using (customer_id)
    where tickets.is_complaint
    group by tenure_windows.customer_id
),

-- Invoices due in the recent window: days late run to the payment, or to D while unpaid.
recent_invoices as (
    select
        invoices.customer_id,
        date_diff('day', invoices.due_date, coalesce(invoices.paid_date, windows.as_of_date)) as days_late
    from invoices
    cross join windows
    where invoices.due_date between windows.recent_start and windows.as_of_date
),

late_payments as (
    select
        recent_invoices.customer_id,
        count(*) filter (
            where recent_invoices.days_late >= greatest(params.health_late_payment_min_days, 1)
        ) as late_payments_recent,
        max(recent_invoices.days_late) filter (where recent_invoices.days_late > 0) as max_days_late_recent
    from recent_invoices
    cross join params
    group by recent_invoices.customer_id
),

nps_ranked as (
    select
        customer_id,
        score,
        responded_date,
        row_number() over (
            partition by customer_id
            order by responded_at desc, response_id desc nulls last, score
        ) as answer_rank
    from surveys
    where survey_type = 'nps'
),

nps_latest as (
    select
        customer_id,
        max(score) filter (where answer_rank = 1) as last_nps,
        max(score) filter (where answer_rank = 1) - max(score) filter (where answer_rank = 2) as nps_change,
        max(responded_date) filter (where answer_rank = 1) as last_nps_date
    from nps_ranked
    where answer_rank <= 2
    group by customer_id
),

csat_recent as (
    select
        surveys.customer_id,
        min(surveys.score) as min_csat_recent
    from surveys
    cross join windows
    where surveys.survey_type = 'csat' and surveys.responded_date >= windows.recent_start
    group by surveys.customer_id
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

evidence as (
    select
        -- ids
        tenure_windows.customer_id,

        -- activity
        tenure_windows.first_active_date,
        tenure_windows.last_active_date,
        case
            when tenure_windows.last_event_date >= coalesce(tenure_windows.last_subscription_date, date '0001-01-01')
                then last_event_instants.last_event_at
            else timezone(params.time_zone, tenure_windows.last_active_date::timestamp)
        end as last_active_at,
        date_diff('day', tenure_windows.last_active_date, tenure_windows.as_of_date) as days_since_last_activity,
        typical_gaps.typical_gap_days,
        greatest(
            params.health_inactive_min_days::double,
            params.health_inactive_gap_multiple * coalesce(typical_gaps.typical_gap_days, 0)
        ) as inactive_after_days,
        tenure_windows.tenure_days,

        -- windows (days, cut to tenure)
        tenure_windows.recent_window_days,
        tenure_windows.baseline_window_days,

        -- activity and orders in the windows
        coalesce(active_days_in_windows.active_days_recent, 0) as active_days_recent,
        coalesce(active_days_in_windows.active_days_baseline, 0) as active_days_baseline,
        coalesce(orders_in_windows.orders_recent, 0) as orders_recent,
        coalesce(orders_in_windows.orders_baseline, 0) as orders_baseline,
        coalesce(orders_in_windows.revenue_recent, 0)::decimal(18, 2) as revenue_recent,
        coalesce(orders_in_windows.revenue_baseline, 0)::decimal(18, 2) as revenue_baseline,

        -- e-mail
        coalesce(email_windows.emails_sent_recent, 0) as emails_sent_recent,
        coalesce(email_windows.emails_opened_recent, 0) as emails_opened_recent,
        coalesce(email_windows.emails_sent_baseline, 0) as emails_sent_baseline,
        coalesce(email_windows.emails_opened_baseline, 0) as emails_opened_baseline,
        coalesce(emails_after_last_open.emails_since_last_open, 0) as emails_since_last_open,

        -- support and billing
        coalesce(complaints_in_windows.complaints_recent, 0) as complaints_recent,
        coalesce(complaints_in_windows.complaints_baseline, 0) as complaints_baseline,
        coalesce(late_payments.late_payments_recent, 0) as late_payments_recent,
        late_payments.max_days_late_recent,
        coalesce(subscription_states.mrr, 0)::decimal(18, 2) as mrr,

        -- surveys
        nps_latest.last_nps,
        nps_latest.nps_change,
        nps_latest.last_nps_date,
        csat_recent.min_csat_recent,

        -- model
        model_scores.p_alive::double as p_alive,
        model_scores.expected_purchases_next_90d::double as expected_purchases_next_90d,
        coalesce(purchase_summary.lifetime_revenue, 0)::decimal(18, 2) as lifetime_revenue,

        -- rfm
        rfm_scores.rfm_r,
        rfm_scores.rfm_f,
        rfm_scores.rfm_m,

        -- cancellation
        tenure_windows.cancelled_at,
        tenure_windows.cancelled_at < params.as_of_end
            and tenure_windows.last_active_date <= business_date(tenure_windows.cancelled_at, params.time_zone)
            as is_cancelled,
        coalesce(
            subscription_states.all_subscriptions_ended
                and coalesce(tenure_windows.last_event_date, date '0001-01-01') <= subscription_states.last_subscription_end,
            false
        ) as subscriptions_ended

    from tenure_windows
    cross join params
    left join typical_gaps using (customer_id)
    left join last_event_instants using (customer_id)
    left join active_days_in_windows using (customer_id)
    left join orders_in_windows using (customer_id)
    left join email_windows using (customer_id)
    left join emails_after_last_open using (customer_id)
    left join complaints_in_windows using (customer_id)
    left join late_payments using (customer_id)
    left join subscription_states using (customer_id)
    left join nps_latest using (customer_id)
    left join csat_recent using (customer_id)
    left join model_scores using (customer_id)
    left join purchase_summary using (customer_id)
    left join rfm_scores using (customer_id)
),

rates as (
    select
        *,
        active_days_recent / recent_window_days as activity_rate_recent,
        active_days_baseline / nullif(baseline_window_days, 0) as activity_rate_baseline,
        orders_recent / recent_window_days as order_rate_recent,
        orders_baseline / nullif(baseline_window_days, 0) as order_rate_baseline,
        revenue_recent::double / recent_window_days as spend_rate_recent,
        revenue_baseline::double / nullif(baseline_window_days, 0) as spend_rate_baseline,
        case when emails_sent_recent > 0 then least(emails_opened_recent / emails_sent_recent, 1) end
            as email_open_rate_recent,
        case when emails_sent_baseline > 0 then least(emails_opened_baseline / emails_sent_baseline, 1) end
            as email_open_rate_baseline
    from evidence
),

signals as (
    select
        rates.*,
        rates.days_since_last_activity >= rates.inactive_after_days as is_inactive,
        rates.baseline_window_days >= params.health_min_baseline_days
            and rates.activity_rate_baseline * rates.recent_window_days >= params.health_drop_min_expected
            and rates.activity_rate_baseline > 0
            and rates.activity_rate_recent < params.health_drop_ratio * rates.activity_rate_baseline
            as is_activity_drop,
        rates.baseline_window_days >= params.health_min_baseline_days
            and rates.order_rate_baseline * rates.recent_window_days >= params.health_drop_min_expected
            and rates.spend_rate_baseline > 0
            and rates.spend_rate_recent < params.health_drop_ratio * rates.spend_rate_baseline
            as is_spend_drop,
        rates.emails_since_last_open >= params.health_email_no_open_last_n
            or (
                rates.emails_sent_recent >= 2 and rates.emails_sent_baseline >= 2
                and rates.email_open_rate_baseline > 0
                and rates.email_open_rate_recent < params.health_drop_ratio * rates.email_open_rate_baseline
            ) as is_email_disengaged,
        rates.complaints_recent >= params.health_complaints_min_recent
            and rates.complaints_recent / rates.recent_window_days
                > coalesce(rates.complaints_baseline / nullif(rates.baseline_window_days, 0), 0)
            as is_complaints_up,
        rates.late_payments_recent > 0 as is_late_payment,
        rates.last_nps_date >= (select baseline_start from windows) as is_nps_current,
        rates.min_csat_recent <= params.health_low_csat_max * params.csat_scale / 5 as is_low_csat,
        rates.p_alive < params.health_low_p_alive as is_low_p_alive
    from rates
    cross join params
),

flagged as (
    select
        signals.*,
        [
            {'code': 'INACTIVE', 'present': coalesce(is_inactive, false), 'weight': params.weight_inactive},
            {'code': 'ACTIVITY_DROP', 'present': coalesce(is_activity_drop, false), 'weight': params.weight_activity_drop},
            {'code': 'SPEND_DROP', 'present': coalesce(is_spend_drop, false), 'weight': params.weight_spend_drop},
            {'code': 'EMAIL_DISENGAGED', 'present': coalesce(is_email_disengaged, false), 'weight': params.weight_email_disengaged},
            {'code': 'COMPLAINTS_UP', 'present': coalesce(is_complaints_up, false), 'weight': params.weight_complaints_up},
            {'code': 'LATE_PAYMENT', 'present': coalesce(is_late_payment, false), 'weight': params.weight_late_payment},
            {'code': 'NPS_DETRACTOR', 'present': coalesce(is_nps_current and last_nps <= 6, false), 'weight': params.weight_nps_detractor},
            {'code': 'NPS_DROP', 'present': coalesce(is_nps_current and nps_change <= -params.health_nps_drop_points, false), 'weight': params.weight_nps_drop},
            {'code': 'LOW_CSAT', 'present': coalesce(is_low_csat, false), 'weight': params.weight_low_csat},
            {'code': 'LOW_P_ALIVE', 'present': coalesce(is_low_p_alive, false), 'weight': params.weight_low_p_alive}
        ] as checks
    from signals
    cross join params
),

scored as (
    select
        flagged.* exclude (checks),
        list_transform(list_filter(checks, c -> c.present), c -> c.code) as reasons,
        least(100, round(coalesce(list_sum(list_transform(list_filter(checks, c -> c.present), c -> c.weight)), 0)))::integer
            as risk_score
    from flagged
),

statuses as (
    select
        scored.*,
        case
            when coalesce(scored.is_cancelled, false) then 'churned'
            when scored.days_since_last_activity > params.health_lost_after_days then 'lost'
            when scored.subscriptions_ended then 'churned'
            when scored.risk_score >= params.health_silent_churn_score
                or (list_contains(scored.reasons, 'INACTIVE')
                    and list_has_any(scored.reasons, ['ACTIVITY_DROP', 'SPEND_DROP', 'LOW_P_ALIVE']))
                then 'silent_churn'
            when scored.risk_score >= params.health_at_risk_score then 'at_risk'
            else 'active'
        end as status,
        round(
            (coalesce(scored.lifetime_revenue, 0)::double / greatest(scored.tenure_days, params.health_recent_days) * 90
                + scored.mrr::double * 12 / 365 * 90)
            * greatest(scored.risk_score / 100, coalesce(1 - scored.p_alive, 0)),
            2
        )::decimal(18, 2) as value_at_risk,
        round((coalesce(scored.rfm_f, 0) + coalesce(scored.rfm_m, 0)) / 2) as rfm_fm
    from scored
    cross join params
),

customer_health as (
    select
        -- ids
        customer_id,

        -- verdict
        status,
        risk_score,
        reasons,

        -- activity
        first_active_date,
        last_active_date,
        last_active_at,
        days_since_last_activity::integer as days_since_last_activity,
        typical_gap_days,
        inactive_after_days,
        tenure_days::integer as tenure_days,

        -- recent vs baseline windows (days, cut to tenure) and per-day rates
        recent_window_days::integer as recent_window_days,
        baseline_window_days::integer as baseline_window_days,
        active_days_recent::integer as active_days_recent,
        active_days_baseline::integer as active_days_baseline,
        orders_recent::integer as orders_recent,
        orders_baseline::integer as orders_baseline,
        revenue_recent,
        revenue_baseline,
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

        -- support and billing
        complaints_recent::integer as complaints_recent,
        complaints_baseline::integer as complaints_baseline,
        late_payments_recent::integer as late_payments_recent,
        max_days_late_recent::integer as max_days_late_recent,
        mrr,

        -- surveys
        last_nps,
        nps_change,
        last_nps_date,
        min_csat_recent,

        -- model and value
        p_alive,
        expected_purchases_next_90d,
        lifetime_revenue,
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
