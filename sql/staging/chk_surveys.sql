-- Survey responses as exported, typed and checked; one row per raw row, with its rejection (null when good).
-- NPS scores are whole numbers 0-10; CSAT scores 1-5 (or 1-10 with csat_scale: 10).

with

source as (
    select * from raw_surveys
),

params as (
    select * from run_params
),

known_customers as (
    select customer_id from chk_customers where rejection is null
),

typed as (
    select
        -- provenance
        source._source_file,
        source._source_row,

        -- ids
        clean_text(source.response_id) as response_id,
        clean_text(source.customer_id) as customer_id,

        -- numbers
        try_cast(trim(source.score) as double) as score,

        -- attributes
        lower(clean_text(source.survey_type)) as survey_type,
        source.comment,

        -- timestamps
        parse_business_ts(source.responded_at, params.time_zone) as responded_at,

        -- for the checks
        source.score as score_raw,
        source.responded_at as responded_at_raw,
        params.run_started_at,
        params.csat_scale,
        params.customers_exported and known_customers.customer_id is null as is_orphan

    from source
    cross join params
    left join known_customers on known_customers.customer_id = clean_text(source.customer_id)
),

row_checked as materialized (
    select
        *,
        coalesce(
            rejection('customer_id', missing_problem(customer_id), null),
            rejection('survey_type', coalesce(missing_problem(survey_type), accepted_problem(survey_type, ['nps', 'csat'])), survey_type),
            rejection('score', coalesce(missing_problem(score_raw), number_problem(score, score_raw)), score_raw),
            rejection('score', case
                when survey_type = 'nps' and (score < 0 or score > 10 or score <> floor(score))
                    then 'NPS score outside 0-10'
                when survey_type = 'csat' and (score < 1 or score > csat_scale or score <> floor(score))
                    then 'CSAT score outside 1-' || csat_scale
            end, score_raw),
            rejection('responded_at', required_timestamp_problem(responded_at, responded_at_raw, run_started_at), responded_at_raw::varchar),
            rejection('customer_id', orphan_problem(is_orphan), customer_id)
        ) as row_rejection
    from typed
),

-- A good row whose response_id an earlier good row (in file order) carries: a duplicate key (macros/quality.sql).
checked as (
    select
        _source_file,
        _source_row,
        response_id,
        customer_id,
        score,
        survey_type,
        comment,
        responded_at,
        rejection
    from duplicate_key_checked(row_checked, 'response_id')
)

select * from checked
