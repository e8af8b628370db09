-- The hashed audience file for a Meta customer list (Meta Business Help Centre, "How to format a customer list
-- when creating a custom audience"): one column with the identifier header `email`, each value hashed as the
-- Marketing API's EMAIL key asks (trim the surrounding white space, lower-case, SHA-256, lower-case hex:
-- email_sha256 of reactivation_audience). No other personal data. Grain: email, in hash order.

with

targets as (
    select * from int_audience_targets
),

meta as (
    select email_sha256 as email
    from targets
)

select * from meta
order by email
