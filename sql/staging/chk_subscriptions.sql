-- Subscriptions as exported, typed and checked; one row per raw row, with its rejection (null when good).

with

source as (
    select * from raw_subscriptions
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
        clean_text(source.subscription_id) as subscription_id,
        clean_text(source.customer_id) as customer_id,

        -- numbers
        parse_decimal(source.mrr) as mrr,

        -- attributes
        clean_text(source.plan) as plan,

        -- timestamps
        parse_business_ts(source.started_at, params.time_zone) as started_at,
        parse_business_ts(source.ended_at, params.time_zone) as ended_at,

        -- for the checks
        source.mrr as mrr_raw,
        source.started_at as started_at_raw,
        source.ended_at as ended_at_raw,
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
            rejection('subscription_id', missing_problem(subscription_id), null),
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('mrr', coalesce(number_problem(mrr, mrr_raw), case when mrr < 0 then 'negative mrr' end), mrr_raw),
            rejection('started_at', required_timestamp_problem(started_at, started_at_raw, run_started_at), started_at_raw::varchar),
            rejection('ended_at', timestamp_problem(ended_at, ended_at_raw, run_started_at), ended_at_raw::varchar),
            rejection('ended_at', case when ended_at < started_at then 'ended before it started' end, ended_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as row_rejection
    from typed
),

-- A good row whose subscription_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        subscription_id,
        customer_id,
        mrr,
        plan,
        started_at,
        ended_at,
        rejection
    from duplicate_key_checked(row_checked, 'subscription_id')
)

select * from checked
