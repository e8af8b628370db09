-- Subscriptions started by the end of the as-of date. An end after the as-of date is not yet known
-- to the run: such subscriptions are still running as of D.

with

checked as (
    select * from chk_subscriptions where rejection is null
),

params as (
    select * from run_params
),

subscriptions as (
    select
        -- ids
        checked.subscription_id,
        checked.customer_id,

        -- numbers
        coalesce(checked.mrr, 0) as mrr,

        -- attributes
        checked.plan,

        -- timestamps
        checked.started_at,
        case when checked.ended_at < params.as_of_end then checked.ended_at end as ended_at,
        business_date(checked.started_at, params.time_zone) as started_date,
        case
            when checked.ended_at < params.as_of_end then business_date(checked.ended_at, params.time_zone)
        end as ended_date

    from checked
    cross join params
    where checked.started_at < params.as_of_end
)

select * from subscriptions
