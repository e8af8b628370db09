-- One row per customer with at least one purchase up to the as-of date: the repeat-purchase summary that the
-- BG/NBD model (transforms/models/bgnbd_scores.ts) is fitted on, in lifetimes' definitions
-- (summary_data_from_transaction_data). A purchase is a customer-day with a completed order (a $0 order counts, as
-- lifetimes counts every transaction: CDNOW's $0 purchases are in the paper's fit);
-- frequency = purchase days - 1 (repeat purchases), recency = last - first purchase day, t = as-of date - first
-- purchase day, both in run_params.health_model_time_unit (days, or days / 7 for weeks). monetary_value is the mean
-- revenue of the repeat purchase days (0 without a repeat purchase, as lifetimes), lifetime_revenue all of it.

with

orders as (
    select * from stg_orders
),

params as (
    select * from run_params
),

purchases as (
    select
        orders.customer_id,
        orders.ordered_date,
        orders.amount
    from orders
    cross join params
    where orders.status = 'completed'
        and orders.amount >= 0
        and orders.customer_id is not null
        and orders.ordered_date <= params.as_of_date
),

purchase_days as (
    select
        customer_id,
        ordered_date as purchase_date,
        sum(amount) as revenue
    from purchases
    group by customer_id, ordered_date
),

customer_purchase_days as (
    select
        customer_id,
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(revenue) as lifetime_revenue,
        arg_min(revenue, purchase_date) as first_day_revenue
    from purchase_days
    group by customer_id
),

time_unit as (
    select
        health_model_time_unit as time_unit,
        as_of_date,
        case health_model_time_unit
            when 'days' then 1.0
            when 'weeks' then 7.0
            else error('run_params.health_model_time_unit must be days or weeks, got ' || health_model_time_unit)
        end::double as days_per_unit
    from params
),

summaries as (
    select
        -- ids
        customer_purchase_days.customer_id,

        -- dates
        customer_purchase_days.first_purchase_date,
        customer_purchase_days.last_purchase_date,

        -- counts and durations in the model's time unit
        customer_purchase_days.purchase_days,
        customer_purchase_days.purchase_days - 1 as frequency,
        date_diff('day', customer_purchase_days.first_purchase_date, customer_purchase_days.last_purchase_date)
            / time_unit.days_per_unit as recency,
        date_diff('day', customer_purchase_days.first_purchase_date, time_unit.as_of_date)
            / time_unit.days_per_unit as t,
        time_unit.time_unit,

        -- money
        case
            when customer_purchase_days.purchase_days > 1
                then (customer_purchase_days.lifetime_revenue - customer_purchase_days.first_day_revenue)::double
                    / (customer_purchase_days.purchase_days - 1)
            else 0
        end::double as monetary_value,
        customer_purchase_days.lifetime_revenue::decimal(18, 2) as lifetime_revenue

    from customer_purchase_days
    cross join time_unit
)

select * from summaries
