-- surveys.csv: NPS (0-10) relationship surveys every ~4 months (35% answer) and CSAT (1-5) after
-- resolved tickets (40% answer). Steady customers score NPS 8-10 and CSAT 4-5; silent churners stop
-- answering after their decay start, except a late NPS of 0-6 (85% of them) and a CSAT of 1-2 (65%).
-- Comments sometimes hold commas, quotes and line breaks. Planted bad rows are appended.

with

profiles as (
    select * from sample_profiles
),

nps_slots as (
    select
        profiles.*,
        unnest(range(ceil((end_day - signup_day + 1) / 120.0)::bigint)) as slot
    from profiles
),

scheduled_nps as (
    select
        nps_slots.*,
        signup_day + 30 + floor((slot + sample_u(customer_no, 'nps_day', slot)) * 120)::integer as day,
        'nps' as survey_type
    from nps_slots
    where sample_u(customer_no, 'nps_answer', slot) < 0.35
),

answered_nps as (
    select scheduled_nps.*
    from scheduled_nps
    where day <= sample_span_days()
        and sample_alive(day, 0, archetype, signup_day, end_day, gap_start_day, gap_end_day, decay_day, decay_stop_day, decay_tau_days)
        and (decay_day is null or day < decay_day)
),

late_silent_responses as (
    -- silent churners' answers after the decay start: an NPS detractor score, a low CSAT
    select
        profiles.*,
        late.slot,
        decay_day + 1 + floor((0.2 + 0.75 * sample_u(customer_no, 'late_survey_day', late.slot)) * (sample_span_days() - decay_day - 1))::integer as day,
        case late.slot when 2000 then 'nps' else 'csat' end as survey_type
    from profiles
    cross join range(2000, 2002) as late(slot)
    where archetype = 'silent_churner'
        and sample_u(customer_no, 'late_survey', late.slot) < case late.slot when 2000 then 0.85 else 0.65 end
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
        ) as responded_at,
        sample_u(customer_no, 'survey_score', slot) as u_score,
        decay_day is not null and day >= decay_day as is_decayed
    from responses
),

scores as (
    select
        *,
        case
            when survey_type = 'nps' then
                case
                    when is_decayed then least(6, floor(7 * pow(u_score, 1.3)))
                    when archetype in ('steady', 'silent_churner') then 8 + least(2, floor(3 * u_score))
                    when archetype in ('new', 'resurrected') then 7 + least(3, floor(4 * u_score))
                    when archetype = 'cancelled' then 2 + least(6, floor(7 * u_score))
                    else 5 + least(4, floor(5 * u_score))
                end
            else
                case
                    when is_decayed then 1 + least(1, floor(2 * u_score))
                    when is_complaint then 2 + least(2, floor(3 * u_score))
                    when archetype in ('steady', 'silent_churner', 'new') then 4 + least(1, floor(2 * u_score))
                    else 3 + least(2, floor(3 * u_score))
                end
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
