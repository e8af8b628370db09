-- The hidden plan of the synthetic sample: one row per customer with its archetype, its key days and
-- its cadences. Every entity file draws its rows from this table, so the ground truth is known exactly.
-- Days are integers counted from sample_history_start(); day span_days is the as-of date.
--
-- Archetypes (exact shares, assigned by hash rank):
--   steady 50%, silent_churner 15%, cancelled 8%, resurrected 7%, new 10%, lost 10%.

with

customer_numbers as (
    select range + 1 as customer_no
    from range(sample_customers())
),

archetype_ranks as (
    select
        customer_numbers.customer_no,
        (row_number() over (order by sample_u(customer_numbers.customer_no, 'archetype', 0), customer_numbers.customer_no) - 1)
            / sample_customers()::double as archetype_q
    from customer_numbers
),

archetypes as (
    select
        customer_no,
        case
            when archetype_q < 0.50 then 'steady'
            when archetype_q < 0.65 then 'silent_churner'
            when archetype_q < 0.73 then 'cancelled'
            when archetype_q < 0.80 then 'resurrected'
            when archetype_q < 0.90 then 'new'
            else 'lost'
        end as archetype
    from archetype_ranks
),

attributes as (
    select
        archetypes.customer_no,
        archetypes.archetype,
        sample_span_days() as span_days,
        case
            when sample_u(customer_no, 'segment', 0) < 0.55 then 'consumer'
            when sample_u(customer_no, 'segment', 0) < 0.90 then 'smb'
            else 'enterprise'
        end as segment,
        case
            when sample_u(customer_no, 'country', 0) < 0.40 then 'DE'
            when sample_u(customer_no, 'country', 0) < 0.52 then 'AT'
            when sample_u(customer_no, 'country', 0) < 0.62 then 'CH'
            when sample_u(customer_no, 'country', 0) < 0.74 then 'FR'
            when sample_u(customer_no, 'country', 0) < 0.84 then 'NL'
            else 'US'
        end as country,
        sample_u(customer_no, 'consent', 0) < 0.80 as marketing_consent,
        -- anchor days of the archetypes that are fixed relative to the as-of date
        case when archetype = 'silent_churner'
            then sample_span_days() - 30 - least(119, floor(120 * sample_u(customer_no, 'decay_day', 0)))::integer
        end as decay_day,
        case when archetype = 'resurrected'
            then sample_span_days() - 45 - least(54, floor(55 * sample_u(customer_no, 'gap_end', 0)))::integer
        end as gap_end_day,
        120 + least(119, floor(120 * sample_u(customer_no, 'gap_days', 0)))::integer as gap_days,
        sample_u(customer_no, 'signup', 0) as u_signup,
        sample_u(customer_no, 'end', 0) as u_end
    from archetypes
),

signups as (
    select
        *,
        gap_end_day - gap_days as gap_start_day,
        case archetype
            -- more sign-ups early in the history: density falling with the day
            when 'steady' then floor((span_days - 120) * pow(u_signup, 1.4))
            when 'silent_churner' then floor((decay_day - 200) * pow(u_signup, 1.4))
            when 'cancelled' then floor((span_days - 100) * pow(u_signup, 1.4))
            when 'resurrected' then floor((gap_end_day - gap_days - 90) * pow(u_signup, 1.4))
            when 'new' then span_days - least(89, floor(90 * u_signup))
            when 'lost' then floor((span_days - 470) * pow(u_signup, 1.4))
        end::integer as signup_day
    from attributes
),

lifetimes as (
    select
        *,
        case archetype
            when 'cancelled' then signup_day + 60 + floor((span_days - 67 - signup_day) * u_end)::integer
        end as cancel_day,
        case archetype
            when 'lost' then signup_day + 60 + floor((span_days - 440 - signup_day) * u_end)::integer
        end as lost_day
    from signups
),

behaviours as (
    select
        lifetimes.*,
        -- the last day of normal behaviour: a cancelling customer is gone the day they cancel
        coalesce(cancel_day - 1, lost_day, span_days) as end_day,
        -- silent churners: decay time constant, and about a third stop completely soon after the decay start
        6 + 14 * sample_u(customer_no, 'decay_tau', 0) as decay_tau_days,
        case when archetype = 'silent_churner' and sample_u(customer_no, 'decay_stop', 0) < 0.35
            then decay_day + floor(25 * sample_u(customer_no, 'decay_stop_day', 0))::integer
        end as decay_stop_day,
        -- cadences: an activity event every few days, an order every 2-6 weeks
        4 + 8 * sample_u(customer_no, 'activity_gap', 0) as activity_gap_days,
        14 + 28 * sample_u(customer_no, 'order_gap', 0) as order_gap_days,
        round(
            case segment when 'consumer' then 20 when 'smb' then 80 else 300 end
            * pow(case segment when 'consumer' then 7.5 when 'smb' then 5 else 6.5 end,
                sample_u(customer_no, 'order_amount', 0)),
            2
        ) as base_order_amount,
        -- e-mail engagement while engaged (>= 0.382 so that the golden-ratio sequence never skips 3 in a row)
        case archetype
            when 'new' then 0.45 + 0.25 * sample_u(customer_no, 'open_p', 0)
            when 'steady' then 0.40 + 0.20 * sample_u(customer_no, 'open_p', 0)
            when 'silent_churner' then 0.40 + 0.20 * sample_u(customer_no, 'open_p', 0)
            else 0.39 + 0.15 * sample_u(customer_no, 'open_p', 0)
        end as open_p,
        sample_u(customer_no, 'open_phase', 0) as open_phase,
        case
            when archetype = 'cancelled' then least(span_days, cancel_day + 90)
            when archetype = 'lost' then least(span_days, lost_day + 180)
            else span_days
        end as email_to_day,
        -- independent traits
        archetype in ('steady', 'silent_churner')
            and sample_u(customer_no, 'complainer', 0) < 0.05 as is_complainer,
        segment <> 'consumer' as is_subscriber,
        segment <> 'consumer' and archetype in ('steady', 'silent_churner', 'resurrected')
            and sample_u(customer_no, 'late_payer', 0) < 0.065 as is_late_payer,
        sample_u(customer_no, 'email_variant', 0) as u_email_variant,
        sample_u(customer_no, 'email_stop', 0) as u_email_stop
    from lifetimes
),

formula_names as (
    -- three consenting silent churners get names that look like spreadsheet formulas
    select customer_no, row_number() over (order by sample_u(customer_no, 'formula', 0), customer_no) as formula_rank
    from behaviours
    where archetype = 'silent_churner' and marketing_consent
    qualify formula_rank <= 3
),

subscription_plans as (
    select
        behaviours.*,
        formula_names.formula_rank,
        case
            when not is_subscriber then null
            when segment = 'smb' then
                case
                    when sample_u(customer_no, 'plan', 0) < 0.45 then 0
                    when sample_u(customer_no, 'plan', 0) < 0.85 then 1
                    else 2
                end
            else case when sample_u(customer_no, 'plan', 0) < 0.5 then 2 else 3 end
        end as plan_index,
        case when segment = 'enterprise' then 1 + least(3, floor(4 * sample_u(customer_no, 'seats', 0)))::integer
            else 1
        end as seats,
        sample_u(customer_no, 'plan_change', 0) as u_plan_change,
        sample_u(customer_no, 'plan_change_day', 0) as u_plan_change_day
    from behaviours
    left join formula_names using (customer_no)
),

plan_changes as (
    select
        *,
        case
            when not is_subscriber then null
            when archetype in ('steady', 'new') and signup_day <= span_days - 75 and u_plan_change < 0.15 then 'upgrade'
            when archetype in ('steady', 'new') and signup_day <= span_days - 75 and u_plan_change < 0.21 and plan_index > 0
                then 'downgrade'
            when archetype = 'silent_churner' and u_plan_change < 0.30 and plan_index > 0 then 'downgrade'
        end as plan_change
    from subscription_plans
),

profiles as (
    select
        customer_no,
        'C' || lpad(customer_no::varchar, 6, '0') as customer_id,
        archetype,
        segment,
        country,
        marketing_consent,
        signup_day,
        end_day,
        cancel_day,
        lost_day,
        decay_day,
        decay_stop_day,
        decay_tau_days,
        case when archetype = 'resurrected' then gap_start_day end as gap_start_day,
        gap_end_day,
        activity_gap_days,
        order_gap_days,
        base_order_amount,
        open_p,
        open_phase,
        email_to_day,
        -- e-mail address quirks: a shared address (~0.2%), upper case and spaces, invalid, none
        case
            when formula_rank is not null then 'normal'
            when u_email_variant < 0.002 and customer_no > 1 then 'shared'
            when u_email_variant < 0.005 then 'messy'
            when u_email_variant < 0.006 then 'invalid'
            when u_email_variant < 0.010 then 'missing'
            else 'normal'
        end as email_variant,
        -- how a consenting customer's e-mails stop early, if they do
        case
            when formula_rank is not null then null
            when u_email_stop < 0.005 then 'bounce'
            when u_email_stop < 0.020 then 'unsubscribe'
            when u_email_stop < 0.023 then 'spam_complaint'
        end as email_stop,
        formula_rank,
        is_complainer,
        is_subscriber,
        is_late_payer,
        plan_index,
        seats,
        plan_change,
        case plan_change
            when 'upgrade' then least(3, plan_index + 1)
            when 'downgrade' then plan_index - 1
        end as changed_plan_index,
        case
            when plan_change = 'upgrade' and plan_index = 3 then seats + 1
            else seats
        end as changed_seats,
        case
            when plan_change is null then null
            when archetype = 'silent_churner' then decay_day + 7 + floor((span_days - decay_day - 7) * u_plan_change_day)::integer
            when plan_change is not null then signup_day + 60 + floor((span_days - 74 - signup_day) * u_plan_change_day)::integer
        end as plan_change_day
    from plan_changes
)

select * from profiles
