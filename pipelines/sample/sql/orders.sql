-- orders.csv.gz: the first order on the sign-up day (and one on a resurrected customer's return), then a
-- Poisson number of orders in every month at the customer's own (noisy, seasonal, shaped) rate
-- (sample_segments), placed uniformly in it; slow_regular customers order on their own clock instead
-- (every 45-120 days, +-15%) and one_time customers never again. Amounts vary around the customer's basket
-- size (lognormal, CV ~0.3, +8% in December); half of the silent churners also buy smaller baskets as they
-- decline. About 6% of the orders after the first also carry a cancelled or refunded one. Planted bad rows
-- are appended: a duplicate order_id, an unknown customer_id, an unparseable ordered_at. The follow-up after the
-- as-of date goes on the same way (sample_segments), plus the planted effect of the win-back e-mail: a persuadable
-- customer it reaches orders within two weeks; one it does not reach orders nothing in the follow-up.

with

profiles as (
    select
        *,
        sample_signup_seconds(customer_no) as signup_seconds
    from sample_profiles
),

first_orders as (
    -- the first order on the sign-up day; a resurrected customer's return starts with an order too
    select customer_no, 0::bigint as slot, signup_day as day, 1.0 as shape
    from profiles
    union all
    select customer_no, 99000000::bigint as slot, gap_end_day as day, 1.0 as shape
    from profiles
    where archetype = 'resurrected'
    union all
    -- the planted effect: a persuadable customer the win-back e-mail reaches orders within two weeks of it
    select customer_no, 98000000::bigint as slot, winback_return_day as day, 1.0 as shape
    from profiles
    where is_persuadable and winback_sent
),

poisson_orders as (
    select * from sample_poisson_events('sample_segments', 'sample_poisson', 'order')
),

regular_orders as (
    -- slow_regular: one order per gap, jittered (into the follow-up, unless persuadable and never e-mailed)
    select *, 1.0 as shape
    from sample_regular_order_days('profiles')
),

kept_orders as (
    select
        orders.customer_no,
        profiles.customer_id,
        orders.slot,
        orders.day,
        case
            when orders.slot = 0
                then profiles.signup_seconds + 300 + floor(7200 * sample_u(orders.customer_no, 'order_time', 0))
            when orders.day = profiles.signup_day
                then profiles.signup_seconds + 600
                    + floor((85799 - profiles.signup_seconds) * sample_u(orders.customer_no, 'order_time', orders.slot))
            else 25200 + floor(57600 * sample_u(orders.customer_no, 'order_time', orders.slot))
        end as seconds,
        profiles.base_order_amount
            * exp(0.3 * sample_normal(orders.customer_no, 'order_amount', orders.slot) - 0.045)
            * case when month(sample_history_start() + orders.day) = 12 then 1.08 else 1 end
            * case when profiles.basket_shrinks then 0.55 + 0.45 * orders.shape else 1 end as amount,
        sample_u(orders.customer_no, 'order_extra', orders.slot) as u_extra
    from (
        select * from first_orders
        union all
        select * from poisson_orders
        union all
        select * from regular_orders
    ) as orders
    join profiles using (customer_no)
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
