-- Support tickets as exported, typed and checked; one row per raw row, with its rejection (null when good).

with

source as (
    select * from raw_tickets
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
        clean_text(source.ticket_id) as ticket_id,
        clean_text(source.customer_id) as customer_id,

        -- attributes
        lower(clean_text(source.category)) as category,
        parse_bool(source.is_complaint) as is_complaint,

        -- timestamps
        parse_business_ts(source.opened_at, params.time_zone) as opened_at,
        parse_business_ts(source.resolved_at, params.time_zone) as resolved_at,

        -- for the checks
        source.is_complaint as is_complaint_raw,
        source.opened_at as opened_at_raw,
        source.resolved_at as resolved_at_raw,
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
            rejection('ticket_id', missing_problem(ticket_id), null),
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('is_complaint', bool_problem(is_complaint, is_complaint_raw), is_complaint_raw),
            rejection('opened_at', required_timestamp_problem(opened_at, opened_at_raw, run_started_at), opened_at_raw::varchar),
            rejection('resolved_at', timestamp_problem(resolved_at, resolved_at_raw, run_started_at), resolved_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as row_rejection
    from typed
),

-- A good row whose ticket_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        ticket_id,
        customer_id,
        category,
        is_complaint,
        opened_at,
        resolved_at,
        rejection
    from duplicate_key_checked(row_checked, 'ticket_id')
)

select * from checked
