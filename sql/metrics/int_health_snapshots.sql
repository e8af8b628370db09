-- The dates the early warning looks at the customers from. Grain: snapshot_role.
--   score     D              what customer_health publishes
--   train     D - horizon    features as of then, outcome known by D: the nightly training set of the risk
--                            model, and the population the backtest scores
--   backtest  D - 2 horizon  the training set of the backtest's model (outcome known by D - horizon), so the
--                            backtest judges a model that saw nothing after D - horizon
-- horizon = health_horizon_days. outcome_date is where a snapshot's outcome window (snapshot_date, outcome_date]
-- ends; it is null for `score`, whose outcome lies in the future.

with

params as (
    select * from run_params
),

snapshots as (
    select
        role.snapshot_role,
        role.horizons_back,
        (params.as_of_date - role.horizons_back * params.health_horizon_days)::date as snapshot_date,
        case
            when role.horizons_back > 0
                then (params.as_of_date - (role.horizons_back - 1) * params.health_horizon_days)::date
        end as outcome_date
    from params
    cross join (values ('score', 0), ('train', 1), ('backtest', 2)) as role(snapshot_role, horizons_back)
)

select * from snapshots
