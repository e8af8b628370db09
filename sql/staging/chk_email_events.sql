-- E-mail events as exported, typed and checked; one row per raw row, with its rejection (null when good).
-- An event names its customer by customer_id or by e-mail address (matched to the customers export).

with

source as (
    select * from raw_email_events
),

params as (
    select * from run_params
),

known_customers as (
    select customer_id from chk_customers where rejection is null
),

customers_by_email as (
    select email, min(customer_id) as customer_id
    from chk_customers
    where rejection is null and email is not null
    group by email
),

typed as (
    select
        -- provenance
        source._source_file,
        source._source_row,

        -- ids
        coalesce(clean_text(source.customer_id), customers_by_email.customer_id) as customer_id,
        clean_text(source.campaign_id) as campaign_id,

        -- attributes
        normalise_email(source.email) as email,
        case lower(clean_text(source.event_type))
            when 'opened' then 'open'
            when 'clicked' then 'click'
            when 'bounced' then 'bounce'
            when 'hard_bounce' then 'bounce'
            when 'unsubscribed' then 'unsubscribe'
            when 'spam' then 'spam_complaint'
            when 'complaint' then 'spam_complaint'
            else lower(clean_text(source.event_type))
        end as event_type,

        -- timestamps
        parse_business_ts(source.occurred_at, params.time_zone) as occurred_at,

        -- for the checks
        source.occurred_at as occurred_at_raw,
        clean_text(source.customer_id) is null and clean_text(source.email) is null as has_no_customer,
        params.run_started_at,
        clean_text(source.customer_id) is not null
            and params.customers_exported
            and known_customers.customer_id is null as is_orphan_id,
        clean_text(source.customer_id) is null
            and clean_text(source.email) is not null
            and customers_by_email.customer_id is null as is_orphan_email

    from source
    cross join params
    left join known_customers on known_customers.customer_id = clean_text(source.customer_id)
    -- the address names the customer only for an event without a customer_id
    left join customers_by_email
        on customers_by_email.email = case when clean_text(source.customer_id) is null then normalise_email(source.email) end
),

checked as (
    select
        _source_file,
        _source_row,
        customer_id,
        campaign_id,
        email,
        event_type,
        occurred_at,
        coalesce(
            rejection('customer_id', case when has_no_customer then 'neither customer_id nor email' end, null),
            rejection('event_type', coalesce(missing_problem(event_type), accepted_problem(event_type, ['sent', 'delivered', 'open', 'click', 'bounce', 'unsubscribe', 'spam_complaint'])), event_type),
            rejection('occurred_at', required_timestamp_problem(occurred_at, occurred_at_raw, run_started_at), occurred_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan_id), customer_id),
            rejection('email', case when is_orphan_email then 'e-mail address of no known customer' end, null)
        ) as rejection
    from typed
)

select * from checked
