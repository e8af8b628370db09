-- Orders as exported, typed and checked; one row per raw row, with its rejection (null when good).

with

source as (
    select * from raw_orders
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
        clean_text(source.order_id) as order_id,
        clean_text(source.customer_id) as customer_id,

        -- numbers
        parse_decimal(source.amount) as amount,

        -- attributes
        case lower(coalesce(clean_text(source.status), 'completed'))
            when 'canceled' then 'cancelled'
            when 'complete' then 'completed'
            when 'refund' then 'refunded'
            else lower(coalesce(clean_text(source.status), 'completed'))
        end as status,
        upper(clean_text(source.currency)) as currency,

        -- timestamps
        parse_business_ts(source.ordered_at, params.time_zone) as ordered_at,

        -- for the checks
        source.amount as amount_raw,
        source.ordered_at as ordered_at_raw,
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
            rejection('order_id', missing_problem(order_id), null),
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('amount', coalesce(number_problem(amount, amount_raw), missing_problem(amount)), amount_raw),
            rejection('status', accepted_problem(status, ['completed', 'cancelled', 'refunded']), status),
            rejection('ordered_at', required_timestamp_problem(ordered_at, ordered_at_raw, run_started_at), ordered_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as row_rejection
    from typed
),

-- A good row whose order_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        order_id,
        customer_id,
        amount,
        status,
        currency,
        ordered_at,
        rejection
    from duplicate_key_checked(row_checked, 'order_id')
)

select * from checked
