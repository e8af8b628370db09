-- Interval estimates of reactivation_outcomes (sql/metrics/reactivation_outcomes.sql): target against control, 95%.

-- The published audiences the outcomes read. A run replaces this empty table with the reactivation_audience
-- partitions of its output's history (pipelines/outcomes/history.ts); where no history is loaded (a replay, a test
-- that builds models) the outcomes are simply empty.
create table if not exists reactivation_audience_history (
    as_of date,
    customer_id varchar,
    email varchar,
    audience_group varchar
);

-- Wilson's score interval of a proportion x / n at 95% (z = 1.959964): never outside 0-1, sensible at 0 and n.
create or replace macro wilson_low(x, n) as
    case when n > 0 then
        (x / n + 1.959964 ^ 2 / (2 * n)
            - 1.959964 * sqrt(greatest(0, x / n * (1 - x / n)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n)
    end;

create or replace macro wilson_high(x, n) as
    case when n > 0 then
        (x / n + 1.959964 ^ 2 / (2 * n)
            + 1.959964 * sqrt(greatest(0, x / n * (1 - x / n)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n)
    end;

-- Newcombe's hybrid score interval (his method 10) of p1 - p2 = x1 / n1 - x2 / n2 at 95%, from the two Wilson
-- intervals: it keeps its coverage with small groups and rates near 0 or 1, where the Wald interval does not.
create or replace macro newcombe_low(x1, n1, x2, n2) as
    case when n1 > 0 and n2 > 0 then
        (x1 / n1 - x2 / n2)
            - sqrt((x1 / n1 - wilson_low(x1, n1)) ^ 2 + (wilson_high(x2, n2) - x2 / n2) ^ 2)
    end;

create or replace macro newcombe_high(x1, n1, x2, n2) as
    case when n1 > 0 and n2 > 0 then
        (x1 / n1 - x2 / n2)
            + sqrt((wilson_high(x1, n1) - x1 / n1) ^ 2 + (x2 / n2 - wilson_low(x2, n2)) ^ 2)
    end;

-- The 97.5% quantile of Student's t with df degrees of freedom (df may be fractional, as Welch's is): Hill's
-- (1970) expansion around the normal quantile from df 3 on (error below 0.2%); below 3, the exact value of the
-- whole df below (1: 12.706, 2: 4.303), which errs on the wide side.
create or replace macro t_quantile_975(df) as
    case
        when df is null or isnan(df) or df < 1 then null
        when df < 2 then 12.706205
        when df < 3 then 4.302653
        else 1.959964
            + (1.959964 ^ 3 + 1.959964) / (4 * df)
            + (5 * 1.959964 ^ 5 + 16 * 1.959964 ^ 3 + 3 * 1.959964) / (96 * df ^ 2)
            + (3 * 1.959964 ^ 7 + 19 * 1.959964 ^ 5 + 17 * 1.959964 ^ 3 - 15 * 1.959964) / (384 * df ^ 3)
            + (79 * 1.959964 ^ 9 + 776 * 1.959964 ^ 7 + 1482 * 1.959964 ^ 5 - 1920 * 1.959964 ^ 3 - 945 * 1.959964)
                / (92160 * df ^ 4)
    end;

-- Welch's interval of mean1 - mean2 at 95% from each group's size and sample variance: the half-width
-- t(0.975, Welch-Satterthwaite df) x sqrt(v1 / n1 + v2 / n2). Null when a group has fewer than 2 customers; a
-- difference without any spread in either group is its own interval.
create or replace macro welch_half_width(v1, n1, v2, n2) as
    case
        when n1 < 2 or n2 < 2 or v1 is null or v2 is null then null
        when v1 / n1 + v2 / n2 = 0 then 0.0
        else t_quantile_975(
                (v1 / n1 + v2 / n2) ^ 2
                / ((v1 / n1) ^ 2 / (n1 - 1) + (v2 / n2) ^ 2 / (n2 - 1))
            ) * sqrt(v1 / n1 + v2 / n2)
    end;
