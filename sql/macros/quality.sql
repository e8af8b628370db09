-- Row checks used by the staging models. A staging model gives every raw row a `rejection`
-- (null when the row is good): the first problem found, as {column, reason, value}.
-- Rejected rows go to the quarantine table instead of the staging table.

create or replace macro rejection(column_name, reason, value) as
    case
        when reason is not null
            then {'column': column_name, 'reason': reason, 'value': quarantine_value(value)}
    end;

create or replace macro missing_problem(value) as
    case when value is null then 'missing required value' end;

-- Unparseable, before 1970, or after the moment the run started. `raw` is the value as landed (a value its reader
-- typed has parsed).
create or replace macro timestamp_problem(ts, raw, run_started_at) as
    case
        when clean_text(landed_text(raw)) is not null and ts is null then 'unparseable timestamp'
        when ts < timestamptz '1970-01-01 00:00:00+00' then 'timestamp before 1970'
        when ts > run_started_at then 'timestamp after the run started'
    end;

create or replace macro number_problem(n, raw) as
    case when clean_text(raw) is not null and n is null then 'not a number' end;

create or replace macro bool_problem(b, raw) as
    case when clean_text(raw) is not null and b is null then 'not a boolean (true/false, yes/no, 1/0, on/off, opt-in/opt-out)' end;

create or replace macro accepted_problem(value, accepted) as
    case
        when value is not null and not list_contains(accepted, value)
            then 'not one of ' || array_to_string(accepted, ', ')
    end;

-- A required timestamp: missing, or one of the problems above.
create or replace macro required_timestamp_problem(ts, raw, run_started_at) as
    coalesce(missing_problem(raw), timestamp_problem(ts, raw, run_started_at));

-- A customer_id that names no good row of the customers export (when there is one).
create or replace macro orphan_problem(is_orphan) as
    case when is_orphan then 'unknown customer_id (not in the customers export)' end;

-- The duplicate-key check of a staging model: `checked_rows` (a CTE with _source_file, _source_row and
-- row_rejection, null when the row is good) with `rejection` in place of row_rejection. A good row whose
-- `key_name` an earlier good row (in file order) carries is rejected as a duplicate key; rows rejected already
-- keep their first problem. Only the keys that repeat are numbered, so the check costs a grouping, not a sort of
-- every row.
create or replace macro duplicate_key_checked(checked_rows, key_name) as table
    with

    repeated_keys as (
        select columns(c -> c = key_name) as key_value
        from query_table(checked_rows)
        where row_rejection is null
        group by all
        having count(*) > 1 and key_value is not null
    ),

    keyed as not materialized (
        select
            *,
            columns(c -> c = key_name) as key_value,
            coalesce(row_rejection is null and key_value in (select key_value from repeated_keys), false) as is_repeated
        from query_table(checked_rows)
    ),

    numbered as (
        select *, 1 as key_occurrence
        from keyed
        where not is_repeated
        union all
        select *, row_number() over (partition by key_value order by _source_file, _source_row) as key_occurrence
        from keyed
        where is_repeated
    ),

    checked as (
        select
            * exclude (key_value, is_repeated, key_occurrence, row_rejection),
            coalesce(
                row_rejection,
                rejection(key_name, case when key_occurrence > 1 then 'duplicate key' end, key_value)
            ) as rejection
        from numbered
    )

    select * from checked;
