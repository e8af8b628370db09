-- subscriptions.csv: the smb and enterprise customers subscribe from sign-up. A plan change ends the
-- subscription and starts a new one the same moment (upgrade: expansion, downgrade: contraction);
-- a cancellation or a lost customer ends it; a resurrected customer lapses in the gap and subscribes again.

with

subscribers as (
    select
        sample_profiles.*,
        ['starter', 'team', 'business', 'enterprise'] as plan_names,
        [29.00, 79.00, 199.00, 799.00] as plan_prices,
        sample_ts(signup_day, 28800 + floor(46800 * sample_u(customer_no, 'signup_time', 0)) + 900)
            as first_started_at,
        sample_ts(coalesce(cancel_day, 0), 32400 + floor(36000 * sample_u(customer_no, 'cancel_time', 0)))
            as cancelled_at,
        sample_ts(coalesce(plan_change_day, 0), 28800 + floor(36000 * sample_u(customer_no, 'plan_change_time', 0)))
            as plan_changed_at,
        sample_ts(coalesce(lost_day, gap_start_day, 0), 86399) as lapsed_at,
        sample_ts(coalesce(gap_end_day, 0), 28800 + floor(36000 * sample_u(customer_no, 'return_time', 0)))
            as returned_at
    from sample_profiles
    where is_subscriber
),

first_subscriptions as (
    select
        customer_no,
        1 as seq,
        first_started_at as started_at,
        case
            when archetype = 'cancelled' then cancelled_at
            when archetype in ('lost', 'resurrected') then lapsed_at
            when plan_change is not null then plan_changed_at
        end as ended_at,
        plan_names[plan_index + 1] as plan,
        plan_prices[plan_index + 1] * seats as mrr
    from subscribers
),

changed_subscriptions as (
    select
        customer_no,
        2 as seq,
        plan_changed_at as started_at,
        null::timestamp as ended_at,
        plan_names[changed_plan_index + 1] as plan,
        plan_prices[changed_plan_index + 1] * changed_seats as mrr
    from subscribers
    where plan_change is not null
),

returned_subscriptions as (
    select
        customer_no,
        3 as seq,
        returned_at as started_at,
        null::timestamp as ended_at,
        plan_names[plan_index + 1] as plan,
        plan_prices[plan_index + 1] * seats as mrr
    from subscribers
    where archetype = 'resurrected'
),

all_subscriptions as (
    select * from first_subscriptions
    union all
    select * from changed_subscriptions
    union all
    select * from returned_subscriptions
),

subscriptions as (
    select
        'S' || lpad(row_number() over (order by started_at, customer_no, seq)::varchar, 7, '0') as subscription_id,
        'C' || lpad(customer_no::varchar, 6, '0') as customer_id,
        started_at,
        ended_at,
        mrr::decimal(12, 2) as mrr,
        plan,
        customer_no,
        seq
    from all_subscriptions
)

select * from subscriptions
