-- The hashed audience file for a Google Ads Customer Match upload (Google Ads Help, "Formatting guidelines for
-- uploading hashed data"): one column with the English header `Email`, each value the SHA-256 of the e-mail
-- lower-cased with the surrounding spaces removed, as lower-case hex (email_sha256 of reactivation_audience). No
-- other personal data. Grain: email, in hash order (which says nothing about priority).

with

targets as (
    select * from int_audience_targets
),

google_ads as (
    select email_sha256 as "Email"
    from targets
)

select * from google_ads
order by "Email"
