-- What the early warning knows about each customer at each snapshot (int_health_snapshots): the evidence that
-- customer_health publishes and the features of the risk model (transforms/models/health_scores.ts), computed
-- from the data up to the snapshot date only, so the model is trained and judged on exactly what it would have
-- seen that night. Grain: customer_id x snapshot_role (customers with qualifying activity by the snapshot).
--
-- Windows of a snapshot s (R = health_recent_days, B = health_baseline_days):
--   recent    (s - R, s]               the published recent-vs-baseline evidence
--   baseline  the B days before it      (cut to the customer's first active day, as are all baselines)
--   w30       (s - 30, s]              the short window of the risk model's features
--
-- Decline tests (stats.sql), for active days and order days: the count in each of the last 14, 30, 60, R and
-- 120 days against the customer's own rate in the year before that window, as a negative-binomial tail
-- probability that includes the rate's uncertainty and how much 30-day counts wander in this population
-- (int_health_dispersions). A short window catches a fast decline early, a long one a slow or partial decline that no
-- single month proves; for active days also the silence since the last active day (no event in s days against
-- the events of the last year, all before it: under a steady rate the time since the last event is exponential,
-- so its tail is a valid test), the window that fits an abrupt stop whenever it happened. *_decline_p combines
-- the tails of the judged windows by Simes' test (min over ranks i of m x p_(i) / i): valid for positively
-- dependent tests such as nested windows, never above Bonferroni's m x min p, and much smaller when several
-- windows agree, as they do for a decline that lasts. A window is evidence only where its count is below
-- health_drop_ratio x the expected one (the drop the config names). Windows are judged only where the year before covers
-- health_min_baseline_days and predicts at least health_drop_min_expected events, for customers with two or more
-- active days (a one-time buyer has no rate to fall from). E-mail opens: a binomial tail of the recent opens among
-- the recent sends at the own baseline open rate. Complaints: the upper tail of the recent complaints at the own
-- baseline rate.
--
-- Outcomes (training and backtest rows): churned_in_horizon = no qualifying activity in (s, outcome_date], read
-- from the last active day at the next snapshot; declined_in_horizon (customers with a rate) = fewer active days
-- in (s, outcome_date] than health_drop_ratio x what the own rate of the last year predicts.
--
-- Purchases for the MBG/NBD model count every completed order day with amount >= 0 (lifetimes counts $0
-- purchases as transactions); revenue counts amount > 0.
--
-- Memory: DuckDB would copy a CTE read twice into memory whole, so the import CTEs and stream_days are `not
-- materialized` (read from their tables each time). The per-customer summaries that evidence joins are
-- `materialized`: each is computed on its own and kept small, instead of all of them being computed at once beside
-- the joins (at 1M customers that no longer fitted in duckdb.memory_limit: 4GB).

with

params as not materialized (
    select * from run_params
),

snapshots as not materialized (
    select * from int_health_snapshots
),

active_days as not materialized (
    select * from int_customer_active_days
    where in_customer_batch(customer_id)
),

orders as not materialized (
    select * from stg_orders
    where in_customer_batch(customer_id)
),

subscriptions as not materialized (
    select * from stg_subscriptions
    where in_customer_batch(customer_id)
),

email_events as not materialized (
    select * from stg_email_events
    where in_customer_batch(customer_id)
),

surveys as not materialized (
    select * from stg_surveys
    where in_customer_batch(customer_id)
),

tickets as not materialized (
    select * from stg_tickets
    where in_customer_batch(customer_id)
),

invoices as not materialized (
    select * from stg_invoices
    where in_customer_batch(customer_id)
),

customers as not materialized (
    select * from stg_customers
    where in_customer_batch(customer_id)
),

dispersions as not materialized (
    select * from int_health_dispersions
),

-- Window bounds per snapshot.
windows as (
    select
        snapshots.snapshot_role,
        snapshots.snapshot_date,
        snapshots.outcome_date,
        params.health_recent_days as recent_days,
        params.health_baseline_days as baseline_days,
        (snapshots.snapshot_date - params.health_recent_days + 1)::date as recent_start,
        (snapshots.snapshot_date - params.health_recent_days)::date as baseline_end,
        (snapshots.snapshot_date - params.health_recent_days - params.health_baseline_days + 1)::date as baseline_start,
        (snapshots.snapshot_date - 29)::date as w30_start,
        (snapshots.snapshot_date - 364)::date as year_start,
        timezone(params.time_zone, (snapshots.snapshot_date + 1)::timestamp) as snapshot_end
    from snapshots
    cross join params
),

completed_orders as (
    select customer_id, ordered_date, amount
    from orders
    where status = 'completed' and amount >= 0 and customer_id is not null
),

-- One row per customer, day and stream: the counts every window is cut from.
stream_days as not materialized (
    select customer_id, active_date as day, 'active' as stream, 1 as events, 0::decimal(38, 2) as amount
    from active_days
    union all
    select customer_id, ordered_date, 'orders', count(*), sum(amount)::decimal(38, 2)
    from completed_orders
    where amount > 0
    group by all
    union all
    select customer_id, opened_date, 'complaints', count(*), 0::decimal(38, 2)
    from tickets
    where is_complaint
    group by all
),

stream_windows as (
    select
        stream_days.customer_id,
        windows.snapshot_role,
        stream_days.stream,
        count(*) as days_total,
        sum(stream_days.amount) as amount_total,
        min(stream_days.day) as first_day,
        max(stream_days.day) as last_day,
        coalesce(sum(stream_days.events) filter (where stream_days.day >= windows.recent_start), 0) as n_recent,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day between windows.baseline_start and windows.baseline_end
        ), 0) as n_baseline,
        coalesce(sum(stream_days.events) filter (where stream_days.day >= windows.w30_start), 0) as n_w30,
        -- the decline tests' windows: the last w days, and the year before each
        coalesce(sum(stream_days.events) filter (where stream_days.day > windows.snapshot_date - 14), 0) as n_last_14,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day <= windows.snapshot_date - 14 and stream_days.day > windows.snapshot_date - 14 - 365
        ), 0) as n_before_14,
        coalesce(sum(stream_days.events) filter (where stream_days.day > windows.snapshot_date - 30), 0) as n_last_30,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day <= windows.snapshot_date - 30 and stream_days.day > windows.snapshot_date - 30 - 365
        ), 0) as n_before_30,
        coalesce(sum(stream_days.events) filter (where stream_days.day > windows.snapshot_date - 60), 0) as n_last_60,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day <= windows.snapshot_date - 60 and stream_days.day > windows.snapshot_date - 60 - 365
        ), 0) as n_before_60,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day < windows.recent_start and stream_days.day >= windows.recent_start - 365
        ), 0) as n_before_recent,
        coalesce(sum(stream_days.events) filter (where stream_days.day > windows.snapshot_date - 120), 0) as n_last_120,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day <= windows.snapshot_date - 120 and stream_days.day > windows.snapshot_date - 120 - 365
        ), 0) as n_before_120,
        coalesce(sum(stream_days.events) filter (where stream_days.day >= windows.year_start), 0) as n_year,
        coalesce(sum(stream_days.amount) filter (where stream_days.day >= windows.recent_start), 0) as amount_recent,
        coalesce(sum(stream_days.amount) filter (
            where stream_days.day between windows.baseline_start and windows.baseline_end
        ), 0) as amount_baseline
    from stream_days
    inner join windows on stream_days.day <= windows.snapshot_date
    group by all
),

-- Active days after a training or backtest snapshot, up to its outcome date (for the decline outcome).
active_days_next as materialized (
    select
        active_days.customer_id,
        windows.snapshot_role,
        count(*) as active_days_next
    from active_days
    inner join windows
        on active_days.active_date > windows.snapshot_date
        and active_days.active_date <= windows.outcome_date
    group by all
),

-- Gaps between consecutive active days; a gap counts for a snapshot once its later day is on or before it.
day_gaps as (
    select
        customer_id,
        active_date,
        date_diff('day', lag(active_date) over (partition by customer_id order by active_date), active_date) as gap_days
    from active_days
),

typical_gaps as materialized (
    select
        day_gaps.customer_id,
        windows.snapshot_role,
        median(day_gaps.gap_days)::double as typical_gap_days
    from day_gaps
    inner join windows on day_gaps.active_date <= windows.snapshot_date
    where day_gaps.gap_days is not null
    group by all
),

-- Subscriptions, as they stood at each snapshot (an end after the snapshot is still in the future then).
subscription_states as materialized (
    select
        subscriptions.customer_id,
        windows.snapshot_role,
        min(subscriptions.started_date) as first_subscription_date,
        max(subscription_last_day(subscriptions.ended_date, windows.snapshot_date))::date as last_subscription_date,
        coalesce(sum(subscriptions.mrr) filter (
            where subscriptions.ended_date is null or subscriptions.ended_date > windows.snapshot_date
        ), 0) as mrr,
        bool_and(subscriptions.ended_date is not null and subscriptions.ended_date <= windows.snapshot_date)
            as all_subscriptions_ended,
        max(subscriptions.ended_date) filter (where subscriptions.ended_date <= windows.snapshot_date)
            as last_subscription_end
    from subscriptions
    inner join windows on subscriptions.started_date <= windows.snapshot_date
    group by all
),

qualifying_subscriptions as (
    select subscription_states.*
    from subscription_states
    where (select list_contains(active_when, 'subscriptions') from params)
      and last_subscription_date >= first_subscription_date
),

-- Purchase days for the MBG/NBD model (x, t_x, T in the model's time unit).
purchase_histories as (
    select
        purchase_days.customer_id,
        windows.snapshot_role,
        count(*) as purchase_days,
        min(purchase_days.ordered_date) as first_purchase_date,
        max(purchase_days.ordered_date) as last_purchase_date,
        max(windows.snapshot_date) as snapshot_date
    from (select distinct customer_id, ordered_date from completed_orders) as purchase_days
    inner join windows on purchase_days.ordered_date <= windows.snapshot_date
    group by all
),

purchase_model_inputs as materialized (
    select
        customer_id,
        snapshot_role,
        purchase_days - 1 as purchase_frequency,
        date_diff('day', first_purchase_date, last_purchase_date)
            / (case when (select health_model_time_unit from params) = 'days' then 1.0 else 7.0 end) as purchase_recency,
        date_diff('day', first_purchase_date, snapshot_date)
            / (case when (select health_model_time_unit from params) = 'days' then 1.0 else 7.0 end) as purchase_t
    from purchase_histories
),

email_windows as materialized (
    select
        email_events.customer_id,
        windows.snapshot_role,
        count(*) filter (where email_events.event_type = 'sent' and email_events.occurred_date >= windows.recent_start)
            as emails_sent_recent,
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
    inner join windows on email_events.occurred_date <= windows.snapshot_date
    where email_events.customer_id is not null
    group by all
),

emails_after_last_open as materialized (
    select
        email_events.customer_id,
        windows.snapshot_role,
        count(*) as emails_since_last_open
    from email_events
    inner join windows on email_events.occurred_date <= windows.snapshot_date
    inner join email_windows
        on email_windows.customer_id = email_events.customer_id
        and email_windows.snapshot_role = windows.snapshot_role
    where email_events.event_type = 'sent'
      and (email_windows.last_open_at is null or email_events.occurred_at > email_windows.last_open_at)
    group by all
),

-- Invoices due in the recent window: days late run to the payment, or to the snapshot while unpaid then.
late_payments as materialized (
    select
        invoices.customer_id,
        windows.snapshot_role,
        count(*) filter (
            where date_diff(
                'day', invoices.due_date,
                case when invoices.paid_date <= windows.snapshot_date then invoices.paid_date else windows.snapshot_date end
            ) >= greatest((select health_late_payment_min_days from params), 1)
        ) as late_payments_recent,
        max(date_diff(
            'day', invoices.due_date,
            case when invoices.paid_date <= windows.snapshot_date then invoices.paid_date else windows.snapshot_date end
        )) as max_days_late_recent
    from invoices
    inner join windows on invoices.due_date between windows.recent_start and windows.snapshot_date
    group by all
),

-- The baseline's median order value and the recent orders' values, from one pass over the orders of both windows
-- (SPEND_DROP's shrinking baskets): with baskets as before, each recent order reaches that median about half the time.
order_values as materialized (
    select
        completed_orders.customer_id,
        windows.snapshot_role,
        median(completed_orders.amount) filter (
            where completed_orders.ordered_date <= windows.baseline_end
        ) as baseline_median_order,
        list(completed_orders.amount) filter (
            where completed_orders.ordered_date >= windows.recent_start
        ) as recent_order_amounts
    from completed_orders
    inner join windows
        on completed_orders.ordered_date between windows.baseline_start and windows.snapshot_date
    where completed_orders.amount > 0
    group by all
),

nps_ranked as (
    select
        surveys.customer_id,
        windows.snapshot_role,
        surveys.score,
        surveys.responded_date,
        row_number() over (
            partition by surveys.customer_id, windows.snapshot_role
            order by surveys.responded_at desc, surveys.response_id desc nulls last, surveys.score
        ) as answer_rank
    from surveys
    inner join windows on surveys.responded_date <= windows.snapshot_date
    where surveys.survey_type = 'nps'
),

nps_latest as materialized (
    select
        customer_id,
        snapshot_role,
        max(score) filter (where answer_rank = 1) as last_nps,
        max(score) filter (where answer_rank = 1) - max(score) filter (where answer_rank = 2) as nps_change,
        max(responded_date) filter (where answer_rank = 1) as last_nps_date
    from nps_ranked
    where answer_rank <= 2
    group by all
),

csat_recent as materialized (
    select
        surveys.customer_id,
        windows.snapshot_role,
        min(surveys.score) as min_csat_recent
    from surveys
    inner join windows on surveys.responded_date between windows.recent_start and windows.snapshot_date
    where surveys.survey_type = 'csat'
    group by all
),

-- Who is known at each snapshot, with their first and last active day.
customer_keys as (
    select customer_id, snapshot_role from stream_windows where stream = 'active'
    union
    select customer_id, snapshot_role from qualifying_subscriptions
),

customer_snapshots as (
    select
        customer_keys.customer_id,
        windows.*,
        least(activity.first_day, qualifying_subscriptions.first_subscription_date) as first_active_date,
        greatest(activity.last_day, qualifying_subscriptions.last_subscription_date) as last_active_date,
        activity.last_day as last_event_date,
        qualifying_subscriptions.last_subscription_date
    from customer_keys
    inner join windows using (snapshot_role)
    left join (select * from stream_windows where stream = 'active') as activity
        on activity.customer_id = customer_keys.customer_id
        and activity.snapshot_role = customer_keys.snapshot_role
    left join qualifying_subscriptions
        on qualifying_subscriptions.customer_id = customer_keys.customer_id
        and qualifying_subscriptions.snapshot_role = customer_keys.snapshot_role
),

-- The decline tests of a stream: the count in each of the last 14, 30, 60, recent and 120 days against the year
-- before that window (cut to the first active day), with the population's dispersion; for active days also the
-- silence since the last active day against the events of the last year, all before it (order days are rarer
-- and lumpier than a Poisson clock: their silence is not judged). A window is judged when its baseline covers
-- health_min_baseline_days and predicts at least health_drop_min_expected events; decline_p is Simes'
-- combination of the judged windows' tails (ranked_window_tails).
stream_window_tests as (
    select
        stream_windows.customer_id,
        stream_windows.snapshot_role,
        stream_windows.stream,
        customer_snapshots.snapshot_date,
        customer_snapshots.first_active_date,
        customer_snapshots.recent_days,
        unnest([
            {'window': '14', 'days': 14, 'events': stream_windows.n_last_14,
                'events_before': stream_windows.n_before_14, 'silence': false},
            {'window': '30', 'days': 30, 'events': stream_windows.n_last_30,
                'events_before': stream_windows.n_before_30, 'silence': false},
            {'window': '60', 'days': 60, 'events': stream_windows.n_last_60,
                'events_before': stream_windows.n_before_60, 'silence': false},
            {'window': 'recent', 'days': customer_snapshots.recent_days, 'events': stream_windows.n_recent,
                'events_before': stream_windows.n_before_recent, 'silence': false},
            {'window': '120', 'days': 120, 'events': stream_windows.n_last_120,
                'events_before': stream_windows.n_before_120, 'silence': false},
            -- the silence since the stream's last event, against the events of the last year (all before it)
            {'window': 'silence', 'days': date_diff('day', stream_windows.last_day, customer_snapshots.snapshot_date)::integer,
                'events': 0, 'events_before': stream_windows.n_year, 'silence': true}
        ]) as test
    from stream_windows
    inner join customer_snapshots
        on customer_snapshots.customer_id = stream_windows.customer_id
        and customer_snapshots.snapshot_role = stream_windows.snapshot_role
    where stream_windows.stream in ('active', 'orders')
),

stream_window_tails as (
    select
        tests.customer_id,
        tests.snapshot_role,
        tests.stream,
        tests.test.days as window_days,
        case
            when tests.test.silence
                then least(365, date_diff('day', tests.first_active_date, tests.snapshot_date) + 1) - tests.test.days
            else least(365, date_diff('day', tests.first_active_date, tests.snapshot_date - tests.test.days) + 1)
        end as baseline_days,
        tests.test.events as events,
        tests.test.events_before as events_before,
        dispersions.dispersion,
        case tests.test.window
            when '14' then dispersions.season_14
            when '30' then dispersions.season_30
            when '60' then dispersions.season_60
            when 'recent' then dispersions.season_recent
            when '120' then dispersions.season_120
            else nearest_window_season(tests.test.days, tests.recent_days, dispersions.season_14,
                dispersions.season_30, dispersions.season_60, dispersions.season_recent, dispersions.season_120)
        end as season
    from stream_window_tests as tests
    inner join dispersions using (snapshot_role, stream)
    -- the silence is judged for active days only
    where not tests.test.silence or tests.stream = 'active'
),

expected_window_tails as (
    select
        tails.*,
        tails.events_before::double / tails.baseline_days * tails.window_days * tails.season as expected_events
    from stream_window_tails as tails
),

judged_window_tails as (
    select
        tails.*,
        -- the tail is summed only for a count a standard deviation or more below the expected one and below
        -- health_drop_ratio x it: a count closer to it cannot prove a drop (its tail, above 0.15, is taken as 1), and a
        -- high-rate customer's significant but modest dip (a third fewer active days) is not one
        case
            when tails.events <= tails.expected_events - sqrt(
                tails.expected_events * (1 + tails.expected_events
                    * (1 / (tails.events_before + 0.5) + tails.dispersion * 30 / greatest(tails.window_days, 30)))
            )
                and tails.events <= params.health_drop_ratio * tails.expected_events
                then rate_decline_p(
                    tails.events, tails.events_before, tails.baseline_days / tails.season, tails.window_days,
                    tails.dispersion
                )
            else 1.0
        end as tail_p
    from expected_window_tails as tails
    cross join params
    where tails.baseline_days >= params.health_min_baseline_days
      and tails.expected_events >= params.health_drop_min_expected
),

-- Simes' combination: each judged tail ranked within its customer, snapshot and stream.
ranked_window_tails as (
    select
        judged_window_tails.*,
        row_number() over (
            partition by customer_id, snapshot_role, stream order by tail_p, window_days
        ) as tail_rank,
        count(*) over (partition by customer_id, snapshot_role, stream) as windows_judged
    from judged_window_tails
),

stream_declines as (
    select
        customer_id,
        snapshot_role,
        stream,
        any_value(dispersion) as dispersion,
        least(1.0, min(windows_judged * tail_p / tail_rank)) as decline_p,
        arg_min(window_days, (tail_p, window_days)) as decline_window_days
    from ranked_window_tails
    group by all
),

-- Every stream of a customer at a snapshot in one row: a struct per stream of the windows (stream_windows) and,
-- where judged, of the decline test (stream_declines) that evidence reads, as activity.n_recent,
-- order_declines.decline_p... Only those fields: this row is held in a join for every customer and snapshot.
streams as materialized (
    select
        stream_windows.customer_id,
        stream_windows.snapshot_role,
        any_value({
            'days_total': stream_windows.days_total,
            'n_recent': stream_windows.n_recent,
            'n_baseline': stream_windows.n_baseline,
            'n_w30': stream_windows.n_w30,
            'n_year': stream_windows.n_year
        }) filter (where stream_windows.stream = 'active') as activity,
        any_value({
            'days_total': stream_windows.days_total,
            'amount_total': stream_windows.amount_total,
            'n_recent': stream_windows.n_recent,
            'n_baseline': stream_windows.n_baseline,
            'n_w30': stream_windows.n_w30,
            'amount_recent': stream_windows.amount_recent,
            'amount_baseline': stream_windows.amount_baseline
        }) filter (where stream_windows.stream = 'orders') as order_stream,
        any_value({
            'n_recent': stream_windows.n_recent,
            'n_baseline': stream_windows.n_baseline
        }) filter (where stream_windows.stream = 'complaints') as complaint_stream,
        any_value({
            'dispersion': stream_declines.dispersion,
            'decline_p': stream_declines.decline_p,
            'decline_window_days': stream_declines.decline_window_days
        }) filter (where stream_declines.stream = 'active') as activity_declines,
        any_value({
            'decline_p': stream_declines.decline_p,
            'decline_window_days': stream_declines.decline_window_days
        }) filter (where stream_declines.stream = 'orders') as order_declines
    from stream_windows
    left join stream_declines using (customer_id, snapshot_role, stream)
    group by all
),

evidence as (
    select
        -- ids
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_role,
        customer_snapshots.snapshot_date,
        customer_snapshots.outcome_date,

        -- activity
        customer_snapshots.first_active_date,
        customer_snapshots.last_active_date,
        customer_snapshots.last_event_date,
        customer_snapshots.last_subscription_date,
        date_diff('day', customer_snapshots.last_active_date, customer_snapshots.snapshot_date) as days_since_last_activity,
        date_diff('day', customer_snapshots.first_active_date, customer_snapshots.snapshot_date) + 1 as tenure_days,
        coalesce(activity.days_total, 0) as active_days_total,
        typical_gaps.typical_gap_days,

        -- windows (days, cut to tenure)
        date_diff('day', greatest(customer_snapshots.recent_start, customer_snapshots.first_active_date),
            customer_snapshots.snapshot_date) + 1 as recent_window_days,
        greatest(date_diff('day', greatest(customer_snapshots.baseline_start, customer_snapshots.first_active_date),
            customer_snapshots.baseline_end) + 1, 0) as baseline_window_days,

        -- streams
        coalesce(activity.n_recent, 0) as active_days_recent,
        coalesce(activity.n_baseline, 0) as active_days_baseline,
        coalesce(activity.n_w30, 0) as active_days_w30,
        coalesce(activity.n_year, 0) as active_days_year,
        coalesce(active_days_next.active_days_next, 0) as active_days_next,
        coalesce(order_stream.n_recent, 0) as orders_recent,
        coalesce(order_stream.n_baseline, 0) as orders_baseline,
        coalesce(order_stream.n_w30, 0) as orders_w30,
        coalesce(order_stream.amount_recent, 0) as revenue_recent,
        coalesce(order_stream.amount_baseline, 0) as revenue_baseline,
        coalesce(len(list_filter(
            order_values.recent_order_amounts, a -> a >= order_values.baseline_median_order
        )), 0) as orders_recent_at_baseline_median,
        coalesce(order_stream.amount_total, 0) as lifetime_revenue,
        coalesce(order_stream.days_total, 0) as order_days_total,
        coalesce(complaint_stream.n_recent, 0) as complaints_recent,
        coalesce(complaint_stream.n_baseline, 0) as complaints_baseline,

        -- e-mail
        coalesce(email_windows.emails_sent_recent, 0) as emails_sent_recent,
        coalesce(email_windows.emails_opened_recent, 0) as emails_opened_recent,
        coalesce(email_windows.emails_sent_baseline, 0) as emails_sent_baseline,
        coalesce(email_windows.emails_opened_baseline, 0) as emails_opened_baseline,
        coalesce(emails_after_last_open.emails_since_last_open, 0) as emails_since_last_open,

        -- billing and subscriptions
        coalesce(late_payments.late_payments_recent, 0) as late_payments_recent,
        case when late_payments.max_days_late_recent > 0 then late_payments.max_days_late_recent end
            as max_days_late_recent,
        coalesce(subscription_states.mrr, 0) as mrr,
        coalesce(
            subscription_states.all_subscriptions_ended
                and coalesce(customer_snapshots.last_event_date, date '0001-01-01')
                    <= subscription_states.last_subscription_end,
            false
        ) as subscriptions_ended,

        -- surveys (a survey older than the baseline is stale: it raises no flag)
        nps_latest.last_nps,
        nps_latest.nps_change,
        nps_latest.last_nps_date,
        coalesce(nps_latest.last_nps_date >= customer_snapshots.baseline_start, false) as is_nps_current,
        csat_recent.min_csat_recent,

        -- cancellation
        customers.cancelled_at,
        coalesce(
            customers.cancelled_at < customer_snapshots.snapshot_end
                and customer_snapshots.last_active_date
                    <= business_date(customers.cancelled_at, (select time_zone from params)),
            false
        ) as is_cancelled,

        -- decline tests (stream_declines)
        activity_declines.decline_p as activity_window_decline_p,
        activity_declines.decline_window_days as activity_decline_window_days,
        order_declines.decline_p as orders_window_decline_p,
        order_declines.decline_window_days as orders_decline_window_days,
        activity_declines.dispersion as activity_dispersion,
        nearest_window_season(
            date_diff('day', customer_snapshots.last_active_date, customer_snapshots.snapshot_date),
            customer_snapshots.recent_days, active_seasons.season_14, active_seasons.season_30,
            active_seasons.season_60, active_seasons.season_recent, active_seasons.season_120
        ) as silence_season,
        active_seasons.dispersion as silence_dispersion,

        -- purchase-model inputs
        purchase_model_inputs.purchase_frequency,
        purchase_model_inputs.purchase_recency,
        purchase_model_inputs.purchase_t

    from customer_snapshots
    left join typical_gaps using (customer_id, snapshot_role)
    left join subscription_states using (customer_id, snapshot_role)
    left join email_windows using (customer_id, snapshot_role)
    left join emails_after_last_open using (customer_id, snapshot_role)
    left join late_payments using (customer_id, snapshot_role)
    left join order_values using (customer_id, snapshot_role)
    left join nps_latest using (customer_id, snapshot_role)
    left join csat_recent using (customer_id, snapshot_role)
    left join purchase_model_inputs using (customer_id, snapshot_role)
    left join active_days_next using (customer_id, snapshot_role)
    left join streams using (customer_id, snapshot_role)
    left join customers on customers.customer_id = customer_snapshots.customer_id
    left join dispersions as active_seasons
        on active_seasons.snapshot_role = customer_snapshots.snapshot_role
        and active_seasons.stream = 'active'
),

-- The decline tests (stats.sql), judged only where the own history can say something.
decline_tests as (
    select
        evidence.*,
        evidence.active_days_total >= 2 and evidence.typical_gap_days is not null as has_rate,
        active_days_baseline::double / nullif(baseline_window_days, 0) * recent_window_days as active_days_expected_recent,
        orders_baseline::double / nullif(baseline_window_days, 0) * recent_window_days as orders_expected_recent,
        revenue_baseline / nullif(baseline_window_days, 0) * recent_window_days as revenue_expected_recent,
        case when emails_sent_recent > 0 and emails_sent_baseline > 0 then binomial_lower_tail(
            least(emails_opened_recent, emails_sent_recent), emails_sent_recent,
            (least(emails_opened_baseline, emails_sent_baseline) + 0.5) / (emails_sent_baseline + 1.0)
        ) end as email_open_p,
        case when baseline_window_days > 0 then nb_upper_tail(
            complaints_recent, complaints_baseline + 0.5, baseline_window_days::double / (baseline_window_days + recent_window_days)
        ) end as complaints_up_p,
        -- the sign test of the recent orders' values against the baseline's median: so few reach it by chance
        case when orders_recent > 0 and orders_baseline > 0 then binomial_lower_tail(
            orders_recent_at_baseline_median, orders_recent, 0.5
        ) end as order_value_drop_p
    from evidence
),

judged as (
    select
        decline_tests.*,
        case when has_rate then activity_window_decline_p end as activity_decline_p,
        case when has_rate and order_days_total >= 2 then orders_window_decline_p end as orders_decline_p
    from decline_tests
),

-- The outcome of a training or backtest snapshot: was there qualifying activity in (s, outcome_date]?
outcomes as (
    select
        judged.*,
        case
            when judged.outcome_date is not null
                then coalesce(later.last_active_date <= judged.snapshot_date, true)
        end as churned_in_horizon,
        -- the own rate over the last year (cut to tenure), and the decline outcome of a customer with a rate:
        -- fewer than health_drop_ratio x the active days that rate predicts for the horizon
        judged.active_days_year::double / least(365, judged.tenure_days) as own_daily_rate,
        -- the chance of a silence this long at the own rate of the year before it, moved by the season, with the
        -- population's noisy months (the decline tests' negative binomial): small when a customer with a rhythm has
        -- been quiet far longer than it explains
        case
            when judged.has_rate and least(365, judged.tenure_days) - judged.days_since_last_activity > 0
                then rate_decline_p(
                    0, judged.active_days_year,
                    (least(365, judged.tenure_days) - judged.days_since_last_activity)
                        / coalesce(judged.silence_season, 1.0),
                    judged.days_since_last_activity, coalesce(judged.silence_dispersion, 0.1)
                )
        end as silence_p,
        case
            when judged.outcome_date is not null and judged.has_rate
                and judged.active_days_year::double / least(365, judged.tenure_days) * params.health_horizon_days
                    >= params.health_drop_min_expected
                then judged.active_days_next < params.health_drop_ratio
                    * judged.active_days_year::double / least(365, judged.tenure_days) * params.health_horizon_days
        end as declined_in_horizon
    from judged
    left join judged as later
        on later.customer_id = judged.customer_id
        and later.snapshot_date = judged.outcome_date
    cross join params
),

-- Features of the risk model: f_* columns, finite numbers (transforms/models/health_scores.ts lists them).
features as (
    select
        outcomes.*,
        ln(1 + days_since_last_activity) as f_log_recency,
        days_since_last_activity / 100.0 as f_recency,
        ln(1 + days_since_last_activity) ^ 2 as f_log_recency_sq,
        ln(greatest(tenure_days, 1)) as f_log_tenure,
        ln(greatest(active_days_total, 1)) as f_log_active_days,
        (active_days_total <= 1)::integer as f_one_time,
        ln(1 + days_since_last_activity) * ln(greatest(active_days_total, 1)) as f_recency_x_history,
        days_since_last_activity::double / greatest(tenure_days, 1) as f_recency_share_of_tenure,
        case when has_rate then ln(1 + days_since_last_activity / greatest(typical_gap_days, 1)) else 0 end
            as f_log_recency_per_gap,
        case when has_rate then -(active_days_total - 1.0) / tenure_days * days_since_last_activity else 0 end
            as f_silence_log_p,
        ln(1 + greatest(active_days_total - 1.0, 0) / tenure_days * 90) as f_log_rate_90,
        ln(1 + active_days_recent) as f_log_active_recent,
        ln(1 + active_days_w30) as f_log_active_w30,
        ln((active_days_w30 + 0.5) / (own_daily_rate * least(30, tenure_days) + 0.5)) as f_log_ratio_w30,
        ln((active_days_recent + 0.5) / (own_daily_rate * recent_window_days + 0.5)) as f_log_ratio_recent,
        -ln(greatest(coalesce(activity_decline_p, 1), 1e-12)) as f_activity_decline,
        -ln(greatest(coalesce(orders_decline_p, 1), 1e-12)) as f_orders_decline,
        ln(1 + greatest(lifetime_revenue, 0)) as f_log_revenue,
        ln(1 + greatest(lifetime_revenue, 0) / greatest(order_days_total, 1)) as f_log_order_value,
        (emails_sent_recent + emails_sent_baseline > 0)::integer as f_has_email,
        ln(1 + emails_since_last_open) as f_log_emails_since_open,
        -ln(greatest(coalesce(email_open_p, 1), 1e-12)) as f_email_decline,
        ln(1 + complaints_recent) as f_log_complaints_recent,
        -ln(greatest(coalesce(complaints_up_p, 1), 1e-12)) as f_complaints_up,
        ln(1 + late_payments_recent) as f_log_late_payments,
        (is_nps_current and last_nps <= 6)::integer as f_nps_detractor,
        case when is_nps_current then greatest(-coalesce(nps_change, 0), 0) else 0 end as f_nps_fall,
        coalesce((min_csat_recent::double) <= (select health_low_csat_max * csat_scale / 5 from params), false)::integer
            as f_low_csat,
        (mrr > 0)::integer as f_has_subscription,
        ln(1 + greatest(mrr, 0)) as f_log_mrr
    from outcomes
)

select * from features
