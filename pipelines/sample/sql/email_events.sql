-- email_events.ndjson: a newsletter campaign every `campaign_every_days` days (Tuesdays), sent to every
-- consenting customer with a usable address from sign-up until the as-of date (cancelled customers for
-- 90 more days, lost ones for 180). Each send is a `sent`, maybe an `open` and a `click`; like many
-- e-mail services, the export keeps `delivered` receipts for the last 90 days only.
-- Each send is opened independently at the customer's open rate (12% of recipients almost never open)
-- times the campaign's appeal (0.75-1.25) times the customer's engagement: 60% of the silent churners open
-- less as they decline (to at most 4% of their rate), the others keep opening; cancelled and lost customers
-- rarely open after they leave, resurrected ones during their gap, one_time customers less and less.
-- A few customers' e-mails end with a hard bounce, an unsubscribe or a spam complaint, after which
-- nothing more is sent. After D only the win-back campaign of the day after it is sent (campaign_id
-- winback-YYYY-MM-DD, to the target group: see profiles.sql).

with

recipients as (
    select
        sample_profiles.*,
        lower(trim(sample_customers.email)) as email,
        -- first and last campaign numbers of the customer
        greatest(0, ceil((signup_day + 1 - sample_first_campaign_day()) / sample_campaign_every_days()))::bigint
            as first_campaign_no,
        floor((email_to_day - sample_first_campaign_day()) / sample_campaign_every_days())::bigint as last_campaign_no
    from sample_profiles
    join sample_customers using (customer_no)
    where sample_profiles.marketing_consent
        and sample_profiles.email_variant in ('normal', 'shared', 'messy')
),

stops as (
    select
        *,
        case when email_stop is not null and last_campaign_no >= first_campaign_no
            then first_campaign_no + floor((last_campaign_no - first_campaign_no + 1) * sample_u(customer_no, 'email_stop_no', 0))::bigint
        end as stop_campaign_no
    from recipients
),

sends as (
    select
        stops.*,
        unnest(range(first_campaign_no, coalesce(stop_campaign_no, last_campaign_no) + 1)) as campaign_no
    from stops
),

engagement as (
    select
        sends.customer_no,
        sends.customer_id,
        sends.email,
        sends.campaign_no,
        sends.email_stop,
        coalesce(sends.campaign_no = sends.stop_campaign_no, false) as is_stop,
        sample_first_campaign_day() + sends.campaign_no * sample_campaign_every_days() as day,
        case
            when sends.archetype = 'silent_churner' and sends.email_declines and day >= sends.decay_day
                then greatest(0.04, sample_shape(day - sends.decay_day, sends.shape_kind, sends.shape_len, sends.shape_level))
            when sends.archetype = 'cancelled' and day >= sends.cancel_day then 0.12
            when sends.archetype = 'lost' and day > sends.lost_day then 0.08
            when sends.archetype = 'resurrected' and day >= sends.gap_start_day and day < sends.gap_end_day then 0.08
            when sends.archetype = 'one_time' then greatest(0.15, exp(-(day - sends.signup_day) / 200.0))
            else 1.0
        end as engagement,
        sends.open_p,
        0.75 + 0.5 * sample_u(0, 'campaign_appeal', sends.campaign_no) as appeal,
        sample_u(sends.customer_no, 'email_open', sends.campaign_no) as u_open,
        sample_u(sends.customer_no, 'email_click', sends.campaign_no) as u_click,
        sample_u(sends.customer_no, 'email_batch', 0) as u_batch,
        sample_u(sends.customer_no, 'email_delay', sends.campaign_no) as u_delay
    from sends
),

opens as (
    select
        *,
        sample_ts(day, 32400 + floor(7200 * u_batch)) as sent_at,
        'nl-' || (sample_history_start() + day::integer)::varchar as campaign_id,
        case
            when is_stop and email_stop = 'bounce' then false
            when is_stop and email_stop = 'unsubscribe' then true
            else u_open < open_p * appeal * engagement
        end as is_opened
    from engagement
),

timed as (
    select
        *,
        sent_at + to_seconds((300 + floor(172800 * pow(u_delay, 2)))::bigint) as opened_at,
        -- which optional events follow the `sent`: a bit per event code 1-6 (see event_kinds)
        case when not (is_stop and email_stop = 'bounce') and day > sample_span_days() - 90 then 1 else 0 end
            + case when is_stop and email_stop = 'bounce' then 2 else 0 end
            + case when is_opened then 4 else 0 end
            + case when is_opened and u_click < 0.20 and not is_stop then 8 else 0 end
            + case when is_stop and email_stop = 'unsubscribe' then 16 else 0 end
            + case when is_stop and email_stop = 'spam_complaint' then 32 else 0 end as event_mask
    from opens
),

event_kinds as (
    select * from (
        values (0, 'sent'), (1, 'delivered'), (2, 'bounce'), (3, 'open'), (4, 'click'), (5, 'unsubscribe'), (6, 'spam_complaint')
    ) as kinds (code, event_type)
),

events_by_mask as (
    -- for each of the 64 combinations of optional events, the events it holds (the `sent` always)
    select masks.mask, event_kinds.code, event_kinds.event_type
    from range(64) as masks (mask)
    join event_kinds on event_kinds.code = 0 or (masks.mask >> (event_kinds.code - 1)) & 1 = 1
),

events as (
    -- one row per event: a hash join on the mask, no per-send lists
    select
        timed.customer_no,
        timed.customer_id,
        timed.email,
        timed.campaign_no,
        timed.campaign_id,
        events_by_mask.code as event_no,
        events_by_mask.event_type,
        case events_by_mask.code
            when 0 then timed.sent_at
            when 1 then timed.sent_at + interval 20 second
            when 2 then timed.sent_at + interval 20 second
            when 3 then timed.opened_at
            when 4 then timed.opened_at + to_seconds((10 + floor(900 * timed.u_click))::bigint)
            when 5 then timed.opened_at + interval 45 second
            when 6 then timed.sent_at + to_seconds((600 + floor(86400 * timed.u_delay))::bigint)
        end as occurred_at
    from timed
    join events_by_mask on events_by_mask.mask = timed.event_mask
),

winback_recipients as (
    -- the win-back campaign of the day after D (see profiles.sql): sent, delivered, opened at the customer's open
    -- rate, and opened and clicked by the persuadable customers it brings back
    select
        sample_profiles.customer_no,
        sample_profiles.customer_id,
        lower(trim(sample_customers.email)) as email,
        sample_profiles.is_persuadable,
        sample_ts(sample_span_days() + 1, 32400 + floor(7200 * sample_u(sample_profiles.customer_no, 'winback_batch', 0)))
            as sent_at,
        sample_profiles.is_persuadable
            or sample_u(sample_profiles.customer_no, 'winback_open', 0) < sample_profiles.open_p as is_opened,
        sample_u(sample_profiles.customer_no, 'winback_delay', 0) as u_delay
    from sample_profiles
    join sample_customers using (customer_no)
    where sample_profiles.winback_sent
),

winback_events as (
    select customer_no, customer_id, email, 0 as event_no, 'sent' as event_type, sent_at as occurred_at
    from winback_recipients
    union all
    select customer_no, customer_id, email, 1, 'delivered', sent_at + interval 20 second
    from winback_recipients
    union all
    select customer_no, customer_id, email, 3, 'open', sent_at + to_seconds((300 + floor(43200 * u_delay))::bigint)
    from winback_recipients
    where is_opened
    union all
    select customer_no, customer_id, email, 4, 'click', sent_at + to_seconds((360 + floor(43200 * u_delay))::bigint)
    from winback_recipients
    where is_persuadable
),

email_events as (
    select
        customer_id,
        email,
        sample_ts_text(occurred_at) as occurred_at,
        event_type,
        campaign_id,
        customer_no,
        campaign_no,
        event_no
    from events
    where occurred_at < sample_as_of_end()
    union all
    select
        customer_id,
        email,
        sample_ts_text(occurred_at),
        event_type,
        sample_winback_campaign_id(),
        customer_no,
        1000000000::bigint,
        event_no
    from winback_events
    where occurred_at < sample_follow_up_end()
)

select * from email_events
