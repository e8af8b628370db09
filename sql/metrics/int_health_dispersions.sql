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
)

select * from dispersions
