-- One row per customer. From the customers export when there is one; otherwise derived from
-- every customer_id seen in the other entities (attributes then unknown).

with

exported as (
    select * from chk_customers where rejection is null
),

params as (
    select * from run_params
),

orders as (select customer_id from stg_orders),
subscriptions as (select customer_id from stg_subscriptions),
activity as (select customer_id from stg_activity),
email_events as (select customer_id from stg_email_events),
surveys as (select customer_id from stg_surveys),
tickets as (select customer_id from stg_tickets),
invoices as (select customer_id from stg_invoices),

seen_customer_ids as (
    select customer_id from orders
    union select customer_id from subscriptions
    union select customer_id from activity
    union select customer_id from email_events where customer_id is not null
    union select customer_id from surveys
    union select customer_id from tickets
    union select customer_id from invoices
),

derived as (
    select
        customer_id,
        cast(null as varchar) as email,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as varchar) as country,
        cast(null as varchar) as segment,
        cast(null as boolean) as marketing_consent,
        cast(null as timestamptz) as signup_at,
        cast(null as timestamptz) as consent_at,
        cast(null as timestamptz) as cancelled_at
    from seen_customer_ids
    where not (select list_contains(configured_entities, 'customers') from params)
),

all_customers as (
    select
        customer_id, email, first_name, last_name, country, segment,
        marketing_consent, signup_at, consent_at, cancelled_at
    from exported
    union all
    select * from derived
),

customers as (
    select
        -- ids
        customer_id,

        -- attributes
        email,
        first_name,
        last_name,
        coalesce(country, 'unknown') as country,
        coalesce(segment, 'unknown') as segment,
        coalesce(marketing_consent, false) as marketing_consent,

        -- timestamps
        signup_at,
        consent_at,
        cancelled_at

    from all_customers
)

select * from customers
