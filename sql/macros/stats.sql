-- Tail probabilities for the per-customer decline tests of the early warning (sql/metrics/int_health_features.sql).
-- Counts in a window are judged against the customer's own rate before it, with the rate's uncertainty: a rate
-- seen as n events in t days has a Gamma(n + 0.5, t) posterior (Jeffreys), so the count in the next w days is
-- negative binomial with size n + 0.5 and success probability t / (t + w). Little history gives wide tails and
-- therefore no flag; a long, busy history gives narrow ones.

-- P(X <= k) for X ~ NegBin(size, prob): the chance of seeing k or fewer events when the own rate held.
create or replace macro nb_lower_tail(k, size, prob) as
    case
        when k is null or size is null or prob is null then null
        when k < 0 then 0.0
        when prob >= 1 then 1.0
        else least(1.0, list_sum(list_transform(
            range(0, k::bigint + 1),
            i -> exp(lgamma(size + i) - lgamma(size) - lgamma(i + 1) + size * ln(prob) + i * ln(1 - prob))
        )))
    end;

-- P(X >= k) for the same X: the chance of k or more events (complaints rising above the own rate).
create or replace macro nb_upper_tail(k, size, prob) as
    case when k is null then null when k <= 0 then 1.0 else greatest(0.0, 1 - nb_lower_tail(k - 1, size, prob)) end;

-- The lower tail of a count in w days against n events in t days before it (the decline test).
create or replace macro rate_decline_p(k, n, t, w) as
    case when t > 0 and w > 0 then nb_lower_tail(k, n + 0.5, t::double / (t + w)) end;

-- P(X <= k) for X ~ Binomial(n, prob): opens among the e-mails sent, against the own open rate.
create or replace macro binomial_lower_tail(k, n, prob) as
    case
        when k is null or n is null or prob is null then null
        when k >= n then 1.0
        when prob <= 0 then 1.0
        when prob >= 1 then case when k >= n then 1.0 else 0.0 end
        else least(1.0, list_sum(list_transform(
            range(0, k::bigint + 1),
            i -> exp(lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) + i * ln(prob) + (n - i) * ln(1 - prob))
        )))
    end;
