-- activity.parquet: product usage. The first event on the sign-up day (and one on a resurrected
-- customer's return), then a Poisson number of events in every month at the customer's own (noisy,
-- seasonal, shaped) rate (sample_segments), placed uniformly in it; slow_regular customers also visit on
-- 70% of their order days. Silent churners decline with their decay, resurrected customers pause in their
-- gap, cancelled and lost customers stop, one_time customers stop two weeks after sign-up; 8% of the
-- customers have no activity events at all. A planted bad row carries a timestamp in 1969. The follow-up after the
-- as-of date goes on the same way, with the planted effect of the win-back e-mail (see orders.sql).

with

profiles as (
    select
        *,
        sample_signup_seconds(customer_no) as signup_seconds
    from sample_profiles
),

active_profiles as (
    select * from profiles
    where has_activity
),

signup_events as (
    -- the first event on the sign-up day, and one on a resurrected customer's return
    select customer_no, 0::bigint as slot, signup_day as day
    from profiles
    where has_activity
    union all
    select customer_no, 99000000::bigint as slot, gap_end_day as day
    from profiles
    where has_activity and archetype = 'resurrected'
    union all
    -- the planted effect: a persuadable customer the win-back e-mail reaches comes back (the day of the order)
    select customer_no, 98000000::bigint as slot, winback_return_day as day
    from profiles
    where has_activity and is_persuadable and winback_sent
),

poisson_events as (
    select customer_no, slot, day
    from sample_poisson_events('sample_segments', 'sample_poisson', 'activity')
),

order_day_events as (
    -- slow_regular customers look around on the day they order (the same clock as orders.sql)
    select *
    from sample_regular_order_days('active_profiles')
    where sample_u(customer_no, 'order_day_visit', slot) < 0.70
),

all_events as (
    select * from signup_events
    union all
    select * from poisson_events
    union all
    select * from order_day_events
),

events as (
    select
        all_events.customer_no,
        profiles.customer_id,
        all_events.slot,
        sample_ts(
            all_events.day,
            case
                when all_events.slot = 0 then profiles.signup_seconds + 60
                when all_events.day = profiles.signup_day
                    then profiles.signup_seconds + 120
                        + floor((86279 - profiles.signup_seconds) * sample_u(all_events.customer_no, 'activity_time', all_events.slot))
                else 25200 + floor(57600 * sample_u(all_events.customer_no, 'activity_time', all_events.slot))
            end
        ) as occurred_at,
        sample_u(all_events.customer_no, 'activity_kind', all_events.slot) as u_kind
    from all_events
    join profiles using (customer_no)
),

typed as (
    select
        customer_no,
        customer_id,
        slot,
        occurred_at,
        case when u_kind < 0.45 then 'login' when u_kind < 0.80 then 'page_view' else 'feature_use' end as event_type,
        case
            when u_kind < 0.45 then 1
            when u_kind < 0.80 then 1 + floor((u_kind - 0.45) / 0.35 * 20)
            else 1 + floor((u_kind - 0.80) / 0.20 * 5)
        end::integer as quantity
    from events
),

planted_bad_rows as (
    select
        0 as customer_no,
        0 as slot,
        strptime(at_text, '%Y-%m-%d %H:%M:%S') as occurred_at,
        'login' as event_type,
        1 as quantity,
        customer_id
    from sample_planted
    where entity = 'activity'
),

activity as (
    select * from typed
    union all by name
    select * from planted_bad_rows
)

select * from activity
