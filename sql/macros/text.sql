-- Text helpers for typing raw exports.

-- Empty or whitespace-only text is missing.
create or replace macro clean_text(value) as nullif(trim(value), '');

-- Booleans as exports write them: true/false, yes/no, y/n, 1/0, t/f, on/off, and consent as e-mail tools export it:
-- opt-in/opt-out (also opted in, opted_out), subscribed/unsubscribed.
create or replace macro parse_bool(value) as
    case regexp_replace(lower(trim(value)), '[\s_-]+', '', 'g')
        when 'true' then true when 't' then true when 'yes' then true when 'y' then true when '1' then true
        when 'on' then true when 'optin' then true when 'optedin' then true when 'subscribed' then true
        when 'false' then false when 'f' then false when 'no' then false when 'n' then false when '0' then false
        when 'off' then false when 'optout' then false when 'optedout' then false when 'unsubscribed' then false
    end;

-- An e-mail address normalised for matching and deduplication: trimmed and lower-cased.
create or replace macro normalise_email(value) as nullif(lower(trim(value)), '');

-- A deliberately simple validity check: one @, a dot in the domain, no whitespace.
create or replace macro is_valid_email(value) as
    coalesce(regexp_full_match(value, '[^@\s]+@[^@\s]+\.[^@\s]+'), false);

-- Money and scores: exact decimals; a decimal comma is accepted when there is no decimal point.
create or replace macro parse_decimal(value) as
    try_cast(
        case when contains(trim(value), ',') and not contains(trim(value), '.')
            then replace(trim(value), ',', '.') else trim(value) end
        as decimal(18, 2));

-- A truncated copy of an offending raw value, for the quarantine table.
create or replace macro quarantine_value(value) as left(value, 200);

-- A text cell that a spreadsheet will not run as a formula (OWASP CSV injection): text starting with
-- = + - @, a tab or a carriage return (or a line feed, or the full-width ＝ ＋ － ＠ some spreadsheets
-- also accept) gets a leading apostrophe. NULL stays NULL. RFC 4180 quoting is the writer's job (COPY).
create or replace macro csv_safe(value) as
    case
        when regexp_matches(value::varchar, '^[=+@\t\r\n＝＋－＠-]') then '''' || value::varchar
        else value::varchar
    end;
