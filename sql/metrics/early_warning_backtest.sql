-- How good last horizon's early warning was, on the user's own data: the same model run as of
-- D - horizon (snapshot `train` of int_health_status, scored by a model fitted on data up to D - horizon only),
-- compared with what happened by D. churned = no qualifying activity in (D - horizon, D].
-- Grain: section x status x risk_decile.
--   section 'overall' (status 'all', risk_decile 0): auc of p_churn, and of the simple baselines for comparison
--           (auc_recency: days since last activity; auc_p_alive: 1 - MBG/NBD p_alive), auc_p_decline (p_decline
--           for "fell below health_drop_ratio x the own rate", customers with a rate), the Brier score, the
--           share flagged (at_risk or silent_churn) with its precision and recall, and median_lead_days.
--   section 'status' (risk_decile 0): per status, customers, how many churned, precision = churned / customers
--           (the share of the status that left) and recall = churned in the status / all who churned.
-- drift_precision is what a flag promises: the share that left or fell below health_drop_ratio x their own rate
-- (declined_in_horizon) by D: of the flagged (overall), of the status, of the decile. A customer flagged for a drop
-- who still buys now and then has not left, but has drifted.
--   section 'decile' (status 'all'): risk deciles by p_churn (10 = highest); calibration (predicted_p_churn,
--           the mean p_churn, against churn_rate, the observed share) and lift = churn_rate / overall churn rate.
-- Rates are rounded to 12 decimals, so that parallel sums give the same bytes every run.
-- auc is the Mann-Whitney probability that a churner scores above a customer who stayed (ties count half).
-- median_lead_days: for the customers flagged at D - horizon, the median number of days from the flag to their
-- last activity up to D (positive: still active that long after the flag, the time there was to act; negative:
-- flagged after they had already gone quiet).

with

params as (
    select * from run_params
),

verdicts as (
    select * from int_health_status
    where snapshot_role = 'train' and churned_in_horizon is not null
),

outcomes_at_d as (
    select customer_id, last_active_date as last_active_by_d
    from int_health_features
    where snapshot_role = 'score'
),

judged as (
    select
        verdicts.customer_id,
        verdicts.snapshot_date,
        verdicts.outcome_date,
        verdicts.status,
        verdicts.status in ('at_risk', 'silent_churn') as is_flagged,
        verdicts.p_churn,
        verdicts.p_alive,
        verdicts.days_since_last_activity,
        verdicts.risk_model,
        verdicts.churned_in_horizon::integer as churned,
        verdicts.p_decline,
        verdicts.declined_in_horizon::integer as declined,
        (verdicts.churned_in_horizon or coalesce(verdicts.declined_in_horizon, false))::integer as drifted,
        date_diff('day', verdicts.snapshot_date, outcomes_at_d.last_active_by_d) as lead_days,
        ntile(10) over (order by verdicts.p_churn, verdicts.customer_id) as risk_decile
    from verdicts
    left join outcomes_at_d using (customer_id)
),

-- Mann-Whitney: the mean rank of each score (sql/macros/auc.sql).
ranked as (
    select
        churned,
        mean_rank(p_churn) as rank_p_churn,
        mean_rank(days_since_last_activity) as rank_recency
    from judged
),

ranked_p_alive as (
    select
        churned,
        mean_rank(-p_alive) as rank_dead
    from judged
    where p_alive is not null
),

ranked_p_decline as (
    select
        declined,
        mean_rank(p_decline) as rank_decline
    from judged
    where p_decline is not null and declined is not null
),

auc_p_decline as (
    select
        mann_whitney_auc(rank_decline, declined) as auc_p_decline
    from ranked_p_decline
),

auc_of as (
    select
        mann_whitney_auc(rank_p_churn, churned) as auc,
        mann_whitney_auc(rank_recency, churned) as auc_recency
    from ranked
),

auc_p_alive as (
    select
        mann_whitney_auc(rank_dead, churned) as auc_p_alive
    from ranked_p_alive
),

totals as (
    select
        count(*) as customers,
        sum(churned) as churned,
        avg(churned) as churn_rate,
        avg(p_churn) as predicted_p_churn,
        avg((p_churn - churned) ^ 2) as brier_score,
        avg(is_flagged::integer) as flagged_share,
        sum(churned) filter (where is_flagged) / nullif(count(*) filter (where is_flagged), 0) as flagged_precision,
        sum(churned) filter (where is_flagged) / nullif(sum(churned), 0) as flagged_recall,
        avg(drifted) filter (where is_flagged) as flagged_drift_precision,
        median(lead_days) filter (where is_flagged) as median_lead_days,
        min(snapshot_date) as snapshot_date,
        min(outcome_date) as outcome_date,
        min(risk_model) as risk_model
    from judged
),

overall as (
    select
        'overall' as section,
        'all' as status,
        0 as risk_decile,
        totals.customers,
        totals.churned,
        totals.churn_rate,
        totals.predicted_p_churn,
        totals.flagged_precision as precision,
        totals.flagged_recall as recall,
        totals.flagged_drift_precision as drift_precision,
        1.0 as lift,
        auc_of.auc,
        auc_of.auc_recency,
        auc_p_alive.auc_p_alive,
        auc_p_decline.auc_p_decline,
        totals.brier_score,
        totals.flagged_share,
        totals.median_lead_days
    from totals
    cross join auc_of
    cross join auc_p_alive
    cross join auc_p_decline
),

-- Per status (section 'status') and per risk decile (section 'decile'): the same measures over each group, but for
-- flagged_share (of all customers, for a status; within the decile) and median_lead_days (of the flagged in a decile).
by_group as (
    select
        case when grouping(judged.status) = 0 then 'status' else 'decile' end as section,
        case when grouping(judged.status) = 0 then judged.status else 'all' end as status,
        case when grouping(judged.risk_decile) = 0 then judged.risk_decile else 0 end as risk_decile,
        count(*) as customers,
        sum(judged.churned) as churned,
        avg(judged.churned) as churn_rate,
        avg(judged.p_churn) as predicted_p_churn,
        avg(judged.churned) as precision,
        sum(judged.churned) / nullif(max(totals.churned), 0) as recall,
        avg(judged.drifted) as drift_precision,
        avg(judged.churned) / nullif(max(totals.churn_rate), 0) as lift,
        null::double as auc,
        null::double as auc_recency,
        null::double as auc_p_alive,
        null::double as auc_p_decline,
        avg((judged.p_churn - judged.churned) ^ 2) as brier_score,
        case
            when grouping(judged.status) = 0 then count(*) / max(totals.customers)
            else avg(judged.is_flagged::integer)
        end as flagged_share,
        case
            when grouping(judged.status) = 0 then median(judged.lead_days)
            else median(judged.lead_days) filter (where judged.is_flagged)
        end as median_lead_days
    from judged
    cross join totals
    group by grouping sets ((judged.status), (judged.risk_decile))
),

sections as (
    select * from overall
    union all
    select * from by_group
),

early_warning_backtest as (
    select
        -- grain
        sections.section,
        sections.status,
        sections.risk_decile::integer as risk_decile,

        -- what was judged
        totals.snapshot_date as backtest_as_of,
        totals.outcome_date as outcome_as_of,
        params.health_horizon_days as horizon_days,
        totals.risk_model,

        -- counts and rates
        sections.customers::bigint as customers,
        sections.churned::bigint as churned,
        round(sections.churn_rate, 12)::double as churn_rate,
        round(sections.predicted_p_churn, 12)::double as predicted_p_churn,
        round(sections.precision, 12)::double as precision,
        round(sections.recall, 12)::double as recall,
        round(sections.drift_precision, 12)::double as drift_precision,
        round(sections.lift, 12)::double as lift,
        round(sections.auc, 12)::double as auc,
        round(sections.auc_recency, 12)::double as auc_recency,
        round(sections.auc_p_alive, 12)::double as auc_p_alive,
        round(sections.auc_p_decline, 12)::double as auc_p_decline,
        round(sections.brier_score, 12)::double as brier_score,
        round(sections.flagged_share, 12)::double as flagged_share,
        sections.median_lead_days::double as median_lead_days
    from sections
    cross join totals
    cross join params
)

select * from early_warning_backtest
