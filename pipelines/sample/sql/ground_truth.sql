-- ground_truth.csv: what the generator planted for each customer, to score a detector against: the
-- archetype, the silent churners' decay start and kind of decline (fast, slow, partial), the customer's
-- baseline order rate per 30 days (before noise, seasonality and decline; 0 for one_time customers), and the
-- independent complainer / late payer traits; and the planted win-back campaign of the day after the as-of date:
-- the customer's holdout group under the default config (holdout_group), whether the e-mail reached them
-- (winback_sent), and whether they are persuadable (back within two weeks if e-mailed, away for the whole follow-up
-- if not; meta.json campaign.planted_lift_sent is their share).

with

ground_truth as (
    select
        'C' || lpad(profiles.customer_no::varchar, 6, '0') as customer_id,
        profiles.archetype,
        sample_history_start() + profiles.decay_day as decay_start,
        profiles.decay_kind,
        round(profiles.base_orders_per_30d, 4)::decimal(8, 4) as base_orders_per_30d,
        profiles.is_complainer,
        profiles.is_late_payer,
        profiles.customer_no,
        profiles.holdout_group,
        profiles.is_persuadable,
        profiles.winback_sent
    from sample_profiles as profiles
)

select * from ground_truth
