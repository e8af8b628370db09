-- Helpers of the synthetic sample generator (`churn sample-data`).
-- Randomness is derived from hash(seed, customer, purpose, index): random()/setseed() are not
-- reproducible when DuckDB runs on several threads, a hash is.

-- The generator's parameters, set by pipelines/sample/generate.ts as DuckDB variables. They fold into
-- constants when a query is bound (a joined params table would turn hot filters into nested-loop joins).
create or replace temp macro sample_seed() as getvariable('sample_seed')::bigint;
create or replace temp macro sample_customers() as getvariable('sample_customers')::bigint;
create or replace temp macro sample_as_of() as getvariable('sample_as_of')::date;
create or replace temp macro sample_history_start() as getvariable('sample_history_start')::date;
-- Days from the history start to the as-of date: day numbers run from 0 to this.
create or replace temp macro sample_span_days() as getvariable('sample_span_days')::integer;
-- The first moment after the as-of date (local time): nothing is stamped at or after it.
create or replace temp macro sample_as_of_end() as (getvariable('sample_as_of')::date + 1)::timestamp;
create or replace temp macro sample_first_campaign_day() as getvariable('sample_first_campaign_day')::integer;
create or replace temp macro sample_campaign_every_days() as getvariable('sample_campaign_every_days')::integer;
create or replace temp macro sample_plant_bad_rows() as getvariable('sample_plant_bad_rows')::boolean;
-- the population's app activity as a multiple of the default, and how much its months wander (generate.ts)
create or replace temp macro sample_activity_scale() as coalesce(getvariable('sample_activity_scale')::double, 1.0);
create or replace temp macro sample_month_noise_cv() as coalesce(getvariable('sample_month_noise_cv')::double, 0.4);
-- The follow-up after the as-of date: days span_days + 1 .. sample_follow_up_end_day() hold orders and activity at
-- each customer's own pace and the win-back campaign sent on day span_days + 1 (nothing else is stamped after D).
create or replace temp macro sample_follow_up_end_day() as
    getvariable('sample_span_days')::integer + getvariable('sample_follow_up_days')::integer;
create or replace temp macro sample_follow_up_end() as
    (getvariable('sample_as_of')::date + getvariable('sample_follow_up_days')::integer + 1)::timestamp;
-- The holdout of the pipeline's default config (audience.holdout_salt, audience.control_share) and the planted effect.
create or replace temp macro sample_holdout_salt() as getvariable('sample_holdout_salt')::varchar;
create or replace temp macro sample_control_share() as getvariable('sample_control_share')::double;
create or replace temp macro sample_campaign_lift() as getvariable('sample_campaign_lift')::double;
create or replace temp macro sample_never_sent_share() as getvariable('sample_never_sent_share')::double;
create or replace temp macro sample_winback_campaign_id() as getvariable('sample_winback_campaign_id')::varchar;
-- The order number (among the first 50) whose order_id is planted twice.
create or replace temp macro sample_duplicate_order_no() as
    case when sample_plant_bad_rows() then 1 + hash(sample_seed(), 'planted_duplicate') % 50 end;

-- A uniform number in [0, 1] for (seed, customer number, purpose tag, index). The hash of the constant
-- tag folds into a constant; the outer hash re-mixes the bits, as DuckDB combines the hashes of several
-- arguments weakly (the numbers of consecutive k would otherwise correlate).
create or replace temp macro sample_u(n, tag, k) as
    hash(xor(hash(sample_seed(), n::bigint, k::bigint), hash(tag::varchar))) / 18446744073709551615.0;

-- A list element picked by a uniform u in [0, 1].
create or replace temp macro sample_pick(items, u) as
    items[1 + least(len(items) - 1, floor(u * len(items))::integer)];

-- A timestamp on day number `day` at `seconds` after midnight.
create or replace temp macro sample_ts(day, seconds) as
    make_timestamp(epoch_us(sample_history_start()::timestamp) + day::bigint * 86400000000 + seconds::bigint * 1000000);

-- Local timestamps as the exports write them: YYYY-MM-DD HH:MM:SS, no offset (all are whole seconds).
create or replace temp macro sample_ts_text(ts) as ts::varchar;

-- A standard normal number (Box-Muller) for (seed, customer number, purpose tag, index).
create or replace temp macro sample_normal(n, tag, k) as
    sqrt(-2 * ln(greatest(sample_u(n, tag, k), 1e-300))) * cos(2 * pi() * sample_u(n, tag || '#2', k));

-- A gamma number with mean 1 and coefficient of variation `cv` from a standard normal z (Wilson-Hilferty:
-- shape 1/cv^2), never below 0.02.
create or replace temp macro sample_gamma1(z, cv) as
    greatest(0.02, pow(greatest(0, 1 - cv * cv / 9 + z * cv / 3), 3));

-- The multiplier of a customer's rates `x` days into a decline (x >= 0): `linear` falls from 1 to `level`
-- over `len` days and stays there, `exp` falls as exp(-3x/len) (5% at len), `level` is constant.
create or replace temp macro sample_shape(x, kind, len, level) as
    case kind
        when 'exp' then exp(-3.0 * (x + 0.5) / len)
        when 'level' then level
        else 1 - (1 - level) * least(1.0, (x + 0.5) / len)
    end;

-- A customer's rate multiplier on `day` (the one rule of activity, orders and tickets): 1 in the first
-- phase of behaviour, the shape of the second (a decline, a return after a gap) in the second, 0 outside.
create or replace temp macro sample_intensity(day, p1_start, p1_end, p2_start, p2_end, shape_day, shape_kind, shape_len, shape_level) as
    case
        when day between p1_start and p1_end then 1.0
        when day between p2_start and p2_end then sample_shape(day - shape_day, shape_kind, shape_len, shape_level)
        else 0.0
    end;

-- The key of sample_poisson (the Poisson CDF table) for a mean `lam`: a log grid, 0.25% steps (mean <= ~100).
create or replace temp macro sample_poisson_key(lam) as
    least(1849, round(ln(1 + greatest(0, lam)) * 400))::integer;

-- A Poisson count from the CDF list of sample_poisson and a uniform u: the number of CDF values below u
-- (0 without scanning the list when u is below P(N = 0), the common case of small means).
create or replace temp macro sample_poisson_count(cdf, u) as
    case when u < cdf[1] then 0 else len(list_filter(cdf, lambda f: f < u)) end;

-- The Poisson events of one stream ('order' or 'activity') in every segment of `segments` (sample_segments, by
-- name): a count at the segment's mean (lam_orders or lam_activity) from the CDFs of `poisson` (sample_poisson),
-- drawn with tag <stream>_count, and each event placed uniformly in the segment, drawn with <stream>_day in its
-- slot 1 + segment_no x 1000 + i.
create or replace temp macro sample_poisson_events(segments, poisson, stream) as table
    select
        customer_no,
        slot,
        lo + least(hi - lo, floor((hi - lo + 1) * sample_u(customer_no, stream || '_day', slot)))::integer as day,
        shape
    from (
        select *, 1 + segment_no * 1000 + unnest(range(n)) as slot
        from (
            select
                stream_segments.*,
                sample_poisson_count(
                    cdfs.cdf, sample_u(stream_segments.customer_no, stream || '_count', stream_segments.segment_no)
                ) as n
            from (
                select *, case stream when 'order' then lam_orders when 'activity' then lam_activity end as lam
                from query_table(segments)
            ) as stream_segments
            join query_table(poisson) as cdfs on cdfs.key = sample_poisson_key(stream_segments.lam)
            where stream_segments.lam > 0
        )
        where n > 0
    );

-- The order days of the slow_regular customers of `profiles` (a table or CTE name), on their own clock: one per
-- gap of regular_gap_days after sign-up (jittered +-15%, drawn with order_day), in slot 100000000 + k; into the
-- follow-up unless the customer is persuadable and never e-mailed.
create or replace temp macro sample_regular_order_days(profiles) as table
    select customer_no, slot, day
    from (
        select
            customer_no,
            100000000 + k as slot,
            signup_day + round(regular_gap_days * (k + 0.3 * (sample_u(customer_no, 'order_day', 100000000 + k) - 0.5)))::integer
                as day,
            is_persuadable and not winback_sent as stays_away
        from (
            select *, unnest(range(1, ceil((sample_follow_up_end_day() - signup_day) / regular_gap_days)::bigint + 2)) as k
            from query_table(profiles)
            where archetype = 'slow_regular'
        )
    )
    where day <= sample_span_days() or (day <= sample_follow_up_end_day() and not stays_away);

-- A customer's life (sign-up day to end_day) cut into slots of `every_days` days, for events that may fall once in
-- each (surveys, tickets): every customer of `profiles` (a table or CTE name) once per slot, with its number `slot`;
-- and the day of a slot's event, `offset_days` after sign-up plus a uniform point of the slot (drawn with `tag`).
create or replace temp macro sample_slots(profiles, every_days) as table
    select
        *,
        unnest(range(ceil((end_day - signup_day + 1) / every_days)::bigint)) as slot
    from query_table(profiles);
create or replace temp macro sample_slot_day(customer_no, signup_day, offset_days, slot, every_days, tag) as
    signup_day + offset_days + floor((slot + sample_u(customer_no, tag, slot)) * every_days)::integer;

-- The second of the day a customer signs up at (08:00 to 21:00 local): the customer's signup_at, and the time of
-- the first order and the first activity event that day.
create or replace temp macro sample_signup_seconds(customer_no) as
    28800 + floor(46800 * sample_u(customer_no, 'signup_time', 0));
