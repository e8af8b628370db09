-- The audience file for a Klaviyo list upload (Klaviyo, "Create and add contacts to a new list"): the first
-- column is `Email`; `First Name`, `Last Name` and `Country` are Klaviyo's own profile properties, the other
-- headers become custom properties of the same name; dates are YYYY-MM-DD. Grain: email, in priority order.

with

targets as (
    select * from int_audience_targets
),

klaviyo as (
    select
        email as "Email",
        first_name as "First Name",
        last_name as "Last Name",
        country as "Country",
        segment as "Segment",
        status as "Churn Status",
        risk_score as "Risk Score",
        csv_safe(array_to_string(reasons, '|')) as "Churn Reasons",
        offer_tier as "Offer Tier",
        priority_rank as "Priority",
        last_active_date as "Last Active",
        customer_id as "Customer ID"
    from targets
)

select * from klaviyo
order by "Priority"
