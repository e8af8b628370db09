-- Invoices issued by the end of the as-of date. A payment after the as-of date is not yet known to the run.

with

checked as (
    select * from chk_invoices where rejection is null
),

params as (
    select * from run_params
),

invoices as (
    select
        -- ids
        checked.invoice_id,
        checked.customer_id,

        -- numbers
        checked.amount,

        -- timestamps
        checked.issued_at,
        checked.due_at,
        case when checked.paid_at < params.as_of_end then checked.paid_at end as paid_at,
        business_date(checked.issued_at, params.time_zone) as issued_date,
        business_date(checked.due_at, params.time_zone) as due_date,
        case when checked.paid_at < params.as_of_end then business_date(checked.paid_at, params.time_zone) end as paid_date

    from checked
    cross join params
    where checked.issued_at < params.as_of_end
)

select * from invoices
