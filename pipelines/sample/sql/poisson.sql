-- The Poisson CDF table of the generator: one row per key of sample_poisson_key() (a log grid of means
-- from 0 to ~100), with the list of P(N <= k) for k = 0, 1, ... up to where it reaches 1 - 1e-10. A count is
-- drawn by inverse transform (sample_poisson_count): set-based, exact up to the 0.25% grid of the mean.

with

keys as (
    select range::integer as key, exp(range / 400.0) - 1 as lam
    from range(1850)
),

terms as (
    select key, lam, unnest(range(ceil(lam + 10 * sqrt(lam) + 12)::bigint)) as k
    from keys
),

cumulative as (
    select
        key,
        k,
        sum(case when key = 0 then (k = 0)::integer::double else exp(-lam + k * ln(lam) - lgamma(k + 1)) end)
            over (partition by key order by k) as f
    from terms
)

select key, list(f order by k) filter (where f < 1 - 1e-10 or k = 0) as cdf
from cumulative
group by key
