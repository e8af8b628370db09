-- Orders up to the end of the as-of date, typed, with their business-local date.

with

checked as (
    select * from chk_orders where rejection is null
),

params as (
    select * from run_params
),

orders as (
    select
        -- ids
        checked.order_id,
        checked.customer_id,

        -- numbers
        checked.amount,

        -- attributes
        checked.status,
        checked.currency,

        -- timestamps
        checked.ordered_at,
        business_date(checked.ordered_at, params.time_zone) as ordered_date

    from checked
    cross join params
    where checked.ordered_at < params.as_of_end
)

select * from orders
