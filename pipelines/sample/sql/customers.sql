-- customers.csv: one row per customer. Names and e-mails carry the quirks real exports have: commas and
-- quotes in names, three formula-like names (=, +, @), e-mails with upper case and spaces, a few shared,
-- invalid or missing addresses. cancelled_at is set for explicit cancellations only (not for the cancelled
-- subscribers who only end their subscription).

with

profiles as (
    select * from sample_profiles
),

name_lists as (
    select
        [
            'Anna', 'Lukas', 'Sophie', 'Maximilian', 'Marie', 'Jonas', 'Lea', 'Felix', 'Emma', 'Paul',
            'Laura', 'Leon', 'Hannah', 'Jürgen', 'Zoë', 'François', 'Chloé', 'Léa', 'Théo', 'Camille',
            'Daan', 'Sanne', 'Bram', 'Fleur', 'Emily', 'James', 'Olivia', 'Michael', 'Sarah', 'David',
            'Mia', 'Noah', 'Lena', 'Elias', 'Katharina', 'Sebastian', 'Ursula', 'Dieter', 'Mélanie', 'Jörg'
        ] as first_names,
        [
            'Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Schulz', 'Hoffmann',
            'Gruber', 'Huber', 'Bauer', 'Steiner', 'Moser', 'Keller', 'Brunner', 'Martin', 'Bernard', 'Dubois',
            'Lefèvre', 'Moreau', 'de Jong', 'Jansen', 'de Vries', 'van den Berg', 'Bakker', 'Visser', 'Smith', 'Johnson',
            'Williams', 'Brown', 'Jones', 'Miller', 'Davis', 'Wilson', 'Koch', 'Richter', 'Wolf', 'Schäfer'
        ] as last_names,
        ['Anna "Annie"', 'Marie, Claire', 'Jean-Luc', 'Hans "Hansi"'] as quirky_first_names,
        ['Smith, Jr.', 'O''Brien', 'Meyer, Dr.', 'van "Vincent" Dijk'] as quirky_last_names,
        ['=HYPERLINK("http://example.com/x","click me")', 'Plus', '@SUM(1+1)'] as formula_first_names,
        ['Hacker', '+1 555 0100', '-2+3'] as formula_last_names,
        ['example.com', 'example.org', 'example.net', 'mail.example', 'shop.example'] as email_domains
),

named as (
    select
        profiles.*,
        sample_pick(name_lists.first_names, sample_u(customer_no, 'first_name', 0)) as base_first_name,
        sample_pick(name_lists.last_names, sample_u(customer_no, 'last_name', 0)) as base_last_name,
        sample_u(customer_no, 'quirky_name', 0) as u_quirky_name,
        sample_u(customer_no, 'quirky_name', 1) as u_quirky_pick,
        sample_pick(name_lists.email_domains, sample_u(customer_no, 'email_domain', 0)) as email_domain,
        sample_signup_seconds(customer_no) as signup_seconds,
        sample_u(customer_no, 'consent_delay', 0) as u_consent_delay,
        sample_u(customer_no, 'cancel_time', 0) as u_cancel_time
    from profiles
    cross join name_lists
),

addressed as (
    select
        *,
        regexp_replace(strip_accents(lower(base_first_name)), '[^a-z0-9]', '', 'g')
            || '.' || regexp_replace(strip_accents(lower(base_last_name)), '[^a-z0-9]', '', 'g')
            || customer_no::varchar || '@' || email_domain as base_email
    from named
),

customers as (
    select
        addressed.customer_no,
        'C' || lpad(addressed.customer_no::varchar, 6, '0') as customer_id,
        case addressed.email_variant
            when 'shared' then lag(addressed.base_email) over (order by addressed.customer_no)
            when 'messy' then '  ' || upper(addressed.base_email) || ' '
            when 'invalid' then replace(addressed.base_email, '@', ' at ')
            when 'missing' then null
            else addressed.base_email
        end as email,
        case
            when addressed.formula_rank is not null then name_lists.formula_first_names[addressed.formula_rank]
            when addressed.u_quirky_name < 0.003 then sample_pick(name_lists.quirky_first_names, addressed.u_quirky_pick)
            else addressed.base_first_name
        end as first_name,
        case
            when addressed.formula_rank is not null then name_lists.formula_last_names[addressed.formula_rank]
            when addressed.u_quirky_name >= 0.003 and addressed.u_quirky_name < 0.006
                then sample_pick(name_lists.quirky_last_names, addressed.u_quirky_pick)
            else addressed.base_last_name
        end as last_name,
        addressed.country,
        addressed.segment,
        sample_ts(addressed.signup_day, addressed.signup_seconds) as signup_at,
        addressed.marketing_consent,
        case when addressed.marketing_consent
            then sample_ts(addressed.signup_day, addressed.signup_seconds + 30 + floor(600 * addressed.u_consent_delay))
        end as consent_at,
        case when addressed.has_cancelled_at
            then sample_ts(addressed.cancel_day, 32400 + floor(36000 * addressed.u_cancel_time))
        end as cancelled_at
    from addressed
    cross join name_lists
)

select * from customers
