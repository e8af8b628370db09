-- The early-warning flags for a CRM import (exports/crm_flags/crm_flags.csv): every known customer of
-- customer_health as of D, so that an import both marks the customers at risk and clears the flag of those who
-- recovered. Grain: customer_id.
--
-- flagged: true for the statuses the early warning raises, at_risk and silent_churn; false for every other status
-- (active, dormant, churned, lost, never_active: a churned customer cancelled, which the CRM knows already).
-- reasons: the reason codes, strongest first, separated by semicolons (the multi-value format of HubSpot's and
-- Salesforce's imports). email: normalised (trimmed, lower-cased), null when unknown; match on customer_id first.
-- Every text cell goes through csv_safe (no live formula in a spreadsheet).

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

crm_flags as (
    select
        -- ids
        csv_safe(health.customer_id) as customer_id,
        csv_safe(normalise_email(customers.email)) as email,

        -- flag
        csv_safe(health.status) as status,
        health.status in ('at_risk', 'silent_churn') as flagged,
        health.risk_score,
        csv_safe(array_to_string(health.reasons, ';')) as reasons,

        -- as of
        strftime(params.as_of_date, '%Y-%m-%d') as as_of

    from health
    left join customers using (customer_id)
    cross join params
)

select * from crm_flags
order by customer_id
