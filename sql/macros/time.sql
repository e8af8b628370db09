-- Time helpers shared by every model. Periods are calendar buckets in the business time zone:
-- day, ISO week (Monday), month or quarter.

-- A text timestamp in the business time zone: values with an offset (Z, +01:00, +0100) keep it,
-- values without one are local wall-clock time in `tz`.
create or replace macro parse_business_ts(value, tz) as
    case
        when value is null or trim(value) = '' then null
        when regexp_matches(trim(value), '(Z|[+-]\d{2}(:?\d{2})?)$')
            then try_cast(trim(value) as timestamptz)
        else timezone(tz, try_cast(trim(value) as timestamp))
    end;

-- The business-local calendar date of an instant.
create or replace macro business_date(ts, tz) as timezone(tz, ts)::date;

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
