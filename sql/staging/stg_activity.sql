-- Activity events up to the end of the as-of date, with their business-local date.

with

checked as (
    select * from chk_activity where rejection is null
),

params as (
    select * from run_params
),

activity as (
    select
        -- ids
        checked.customer_id,

        -- numbers
        coalesce(checked.quantity, 1) as quantity,

        -- attributes
        checked.event_type,

        -- timestamps
        checked.occurred_at,
        business_date(checked.occurred_at, params.time_zone) as occurred_date

    from checked
    cross join params
    where checked.occurred_at < params.as_of_end
)

select * from activity
