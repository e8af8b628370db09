-- Every candidate of the reactivation audience as of D, with the one reason it is left out (null when it is
-- in) and its holdout group (audience_group). Grain: customer_id. Read by reactivation_audience and audience_exclusions.
--
-- Candidates: customer_health status at_risk or silent_churn (and churned when audience_include_churned).
-- Exclusions, the first that applies:
--   no_consent        marketing_consent is not true
--   unsubscribed      an unsubscribe event up to D for the customer or for the same (normalised) e-mail
--   hard_bounced      a bounce event, likewise (the staging layer maps hard_bounce/bounced to bounce)
--   spam_complained   a spam_complaint event, likewise
--   invalid_email     no e-mail, not is_valid_email, or starting with = + - @ (a formula in a spreadsheet)
--   duplicate_email   another remaining candidate has the same e-mail: one customer per e-mail is kept, the
--                     highest value_at_risk, then the lowest customer_id
--   suppressed        the e-mail or customer_id is in audience_history with as_of in the
--                     audience_suppression_days days before D (D - suppression_days <= as_of < D)
-- audience_group: the first 8 hex digits of sha256(audience_holdout_salt || customer_id) as an integer / 16^8; below
-- audience_control_share is `control`, otherwise `target`. It depends on nothing but the salt and the id,
-- so a customer keeps their group across nights, whoever else is in the audience.

with

params as (
    select * from run_params
),

health as (
    select * from customer_health
),

customers as (
    select * from stg_customers
),

email_events as (
    select * from stg_email_events
),

history as (
    select * from audience_history
),

candidates as (
    select
        -- ids
        health.customer_id,
        normalise_email(customers.email) as email,

        -- attributes
        customers.first_name,
        customers.last_name,
        customers.country,
        customers.segment,
        coalesce(customers.marketing_consent, false) as marketing_consent,
        health.status,
        health.risk_score,
        health.reasons,

        -- numbers
        health.lifetime_revenue,
        health.p_alive,
        health.value_at_risk,

        -- timestamps
        health.last_active_at

    from health
    inner join customers using (customer_id)
    cross join params
    where health.status in ('at_risk', 'silent_churn')
       or (health.status = 'churned' and params.audience_include_churned)
),

blocking_events as (
    select
        customer_id,
        email,
        event_type
    from email_events
    where event_type in ('unsubscribe', 'bounce', 'spam_complaint')
),

blocks_by_customer as (
    select
        customer_id,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'bounce') as hard_bounced,
        bool_or(event_type = 'spam_complaint') as spam_complained
    from blocking_events
    where customer_id is not null
    group by customer_id
),

blocks_by_email as (
    select
        normalise_email(email) as email,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'bounce') as hard_bounced,
        bool_or(event_type = 'spam_complaint') as spam_complained
    from blocking_events
    where normalise_email(email) is not null
    group by normalise_email(email)
),

suppressed_emails as (
    select distinct normalise_email(history.email) as email
    from history
    cross join params
    where history.as_of >= params.as_of_date - params.audience_suppression_days
      and history.as_of < params.as_of_date
      and normalise_email(history.email) is not null
),

suppressed_customers as (
    select distinct history.customer_id
    from history
    cross join params
    where history.as_of >= params.as_of_date - params.audience_suppression_days
      and history.as_of < params.as_of_date
      and history.customer_id is not null
),

checked as (
    select
        candidates.*,
        case
            when not candidates.marketing_consent then 'no_consent'
            when coalesce(blocks_by_customer.unsubscribed, false) or coalesce(blocks_by_email.unsubscribed, false)
                then 'unsubscribed'
            when coalesce(blocks_by_customer.hard_bounced, false) or coalesce(blocks_by_email.hard_bounced, false)
                then 'hard_bounced'
            when coalesce(blocks_by_customer.spam_complained, false) or coalesce(blocks_by_email.spam_complained, false)
                then 'spam_complained'
            when candidates.email is null
                or not is_valid_email(candidates.email)
                or regexp_matches(candidates.email, '^[=+@-]')
                then 'invalid_email'
        end as contact_problem
    from candidates
    left join blocks_by_customer using (customer_id)
    left join blocks_by_email on blocks_by_email.email = candidates.email
),

deduplicated as (
    select
        *,
        case
            when contact_problem is null then row_number() over (
                partition by contact_problem is null, email
                order by value_at_risk desc, customer_id
            )
        end as email_occurrence
    from checked
),

excluded as (
    select
        deduplicated.* exclude (contact_problem, email_occurrence),
        case
            when deduplicated.contact_problem is not null then deduplicated.contact_problem
            when deduplicated.email_occurrence > 1 then 'duplicate_email'
            when suppressed_emails.email is not null or suppressed_customers.customer_id is not null then 'suppressed'
        end as exclusion_reason
    from deduplicated
    left join suppressed_emails using (email)
    left join suppressed_customers using (customer_id)
),

grouped as (
    select
        excluded.*,
        ('0x' || left(sha256(params.audience_holdout_salt || excluded.customer_id), 8))::ubigint / 4294967296.0
            as holdout_bucket,
        case
            when ('0x' || left(sha256(params.audience_holdout_salt || excluded.customer_id), 8))::ubigint / 4294967296.0
                < params.audience_control_share
                then 'control'
            else 'target'
        end as audience_group
    from excluded
    cross join params
)

select * from grouped
