-- The early warning's verdict per customer and snapshot (score = D, published by customer_health; train =
-- D - horizon, judged by early_warning_backtest): reason codes, risk_score, value at risk and status, from the
-- evidence of int_health_features and the p_churn of health_scores. Grain: customer_id x snapshot_role.
--
-- Reasons (the evidence behind them holds; listed by how much each added to p_churn, largest first):
--   INACTIVE          days_since_last_activity >= max(health_inactive_min_days,
--                     health_inactive_gap_multiple x typical_gap_days)
--   ACTIVITY_DROP     the decline test of active days: activity_decline_p <= health_decline_p_value, and drop_p too
--   SPEND_DROP        the decline test of order days holds (and drop_p) and the recent revenue is below the expected, or
--                     (orders go on, baskets shrink) three or more orders in each window, the recent average
--                     order value below health_drop_ratio x the baseline's, and so few recent orders at or above the
--                     baseline's median order value that chance explains it at most health_decline_p_value of the time
--                     (order_value_drop_p, a sign test: measured, the ratio alone flagged steady customers of noisy
--                     baskets and nobody who left)
--   EMAIL_DISENGAGED  none of the last health_email_no_open_last_n e-mails sent opened, or the recent opens fall
--                     short of the own open rate (email_open_p <= health_decline_p_value)
--   COMPLAINTS_UP     complaints_recent >= health_complaints_min_recent, above the own rate (complaints_up_p)
--   LATE_PAYMENT      an invoice due in the recent window paid, or unpaid, health_late_payment_min_days late
--   NPS_DETRACTOR     the last NPS answer (given within the baseline or recent window) is 0-6
--   NPS_DROP          it is health_nps_drop_points or more below the answer before
--   LOW_CSAT          min_csat_recent <= health_low_csat_max (on the 1-5 scale; x 2 on 1-10)
--   LOW_P_ALIVE       MBG/NBD p_alive < health_low_p_alive
-- One-time buyers never get ACTIVITY_DROP or SPEND_DROP: the tests need two active days to have a rate.
-- drop_p is both decline tests as one (Simes over the two streams: min(2 x the smaller, the larger)): order days are
-- active days too, and with each stream judged on its own a steady customer would show a drop in one of them about
-- twice as often as health_decline_p_value says (measured: 6.1% of the steady customers of a population with
-- orders and app sessions flagged at 0.05, 3.6% with drop_p).
--
-- risk_score = 100 x p_churn, to one decimal. p_decline (health_scores) is the learned probability that a customer
-- with a rate of their own falls below health_drop_ratio x that rate in the horizon: the drift before the exit. value_at_risk = p_churn x what the customer brings in the horizon at their
-- own pace (lifetime revenue per day of tenure, at least health_recent_days, plus the running MRR).
--
-- A customer has a rhythm of their own with health_rhythm_min_active_days active days spread over at least
-- health_min_baseline_days (first to last active day): a two-week trial that stopped has none.
--
-- Status, the first rule that holds:
--   churned       explicit cancellation (cancelled_at on or before the snapshot, no activity after it)
--   lost          days_since_last_activity > health_lost_after_days
--   churned       every subscription has ended and nothing happened after the last end
--   dormant       idle longer than health_dormant_after_days and twice the customer's INACTIVE threshold: past
--                 the early warning, a win-back and not a save
--   silent_churn  a customer with a rhythm who is going: a drop (ACTIVITY_DROP or SPEND_DROP) or INACTIVE with a
--                 silence the own rate makes unlikely (silence_p <= health_decline_p_value), and
--                 p_churn >= health_silent_churn_p_churn
--   at_risk       a customer with a rhythm and a drop (where drops foretold declines on this history, drop_record;
--                 elsewhere with p_churn >= health_at_risk_p_churn), or INACTIVE with p_churn >= health_at_risk_p_churn and
--                 silence_p <= health_decline_p_value, or a silence that the own rate makes very unlikely
--                 (silence_p below a tenth of health_decline_p_value): idle far beyond the own rhythm is never
--                 `active`. INACTIVE alone (3 x the median gap) is no evidence of a change: a customer with a
--                 slow, irregular rhythm is often that idle
--   dormant       p_churn >= health_at_risk_p_churn and idle beyond the recent window without a rhythm to judge
--                 (one-time and occasional buyers): probably gone, nothing the list can win back
--   active        otherwise
-- The drops are the decline tests of int_health_features, whose tails already allow for the customer's evidence
-- and the population's noisy months; p_decline ranks the drift but sets no status.

with

params as (
    select * from run_params
),

-- The backtest snapshot is read for the drops' record of the train snapshot only (drop_record).
features as (
    select * from int_health_features
),

scores as (
    select * from health_scores
),

scored_features as (
    select
        features.*,
        scores.p_churn,
        scores.p_decline,
        scores.decline_model,
        scores.p_alive,
        scores.expected_purchases_next_90d,
        scores.risk_model,
        scores.contrib_inactive,
        scores.contrib_activity_drop,
        scores.contrib_spend_drop,
        scores.contrib_email_disengaged,
        scores.contrib_complaints_up,
        scores.contrib_late_payment,
        scores.contrib_nps_detractor,
        scores.contrib_nps_drop,
        scores.contrib_low_csat,
        scores.contrib_low_p_alive,
        greatest(
            params.health_inactive_min_days::double,
            params.health_inactive_gap_multiple * coalesce(features.typical_gap_days, 0)
        ) as inactive_after_days,
        -- the decline tests of active days and order days as one (Simes over the streams judged, least and greatest
        -- skip a null): a drop needs this too, so that a steady customer's chance of either is the test's level
        least(1.0, 2 * least(features.activity_decline_p, features.orders_decline_p),
            greatest(features.activity_decline_p, features.orders_decline_p)) as drop_p,
        features.active_days_total >= params.health_rhythm_min_active_days
            and date_diff('day', features.first_active_date, features.last_active_date) >= params.health_min_baseline_days
            as has_rhythm
    from features
    left join scores using (customer_id, snapshot_role)
    cross join params
),

signals as (
    select
        scored_features.*,
        [
            {'code': 'INACTIVE', 'present': days_since_last_activity >= inactive_after_days,
                'contribution': contrib_inactive, 'rank': 1},
            {'code': 'ACTIVITY_DROP', 'present': coalesce(activity_decline_p <= params.health_decline_p_value
                and drop_p <= params.health_decline_p_value, false),
                'contribution': contrib_activity_drop, 'rank': 2},
            {'code': 'SPEND_DROP', 'present': coalesce(
                (orders_decline_p <= params.health_decline_p_value and drop_p <= params.health_decline_p_value
                    and revenue_recent < revenue_expected_recent)
                or (has_rate and orders_recent >= 3 and orders_baseline >= 3
                    and revenue_recent / orders_recent
                        < params.health_drop_ratio * revenue_baseline / orders_baseline
                    and order_value_drop_p <= params.health_decline_p_value), false),
                'contribution': contrib_spend_drop, 'rank': 3},
            {'code': 'EMAIL_DISENGAGED', 'present': emails_since_last_open >= params.health_email_no_open_last_n
                or coalesce(email_open_p <= params.health_decline_p_value, false),
                'contribution': contrib_email_disengaged, 'rank': 4},
            {'code': 'COMPLAINTS_UP', 'present': complaints_recent >= params.health_complaints_min_recent
                and coalesce(complaints_up_p <= params.health_decline_p_value, false),
                'contribution': contrib_complaints_up, 'rank': 5},
            {'code': 'LATE_PAYMENT', 'present': late_payments_recent > 0,
                'contribution': contrib_late_payment, 'rank': 6},
            {'code': 'NPS_DETRACTOR', 'present': coalesce(is_nps_current and last_nps <= 6, false),
                'contribution': contrib_nps_detractor, 'rank': 7},
            {'code': 'NPS_DROP', 'present': coalesce(is_nps_current and nps_change <= -params.health_nps_drop_points, false),
                'contribution': contrib_nps_drop, 'rank': 8},
            {'code': 'LOW_CSAT', 'present': coalesce(min_csat_recent <= params.health_low_csat_max * params.csat_scale / 5, false),
                'contribution': contrib_low_csat, 'rank': 9},
            {'code': 'LOW_P_ALIVE', 'present': coalesce(p_alive < params.health_low_p_alive, false),
                'contribution': contrib_low_p_alive, 'rank': 10}
        ] as checks
    from scored_features
    cross join params
),

scored as (
    select
        signals.* exclude (checks),
        list_transform(
            list_sort(
                list_transform(
                    list_filter(checks, c -> c.present),
                    c -> {'key': -coalesce(c.contribution, 0), 'rank': c.rank, 'code': c.code}
                )
            ),
            c -> c.code
        ) as reasons,
        round(100 * p_churn, 1)::double as risk_score,
        round(
            p_churn * (
                greatest(lifetime_revenue, 0) / greatest(tenure_days, params.health_recent_days) * params.health_horizon_days
                + mrr * 12 / 365 * params.health_horizon_days
            ),
            2
        )::decimal(18, 2) as value_at_risk
    from signals
    cross join params
),

-- The drops' record on this history: among the customers with a rhythm at the snapshot before (train for score,
-- backtest for train), how often those with a drop declined in the horizon (declined_in_horizon) against those with
-- neither a drop nor INACTIVE. A drop that foretold no more declines than that (drop_lift below health_drop_min_lift,
-- judged on 30 or more drop customers) is no evidence of leaving on this population (wholesale buyers pause and come
-- back): it then sets at_risk only with p_churn >= health_at_risk_p_churn. With less history the drops are trusted.
drop_history as (
    select
        case snapshot_role when 'train' then 'score' when 'backtest' then 'train' end as judged_role,
        list_has_any(reasons, ['ACTIVITY_DROP', 'SPEND_DROP']) as has_drop,
        list_contains(reasons, 'INACTIVE') as is_inactive,
        declined_in_horizon::integer as declined
    from scored
    where snapshot_role in ('train', 'backtest')
      and has_rhythm
      and not is_cancelled
      and declined_in_horizon is not null
),

drop_record as (
    select
        drop_history.judged_role as snapshot_role,
        count(*) filter (where drop_history.has_drop) as drop_history_customers,
        avg(drop_history.declined) filter (where drop_history.has_drop) as drop_decline_rate,
        avg(drop_history.declined) filter (where not drop_history.has_drop and not drop_history.is_inactive)
            as steady_decline_rate,
        drop_decline_rate / nullif(steady_decline_rate, 0) as drop_lift,
        count(*) filter (where drop_history.has_drop) < 30
            or coalesce(drop_decline_rate >= any_value(params.health_drop_min_lift) * steady_decline_rate, true)
            as drops_trusted
    from drop_history
    cross join params
    group by all
),

statuses as (
    select
        scored.*,
        coalesce(drop_record.drops_trusted, true) as drops_trusted,
        drop_record.drop_lift,
        case
            when is_cancelled then 'churned'
            when days_since_last_activity > params.health_lost_after_days then 'lost'
            when subscriptions_ended then 'churned'
            when days_since_last_activity > greatest(params.health_dormant_after_days, 2 * inactive_after_days)
                then 'dormant'
            when has_rhythm
                and (
                    list_has_any(reasons, ['ACTIVITY_DROP', 'SPEND_DROP'])
                    or (list_contains(reasons, 'INACTIVE') and silence_p <= params.health_decline_p_value)
                )
                and p_churn >= params.health_silent_churn_p_churn
                then 'silent_churn'
            when has_rhythm and (
                (
                    list_has_any(reasons, ['ACTIVITY_DROP', 'SPEND_DROP'])
                    and (coalesce(drop_record.drops_trusted, true) or p_churn >= params.health_at_risk_p_churn)
                )
                or (list_contains(reasons, 'INACTIVE') and (
                    (p_churn >= params.health_at_risk_p_churn and silence_p <= params.health_decline_p_value)
                    or silence_p <= params.health_decline_p_value / 10
                ))
            )
                then 'at_risk'
            when p_churn >= params.health_at_risk_p_churn
                and days_since_last_activity > params.health_recent_days
                then 'dormant'
            else 'active'
        end as status
    from scored
    cross join params
    left join drop_record using (snapshot_role)
    where scored.snapshot_role in ('score', 'train')
)

select * from statuses
