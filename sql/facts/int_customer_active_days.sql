-- The days on which a customer was active by an event: a completed order with a positive amount,
-- or an activity event (each only when it qualifies under active_when). Subscriptions make a customer
-- active per period in fct_customer_period, not per day. Grain: customer_id x active_date.

with

params as (
    select * from run_params
),

orders as (
    select * from stg_orders
    where in_customer_batch(customer_id)
),

activity as (
    select * from stg_activity
    where in_customer_batch(customer_id)
),

order_days as (
    select distinct customer_id, ordered_date as active_date
    from orders
    where status = 'completed' and amount > 0
      and (select list_contains(active_when, 'orders') from params)
),

activity_days as (
    select distinct customer_id, occurred_date as active_date
    from activity
    where (select list_contains(active_when, 'activity') from params)
),

active_days as (
    select customer_id, active_date from order_days
    union
    select customer_id, active_date from activity_days
)

select * from active_days
