-- Survey responses up to the end of the as-of date, with their business-local date.

with

checked as (
    select * from chk_surveys where rejection is null
),

params as (
    select * from run_params
),

surveys as (
    select
        -- ids
        checked.response_id,
        checked.customer_id,

        -- numbers
        checked.score,

        -- attributes
        checked.survey_type,
        checked.comment,

        -- timestamps
        checked.responded_at,
        business_date(checked.responded_at, params.time_zone) as responded_date

    from checked
    cross join params
    where checked.responded_at < params.as_of_end
)

select * from surveys
