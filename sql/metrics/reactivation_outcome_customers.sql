-- Who of each published reactivation audience came back, per customer and outcome window.
-- Grain: audience_as_of x window_days x customer_id.
--
-- Audiences: the published reactivation_audience partitions (reactivation_audience_history, read from the output's
-- history, not from this run) with as_of in the outcomes_lookback_days days before D; never D's own audience. A
-- customer counts once per audience date, in the group that audience published (target or control).
-- Window: the outcomes_window_days days after the audience date, audience_as_of < day <= window_end; it is observed
-- up to D (observed_until) and is_complete once window_end <= D. An open window is published, not dropped.
-- reactivated: a return in the observed window: a qualifying active day (int_customer_active_days: a completed
-- order with a positive amount or an activity event, as active_when says), a completed purchase with a positive
-- amount (whatever active_when says), or, when active_when has subscriptions, a subscription started by a customer
-- who had none running on the audience date (a plan change of a running subscription is not a return).
-- revenue / orders: completed orders with a positive amount in the observed window (revenue as in
-- fct_customer_period).
-- was_sent: with outcomes_campaign_id_pattern set, whether an e-mail event `sent`, `delivered`, `open` or `click` of
-- a campaign whose campaign_id matches the pattern (a regular expression, searched anywhere in the id) reached the
-- customer (by customer_id or normalised e-mail) in the observed window; null without a pattern.

with

params as (
    select * from run_params
),

history as (
    select * from reactivation_audience_history
),

active_days as (
    select * from int_customer_active_days
),

orders as (
    select * from stg_orders
),

subscriptions as (
    select * from stg_subscriptions
),

email_events as (
    select * from stg_email_events
),

audiences as (
    select
        history.as_of as audience_as_of,
        history.customer_id,
        history.audience_group,
        normalise_email(history.email) as email
    from history
    cross join params
    where history.as_of < params.as_of_date
      and history.as_of >= params.as_of_date - params.outcomes_lookback_days
      and history.customer_id is not null
    qualify row_number() over (
        partition by history.as_of, history.customer_id
        order by history.audience_group, history.email
    ) = 1
),

windows as (
    select distinct unnest(params.outcomes_window_days)::integer as window_days
    from params
),

audience_windows as (
    select
        audiences.audience_as_of,
        windows.window_days,
        audiences.customer_id,
        audiences.audience_group,
        audiences.email,
        (audiences.audience_as_of + windows.window_days)::date as window_end,
        least(audiences.audience_as_of + windows.window_days, params.as_of_date)::date as observed_until,
        audiences.audience_as_of + windows.window_days <= params.as_of_date as is_complete
    from audiences
    cross join windows
    cross join params
),

first_audience as (
    select min(audience_as_of) as audience_as_of from audiences
),

purchases as (
    select customer_id, ordered_date, amount
    from orders
    where status = 'completed' and amount > 0
      and ordered_date > (select audience_as_of from first_audience)
),

return_days as (
    select customer_id, active_date as return_date
    from active_days
    where active_date > (select audience_as_of from first_audience)
    union
    select customer_id, ordered_date from purchases
),

running_on_audience_date as (
    select distinct audiences.audience_as_of, audiences.customer_id
    from audiences
    inner join subscriptions
        on subscriptions.customer_id = audiences.customer_id
       and subscriptions.started_date <= audiences.audience_as_of
       and (subscriptions.ended_date is null or subscriptions.ended_date > audiences.audience_as_of)
),

-- Only the e-mails an outcome window can see (an audience's customer or address, after the first audience date) meet
-- the pattern: a regular expression read from params is matched row by row, so it runs on those rows alone.
audience_emails as (
    select
        email_events.customer_id,
        normalise_email(email_events.email) as email,
        email_events.occurred_date,
        email_events.campaign_id
    from email_events
    where email_events.occurred_date > (select audience_as_of from first_audience)
      and email_events.event_type in ('sent', 'delivered', 'open', 'click')
      and (
          email_events.customer_id in (select customer_id from audiences)
          or normalise_email(email_events.email) in (select email from audiences)
      )
),

campaign_sends as (
    select
        audience_emails.customer_id,
        audience_emails.email,
        audience_emails.occurred_date
    from audience_emails
    cross join params
    where params.outcomes_campaign_id_pattern is not null
      and regexp_matches(audience_emails.campaign_id, params.outcomes_campaign_id_pattern)
),

-- Everything dated that an outcome window looks for in a customer's rows: a return day, a subscription start (a
-- return unless one was running on the audience date), a purchase (orders and revenue) and a campaign e-mail.
customer_events as (
    select customer_id, return_date as event_date, 'return' as kind, null as amount
    from return_days
    union all
    select subscriptions.customer_id, subscriptions.started_date, 'subscription_start', null
    from subscriptions
    cross join params
    where list_contains(params.active_when, 'subscriptions')
    union all
    select customer_id, ordered_date, 'purchase', amount
    from purchases
    union all
    select customer_id, occurred_date, 'campaign_send', null
    from campaign_sends
),

window_events as (
    select
        audience_windows.audience_as_of,
        audience_windows.window_days,
        audience_windows.customer_id,
        customer_events.event_date,
        customer_events.kind,
        customer_events.amount,
        running.customer_id is not null as was_running
    from audience_windows
    inner join customer_events
        on customer_events.customer_id = audience_windows.customer_id
       and customer_events.event_date > audience_windows.audience_as_of
       and customer_events.event_date <= audience_windows.observed_until
    left join running_on_audience_date as running
        on running.audience_as_of = audience_windows.audience_as_of
       and running.customer_id = audience_windows.customer_id
),

window_outcomes as (
    select
        audience_as_of,
        window_days,
        customer_id,
        min(event_date) filter (
            where kind = 'return' or (kind = 'subscription_start' and not was_running)
        ) as first_return_date,
        count(*) filter (where kind = 'purchase') as orders,
        sum(amount) filter (where kind = 'purchase') as revenue,
        bool_or(kind = 'campaign_send') as is_sent_to_customer
    from window_events
    group by all
),

sent_by_customer as (
    select audience_as_of, window_days, customer_id
    from window_outcomes
    where is_sent_to_customer
),

sent_by_email as (
    select distinct audience_windows.audience_as_of, audience_windows.window_days, audience_windows.customer_id
    from audience_windows
    inner join campaign_sends
        on campaign_sends.email = audience_windows.email
       and campaign_sends.occurred_date > audience_windows.audience_as_of
       and campaign_sends.occurred_date <= audience_windows.observed_until
),

sent as (
    select *, true as is_sent
    from (
        select * from sent_by_customer
        union
        select * from sent_by_email
    )
),

reactivation_outcome_customers as (
    select
        -- ids
        audience_windows.audience_as_of,
        audience_windows.window_days,
        audience_windows.customer_id,

        -- attributes
        audience_windows.audience_group,
        case
            when params.outcomes_campaign_id_pattern is not null then coalesce(sent.is_sent, false)
        end as was_sent,

        -- window
        audience_windows.window_end,
        audience_windows.observed_until,
        (audience_windows.observed_until - audience_windows.audience_as_of)::integer as observed_days,
        audience_windows.is_complete,

        -- outcome
        window_outcomes.first_return_date is not null as reactivated,
        window_outcomes.first_return_date as reactivated_on,
        (window_outcomes.first_return_date - audience_windows.audience_as_of)::integer as days_to_reactivation,
        coalesce(window_outcomes.orders, 0)::integer as orders,
        coalesce(window_outcomes.revenue, 0)::decimal(18, 2) as revenue

    from audience_windows
    cross join params
    left join window_outcomes using (audience_as_of, window_days, customer_id)
    left join sent using (audience_as_of, window_days, customer_id)
)

select * from reactivation_outcome_customers
