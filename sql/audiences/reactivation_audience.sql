-- Who marketing should write to as of D: the at-risk and silently churning customers (and, when
-- audience_include_churned, the churned ones for a win-back) left after the exclusions of
-- int_audience_candidates. Grain: email (normalised: trimmed, lower-cased; one customer per e-mail).
--
-- value_at_risk (from customer_health): 90 days of the customer's revenue at their own average pace
-- (lifetime revenue per day of tenure, tenure at least health_recent_days, plus running MRR) times the
-- probability of losing it, p_churn.
-- priority_rank: 1 = the highest value_at_risk, ties by customer_id, over the whole audience (target and
-- control), so a customer's rank does not depend on the holdout.
-- offer_tier: the audience split into as many value-at-risk quantiles as audience_offer_tiers has entries
-- (terciles by default), highest first: the first tier goes to the top third. Equal values share a tier.
-- audience_group: `target` or `control`, the deterministic hash-based holdout (see int_audience_candidates).
-- email_sha256: SHA-256 of the normalised e-mail, lower-case hex (the hashed list for ad platforms).

with

params as (
    select * from run_params
),

candidates as (
    select * from int_audience_candidates
),

included as (
    select *
    from candidates
    where exclusion_reason is null
),

ranked as (
    select
        *,
        row_number() over (order by value_at_risk desc, customer_id) as priority_rank,
        ntile(len(params.audience_offer_tiers)) over (order by value_at_risk desc, customer_id) as tier_tile
    from included
    cross join params
),

tiered as (
    select
        *,
        min(tier_tile) over (partition by value_at_risk) as tier_number
    from ranked
),

reactivation_audience as (
    select
        -- ids
        tiered.email,
        tiered.customer_id,

        -- attributes
        tiered.first_name,
        tiered.last_name,
        tiered.country,
        tiered.segment,
        tiered.status,
        tiered.risk_score,
        tiered.reasons,

        -- timestamps
        tiered.last_active_at,

        -- numbers
        tiered.lifetime_revenue,
        tiered.p_alive,
        tiered.value_at_risk,
        tiered.priority_rank::integer as priority_rank,

        -- campaign
        params.audience_offer_tiers[tiered.tier_number] as offer_tier,
        tiered.audience_group,
        sha256(tiered.email) as email_sha256

    from tiered
    cross join params
)

select * from reactivation_audience
order by priority_rank
