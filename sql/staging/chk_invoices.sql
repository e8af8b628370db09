-- Invoices as exported, typed and checked; one row per raw row, with its rejection (null when good).

with

source as (
    select * from raw_invoices
),

params as (
    select * from run_params
),

known_customers as (
    select customer_id from chk_customers where rejection is null
),

typed as (
    select
        -- provenance
        source._source_file,
        source._source_row,

        -- ids
        clean_text(source.invoice_id) as invoice_id,
        clean_text(source.customer_id) as customer_id,

        -- numbers
        parse_decimal(source.amount) as amount,

        -- timestamps
        parse_business_ts(source.issued_at, params.time_zone) as issued_at,
        parse_business_ts(source.due_at, params.time_zone) as due_at,
        parse_business_ts(source.paid_at, params.time_zone) as paid_at,

        -- for the checks
        source.amount as amount_raw,
        source.issued_at as issued_at_raw,
        source.due_at as due_at_raw,
        source.paid_at as paid_at_raw,
        params.run_started_at,
        params.customers_exported and known_customers.customer_id is null as is_orphan

    from source
    cross join params
    left join known_customers on known_customers.customer_id = clean_text(source.customer_id)
),

row_checked as materialized (
    select
        *,
        coalesce(
            rejection('invoice_id', missing_problem(invoice_id), null),
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('amount', number_problem(amount, amount_raw), amount_raw),
            rejection('issued_at', required_timestamp_problem(issued_at, issued_at_raw, run_started_at), issued_at_raw::varchar),
            rejection('due_at', coalesce(missing_problem(due_at_raw), case when due_at is null then 'unparseable timestamp' end), due_at_raw::varchar),
            rejection('paid_at', timestamp_problem(paid_at, paid_at_raw, run_started_at), paid_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as row_rejection
    from typed
),

-- A good row whose invoice_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        invoice_id,
        customer_id,
        amount,
        issued_at,
        due_at,
        paid_at,
        rejection
    from duplicate_key_checked(row_checked, 'invoice_id')
)

select * from checked
