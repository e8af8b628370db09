-- ground_truth.csv: what the generator planted for each customer, to score a detector against:
-- the archetype, the silent churners' decay start, and the independent complainer / late payer traits.

with

ground_truth as (
    select
        'C' || lpad(profiles.customer_no::varchar, 6, '0') as customer_id,
        profiles.archetype,
        sample_history_start() + profiles.decay_day as decay_start,
        profiles.is_complainer,
        profiles.is_late_payer,
        profiles.customer_no
    from sample_profiles as profiles
)

select * from ground_truth
