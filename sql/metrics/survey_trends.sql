-- NPS and CSAT per period. Grain: survey_type x segment_by x segment x period_start.
--
-- NPS: promoters 9-10, passives 7-8, detractors 0-6; nps = (promoters - detractors) / responses x 100;
-- nps_moe95 = 1.96 x 100 x sqrt((pP + pD - (pP - pD)^2) / responses).
-- CSAT: satisfied = top two boxes (4-5 on the 1-5 scale, 9-10 on 1-10); csat_pct = satisfied / responses x 100;
-- csat_moe95 = 1.96 x 100 x sqrt(p (1 - p) / responses).
-- score is nps or csat_pct. rolling_3 pools the responses of the last three complete periods;
-- delta_vs_prev compares with the period just before; significant_change when |delta| exceeds the
-- combined margin sqrt(moe^2 + moe_prev^2). The incomplete current period keeps its counts, not its rates.

with

surveys as (
    select * from stg_surveys
),

segments as (
    select * from int_customer_segments
),

params as (
    select * from run_params
),

responses as (
    select
        segments.segment_by,
        segments.segment,
        surveys.survey_type,
        surveys.score,
        period_start(surveys.responded_date, params.period_grain) as period_start,
        case when params.csat_scale = 10 then 9 else 4 end as satisfied_from
    from surveys
    inner join segments using (customer_id)
    cross join params
),

counts as (
    select
        survey_type,
        segment_by,
        segment,
        period_start,
        count(*) as responses,
        count(*) filter (where survey_type = 'nps' and score >= 9) as promoters,
        count(*) filter (where survey_type = 'nps' and score between 7 and 8) as passives,
        count(*) filter (where survey_type = 'nps' and score <= 6) as detractors,
        count(*) filter (where survey_type = 'csat' and score >= satisfied_from) as satisfied,
        avg(score) as score_avg
    from responses
    group by all
),

with_completeness as (
    select
        counts.*,
        period_end(counts.period_start, params.period_grain) as period_end,
        period_end(counts.period_start, params.period_grain) <= params.as_of_date as is_complete,
        period_add(counts.period_start, -1, params.period_grain) as previous_period_start,
        period_add(counts.period_start, -2, params.period_grain) as rolling_from
    from counts
    cross join params
),

pooled as (
    select
        current_period.survey_type,
        current_period.segment_by,
        current_period.segment,
        current_period.period_start,
        sum(window_period.responses) as responses,
        sum(window_period.promoters) as promoters,
        sum(window_period.detractors) as detractors,
        sum(window_period.satisfied) as satisfied
    from with_completeness as current_period
    inner join with_completeness as window_period
        on window_period.survey_type = current_period.survey_type
        and window_period.segment_by = current_period.segment_by
        and window_period.segment = current_period.segment
        and window_period.period_start between current_period.rolling_from and current_period.period_start
        and window_period.is_complete
    where current_period.is_complete
    group by all
),

scored as (
    select
        with_completeness.*,
        case with_completeness.survey_type
            when 'nps' then 100.0 * (with_completeness.promoters - with_completeness.detractors) / with_completeness.responses
            else 100.0 * with_completeness.satisfied / with_completeness.responses
        end as score,
        case with_completeness.survey_type
            when 'nps' then 1.96 * 100 * sqrt(
                (with_completeness.promoters / with_completeness.responses
                 + with_completeness.detractors / with_completeness.responses
                 - pow(with_completeness.promoters / with_completeness.responses
                       - with_completeness.detractors / with_completeness.responses, 2))
                / with_completeness.responses)
            else 1.96 * 100 * sqrt(
                (with_completeness.satisfied / with_completeness.responses)
                * (1 - with_completeness.satisfied / with_completeness.responses)
                / with_completeness.responses)
        end as moe95,
        case pooled.survey_type
            when 'nps' then 100.0 * (pooled.promoters - pooled.detractors) / pooled.responses
            when 'csat' then 100.0 * pooled.satisfied / pooled.responses
        end as rolling_3
    from with_completeness
    left join pooled using (survey_type, segment_by, segment, period_start)
),

trends as (
    select
        -- grain
        current_period.survey_type,
        current_period.segment_by,
        current_period.segment,
        current_period.period_start,
        current_period.period_end,

        -- counts
        current_period.responses,
        case when current_period.survey_type = 'nps' then current_period.promoters end as promoters,
        case when current_period.survey_type = 'nps' then current_period.passives end as passives,
        case when current_period.survey_type = 'nps' then current_period.detractors end as detractors,
        case when current_period.survey_type = 'csat' then current_period.satisfied end as satisfied,
        round(current_period.score_avg, 4) as score_avg,

        -- rates (complete periods only)
        case when current_period.is_complete and current_period.survey_type = 'nps'
            then round(current_period.score, 4) end as nps,
        case when current_period.is_complete and current_period.survey_type = 'nps'
            then round(current_period.moe95, 4) end as nps_moe95,
        case when current_period.is_complete and current_period.survey_type = 'csat'
            then round(current_period.score, 4) end as csat_pct,
        case when current_period.is_complete and current_period.survey_type = 'csat'
            then round(current_period.moe95, 4) end as csat_moe95,
        case when current_period.is_complete then round(current_period.score, 4) end as score,
        case when current_period.is_complete then round(current_period.moe95, 4) end as moe95,

        -- trend
        round(current_period.rolling_3, 4) as rolling_3,
        case when current_period.is_complete and previous_period.is_complete
            then round(current_period.score - previous_period.score, 4) end as delta_vs_prev,
        case when current_period.is_complete and previous_period.is_complete
            then abs(current_period.score - previous_period.score)
                 > sqrt(pow(current_period.moe95, 2) + pow(previous_period.moe95, 2))
        end as significant_change,

        current_period.is_complete

    from scored as current_period
    left join scored as previous_period
        on previous_period.survey_type = current_period.survey_type
        and previous_period.segment_by = current_period.segment_by
        and previous_period.segment = current_period.segment
        and previous_period.period_start = current_period.previous_period_start
)

select * from trends
