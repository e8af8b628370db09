-- The expected numbers of orders and activity events of every customer in every calendar month of each
-- phase of its behaviour (sample_profiles): rate per day x days x a noisy-month factor (gamma, mean 1,
-- CV 0.4, one per customer and calendar month, shared by orders and activity) x seasonality (orders: the
-- month's factor, activity: its square root) x the phase's shape at the middle of the segment.
-- orders.sql and activity.sql draw Poisson counts from these means and place the events uniformly in the segment.
-- The follow-up after the as-of date has segments of its own (the phase a customer is in on the as-of date goes on),
-- so the history's draws are the same with or without it.

with

months as (
    select unnest(generate_series(
        date_trunc('month', sample_history_start())::date,
        sample_as_of(),
        interval 1 month
    ))::date as month_start
),

calendar as (
    select
        row_number() over (order by month_start) as bin_no,
        date_diff('month', date_trunc('month', sample_history_start())::date, month_start) as month_no,
        -- Jan .. Dec: a December bump, a summer dip (mean 1)
        [0.93, 0.92, 1.0, 1.0, 1.0, 0.96, 0.86, 0.82, 1.0, 1.04, 1.16, 1.31][month(month_start)] as season,
        greatest(0, date_diff('day', sample_history_start(), month_start))::integer as start_day,
        least(sample_span_days(), date_diff('day', sample_history_start(), last_day(month_start)))::integer as end_day
    from months
),

phases as (
    select customer_no, 1 as phase_no, p1_start as p_start, p1_end as p_end, order_rate, activity_rate,
        shape_day, shape_kind, shape_len, shape_level
    from sample_profiles
    where p1_end >= p1_start and (order_rate > 0 or activity_rate > 0)
    union all
    select customer_no, 2 as phase_no, p2_start as p_start, p2_end as p_end, order_rate, activity_rate,
        shape_day, shape_kind, shape_len, shape_level
    from sample_profiles
    where p2_end >= p2_start and (order_rate > 0 or activity_rate > 0)
),

follow_up_calendar as (
    -- the calendar months of the follow-up after the as-of date (each month's noise is the one the history drew)
    select
        row_number() over (order by month_start) as bin_no,
        date_diff('month', date_trunc('month', sample_history_start())::date, month_start) as month_no,
        [0.93, 0.92, 1.0, 1.0, 1.0, 0.96, 0.86, 0.82, 1.0, 1.04, 1.16, 1.31][month(month_start)] as season,
        greatest(sample_span_days() + 1, date_diff('day', sample_history_start(), month_start))::integer as start_day,
        least(sample_follow_up_end_day(), date_diff('day', sample_history_start(), last_day(month_start)))::integer
            as end_day
    from (
        select unnest(generate_series(
            date_trunc('month', sample_as_of() + 1)::date,
            sample_as_of() + (sample_follow_up_end_day() - sample_span_days()),
            interval 1 month
        ))::date as month_start
    )
),

follow_up_phases as (
    -- the phase a customer is in on the as-of date goes on (phase 1 to the end of the follow-up, one_time customers
    -- to two weeks after sign-up, a decline to its own end), except for a persuadable customer who never gets the
    -- win-back e-mail: nothing at all in the follow-up
    select customer_no, 1 as phase_no, sample_span_days() + 1 as p_start,
        case when archetype = 'one_time' then least(sample_follow_up_end_day(), signup_day + 13)
            else sample_follow_up_end_day()
        end as p_end,
        order_rate, activity_rate, shape_day, shape_kind, shape_len, shape_level
    from sample_profiles
    where p1_end = sample_span_days() and p1_end >= p1_start and (order_rate > 0 or activity_rate > 0)
      and not (is_persuadable and not winback_sent)
    union all
    select customer_no, 2 as phase_no, sample_span_days() + 1 as p_start,
        least(sample_follow_up_end_day(), p2_end_unclipped) as p_end,
        order_rate, activity_rate, shape_day, shape_kind, shape_len, shape_level
    from sample_profiles
    where p2_end = sample_span_days() and p2_end >= p2_start and (order_rate > 0 or activity_rate > 0)
      and not (is_persuadable and not winback_sent)
),

-- The history's phases and months, and the follow-up's: each phase is cut into the months of its own calendar.
all_phases as (
    select *, 'history' as part, 0 as first_segment_no from phases
    union all by name
    select *, 'follow_up' as part, 50000 as first_segment_no from follow_up_phases
),

all_calendar as (
    select *, 'history' as part from calendar
    union all by name
    select *, 'follow_up' as part from follow_up_calendar
),

phase_bins as (
    select
        all_phases.*,
        all_calendar.bin_no,
        all_calendar.month_no,
        all_calendar.season,
        greatest(all_calendar.start_day, all_phases.p_start) as lo,
        least(all_calendar.end_day, all_phases.p_end) as hi
    from all_phases
    join all_calendar
        on all_calendar.part = all_phases.part
       and all_calendar.start_day <= all_phases.p_end
       and all_calendar.end_day >= all_phases.p_start
),

all_segments as (
    select
        customer_no,
        -- unique per customer: the hash index of the segment's draws; the follow-up's apart from the history's
        -- (2 x its months + 2 at most) and from the fixed slots of orders.sql and activity.sql (98000000 and up)
        first_segment_no + bin_no * 2 + phase_no as segment_no,
        lo,
        hi,
        case when phase_no = 1 then 1.0 else sample_shape((lo + hi) / 2 - shape_day, shape_kind, shape_len, shape_level) end
            as shape,
        sample_gamma1(sample_normal(customer_no, 'month_noise', month_no), sample_month_noise_cv()) as noise,
        season,
        order_rate,
        activity_rate
    from phase_bins
    where hi >= lo
)

select
    customer_no::integer as customer_no,
    segment_no::integer as segment_no,
    lo::integer as lo,
    hi::integer as hi,
    shape::float as shape,
    (order_rate / 30 * (hi - lo + 1) * noise * season * shape)::float as lam_orders,
    (activity_rate / 30 * (hi - lo + 1) * noise * sqrt(season) * shape)::float as lam_activity
from all_segments
