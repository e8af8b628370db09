-- invoices.csv: a monthly invoice per running subscription, due 14 days after issue. Paid within the
-- term as a rule (a few 1-3 days late); late payers pay their invoices of the last 150 days 10-40 days
-- after the due date, or not at all. Payments after the as-of date are not known yet (paid_at empty).

with

subscriptions as (
    select sample_subscriptions.*, sample_profiles.is_late_payer
    from sample_subscriptions
    join sample_profiles using (customer_no)
),

invoice_months as (
    select
        subscriptions.*,
        unnest(range(date_diff('month', started_at, coalesce(ended_at, sample_as_of_end())) + 1)) as month_no
    from subscriptions
),

issued as (
    select
        invoice_months.customer_no,
        invoice_months.seq,
        invoice_months.month_no,
        invoice_months.customer_id,
        invoice_months.mrr as amount,
        invoice_months.is_late_payer,
        date_trunc('day', invoice_months.started_at + to_months(invoice_months.month_no::integer)) + interval 6 hour as issued_at,
        invoice_months.ended_at,
        sample_u(invoice_months.customer_no, 'invoice_paid', invoice_months.seq * 1000 + invoice_months.month_no) as u_paid,
        sample_u(invoice_months.customer_no, 'invoice_late', invoice_months.seq * 1000 + invoice_months.month_no) as u_late,
        sample_u(invoice_months.customer_no, 'invoice_time', invoice_months.seq * 1000 + invoice_months.month_no) as u_time
    from invoice_months
),

payments as (
    select
        *,
        issued_at + interval 14 day as due_at,
        case
            when is_late_payer and issued_at >= sample_as_of() - interval 150 day then
                case when u_late < 0.25 then null
                    else issued_at + to_days((14 + 10 + floor(31 * u_paid))::integer) + to_seconds(floor(36000 * u_time)::bigint)
                end
            when u_late < 0.03 then issued_at + to_days((15 + floor(3 * u_paid))::integer) + to_seconds(floor(36000 * u_time)::bigint)
            else issued_at + to_days(floor(13 * u_paid)::integer) + to_seconds(floor(36000 * u_time)::bigint)
        end as planned_paid_at
    from issued
    where issued_at < coalesce(ended_at, sample_as_of_end()) and issued_at < sample_as_of_end()
),

invoices as (
    select
        'INV' || lpad(row_number() over (order by issued_at, customer_no, seq)::varchar, 8, '0') as invoice_id,
        customer_id,
        issued_at,
        due_at,
        case when planned_paid_at < sample_as_of_end() then planned_paid_at end as paid_at,
        amount,
        customer_no,
        seq
    from payments
)

select * from invoices
