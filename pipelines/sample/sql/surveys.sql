-- surveys.csv: NPS (0-10) relationship surveys every ~4 months (35% answer) and CSAT (1-5) after
-- resolved tickets (40% answer). Scores scatter around the customer's own satisfaction (nps_mean: about a
-- fifth of the healthy customers' NPS answers are detractors), lower for complaints. Silent churners answer
-- less as they decline, except the 30% whose satisfaction worsens: their scores fall by 3-6 points after
-- the decay start, and most of them give a late NPS (70%) and a late CSAT (45%). Cancelling customers
-- score lower in their last 60 days. Comments sometimes hold commas, quotes and line breaks. Planted bad
-- rows are appended.

with

profiles as (
    select * from sample_profiles
),

nps_slots as (
    select * from sample_slots('profiles', 120)
),

scheduled_nps as (
    select
        nps_slots.*,
        sample_slot_day(customer_no, signup_day, 30, slot, 120, 'nps_day') as day,
        'nps' as survey_type
    from nps_slots
    where sample_u(customer_no, 'nps_answer', slot) < 0.35
),

answered_nps as (
    select scheduled_nps.*
    from scheduled_nps
    where day <= least(sample_span_days(), end_day)
        and not coalesce(day >= gap_start_day and day < gap_end_day, false)
        and sample_u(customer_no, 'nps_engaged', slot) < case
            when archetype = 'silent_churner' and not survey_worsens
                then 0.3 + 0.7 * sample_intensity(day, p1_start, p1_end, p2_start, p2_end, shape_day, shape_kind, shape_len, shape_level)
            when archetype = 'one_time' then 0.5
            else 1.0
        end
),

late_silent_responses as (
    -- the worsening silent churners' answers after the decay start: an NPS, a CSAT
    select
        profiles.*,
        late.slot,
        decay_day + 5 + floor(sample_u(customer_no, 'late_survey_day', late.slot) * (sample_span_days() - decay_day - 4))::integer as day,
        case late.slot when 2000 then 'nps' else 'csat' end as survey_type
    from profiles
    cross join range(2000, 2002) as late(slot)
    where survey_worsens
        and sample_u(customer_no, 'late_survey', late.slot) < case late.slot when 2000 then 0.70 else 0.45 end
),

ticket_csat as (
    select
        profiles.*,
        10000 + tickets.slot as slot,
        tickets.day,
        'csat' as survey_type,
        tickets.is_complaint,
        tickets.resolved_at
    from sample_tickets as tickets
    join profiles using (customer_no)
    where tickets.resolved_at is not null
        and sample_u(customer_no, 'csat_answer', tickets.slot) < 0.40
),

responses as (
    select *, false as is_complaint, null::timestamp as resolved_at from answered_nps
    union all by name
    select *, false as is_complaint, null::timestamp as resolved_at from late_silent_responses
    union all by name
    select * from ticket_csat
),

scored as (
    select
        responses.*,
        coalesce(
            resolved_at + to_seconds((3600 + floor(172800 * sample_u(customer_no, 'survey_time', slot)))::bigint),
            sample_ts(day, 25200 + floor(54000 * sample_u(customer_no, 'survey_time', slot)))
        ) as responded_at
    from responses
),

scores as (
    select
        *,
        -- the customer's satisfaction on the day, on the NPS scale
        nps_mean
            - case when survey_worsens and day >= decay_day then survey_drop else 0 end
            - case when archetype = 'cancelled' and day >= cancel_day - 60 then 2 else 0 end as satisfaction,
        case
            when survey_type = 'nps' then
                greatest(0, least(10, round(satisfaction + 1.3 * sample_normal(customer_no, 'survey_score', slot))))
            else
                greatest(1, least(5, round(1 + 0.4 * satisfaction + 0.8 * sample_normal(customer_no, 'survey_score', slot)
                    - case when is_complaint then 1.2 else 0 end)))
        end::integer as score
    from scored
    where responded_at < sample_as_of_end()
),

commented as (
    select
        scores.*,
        case
            when sample_u(customer_no, 'comment', slot) >= 0.25 then null
            when (survey_type = 'nps' and score >= 9) or (survey_type = 'csat' and score >= 4) then sample_pick([
                'Great service, fast delivery.',
                'Love it',
                'The new dashboard is "exactly" what we needed, thanks!',
                'Very happy.
Keep it up!',
                'Quick answer from support, problem solved'
            ], sample_u(customer_no, 'comment_text', slot))
            when (survey_type = 'nps' and score >= 7) or (survey_type = 'csat' and score = 3) then sample_pick([
                'OK, but a bit expensive',
                'Fine overall',
                'Shipping could be faster; otherwise good.',
                'Does the job'
            ], sample_u(customer_no, 'comment_text', slot))
            else sample_pick([
                'Too expensive, and the app is slow',
                'Support said "we will call you back" and never did.',
                'Not using it much anymore',
                'Delivery was late again.
Second time this month, very disappointing.',
                'Prices went up, quality went down'
            ], sample_u(customer_no, 'comment_text', slot))
        end as comment
    from scores
),

numbered as (
    select
        'R' || lpad(row_number() over (order by responded_at, customer_no, slot)::varchar, 7, '0') as response_id,
        'C' || lpad(customer_no::varchar, 6, '0') as customer_id,
        sample_ts_text(responded_at) as responded_at,
        survey_type,
        score,
        comment,
        row_number() over (order by responded_at, customer_no, slot) as sort_no
    from commented
),

planted_bad_rows as (
    select
        key as response_id,
        customer_id,
        at_text as responded_at,
        survey_type,
        score,
        null::varchar as comment,
        1000000000 + row_number() over (order by key) as sort_no
    from sample_planted
    where entity = 'surveys'
),

surveys as (
    select * from numbered
    union all
    select * from planted_bad_rows
)

select * from surveys
