-- Activity events as exported, typed and checked; one row per raw row, with its rejection (null when good).
-- Events have no key: repeated identical events are kept.

with

source as (
    select * from raw_activity
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
        clean_text(source.customer_id) as customer_id,

        -- numbers
        try_cast(trim(source.quantity) as double) as quantity,

        -- attributes
        lower(clean_text(source.event_type)) as event_type,

        -- timestamps
        parse_business_ts(source.occurred_at, params.time_zone) as occurred_at,

        -- for the checks
        source.quantity as quantity_raw,
        source.occurred_at as occurred_at_raw,
        params.run_started_at,
        params.customers_exported and known_customers.customer_id is null as is_orphan

    from source
    cross join params
    left join known_customers on known_customers.customer_id = clean_text(source.customer_id)
),

checked as (
    select
        _source_file,
        _source_row,
        customer_id,
        quantity,
        event_type,
        occurred_at,
        coalesce(
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('quantity', number_problem(quantity, quantity_raw), quantity_raw),
            rejection('occurred_at', required_timestamp_problem(occurred_at, occurred_at_raw, run_started_at), occurred_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as rejection
    from typed
)

select * from checked
