-- activity.parquet: product usage, one event in each slot of 4-12 days (the customer's own cadence),
-- the first on the sign-up day. Regular by construction, so steady customers never show a random drop.
-- Silent churners thin out exponentially after their decay start; resurrected customers pause in their
-- gap; cancelled and lost customers stop. A planted bad row carries a timestamp in 1969.

with

profiles as (
    select * from sample_profiles
),

activity_slots as (
    -- one candidate event per slot; the per-slot values are drawn once, inside the list
    select
        customer_no,
        customer_id,
        archetype,
        signup_day,
        end_day,
        gap_start_day,
        gap_end_day,
        decay_day,
        decay_stop_day,
        decay_tau_days,
        unnest(list_transform(
            range(ceil((end_day - signup_day + 1) / activity_gap_days)::bigint),
            lambda k: {
                'slot': k,
                'day': case when k = 0 then signup_day
                    else signup_day + floor((k + 0.25 + 0.5 * sample_u(customer_no, 'activity_day', k)) * activity_gap_days)::integer
                end,
                'seconds': case when k = 0
                    then 28800 + floor(46800 * sample_u(customer_no, 'signup_time', 0)) + 60
                    else 25200 + floor(57600 * sample_u(customer_no, 'activity_time', k))
                end,
                'u_kind': sample_u(customer_no, 'activity_kind', k),
                'u_alive': sample_u(customer_no, 'activity_alive', k)
            }
        )) as s
    from profiles
),

events as (
    select
        customer_no,
        customer_id,
        s.slot as slot,
        sample_ts(s.day, s.seconds) as occurred_at,
        case when s.u_kind < 0.45 then 'login' when s.u_kind < 0.80 then 'page_view' else 'feature_use' end as event_type,
        case
            when s.u_kind < 0.45 then 1
            when s.u_kind < 0.80 then 1 + floor((s.u_kind - 0.45) / 0.35 * 20)
            else 1 + floor((s.u_kind - 0.80) / 0.20 * 5)
        end::integer as quantity
    from activity_slots
    where s.day <= sample_span_days()
        and sample_alive(s.day, s.u_alive, archetype, signup_day, end_day,
            gap_start_day, gap_end_day, decay_day, decay_stop_day, decay_tau_days)
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
    select * from events
    union all by name
    select * from planted_bad_rows
)

select * from activity
