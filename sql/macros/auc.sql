-- The Mann-Whitney AUC of a score (sql/metrics/early_warning_backtest.sql): the probability that a positive row
-- scores above a negative one, ties counting half, from the rows' mean ranks.

-- The rank of `score` among the rows, tied scores sharing their mean rank. A window function: for a select list.
create or replace macro mean_rank(score) as
    rank() over (order by score) + (count(*) over (partition by score) - 1) / 2.0;

-- The AUC over the ranked rows: `rank` a row's mean_rank, `positive` 1 or 0; null unless both kinds are there.
-- An aggregate.
create or replace macro mann_whitney_auc(rank, positive) as
    (sum(rank) filter (where positive = 1) - sum(positive) * (sum(positive) + 1) / 2.0)
        / nullif(sum(positive) * sum(1 - positive), 0);
