-- The audience file for a Mailchimp contact import (Mailchimp, "Format guidelines for your import file"): the
-- one required column is `Email Address`; `First Name` and `Last Name` map onto the default merge fields FNAME and
-- LNAME; the other columns are text fields (255 bytes at most) and `Tags`, the tags of each contact separated by
-- commas (a comma inside a tag name would split it, so offer tiers lose theirs). Dates are YYYY-MM-DD.
-- Grain: email, in priority order.

with

targets as (
    select * from int_audience_targets
),

mailchimp as (
    select
        email as "Email Address",
        first_name as "First Name",
        last_name as "Last Name",
        country as "Country",
        segment as "Segment",
        status as "Status",
        risk_score as "Risk Score",
        csv_safe(array_to_string(reasons, '|')) as "Reasons",
        offer_tier as "Offer Tier",
        priority_rank as "Priority",
        last_active_date as "Last Active",
        customer_id as "Customer ID",
        csv_safe(concat_ws(',', 'reactivation', status, replace(offer_tier, ',', ' '))) as "Tags"
    from targets
)

select * from mailchimp
order by "Priority"
