-- How many reactivation-audience candidates were left out, and why, as of D. Grain: reason.
-- One row per reason in a fixed list (0 when none), in the order the exclusions apply (step), then the
-- two groups of those kept. share_pct = customers / candidates x 100 (0 when there are no candidates).

with

candidates as (
    select * from int_audience_candidates
),

reasons as (
    select * from (values
        (1, 'no_consent'),
        (2, 'unsubscribed'),
        (3, 'hard_bounced'),
        (4, 'spam_complained'),
        (5, 'invalid_email'),
        (6, 'duplicate_email'),
        (7, 'suppressed'),
        (8, 'included_target'),
        (9, 'included_control')
    ) as reason_list(step, reason)
),

outcomes as (
    select
        coalesce(exclusion_reason, 'included_' || audience_group) as reason,
        count(*) as customers
    from candidates
    group by all
),

totals as (
    select count(*) as candidates from candidates
),

audience_exclusions as (
    select
        -- ids
        reasons.reason,
        reasons.step,

        -- numbers
        coalesce(outcomes.customers, 0)::bigint as customers,
        totals.candidates::bigint as candidates,
        coalesce(round(100.0 * coalesce(outcomes.customers, 0) / nullif(totals.candidates, 0), 2), 0)::double
            as share_pct

    from reasons
    cross join totals
    left join outcomes using (reason)
)

select * from audience_exclusions
order by step
