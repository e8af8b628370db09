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

-- Whether a customer still behaves normally on `day` (the one rule of activity, orders, tickets and
-- surveys): between signup and end, not in a resurrected customer's gap, and for a silent churner
-- thinned out exponentially after the decay start (stopping completely for some); u is a uniform.
create or replace temp macro sample_alive(
    day, u, archetype, signup_day, end_day, gap_start_day, gap_end_day, decay_day, decay_stop_day, decay_tau_days
) as
    day >= signup_day
    and day <= end_day
    and not (archetype = 'resurrected' and day >= gap_start_day and day < gap_end_day)
    and (
        archetype <> 'silent_churner'
        or day < decay_day
        or (day < coalesce(decay_stop_day, end_day + 1) and u < exp(-(day - decay_day) / decay_tau_days))
    );
