-- Each customer under every segment dimension of the config (segment_by), plus the `all` dimension.
-- Grain: customer_id x segment_by.
--
-- segment_by names customer columns (config/schema.ts SEGMENT_COLUMNS): text columns split by their value,
-- marketing_consent by true / false, a timestamp by its period in the business time zone (the signup
-- month with monthly periods, as YYYY-MM-DD of the period start). A missing value is `unknown`.

with

customers as (
    select * from stg_customers
),

params as (
    select * from run_params
),

configured as (
    select * from segment_dimensions
),

-- One branch per column; only the configured ones produce rows.
attributes as (
    select customer_id, 'segment' as segment_by, segment as value
    from customers where 'segment' in (select segment_by from configured)
    union all
    select customer_id, 'country', country
    from customers where 'country' in (select segment_by from configured)
    union all
    select customer_id, 'marketing_consent', marketing_consent::varchar
    from customers where 'marketing_consent' in (select segment_by from configured)
    union all
    select customer_id, 'signup_at',
        strftime(period_start(business_date(signup_at, params.time_zone), params.period_grain), '%Y-%m-%d')
    from customers cross join params where 'signup_at' in (select segment_by from configured)
    union all
    select customer_id, 'consent_at',
        strftime(period_start(business_date(consent_at, params.time_zone), params.period_grain), '%Y-%m-%d')
    from customers cross join params where 'consent_at' in (select segment_by from configured)
    union all
    select customer_id, 'cancelled_at',
        strftime(period_start(business_date(cancelled_at, params.time_zone), params.period_grain), '%Y-%m-%d')
    from customers cross join params where 'cancelled_at' in (select segment_by from configured)
),

segmented as (
    select customer_id, segment_by, coalesce(value, 'unknown') as segment from attributes
),

everyone as (
    select customer_id, 'all' as segment_by, 'all' as segment from customers
),

final as (
    select * from everyone
    union all
    select * from segmented
)

select * from final
