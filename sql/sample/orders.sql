-- orders.csv.gz: every customer orders regularly, one order in each slot of 2-6 weeks (its own cadence),
-- the first right after sign-up, with stable amounts around its own basket size. About 6% of the slots
-- also carry a cancelled or refunded order. Silent churners order less often and spend less after their
-- decay start. Planted bad rows are appended: a duplicate order_id, an unknown customer_id, an
-- unparseable ordered_at.

with

profiles as (
    select * from sample_profiles
),

order_slots as (
    -- one candidate order per slot; the per-slot values are drawn once, inside the list
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
        base_order_amount,
        unnest(list_transform(
            range(ceil((end_day - signup_day + 1) / order_gap_days)::bigint),
            lambda k: {
                'slot': k,
                'day': case when k = 0 then signup_day
                    else signup_day + floor((k + 0.25 + 0.5 * sample_u(customer_no, 'order_day', k)) * order_gap_days)::integer
                end,
                'u_alive': sample_u(customer_no, 'order_alive', k)
            }
        )) as s
    from profiles
),

kept_orders as (
    select
        customer_no,
        customer_id,
        s.slot as slot,
        s.day as day,
        case when s.slot = 0
            then 28800 + floor(46800 * sample_u(customer_no, 'signup_time', 0)) + 300
                + floor(7200 * sample_u(customer_no, 'order_time', s.slot))
            else 25200 + floor(57600 * sample_u(customer_no, 'order_time', s.slot))
        end as seconds,
        base_order_amount * (0.85 + 0.30 * sample_u(customer_no, 'order_amount', s.slot))
            * case when decay_day is not null and s.day >= decay_day
                then 0.35 + 0.65 * exp(-(s.day - decay_day) / decay_tau_days)
                else 1
            end as amount,
        sample_u(customer_no, 'order_extra', s.slot) as u_extra
    from order_slots
    where s.day <= sample_span_days()
        and sample_alive(s.day, s.u_alive, archetype, signup_day, end_day,
            gap_start_day, gap_end_day, decay_day, decay_stop_day, decay_tau_days)
),

completed_orders as (
    select customer_no, customer_id, slot * 2 as seq, day, seconds, amount, 'completed' as status
    from kept_orders
),

other_orders as (
    -- a cancelled or refunded order a little before the completed one of the same slot
    select
        customer_no,
        customer_id,
        slot * 2 + 1 as seq,
        day,
        greatest(21600, seconds - 600 - floor(3600 * u_extra * 16)) as seconds,
        amount * (0.5 + u_extra * 8) as amount,
        case when u_extra < 0.036 then 'cancelled' else 'refunded' end as status
    from kept_orders
    where u_extra < 0.06 and slot > 0
),

all_orders as (
    select * from completed_orders
    union all
    select * from other_orders
),

numbered as (
    -- order numbers run in time order
    select *, row_number() over (order by day, seconds, customer_no, seq) as order_no
    from all_orders
),

copies as (
    -- the planted duplicate key: one order appears twice, the copy 3 days later with another amount
    select
        *,
        unnest(case when order_no = sample_duplicate_order_no() then [0, 1] else [0] end) as copy_no
    from numbered
),

orders_out as (
    select
        'O' || lpad(order_no::varchar, 8, '0') as order_id,
        customer_id,
        sample_ts_text(sample_ts(day + 3 * copy_no, seconds)) as ordered_at,
        (round(amount, 2) + 10 * copy_no)::decimal(12, 2) as amount,
        case when copy_no = 0 then status else 'completed' end as status,
        'EUR' as currency,
        order_no as sort_no
    from copies
),

planted_bad_rows as (
    select
        key as order_id,
        customer_id,
        at_text as ordered_at,
        amount::decimal(12, 2) as amount,
        'completed' as status,
        'EUR' as currency,
        1000000000 + row_number() over (order by key) as sort_no
    from sample_planted
    where entity = 'orders' and reason <> 'duplicate order_id'
),

orders as (
    select * from orders_out
    union all
    select * from planted_bad_rows
)

select * from orders
