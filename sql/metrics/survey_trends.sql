-- NPS and CSAT per period. Grain: survey_type x segment_by x segment x period_start.
--
-- NPS: promoters 9-10, passives 7-8, detractors 0-6; nps = (promoters - detractors) / responses x 100;
-- nps_moe95 = 1.96 x 100 x sqrt((pP + pD - (pP - pD)^2) / responses).
-- CSAT: satisfied = top two boxes (4-5 on the 1-5 scale, 9-10 on 1-10); csat_pct = satisfied / responses x 100;
-- csat_moe95 = 1.96 x 100 x sqrt(p (1 - p) / responses).
-- score is nps or csat_pct. rolling_3 pools the responses of the last three complete periods;
-- delta_vs_prev compares with the period just before (both complete). significant_change is a two-sided
-- test at 95% (|change_z| > 1.96) of that change, change_z = delta / its standard error:
--   NPS: the difference of two NPS values, se = 100 x sqrt(var + var_prev), var = (pP + pD - (pP - pD)^2) / n;
--   CSAT: two proportions, pooled: se = 100 x sqrt(p (1 - p) (1 / n + 1 / n_prev)), p = all satisfied / all responses.
-- Small numbers: significant_change is false (never true) when either period has fewer than
-- metrics.min_survey_responses responses. The incomplete current period keeps its counts, not its rates.

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

compared as (
    select
        current_period.*,
        previous_period.responses as previous_responses,
        previous_period.score as previous_score,
        current_period.is_complete and coalesce(previous_period.is_complete, false) as comparable,
        least(current_period.responses, previous_period.responses) >= params.metrics_min_survey_responses
            as enough_responses,
        case current_period.survey_type
            -- greatest(0, ...): rounding must never make a variance negative.
            when 'nps' then 100 * sqrt(greatest(0.0,
                (current_period.promoters / current_period.responses
                 + current_period.detractors / current_period.responses
                 - pow(current_period.promoters / current_period.responses
                       - current_period.detractors / current_period.responses, 2))
                / current_period.responses
                + (previous_period.promoters / previous_period.responses
                   + previous_period.detractors / previous_period.responses
                   - pow(previous_period.promoters / previous_period.responses
                         - previous_period.detractors / previous_period.responses, 2))
                / previous_period.responses))
            else 100 * sqrt(
                ((current_period.satisfied + previous_period.satisfied)
                    / (current_period.responses + previous_period.responses))
                * (1 - (current_period.satisfied + previous_period.satisfied)
                    / (current_period.responses + previous_period.responses))
                * (1 / current_period.responses + 1 / previous_period.responses))
        end as change_se
    from scored as current_period
    left join scored as previous_period
        on previous_period.survey_type = current_period.survey_type
        and previous_period.segment_by = current_period.segment_by
        and previous_period.segment = current_period.segment
        and previous_period.period_start = current_period.previous_period_start
    cross join params
),

trends as (
    select
        -- grain
        survey_type,
        segment_by,
        segment,
        period_start,
        period_end,

        -- counts
        responses,
        case when survey_type = 'nps' then promoters end as promoters,
        case when survey_type = 'nps' then passives end as passives,
        case when survey_type = 'nps' then detractors end as detractors,
        case when survey_type = 'csat' then satisfied end as satisfied,
        round(score_avg, 4) as score_avg,

        -- rates (complete periods only)
        case when is_complete and survey_type = 'nps' then round(score, 4) end as nps,
        case when is_complete and survey_type = 'nps' then round(moe95, 4) end as nps_moe95,
        case when is_complete and survey_type = 'csat' then round(score, 4) end as csat_pct,
        case when is_complete and survey_type = 'csat' then round(moe95, 4) end as csat_moe95,
        case when is_complete then round(score, 4) end as score,
        case when is_complete then round(moe95, 4) end as moe95,

        -- trend
        round(rolling_3, 4) as rolling_3,
        case when comparable then previous_responses end as previous_responses,
        case when comparable then round(score - previous_score, 4) end as delta_vs_prev,
        case when comparable and change_se > 0 then round((score - previous_score) / change_se, 4) end as change_z,
        case when comparable then
            enough_responses
            and case when change_se > 0 then abs(score - previous_score) / change_se > 1.959964
                     else score <> previous_score end
        end as significant_change,

        is_complete

    from compared
)

select * from trends
