-- The rows of the audience's import files (exports/reactivation_audience/, one file per tool): the target group
-- of reactivation_audience only (the control group is held out), one row per e-mail. Grain: email.
--
-- Every text cell goes through csv_safe (no cell starts with = + - @, tab or CR: a spreadsheet would run it as a
-- formula); the exporter writes RFC 4180 quoting. The profiles (reactivation_audience_<tool>.sql) only name and
-- order these columns as each tool documents them.
-- country_code: the country as an ISO 3166-1 alpha-2 code (upper case) when it is one, else null (for tools that
-- accept only codes: a blank cell leaves the tool's value alone).
-- last_active_date: the day of the last qualifying activity in the business time zone, ISO 8601 (YYYY-MM-DD).

with

audience as (
    select * from reactivation_audience
),

targets as (
    select *
    from audience
    where audience_group = 'target'
),

audience_targets as (
    select
        -- ids
        csv_safe(email) as email,
        csv_safe(customer_id) as customer_id,
        email_sha256,

        -- attributes
        csv_safe(first_name) as first_name,
        csv_safe(last_name) as last_name,
        csv_safe(country) as country,
        case when regexp_full_match(trim(country), '[A-Za-z]{2}') then upper(trim(country)) end as country_code,
        csv_safe(segment) as segment,
        csv_safe(status) as status,
        risk_score,
        reasons,
        csv_safe(offer_tier) as offer_tier,
        priority_rank,

        -- timestamps
        strftime(last_active_at, '%Y-%m-%d') as last_active_date

    from targets
)

select * from audience_targets
order by priority_rank
