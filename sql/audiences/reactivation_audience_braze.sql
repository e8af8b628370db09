-- The audience file for a Braze CSV user import (Braze, "CSV import" and "Standard attributes"): the identifier
-- column `external_id` (the customer_id, which updates the user with that id or creates one), then Braze's
-- standard attributes `email`, `first_name`, `last_name`, `country` under their exact lower-case names (any other
-- spelling becomes a custom attribute); `country` takes ISO 3166-1 alpha-2 codes only, so a country that is not a
-- code is left blank (a blank cell does not overwrite the profile). The churn columns are custom attributes
-- (strings of at most 255 characters, numbers, an ISO 8601 date). Grain: email, in priority order.

with

targets as (
    select * from int_audience_targets
),

braze as (
    select
        customer_id as external_id,
        email,
        first_name,
        last_name,
        country_code as country,
        segment as churn_segment,
        status as churn_status,
        risk_score as churn_risk_score,
        csv_safe(array_to_string(reasons, '|')) as churn_reasons,
        offer_tier as churn_offer_tier,
        priority_rank as churn_priority_rank,
        last_active_date as churn_last_active_at
    from targets
)

select * from braze
order by churn_priority_rank
