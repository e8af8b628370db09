-- The drops' record per judged snapshot (drop_record of int_health_status), kept for the manifest's notes: whether a
-- drop (ACTIVITY_DROP, SPEND_DROP) sets at_risk on its own at that snapshot, and the lift it showed at the snapshot
-- before. Grain: snapshot_role.

with

statuses as (
    select * from int_health_status
),

drop_records as (
    select
        snapshot_role,
        bool_and(drops_trusted) as drops_trusted,
        any_value(drop_lift) as drop_lift
    from statuses
    group by snapshot_role
)

select * from drop_records
