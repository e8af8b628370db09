-- The audience file for a HubSpot contact import (HubSpot, "Set up import files"): each header names a contact
-- property; `Email` is the unique identifier that updates an existing contact instead of creating a duplicate,
-- `First Name`, `Last Name` and `Country/Region` are default properties, the churn columns custom properties
-- (create them, or let the import create them). `Churn Reasons` holds the codes separated by semicolons, the
-- format of a multiple checkboxes property (without a leading semicolon: the import replaces the values).
-- Dates are YYYY-MM-DD. Grain: email, in priority order.

with

targets as (
    select * from int_audience_targets
),

hubspot as (
    select
        email as "Email",
        first_name as "First Name",
        last_name as "Last Name",
        country as "Country/Region",
        segment as "Customer Segment",
        status as "Churn Status",
        risk_score as "Churn Risk Score",
        csv_safe(array_to_string(reasons, ';')) as "Churn Reasons",
        offer_tier as "Offer Tier",
        priority_rank as "Reactivation Priority",
        last_active_date as "Last Active Date",
        customer_id as "Customer ID"
    from targets
)

select * from hubspot
order by "Reactivation Priority"
