-- One row per customer and period, from the customer's cohort period to the period containing
-- the as-of date. Grain: customer_id x period_start.
--
-- A customer is active in a period when one of the qualifying sources (run_params.active_when) shows
-- a completed order with a positive amount, an activity event, or a subscription running on any day
-- of the period. Lifecycle follows Amplitude: new, retained, resurrected, churned, dormant.
--
-- No money is left out: every staged order amount is revenue, a refund or a cancelled order, and every
-- invoice due by the as-of date is counted, in the period it happened. So a customer's rows start at the
-- earlier of the cohort period and the first period with money (revenue, a refund or an invoice due):
-- a refund before the first purchase lands in the period of the refund (period_index < 0, not active,
-- lifecycle not_yet_active), and a customer who never bought (no cohort: cohort_period and period_index
-- null) has rows from their first period with money, all not_yet_active. The manifest's reconciliation
-- checks the sums against the staged inputs.

with

params as (
    select * from run_params
),

customers as (
    select * from stg_customers
    where in_customer_batch(customer_id)
),

orders as (
    select * from stg_orders
    where in_customer_batch(customer_id)
),

activity as (
    select * from stg_activity
    where in_customer_batch(customer_id)
),

subscriptions as (
    select * from stg_subscriptions
    where in_customer_batch(customer_id)
),

email_events as (
    select * from stg_email_events
    where in_customer_batch(customer_id)
),

surveys as (
    select * from stg_surveys
    where in_customer_batch(customer_id)
),

tickets as (
    select * from stg_tickets
    where in_customer_batch(customer_id)
),

invoices as (
    select * from stg_invoices
    where in_customer_batch(customer_id)
),

orders_by_period as (
    select
        orders.customer_id,
        period_start(orders.ordered_date, params.period_grain) as period_start,
        count(*) filter (where orders.status = 'completed' and orders.amount > 0) as orders,
        coalesce(sum(orders.amount) filter (where orders.status = 'completed' and orders.amount > 0), 0) as revenue,
        coalesce(sum(abs(orders.amount)) filter (where orders.status = 'refunded' or orders.amount < 0), 0) as refunds
    from orders
    cross join params
    group by all
),

activity_by_period as (
    select
        activity.customer_id,
        period_start(activity.occurred_date, params.period_grain) as period_start,
        count(*) as activity_events
    from activity
    cross join params
    group by all
),

-- A subscription runs from its start day up to (not including) its end day.
subscription_spans as (
    select
        subscriptions.customer_id,
        subscriptions.mrr,
        subscriptions.started_date,
        subscriptions.ended_date,
        period_start(subscriptions.started_date, params.period_grain) as first_period,
        period_start(coalesce(subscriptions.ended_date - 1, params.as_of_date), params.period_grain) as last_period
    from subscriptions
    cross join params
    where subscriptions.ended_date is null or subscriptions.ended_date > subscriptions.started_date
),

subscription_periods as (
    select
        subscription_spans.*,
        period_add(subscription_spans.first_period, offsets.k, params.period_grain) as period_start
    from subscription_spans
    cross join params
    cross join lateral (
        select unnest(range(0, period_diff(subscription_spans.first_period, subscription_spans.last_period, params.period_grain) + 1)) as k
    ) as offsets
),

-- MRR is a snapshot at the end of the period (or at the as-of date for the current period).
subscriptions_by_period as (
    select
        subscription_periods.customer_id,
        subscription_periods.period_start,
        true as subscription_active,
        coalesce(sum(subscription_periods.mrr) filter (
            where subscription_periods.started_date <= least(period_end(subscription_periods.period_start, params.period_grain), params.as_of_date)
              and (subscription_periods.ended_date is null
                   or subscription_periods.ended_date > least(period_end(subscription_periods.period_start, params.period_grain), params.as_of_date))
        ), 0) as mrr
    from subscription_periods
    cross join params
    group by all
),

emails_by_period as (
    select
        email_events.customer_id,
        period_start(email_events.occurred_date, params.period_grain) as period_start,
        count(*) filter (where email_events.event_type = 'sent') as emails_sent,
        count(distinct coalesce(email_events.campaign_id, email_events.occurred_at::varchar))
            filter (where email_events.event_type = 'open') as emails_opened,
        count(distinct coalesce(email_events.campaign_id, email_events.occurred_at::varchar))
            filter (where email_events.event_type = 'click') as emails_clicked
    from email_events
    cross join params
    group by all
),

surveys_by_period as (
    select
        surveys.customer_id,
        period_start(surveys.responded_date, params.period_grain) as period_start,
        count(*) filter (where surveys.survey_type = 'nps') as nps_responses,
        avg(surveys.score) filter (where surveys.survey_type = 'nps') as nps_avg,
        count(*) filter (where surveys.survey_type = 'csat') as csat_responses,
        avg(surveys.score) filter (where surveys.survey_type = 'csat') as csat_avg
    from surveys
    cross join params
    group by all
),

tickets_by_period as (
    select
        tickets.customer_id,
        period_start(tickets.opened_date, params.period_grain) as period_start,
        count(*) as tickets_opened,
        count(*) filter (where tickets.is_complaint) as complaints
    from tickets
    cross join params
    group by all
),

-- Invoices count in the period they fall due, once due by the as-of date. Late: paid after the due
-- date, or still unpaid after it; days late run to the payment or to the as-of date.
invoices_by_period as (
    select
        invoices.customer_id,
        period_start(invoices.due_date, params.period_grain) as period_start,
        count(*) as invoices_due,
        sum(invoices.amount) as invoices_due_amount,
        count(*) filter (
            where invoices.paid_date > invoices.due_date
               or (invoices.paid_date is null and invoices.due_date < params.as_of_date)
        ) as invoices_paid_late,
        avg(date_diff('day', invoices.due_date, coalesce(invoices.paid_date, params.as_of_date))) filter (
            where invoices.paid_date > invoices.due_date
               or (invoices.paid_date is null and invoices.due_date < params.as_of_date)
        ) as avg_days_late
    from invoices
    cross join params
    where invoices.due_date <= params.as_of_date
    group by all
),

active_periods as (
    select customer_id, period_start from orders_by_period
    where orders > 0 and (select list_contains(active_when, 'orders') from params)
    union
    select customer_id, period_start from activity_by_period
    where (select list_contains(active_when, 'activity') from params)
    union
    select customer_id, period_start from subscriptions_by_period
    where (select list_contains(active_when, 'subscriptions') from params)
),

first_active as (
    select customer_id, min(period_start) as first_active_period
    from active_periods
    group by customer_id
),

-- Periods with money in the facts: revenue, refunds or invoices due (whether or not the customer is active).
money_periods as (
    select customer_id, period_start from orders_by_period where revenue <> 0 or refunds <> 0
    union
    select customer_id, period_start from invoices_by_period
),

first_money as (
    select customer_id, min(period_start) as first_money_period
    from money_periods
    group by customer_id
),

cohorts as (
    select
        customers.customer_id,
        customers.segment,
        customers.country,
        first_active.first_active_period,
        case
            when params.cohort_by = 'signup' and customers.signup_at is not null
                then least(
                    period_start(business_date(customers.signup_at, params.time_zone), params.period_grain),
                    coalesce(first_active.first_active_period, date '9999-01-01'))
            else first_active.first_active_period
        end as cohort_period
    from customers
    cross join params
    left join first_active using (customer_id)
),

-- Rows start at the cohort period, or earlier when there is money before it (least ignores nulls).
spans as (
    select
        cohorts.*,
        least(cohorts.cohort_period, first_money.first_money_period) as first_period
    from cohorts
    left join first_money using (customer_id)
),

spine as (
    select
        spans.customer_id,
        spans.segment,
        spans.country,
        spans.cohort_period,
        spans.first_active_period,
        period_add(spans.first_period, offsets.k, params.period_grain) as period_start,
        period_diff(spans.cohort_period, period_add(spans.first_period, offsets.k, params.period_grain), params.period_grain)
            as period_index
    from spans
    cross join params
    cross join lateral (
        select unnest(range(0, period_diff(spans.first_period, period_start(params.as_of_date, params.period_grain), params.period_grain) + 1)) as k
    ) as offsets
    where spans.first_period <= params.as_of_date
),

customer_periods as (
    select
        -- ids
        spine.customer_id,
        spine.period_start,
        period_end(spine.period_start, params.period_grain) as period_end,
        spine.cohort_period,
        spine.period_index,

        -- attributes
        spine.segment,
        spine.country,
        active_periods.customer_id is not null as is_active,

        -- orders
        coalesce(orders_by_period.orders, 0) as orders,
        coalesce(orders_by_period.revenue, 0)::decimal(18, 2) as revenue,
        coalesce(orders_by_period.refunds, 0)::decimal(18, 2) as refunds,

        -- activity
        coalesce(activity_by_period.activity_events, 0) as activity_events,

        -- e-mail
        coalesce(emails_by_period.emails_sent, 0) as emails_sent,
        coalesce(emails_by_period.emails_opened, 0) as emails_opened,
        coalesce(emails_by_period.emails_clicked, 0) as emails_clicked,

        -- surveys
        coalesce(surveys_by_period.nps_responses, 0) as nps_responses,
        surveys_by_period.nps_avg,
        coalesce(surveys_by_period.csat_responses, 0) as csat_responses,
        surveys_by_period.csat_avg,

        -- support
        coalesce(tickets_by_period.tickets_opened, 0) as tickets_opened,
        coalesce(tickets_by_period.complaints, 0) as complaints,

        -- billing
        coalesce(invoices_by_period.invoices_due, 0) as invoices_due,
        coalesce(invoices_by_period.invoices_paid_late, 0) as invoices_paid_late,
        invoices_by_period.avg_days_late,
        coalesce(invoices_by_period.invoices_due_amount, 0)::decimal(18, 2) as invoices_due_amount,
        coalesce(subscriptions_by_period.subscription_active, false) as subscription_active,
        coalesce(subscriptions_by_period.mrr, 0)::decimal(18, 2) as mrr,

        -- completeness
        period_end(spine.period_start, params.period_grain) <= params.as_of_date as is_complete

    from spine
    cross join params
    left join active_periods using (customer_id, period_start)
    left join orders_by_period using (customer_id, period_start)
    left join activity_by_period using (customer_id, period_start)
    left join emails_by_period using (customer_id, period_start)
    left join surveys_by_period using (customer_id, period_start)
    left join tickets_by_period using (customer_id, period_start)
    left join invoices_by_period using (customer_id, period_start)
    left join subscriptions_by_period using (customer_id, period_start)
),

with_history as (
    select
        *,
        coalesce(lag(is_active) over customer_history, false) as was_active_previous_period,
        coalesce(bool_or(is_active) over (
            partition by customer_id order by period_start
            rows between unbounded preceding and 1 preceding
        ), false) as was_active_before
    from customer_periods
    window customer_history as (partition by customer_id order by period_start)
),

lifecycles as (
    select
        * exclude (was_active_previous_period, was_active_before, is_complete),
        case
            when is_active and not was_active_before then 'new'
            when is_active and was_active_previous_period then 'retained'
            when is_active then 'resurrected'
            when was_active_previous_period then 'churned'
            when was_active_before then 'dormant'
            else 'not_yet_active'
        end as lifecycle,
        is_complete
    from with_history
)

select * from lifecycles
