-- Tail probabilities for the per-customer decline tests of the early warning (sql/metrics/int_health_features.sql).
-- Counts in a window are judged against the customer's own rate before it, with two kinds of uncertainty:
-- - the rate's: seen as n events in t days it has a Gamma(n + 0.5, t) posterior (Jeffreys), so little history
--   gives wide tails and therefore no flag, and a long, busy history narrow ones;
-- - the months': real rates wander from month to month (a busy month, a holiday). A squared coefficient of
--   variation `dispersion` of a 30-day count around the customer's rate (int_health_features estimates it from
--   the whole population) widens the tails, less for longer windows, which average several months.
-- The count in the next w days is then negative binomial with mean (n + 0.5) w / t and size
-- 1 / (1 / (n + 0.5) + dispersion x 30 / max(w, 30)); with dispersion 0 it is the plain Poisson-gamma mixture.

-- The season factor (int_health_dispersions) of the judged window nearest in length to `days`: a silence of 40 days
-- moves with the season as the 30-day window does.
create or replace macro nearest_window_season(days, recent_days, s14, s30, s60, s_recent, s120) as
    list_sort([
        {'gap': abs(days - 14), 'season': s14},
        {'gap': abs(days - 30), 'season': s30},
        {'gap': abs(days - 60), 'season': s60},
        {'gap': abs(days - recent_days), 'season': s_recent},
        {'gap': abs(days - 120), 'season': s120}
    ])[1].season;

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

-- The lower tail of a count k in w days against n events in t days before it (the decline test).
create or replace macro rate_decline_p(k, n, t, w, dispersion) as
    case when t > 0 and w > 0 then nb_lower_tail(
        k,
        1 / (1 / (n + 0.5) + dispersion * 30 / greatest(w, 30)),
        (1 / (1 / (n + 0.5) + dispersion * 30 / greatest(w, 30)))
            / (1 / (1 / (n + 0.5) + dispersion * 30 / greatest(w, 30)) + (n + 0.5) * w / t)
    ) end;

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
