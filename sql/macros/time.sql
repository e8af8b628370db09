-- Time helpers shared by every model. Periods are calendar buckets in the business time zone:
-- day, ISO week (Monday), month or quarter.

-- A timestamp as landed, in the business time zone `tz`. Text (CSV; text in any format): values with an offset
-- (Z, +01:00, +0100, also after a space) keep it, values without one are local wall-clock time in `tz`. Typed by
-- its reader (Parquet, NDJSON): a timestamp with time zone as it is, a timestamp or date without one as local time
-- in `tz`.
-- A run's session time zone is the business time zone (pipelines/run/database.ts): local time then casts straight to
-- timestamptz, the same value as timezone(tz, ...) without its time zone lookup per row. A value with an offset is
-- cast on its own: DuckDB carries a zone name inside one value (`... Europe/Paris`) over to the values after it in
-- a plain text-to-timestamptz cast, so text without an offset goes through timestamp first.
create or replace macro parse_business_ts(value, tz) as
    case
        when typeof(value) = 'TIMESTAMP WITH TIME ZONE' then try_cast(value as timestamptz)
        when typeof(value) in ('TIMESTAMP', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS', 'DATE')
            then
                case
                    when tz = current_setting('TimeZone') then try_cast(try_cast(value as timestamp) as timestamptz)
                    else timezone(tz, try_cast(value as timestamp))
                end
        when regexp_matches(trim(value::varchar), '(Z|[+-]\d{2}(:?\d{2})?)$')
            then try_cast(
                case
                    -- an offset after a space, as Rails and Shopify write it (`2024-02-05 10:00:00 +0100`)
                    when contains(trim(value::varchar), ' +') or contains(trim(value::varchar), ' -')
                        or ends_with(trim(value::varchar), ' Z')
                        then regexp_replace(trim(value::varchar), '\s+(Z|[+-]\d{2}(:?\d{2})?)$', '\1')
                    else trim(value::varchar)
                end
                as timestamptz)
        when tz = current_setting('TimeZone') then try_cast(try_cast(trim(value::varchar) as timestamp) as timestamptz)
        else timezone(tz, try_cast(trim(value::varchar) as timestamp))
    end;

-- A landed value as the text the checks read: text as it is, null for a value its reader typed (it parsed).
create or replace macro landed_text(value) as
    case when typeof(value) = 'VARCHAR' then value::varchar end;

-- The business-local calendar date of an instant (a plain cast when the session is in the business time zone).
create or replace macro business_date(ts, tz) as
    case
        when tz = current_setting('TimeZone') then ts::date
        else timezone(tz, ts)::date
    end;

-- The last day a subscription ran as seen on day `d`: the day before its end once it has ended by then, else `d` (an
-- end after `d` is still in the future).
create or replace macro subscription_last_day(ended_date, d) as
    case when ended_date is not null and ended_date <= d then ended_date - 1 else d end;

create or replace macro period_start(d, grain) as
    case grain
        when 'day' then d::date
        when 'week' then date_trunc('week', d)::date
        when 'month' then date_trunc('month', d)::date
        when 'quarter' then date_trunc('quarter', d)::date
    end;

-- The period k periods after the period starting at `start`.
create or replace macro period_add(start, k, grain) as
    case grain
        when 'day' then (start + to_days(k::integer))::date
        when 'week' then (start + to_days(7 * k::integer))::date
        when 'month' then (start + to_months(k::integer))::date
        when 'quarter' then (start + to_months(3 * k::integer))::date
    end;

create or replace macro period_end(start, grain) as (period_add(start, 1, grain) - 1)::date;

-- Whole periods between two period starts.
create or replace macro period_diff(from_start, to_start, grain) as
    case grain
        when 'day' then date_diff('day', from_start, to_start)
        when 'week' then date_diff('day', from_start, to_start) // 7
        when 'month' then date_diff('month', from_start, to_start)
        when 'quarter' then date_diff('month', from_start, to_start) // 3
    end;
