-- Each customer under every segment dimension of the config (segment_by), plus the `all` dimension.
-- Grain: customer_id x segment_by.

with

customers as (
    select * from stg_customers
),

dimensions as (
    select * from segment_dimensions
),

attributes as (
    unpivot (select customer_id, segment, country from customers)
    on segment, country
    into name segment_by value segment
),

configured as (
    select attributes.customer_id, attributes.segment_by, attributes.segment
    from attributes
    inner join dimensions using (segment_by)
),

everyone as (
    select customer_id, 'all' as segment_by, 'all' as segment from customers
),

final as (
    select * from everyone
    union all
    select * from configured
)

select * from final
