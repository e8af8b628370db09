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

orders_out as (
    -- order numbers run in time order
    select
        'O' || lpad(row_number() over (order by day, seconds, customer_no, seq)::varchar, 8, '0') as order_id,
        customer_id,
        sample_ts_text(sample_ts(day, seconds)) as ordered_at,
        round(amount, 2)::decimal(12, 2) as amount,
        status,
        'EUR' as currency,
        row_number() over (order by day, seconds, customer_no, seq) as sort_no
    from all_orders
),

duplicated_orders as (
    -- the same order_id again, with a later timestamp and another amount
    select
        orders_out.order_id,
        orders_out.customer_id,
        sample_ts_text(orders_out.ordered_at::timestamp + interval 3 day) as ordered_at,
        orders_out.amount + 10 as amount,
        'completed' as status,
        'EUR' as currency,
        orders_out.sort_no
    from orders_out
    join sample_planted on sample_planted.entity = 'orders' and sample_planted.key = orders_out.order_id
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
    select * from duplicated_orders
    union all
    select * from planted_bad_rows
)

select * from orders
