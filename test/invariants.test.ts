// Invariants of the metric tables on random inputs (fast-check): whatever the data, the books balance.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildFixture } from './support/models.js';

const day = fc.integer({ min: 0, max: 364 }).map((d) => {
  const date = new Date(Date.UTC(2024, 0, 1) + d * 86_400_000);
  return date.toISOString().slice(0, 10);
});

const order = fc.record({
  customer: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
  day,
  amount: fc.integer({ min: -50, max: 500 }),
  status: fc.constantFrom('completed', 'completed', 'completed', 'refunded', 'cancelled'),
});

const subscription = fc.record({
  customer: fc.constantFrom('a', 'b', 'c', 'g', 'h'),
  start: day,
  length: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
  mrr: fc.integer({ min: 0, max: 300 }),
});

const grain = fc.constantFrom('week', 'month', 'quarter');

describe('metric invariants on random inputs', () => {
  it('lifecycle counts, MRR movements and bounded rates always balance', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(order, { minLength: 1, maxLength: 40 }),
        fc.array(subscription, { maxLength: 8 }),
        grain,
        async (orders, subscriptions, periodGrain) => {
          const orderCsv = [
            'order_id,customer_id,ordered_at,amount,status',
            ...orders.map((o, i) => `o${i},${o.customer},${o.day} 12:00:00,${o.amount},${o.status}`),
          ].join('\n');
          const subCsv = [
            'subscription_id,customer_id,started_at,ended_at,mrr',
            ...subscriptions.map((s, i) => {
              const end = s.length
                ? new Date(Date.parse(`${s.start}T00:00:00Z`) + s.length * 86_400_000)
                    .toISOString()
                    .slice(0, 10)
                : '';
              return `s${i},${s.customer},${s.start},${end},${s.mrr}`;
            }),
          ].join('\n');
          const db = await buildFixture({
            asOf: '2024-12-31',
            csv: { orders: `${orderCsv}\n`, subscriptions: `${subCsv}\n` },
            config: { period_grain: periodGrain },
            only: ['churn_summary', 'cohort_retention'],
          });
          try {
            const broken = await db.all(`
              select period_start, 'active' as what from churn_summary
              where active_customers <> new_customers + retained + resurrected
              union all
              select period_start, 'start' from churn_summary where customers_start <> retained + churned
              union all
              select period_start, 'mrr' from churn_summary
              where mrr_start + mrr_new + mrr_expansion - mrr_contraction - mrr_churned + mrr_reactivation <> mrr_end
              union all
              select period_start, 'rates' from churn_summary
              where not (churn_rate_pct between 0 and 100) or not (retention_rate_pct between 0 and 100)
                 or not (grr_pct between 0 and 100) or not (mrr_grr_pct between 0 and 100)
                 or churn_rate_pct + retention_rate_pct not between 99.999 and 100.001
              union all
              select period_start, 'mrr continuity' from (
                  select period_start, mrr_start, lag(mrr_end) over (partition by segment_by, segment order by period_start) as prev_end
                  from churn_summary
              ) where prev_end is not null and mrr_start <> prev_end
              union all
              select period_start, 'cohort' from cohort_retention
              where not (retention_pct between 0 and 100) or unbounded_active < active_customers
                 or unbounded_active > cohort_size
            `);
            expect(broken).toEqual([]);
          } finally {
            db.close();
          }
        },
      ),
      { numRuns: 25, seed: 20261123 },
    );
  });
});
