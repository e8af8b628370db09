-- How much a customer's 30-day counts wander around their own rate (noisy months), per snapshot and stream: the
-- median over customers with a full year and two or more events a month of (variance - mean) / mean^2 of their
-- twelve 30-day counts, between 0 and 1 (the median is robust to the few who really change), taken on a fixed hash
-- sample of at most 5,000 customers (a population figure needs no more). With fewer than 30 such customers the
-- decline tests of int_health_features assume 0.1, a CV of about a third. Grain: snapshot_role x stream (active,
-- orders).
--
-- A figure of the whole population, so a model of its own: int_health_features is then per customer and can be
-- built in customer batches (docs/architecture.md). A customer's first active day and whether they are known at a
-- snapshot are int_health_features' own: the first active day or the first qualifying subscription.

with

params as not materialized (
    select * from run_params
),

snapshots as not materialized (
    select * from int_health_snapshots
),

customers as not materialized (
    select * from stg_customers
),

dispersion_sample as materialized (
    select customer_id
    from customers
    order by hash(customer_id), customer_id
    limit 5000
),

active_days as not materialized (
    select * from int_customer_active_days
    where customer_id in (select customer_id from dispersion_sample)
),

orders as not materialized (
    select * from stg_orders
    where customer_id in (select customer_id from dispersion_sample)
),

subscriptions as not materialized (
    select * from stg_subscriptions
    where customer_id in (select customer_id from dispersion_sample)
),

-- One row per sampled customer, day and stream (int_health_features' stream_days).
stream_days as (
    select customer_id, active_date as day, 'active' as stream, 1 as events
    from active_days
    union all
    select customer_id, ordered_date, 'orders', count(*)
    from orders
    where status = 'completed' and amount > 0
    group by all
),

first_active_days as (
    select stream_days.customer_id, snapshots.snapshot_role, min(stream_days.day) as first_day
    from stream_days
    inner join snapshots on stream_days.day <= snapshots.snapshot_date
    where stream_days.stream = 'active'
    group by all
),

-- Subscriptions that make a customer active at a snapshot (int_health_features' qualifying_subscriptions).
subscription_starts as (
    select
        subscriptions.customer_id,
        snapshots.snapshot_role,
        min(subscriptions.started_date) as first_subscription_date,
        max(subscription_last_day(subscriptions.ended_date, snapshots.snapshot_date))::date as last_subscription_date
    from subscriptions
    inner join snapshots on subscriptions.started_date <= snapshots.snapshot_date
    where (select list_contains(active_when, 'subscriptions') from params)
    group by all
    having last_subscription_date >= first_subscription_date
),

customer_snapshots as (
    select
        coalesce(first_active_days.customer_id, subscription_starts.customer_id) as customer_id,
        coalesce(first_active_days.snapshot_role, subscription_starts.snapshot_role) as snapshot_role,
        least(first_active_days.first_day, subscription_starts.first_subscription_date) as first_active_date
    from first_active_days
    full join subscription_starts using (customer_id, snapshot_role)
),

stream_blocks as (
    select
        stream_days.customer_id,
        snapshots.snapshot_role,
        stream_days.stream,
        floor(date_diff('day', stream_days.day, snapshots.snapshot_date) / 30) as block_no,
        sum(stream_days.events) as events
    from stream_days
    inner join snapshots
        on stream_days.day <= snapshots.snapshot_date
        and stream_days.day > snapshots.snapshot_date - 360
    group by all
),

customer_block_moments as (
    select
        stream_blocks.customer_id,
        stream_blocks.snapshot_role,
        stream_blocks.stream,
        sum(stream_blocks.events) / 12.0 as block_mean,
        (sum(stream_blocks.events ^ 2) - 12 * (sum(stream_blocks.events) / 12.0) ^ 2) / 11 as block_variance
    from stream_blocks
    inner join customer_snapshots using (customer_id, snapshot_role)
    inner join snapshots using (snapshot_role)
    where customer_snapshots.first_active_date <= snapshots.snapshot_date - 359
    group by all
),

dispersions as (
    select
        snapshots.snapshot_role,
        streams.stream,
        case
            when count(moments.block_mean) >= 30
                then greatest(0, least(1, median((moments.block_variance - moments.block_mean) / moments.block_mean ^ 2)))
            else 0.1
        end as dispersion
    from snapshots
    cross join (select unnest(['active', 'orders']) as stream) as streams
    left join customer_block_moments as moments
        on moments.snapshot_role = snapshots.snapshot_role
        and moments.stream = streams.stream
        and moments.block_mean >= 2
    group by all
),

-- The season: a decline test compares the last w days with the year before them, and a shop whose every customer
-- buys less in June than over the year would see a drop in all of them. For a season that repeats each year, the
-- expected count moves by the population's rate in the same calendar window a year earlier, (s - 365 - w, s - 365],
-- against its rate over a year around it, (s - 547, s - 182] (any full year has the year's mean; this one ends half
-- a year before s, so that the customers leaving now do not lower it and pass for a season). Both over the sampled
-- customers in play then: active since three months before that year and again between the window and its end
-- (those who left before do not count). With less history, or fewer than 30 such customers or 100 events in their
-- year, the factor is 1 (no season). It is kept between 0.25 and 1: a quiet season excuses a quiet window, a busy
-- one accuses nobody (the rush of December comes from some customers more than others, and a steady customer who
-- does not join it has not dropped; on the sample, whose seasons are mild, factors above 1 came from customers
-- pausing and leaving, not from a season, and flagged more steady customers).
season_windows as (
    select snapshots.snapshot_role, snapshots.snapshot_date, windows.window_name, windows.window_days
    from snapshots
    cross join params
    cross join (
        values ('14', 14), ('30', 30), ('60', 60), ('recent', null), ('120', 120)
    ) as named(window_name, days)
    cross join lateral (
        select named.window_name, coalesce(named.days, params.health_recent_days) as window_days
    ) as windows
),

season_customers as (
    select distinct
        season_windows.snapshot_role,
        season_windows.snapshot_date,
        season_windows.window_name,
        season_windows.window_days,
        customer_snapshots.customer_id
    from season_windows
    inner join customer_snapshots using (snapshot_role)
    inner join stream_days
        on stream_days.customer_id = customer_snapshots.customer_id
        and stream_days.stream = 'active'
        and stream_days.day > season_windows.snapshot_date - 365
        and stream_days.day <= season_windows.snapshot_date - 182
    where customer_snapshots.first_active_date <= season_windows.snapshot_date - 547 - 90
),

season_rates as (
    select
        season_customers.snapshot_role,
        season_customers.window_name,
        season_customers.window_days,
        stream_days.stream,
        count(distinct season_customers.customer_id) as customers,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day > season_customers.snapshot_date - 365 - season_customers.window_days
              and stream_days.day <= season_customers.snapshot_date - 365
        ), 0) as window_events,
        coalesce(sum(stream_days.events) filter (
            where stream_days.day > season_customers.snapshot_date - 547
              and stream_days.day <= season_customers.snapshot_date - 182
        ), 0) as year_events
    from season_customers
    inner join stream_days
        on stream_days.customer_id = season_customers.customer_id
        and stream_days.day > least(season_customers.snapshot_date - 547,
            season_customers.snapshot_date - 365 - season_customers.window_days)
        and stream_days.day <= season_customers.snapshot_date - 182
    group by all
),

-- The factor's log is shrunk towards 0 by its noise (the positive-part James-Stein rule, 1 - se^2 / log^2): a few
-- hundred customers' windows wander by a few per cent from year to year, and a season that small is not told from
-- that noise (without the shrinkage it raised the steady customers flagged on a population without a season from 3.6%
-- to 4.3%). se^2 of the log: the window's count, negative-binomial with the stream's dispersion, and the year's.
season_ratios as (
    select
        season_rates.snapshot_role,
        season_rates.stream,
        season_rates.window_name,
        ln(greatest(season_rates.window_events, 0.5) / season_rates.window_days
            / (season_rates.year_events / 365)) as log_season,
        (1 + dispersions.dispersion * season_rates.window_events / season_rates.customers)
            / greatest(season_rates.window_events, 0.5) + 1 / season_rates.year_events as log_season_variance
    from season_rates
    inner join dispersions using (snapshot_role, stream)
    where season_rates.customers >= 30 and season_rates.year_events >= 100
),

seasons as (
    select
        snapshot_role,
        stream,
        window_name,
        greatest(0.25, least(1.0, exp(
            greatest(0, 1 - log_season_variance / nullif(log_season ^ 2, 0)) * log_season
        ))) as season
    from season_ratios
),

population_figures as (
    select
        dispersions.snapshot_role,
        dispersions.stream,
        dispersions.dispersion,
        coalesce(any_value(seasons.season) filter (where seasons.window_name = '14'), 1.0) as season_14,
        coalesce(any_value(seasons.season) filter (where seasons.window_name = '30'), 1.0) as season_30,
        coalesce(any_value(seasons.season) filter (where seasons.window_name = '60'), 1.0) as season_60,
        coalesce(any_value(seasons.season) filter (where seasons.window_name = 'recent'), 1.0) as season_recent,
        coalesce(any_value(seasons.season) filter (where seasons.window_name = '120'), 1.0) as season_120
    from dispersions
    left join seasons using (snapshot_role, stream)
    group by all
)

select * from population_figures
