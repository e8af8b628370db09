-- The reactivation audience file for Mailchimp, Klaviyo, HubSpot or Braze: the target group only (the
-- control group is held out), one row per e-mail, in priority order, with header names the tools map
-- on import. Every text cell goes through csv_safe (no cell starts with = + - @, tab or CR); the
-- exporter writes it with RFC 4180 quoting (force_quote, CRLF).

with

audience as (
    select * from reactivation_audience
),

targets as (
    select *
    from audience
    where "group" = 'target'
),

audience_csv as (
    select
        csv_safe(email) as "Email Address",
        csv_safe(first_name) as "First Name",
        csv_safe(last_name) as "Last Name",
        csv_safe(country) as "Country",
        csv_safe(segment) as "Segment",
        csv_safe(status) as "Status",
        risk_score as "Risk Score",
        csv_safe(array_to_string(reasons, '|')) as "Reasons",
        csv_safe(offer_tier) as "Offer Tier",
        priority_rank as "Priority",
        csv_safe(customer_id) as "Customer ID"
    from targets
)

select * from audience_csv
order by "Priority"
