-- E-mail events up to the end of the as-of date, each with its customer.

with

checked as (
    select * from chk_email_events where rejection is null
),

params as (
    select * from run_params
),

email_events as (
    select
        -- ids
        checked.customer_id,
        checked.campaign_id,

        -- attributes
        checked.email,
        checked.event_type,

        -- timestamps
        checked.occurred_at,
        business_date(checked.occurred_at, params.time_zone) as occurred_date

    from checked
    cross join params
    where checked.occurred_at < params.as_of_end
)

select * from email_events
