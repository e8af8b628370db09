-- The bad rows planted on purpose, one of each kind the staging quarantine must catch. The entity files
-- append them; meta.json lists them (entity, key, reason). None when the sample is too small for them to
-- stay well under the 1% quarantine threshold (sample_plant_bad_rows()).

with

kinds (entity, kind_no, reason, key, at_text, survey_type, score, amount) as (
    values
        ('orders', 1, 'duplicate order_id', null, null, null, null, null),
        ('orders', 2, 'unknown customer_id (not in customers.csv)', 'OX000001', '2025-03-14 11:20:00', null, null, 49.90),
        ('orders', 3, 'unparseable ordered_at', 'OX000002', '2025-02-30 10:15:00', null, null, 19.99),
        ('surveys', 1, 'negative NPS score', 'RX000001', '2025-05-02 14:03:00', 'nps', -3, null),
        ('surveys', 2, 'unknown survey_type', 'RX000002', '2025-05-03 09:30:00', 'ces', 4, null),
        ('surveys', 3, 'unparseable responded_at', 'RX000003', '31.02.2025 10:00', 'csat', 4, null),
        ('activity', 1, 'timestamp before 1970', null, '1969-12-31 23:59:59', null, null, null),
        ('tickets', 1, 'timestamp before 1970', 'TX000001', '1969-07-20 20:17:40', null, null, null)
),

planted as (
    select
        kinds.entity,
        kinds.reason,
        case
            when kinds.reason = 'unknown customer_id (not in customers.csv)'
                then 'C' || lpad((sample_customers() + 1 + hash(sample_seed(), 'planted_orphan') % 1000)::varchar, 6, '0')
            else 'C' || lpad((1 + hash(sample_seed(), 'planted_customer', kinds.entity, kinds.kind_no) % sample_customers())::varchar, 6, '0')
        end as customer_id,
        kinds.at_text,
        kinds.survey_type,
        kinds.score,
        kinds.amount,
        kinds.key as planted_key
    from kinds
    where sample_plant_bad_rows()
),

planted_bad_rows as (
    select
        entity,
        case
            when reason = 'duplicate order_id' then 'O' || lpad(sample_duplicate_order_no()::varchar, 8, '0')
            when entity = 'activity' then customer_id || ' ' || at_text
            else planted_key
        end as key,
        reason,
        customer_id,
        at_text,
        survey_type,
        score,
        amount
    from planted
)

select * from planted_bad_rows
