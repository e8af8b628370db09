-- Customers as exported, typed and checked; one row per raw row, with its rejection (null when good).

with

source as (
    select * from raw_customers
),

params as (
    select * from run_params
),

typed as (
    select
        -- provenance
        source._source_file,
        source._source_row,

        -- ids
        clean_text(source.customer_id) as customer_id,

        -- attributes
        normalise_email(source.email) as email,
        clean_text(source.first_name) as first_name,
        clean_text(source.last_name) as last_name,
        upper(clean_text(source.country)) as country,
        lower(clean_text(source.segment)) as segment,
        parse_bool(source.marketing_consent) as marketing_consent,

        -- timestamps
        parse_business_ts(source.signup_at, params.time_zone) as signup_at,
        parse_business_ts(source.consent_at, params.time_zone) as consent_at,
        parse_business_ts(source.cancelled_at, params.time_zone) as cancelled_at,

        -- raw text, for the checks
        source.marketing_consent as marketing_consent_raw,
        source.signup_at as signup_at_raw,
        source.consent_at as consent_at_raw,
        source.cancelled_at as cancelled_at_raw,
        params.run_started_at

    from source
    cross join params
),

row_checked as materialized (
    select
        *,
        coalesce(
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('marketing_consent', bool_problem(marketing_consent, marketing_consent_raw), marketing_consent_raw),
            rejection('signup_at', timestamp_problem(signup_at, signup_at_raw, run_started_at), signup_at_raw::varchar),
            rejection('consent_at', timestamp_problem(consent_at, consent_at_raw, run_started_at), consent_at_raw::varchar),
            rejection('cancelled_at', timestamp_problem(cancelled_at, cancelled_at_raw, run_started_at), cancelled_at_raw::varchar)
        ) as row_rejection
    from typed
),

-- A good row whose customer_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        customer_id,
        email,
        first_name,
        last_name,
        country,
        segment,
        marketing_consent,
        signup_at,
        consent_at,
        cancelled_at,
        rejection
    from duplicate_key_checked(row_checked, 'customer_id')
)

select * from checked
