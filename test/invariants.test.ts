// Invariants of the metric tables on random inputs (fast-check): whatever the data, the books balance.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BROKEN_INVARIANTS } from './support/invariants.js';
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
            // Six customers: the small-base guard is lowered so that the rates are published and checked.
            config: { period_grain: periodGrain, metrics: { min_base_customers: 1 } },
            only: ['churn_summary', 'cohort_retention', 'fct_customer_period'],
          });
          try {
            const broken = await db.all(BROKEN_INVARIANTS);
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
