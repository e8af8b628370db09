-- The hashed-only audience for ad platforms (customer match): the SHA-256 of each normalised e-mail of the
-- target group, lower-case hex, one column, no other personal data.

with

audience as (
    select * from reactivation_audience
),

hashed as (
    select email_sha256
    from audience
    where "group" = 'target'
)

select * from hashed
order by email_sha256
