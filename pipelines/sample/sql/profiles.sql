-- The hidden plan of the synthetic sample: one row per customer with its archetype, its key days, its
-- rates and its traits. Every entity file draws its rows from this table, so the ground truth is known
-- exactly. Days are integers counted from sample_history_start(); day span_days is the as-of date.
--
-- The population is meant to be as hard as real purchase logs (CDNOW, UCI Online Retail): most customers
-- buy rarely, a long tail buys often, and nobody keeps a clockwork cadence.
--   Rates. Every customer has an order rate and an activity-event rate per 30 days, lognormal with a
--     coefficient of variation of 1 (orders: median 0.7 per 30 days, so some order weekly and many every 1-3
--     months; activity: median 3, correlated 0.6 with the order rate; 8% of customers have no activity
--     events at all). Orders and events are Poisson counts per month (sample_segments) of that rate
--     times a noisy-month factor per customer-month (gamma, mean 1, CV 0.4) times a mild seasonality (a
--     December bump, a summer dip); the first order and event fall on the sign-up day.
--   Archetypes (exact shares, assigned by hash rank):
--     steady          33%  the rates above, to the as-of date
--     slow_regular    10%  an order every 45-120 days (its own gap, +-15%), few activity events; not churners
--     one_time        10%  exactly one order (on sign-up, any time in the history), a few events in 2 weeks
--     silent_churner  14%  a decline starting 20-200 days before the as-of date (ground truth decay_start),
--                          of three kinds (decay_kind, exact shares): fast 30% (rate to 0 within 7-30 days),
--                          slow 40% (linear or exponential to ~0 over 60-150 days), partial 30% (to 15-40% of
--                          the baseline within 14-60 days, then flat). It hits orders and activity; e-mail
--                          opens fall for 60% of them, surveys worsen for 30%, complaints spike for 15%, and
--                          subscribers keep paying (30% downgrade)
--     cancelled        7%  an explicit cancellation: customers.cancelled_at (always without a subscription,
--                          for 60% of subscribers) and the subscription ended; 40% decline before cancelling
--     resurrected      7%  a gap of 90-300 days with nothing, back 30-150 days before the as-of date at
--                          50-110% of the old rate
--     new              9%  signed up 1-90 days before the as-of date
--     lost            10%  stopped abruptly: 55% more than a year before the as-of date, 45% 4-11 months before
--   Noise the detector must tolerate: satisfaction is a per-customer trait (about a fifth of the survey
--   answers of healthy customers are NPS detractors), 12% of recipients never open e-mails and the others
--   open 8-70% of them, 3-4% of steady and slow_regular customers have a recent complaint spike, 5% of
--   their subscribers pay late.
--   The follow-up: after the as-of date the sample goes on sample_follow_up_end_day() - span_days more days
--     (orders, activity and the e-mail's events only), in which a win-back e-mail sent the day after D to the default holdout's target
--     group (less a share it never reaches) brings back the persuadable customers (sample_campaign_lift() of all,
--     drawn independently of everything else): back within two weeks when e-mailed, away for the whole follow-up
--     when not. So the e-mailed customers come back at a rate that share above control's (in expectation), in any
--     window of 14 days or more and in any part of the population.

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
            when archetype_q < 0.33 then 'steady'
            when archetype_q < 0.43 then 'slow_regular'
            when archetype_q < 0.53 then 'one_time'
            when archetype_q < 0.67 then 'silent_churner'
            when archetype_q < 0.74 then 'cancelled'
            when archetype_q < 0.81 then 'resurrected'
            when archetype_q < 0.90 then 'new'
            else 'lost'
        end as archetype
    from archetype_ranks
),

decay_kinds as (
    -- the silent churners' kinds of decline, in exact shares by hash rank among them
    select
        customer_no,
        archetype,
        case when archetype = 'silent_churner' then
            case
                when kind_q < 0.30 then 'fast'
                when kind_q < 0.70 then 'slow'
                else 'partial'
            end
        end as decay_kind
    from (
        select
            *,
            (row_number() over (partition by archetype order by sample_u(customer_no, 'decay_kind', 0), customer_no) - 1)
                / count(*) over (partition by archetype)::double as kind_q
        from archetypes
    )
),

attributes as (
    select
        customer_no,
        archetype,
        decay_kind,
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
            then sample_span_days() - 20 - least(180, floor(181 * sample_u(customer_no, 'decay_day', 0)))::integer
        end as decay_day,
        case when archetype = 'resurrected'
            then sample_span_days() - 30 - least(120, floor(121 * sample_u(customer_no, 'gap_end', 0)))::integer
        end as gap_end_day,
        90 + least(210, floor(211 * sample_u(customer_no, 'gap_days', 0)))::integer as gap_days,
        case when archetype = 'lost' then
            case when sample_u(customer_no, 'lost_kind', 0) < 0.55
                then sample_span_days() - 366 - least(334, floor(335 * sample_u(customer_no, 'lost_idle', 0)))::integer
                else sample_span_days() - 120 - least(215, floor(216 * sample_u(customer_no, 'lost_idle', 0)))::integer
            end
        end as lost_day,
        45 + 75 * sample_u(customer_no, 'order_gap', 0) as regular_gap_days,
        -- the customer's rates per 30 days: lognormal, sigma 0.83 (CV 1), activity correlated 0.6 with orders
        sample_normal(customer_no, 'order_rate', 0) as z_order,
        sample_normal(customer_no, 'activity_rate', 0) as z_activity,
        sample_u(customer_no, 'has_activity', 0) >= 0.08 as has_activity,
        sample_u(customer_no, 'signup', 0) as u_signup,
        sample_u(customer_no, 'end', 0) as u_end
    from decay_kinds
),

signups as (
    select
        *,
        gap_end_day - gap_days as gap_start_day,
        case archetype
            -- more sign-ups early in the history: density falling with the day
            when 'steady' then floor((span_days - 120) * pow(u_signup, 1.4))
            when 'slow_regular' then floor((span_days - 300) * pow(u_signup, 1.2))
            when 'one_time' then floor((span_days + 1) * u_signup)
            when 'silent_churner' then floor((decay_day - 150) * pow(u_signup, 1.4))
            when 'cancelled' then floor((span_days - 45) * pow(u_signup, 1.4))
            when 'resurrected' then floor((gap_end_day - gap_days - 90) * pow(u_signup, 1.4))
            when 'new' then span_days - least(89, floor(90 * u_signup))
            when 'lost' then floor((lost_day - 60) * pow(u_signup, 1.4))
        end::integer as signup_day
    from attributes
),

lifetimes as (
    select
        *,
        case archetype
            when 'cancelled' then signup_day + 30 + least(span_days - signup_day - 30, floor((span_days - signup_day - 29) * u_end))::integer
        end as cancel_day,
        least(8.0, greatest(0.06, 0.45 * exp(0.9 * z_order)))
            * case archetype when 'lost' then 0.7 else 1 end as poisson_order_rate,
        case when has_activity
            then least(60.0, greatest(0.1 * sample_activity_scale(), 3.0 * sample_activity_scale() * exp(0.83 * (0.6 * z_order + 0.8 * z_activity))))
            else 0
        end as poisson_activity_rate,
        segment <> 'consumer' and archetype <> 'one_time' as is_subscriber
    from signups
),

traits as (
    -- the independent traits, and how the silent churners' signals (mis)align
    select
        *,
        case archetype
            when 'steady' then sample_u(customer_no, 'complainer', 0) < 0.04
            when 'slow_regular' then sample_u(customer_no, 'complainer', 0) < 0.03
            when 'silent_churner' then sample_u(customer_no, 'complainer', 0) < 0.15
            when 'cancelled' then sample_u(customer_no, 'complainer', 0) < 0.12 and cancel_day - signup_day >= 45
            else false
        end as is_complainer,
        is_subscriber and case archetype
            when 'steady' then sample_u(customer_no, 'late_payer', 0) < 0.05
            when 'slow_regular' then sample_u(customer_no, 'late_payer', 0) < 0.05
            when 'silent_churner' then sample_u(customer_no, 'late_payer', 0) < 0.12
            when 'resurrected' then sample_u(customer_no, 'late_payer', 0) < 0.05
            else false
        end as is_late_payer,
        archetype = 'silent_churner' and sample_u(customer_no, 'email_declines', 0) < 0.60 as email_declines,
        archetype = 'silent_churner' and sample_u(customer_no, 'survey_worsens', 0) < 0.30 as survey_worsens,
        archetype = 'silent_churner' and sample_u(customer_no, 'basket_shrinks', 0) < 0.50 as basket_shrinks,
        -- the cancelled customers that fade before they cancel (for 21-60 days, to 30% of their rate)
        archetype = 'cancelled' and sample_u(customer_no, 'pre_cancel', 0) < 0.40 as fades_before_cancel,
        -- who of the cancelled subscribers also closes the account (cancelled_at); the others only end the subscription
        archetype = 'cancelled' and (not is_subscriber or sample_u(customer_no, 'closes_account', 0) < 0.60) as has_cancelled_at
    from lifetimes
),

phases as (
    -- behaviour in two phases: phase 1 at the customer's own rates; phase 2 shaped (a decline, a return)
    select
        *,
        coalesce(cancel_day - 1, lost_day, span_days) as end_day,
        case archetype
            when 'silent_churner' then decay_day
            when 'cancelled' then
                case when fades_before_cancel
                    then greatest(signup_day + 7, cancel_day - 21 - floor(40 * sample_u(customer_no, 'pre_cancel_days', 0))::integer)
                end
            when 'resurrected' then gap_end_day
        end as shape_day,
        case
            when decay_kind = 'slow' and sample_u(customer_no, 'slow_kind', 0) < 0.5 then 'exp'
            when archetype = 'resurrected' then 'level'
            else 'linear'
        end as shape_kind,
        case decay_kind
            when 'fast' then 7 + floor(24 * sample_u(customer_no, 'decay_len', 0))
            when 'slow' then 60 + floor(91 * sample_u(customer_no, 'decay_len', 0))
            when 'partial' then 14 + floor(47 * sample_u(customer_no, 'decay_len', 0))
            else 30
        end::integer as decay_len_days,
        case
            when decay_kind = 'partial' then 0.15 + 0.25 * sample_u(customer_no, 'decay_level', 0)
            when decay_kind is not null then 0.0
            when archetype = 'cancelled' then 0.3
            when archetype = 'resurrected' then 0.5 + 0.6 * sample_u(customer_no, 'return_level', 0)
            else 1.0
        end as shape_level
    from traits
),

plans as (
    select
        *,
        signup_day as p1_start,
        case archetype
            when 'one_time' then least(span_days, signup_day + 13)
            when 'silent_churner' then decay_day - 1
            when 'cancelled' then coalesce(shape_day, cancel_day) - 1
            when 'resurrected' then gap_start_day - 1
            else end_day
        end as p1_end,
        shape_day as p2_start,
        case archetype
            when 'silent_churner' then least(span_days, decay_day - 1 + case
                when decay_kind = 'partial' then span_days
                when shape_kind = 'exp' then 2 * decay_len_days
                else decay_len_days
            end)
            when 'cancelled' then case when shape_day is not null then cancel_day - 1 end
            when 'resurrected' then span_days
        end as p2_end,
        case
            when archetype = 'cancelled' then greatest(1, coalesce(cancel_day - shape_day, 1))
            else decay_len_days
        end as shape_len,
        -- the rates of the Poisson processes (per 30 days): slow_regular orders on their own clock, one_time never again
        case when archetype in ('slow_regular', 'one_time') then 0 else poisson_order_rate end as order_rate,
        case when archetype = 'slow_regular' and has_activity
            then 0.15 + 0.45 * sample_u(customer_no, 'background_rate', 0)
            else poisson_activity_rate
        end as activity_rate,
        case archetype
            when 'slow_regular' then 30 / regular_gap_days
            when 'one_time' then 0
            else poisson_order_rate
        end as base_orders_per_30d,
        round(
            case segment when 'consumer' then 20 when 'smb' then 80 else 300 end
            * pow(case segment when 'consumer' then 7.5 when 'smb' then 5 else 6.5 end,
                sample_u(customer_no, 'order_amount', 0)),
            2
        ) as base_order_amount,
        -- e-mail: 12% of recipients never open, the others open 8-70% of the newsletters
        case when sample_u(customer_no, 'opener', 0) < 0.12
            then 0.02 * sample_u(customer_no, 'open_p', 0)
            else 0.08 + 0.62 * pow(sample_u(customer_no, 'open_p', 0), 1.4)
        end as open_p,
        case
            when archetype = 'cancelled' then least(span_days, cancel_day + 90)
            when archetype = 'lost' then least(span_days, lost_day + 180)
            else span_days
        end as email_to_day,
        -- satisfaction: the customer's mean NPS score (0-10), lower for those who leave
        10 - 4.6 * pow(sample_u(customer_no, 'satisfaction', 0), 1.8)
            + case archetype when 'cancelled' then -1.5 when 'lost' then -1.0 when 'one_time' then -0.8 when 'new' then 0.3 else 0 end
            as nps_mean,
        -- how far a worsening silent churner's scores fall after the decay start
        3 + 3 * sample_u(customer_no, 'survey_drop', 0) as survey_drop,
        sample_u(customer_no, 'email_variant', 0) as u_email_variant,
        sample_u(customer_no, 'email_stop', 0) as u_email_stop
    from phases
),

formula_names as (
    -- three consenting fast-decaying silent churners get names that look like spreadsheet formulas
    select customer_no, row_number() over (order by sample_u(customer_no, 'formula', 0), customer_no) as formula_rank
    from plans
    where archetype = 'silent_churner' and decay_kind = 'fast' and marketing_consent
    qualify formula_rank <= 3
),

subscription_plans as (
    select
        plans.*,
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
    from plans
    left join formula_names using (customer_no)
),

plan_changes as (
    select
        *,
        case
            when not is_subscriber then null
            when archetype in ('steady', 'slow_regular', 'new') and signup_day <= span_days - 75 and u_plan_change < 0.15
                then 'upgrade'
            when archetype in ('steady', 'slow_regular', 'new') and signup_day <= span_days - 75 and u_plan_change < 0.21
                and plan_index > 0 then 'downgrade'
            when archetype = 'silent_churner' and u_plan_change < 0.30 and plan_index > 0 and decay_day <= span_days - 8
                then 'downgrade'
        end as plan_change
    from subscription_plans
),

profiles as (
    select
        customer_no,
        'C' || lpad(customer_no::varchar, 6, '0') as customer_id,
        archetype,
        decay_kind,
        segment,
        country,
        marketing_consent,
        signup_day,
        end_day,
        cancel_day,
        has_cancelled_at,
        lost_day,
        decay_day,
        case when archetype = 'resurrected' then gap_start_day end as gap_start_day,
        gap_end_day,
        -- the two phases of behaviour and the shape of the second
        p1_start,
        p1_end,
        p2_start,
        p2_end,
        shape_day,
        shape_kind,
        shape_len,
        shape_level,
        order_rate,
        activity_rate,
        has_activity,
        case when archetype = 'slow_regular' then regular_gap_days end as regular_gap_days,
        base_orders_per_30d,
        base_order_amount,
        basket_shrinks,
        open_p,
        email_declines,
        email_to_day,
        nps_mean,
        survey_worsens,
        survey_drop,
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
        end as plan_change_day,
        -- the follow-up: how behaviour would go on after D (the second phase without its cut at span_days)
        case
            when archetype = 'silent_churner' and decay_kind = 'partial' then sample_follow_up_end_day()
            when archetype = 'silent_churner'
                then decay_day - 1 + case when shape_kind = 'exp' then 2 * decay_len_days else decay_len_days end
            when archetype = 'resurrected' then sample_follow_up_end_day()
        end as p2_end_unclipped
    from plan_changes
),

campaign as (
    -- the win-back campaign of the day after D: the holdout group the pipeline's default config gives the customer
    -- (sha256 of the salt and id, as int_audience_candidates), whether the e-mail reaches them (the target group with
    -- consent and a usable address, less a share it never reaches), and whether they are persuadable: back within
    -- two weeks when e-mailed, away for the whole follow-up when not; the others behave as they would anyway
    select
        *,
        holdout_group = 'target' and marketing_consent and email_variant in ('normal', 'shared', 'messy')
            and email_stop is null
            and sample_u(customer_no, 'winback_sent', 0) >= sample_never_sent_share() as winback_sent,
        sample_u(customer_no, 'persuadable', 0) < sample_campaign_lift() as is_persuadable,
        sample_span_days() + 2 + least(11, floor(12 * sample_u(customer_no, 'winback_return', 0)))::integer
            as winback_return_day
    from (
        select
            *,
            case
                when ('0x' || left(sha256(sample_holdout_salt() || customer_id), 8))::ubigint / 4294967296.0
                    < sample_control_share() then 'control'
                else 'target'
            end as holdout_group
        from profiles
    )
)

select * from campaign
