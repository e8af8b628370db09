-- tickets.csv: support tickets. Every customer may open one every ~5 months while active (8% of them
-- complaints), less often as a silent churner declines (at the rate multiplier of the day), rarely once a
-- one_time customer is done. Complainers (ground truth is_complainer) add a spike of 3-6 complaints within
-- 60 days: steady and slow_regular ones in the last 120 days (a passing problem), silent churners around
-- their decay start, cancelled ones in the 45 days before they cancel. Most are resolved within hours to
-- days; a few stay open. A planted bad row is opened in 1969.

with

profiles as (
    select * from sample_profiles
),

ticket_slots as (
    select * from sample_slots('profiles', 150)
),

regular_tickets as (
    select
        ticket_slots.*,
        sample_slot_day(customer_no, signup_day, 1, slot, 150, 'ticket_day') as day,
        'regular' as kind,
        sample_u(customer_no, 'ticket_complaint', slot) < 0.08 as is_complaint
    from ticket_slots
    where sample_u(customer_no, 'ticket', slot) < 0.35
),

spike_tickets as (
    select
        profiles.*,
        spike.slot,
        case archetype
            when 'silent_churner'
                then decay_day - 10 + least(sample_span_days() - decay_day + 10, floor(60 * sample_u(customer_no, 'spike_day', spike.slot)))::integer
            when 'cancelled' then cancel_day - 45 + least(44, floor(45 * sample_u(customer_no, 'spike_day', spike.slot)))::integer
            else greatest(signup_day, sample_span_days() - 119 + least(59, floor(60 * sample_u(customer_no, 'spike_window', 0))))
                + least(59, floor(60 * sample_u(customer_no, 'spike_day', spike.slot)))::integer
        end as day,
        'spike' as kind,
        true as is_complaint
    from profiles
    cross join range(1000, 1006) as spike(slot)
    where profiles.is_complainer
        and spike.slot < 1003 + least(3, floor(4 * sample_u(customer_no, 'spike_count', 0)))
),

all_tickets as (
    select regular_tickets.* from regular_tickets
    where day <= least(sample_span_days(), end_day)
        and sample_u(customer_no, 'ticket_alive', slot) < case archetype
            when 'one_time' then 0.3
            else sample_intensity(day, p1_start, p1_end, p2_start, p2_end, shape_day, shape_kind, shape_len, shape_level)
        end
    union all by name
    select * from spike_tickets
    where day <= sample_span_days()
),

opened as (
    select
        all_tickets.*,
        sample_ts(day, 28800 + floor(36000 * sample_u(customer_no, 'ticket_time', slot))) as opened_at,
        case
            when is_complaint then sample_pick(['delivery', 'billing', 'product', 'service'], sample_u(customer_no, 'ticket_category', slot))
            else sample_pick(['billing', 'delivery', 'product', 'account', 'how-to', 'other'], sample_u(customer_no, 'ticket_category', slot))
        end as category,
        sample_u(customer_no, 'ticket_open', slot) < 0.03 as stays_open,
        1800 + floor(432000 * pow(sample_u(customer_no, 'ticket_resolution', slot), 2)) as resolution_seconds
    from all_tickets
),

numbered as (
    select
        'T' || lpad(row_number() over (order by opened_at, customer_no, slot)::varchar, 7, '0') as ticket_id,
        'C' || lpad(customer_no::varchar, 6, '0') as customer_id,
        opened_at,
        case
            when not stays_open and opened_at + to_seconds(resolution_seconds::bigint) < sample_as_of_end()
                then opened_at + to_seconds(resolution_seconds::bigint)
        end as resolved_at,
        category,
        is_complaint,
        customer_no,
        slot,
        archetype,
        decay_day,
        day
    from opened
),

planted_bad_rows as (
    select
        key as ticket_id,
        customer_id,
        strptime(at_text, '%Y-%m-%d %H:%M:%S') as opened_at,
        null::timestamp as resolved_at,
        'other' as category,
        false as is_complaint,
        null::bigint as customer_no,
        null::bigint as slot,
        null::varchar as archetype,
        null::integer as decay_day,
        null::integer as day
    from sample_planted
    where entity = 'tickets'
),

tickets as (
    select * from numbered
    union all
    select * from planted_bad_rows
)

select * from tickets
