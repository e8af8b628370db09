// The (x, t_x, T) purchase groups the buy-till-you-die models (bgnbd_scores, health_scores) score and are fitted on:
// every group with its customers (n), and with those of a deterministic hash sample of at most
// health.model_max_fit_customers customers (n_fit), the fit's input, so that the fit stops growing with the
// population. Below the cap n_fit = n.

/** SQL: x, tx, t, n, n_fit per group of `purchasers` (a query of customer_id, x, tx, t), ordered by x, tx, t. */
export function purchaseGroupsSql(purchasers: string, maxFitCustomers: number): string {
  return `
    with
    purchasers as (${purchasers}),
    all_groups as (
        select x, tx, t, count(*) as n
        from purchasers
        group by all
    ),
    fit_groups as (
        select x, tx, t, count(*) as n_fit
        from (select * from purchasers order by hash(customer_id), customer_id limit ${maxFitCustomers})
        group by all
    )
    select x, tx, t, n, coalesce(n_fit, 0) as n_fit
    from all_groups
    left join fit_groups using (x, tx, t)
    order by x, tx, t`;
}
