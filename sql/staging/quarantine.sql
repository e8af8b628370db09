-- Every raw row a staging model rejected: where it came from, which column, and why.
-- Grain: one row per rejected raw row (its first problem).

with

customers as (select 'customers' as entity, _source_file, _source_row, rejection from chk_customers),
orders as (select 'orders' as entity, _source_file, _source_row, rejection from chk_orders),
subscriptions as (select 'subscriptions' as entity, _source_file, _source_row, rejection from chk_subscriptions),
activity as (select 'activity' as entity, _source_file, _source_row, rejection from chk_activity),
email_events as (select 'email_events' as entity, _source_file, _source_row, rejection from chk_email_events),
surveys as (select 'surveys' as entity, _source_file, _source_row, rejection from chk_surveys),
tickets as (select 'tickets' as entity, _source_file, _source_row, rejection from chk_tickets),
invoices as (select 'invoices' as entity, _source_file, _source_row, rejection from chk_invoices),

all_rows as (
    select * from customers
    union all select * from orders
    union all select * from subscriptions
    union all select * from activity
    union all select * from email_events
    union all select * from surveys
    union all select * from tickets
    union all select * from invoices
),

rejected as (
    select
        -- provenance
        entity,
        _source_file as source_file,
        _source_row as source_row,

        -- the problem
        rejection.column as column_name,
        rejection.reason as reason,
        rejection.value as value

    from all_rows
    where rejection is not null
),

final as (
    select * from rejected order by entity, source_file, source_row
)

select * from final
