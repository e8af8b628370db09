-- Customer batches. A model whose yml says `batch_by: customer_id` keeps, in each import CTE of per-customer rows,
-- only the rows `in_customer_batch(customer_id)`. Here that is every row. On a population larger than
-- duckdb.customers_per_batch the runner (transforms/runner.ts) builds such a model once per range of customer_id,
-- redefining this macro each time with the range's bounds as literals (so DuckDB skips row groups by their min and
-- max), and sets it back to true afterwards. A row without a customer_id is in no batch.
create or replace macro in_customer_batch(customer_id) as true;
