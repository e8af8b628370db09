-- Support tickets opened by the end of the as-of date. A ticket counts as a complaint when flagged,
-- or when its category says so and no flag was exported.

with

checked as (
    select * from chk_tickets where rejection is null
),

params as (
    select * from run_params
),

tickets as (
    select
        -- ids
        checked.ticket_id,
        checked.customer_id,

        -- attributes
        checked.category,
        coalesce(checked.is_complaint, coalesce(checked.category like '%complaint%', false)) as is_complaint,

        -- timestamps
        checked.opened_at,
        case when checked.resolved_at < params.as_of_end then checked.resolved_at end as resolved_at,
        business_date(checked.opened_at, params.time_zone) as opened_date

    from checked
    cross join params
    where checked.opened_at < params.as_of_end
)

select * from tickets
