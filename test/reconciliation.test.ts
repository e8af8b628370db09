// The reconciliation of every run: each input row is staged, quarantined, left out by `where` or after the as-of
// date, and each amount of orders and invoices is in the published facts, quarantined, after the as-of date or
// excluded for a stated reason. Refunds of customers who never bought, and refunds before a first purchase, land in
// fct_customer_period in the period of the refund. Hand-computed on a fixture; on Online Retail when it is there.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { Config, Entity } from '../config/schema.js';
import type { Db } from '../pipelines/base/duckdb.js';
import { assertChecks, runChecks } from '../transforms/checks.js';
import { type Landing, reconcile } from '../transforms/reconciliation.js';
import { churn, makeProject } from './ops/support.js';
import { buildRun, fixtureConfig } from './support/models.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const datasets = resolve(root, '../shared/datasets');

const customers = `customer_id,segment
A,smb
B,smb
C,enterprise
`;
// As of 2024-03-31, monthly. Amounts below are the absolute values the reconciliation counts.
const orders = `order_id,customer_id,ordered_at,amount,status,channel
a0,A,2024-01-15 10:00:00,-30.00,refunded,web
a1,A,2024-02-10 10:00:00,100.00,completed,web
a2,A,2024-03-05 10:00:00,40.00,cancelled,web
b1,B,2024-02-20 10:00:00,25.50,refunded,web
c1,C,2024-01-05 10:00:00,200.00,completed,web
c2,C,2024-03-10 10:00:00,-20.25,completed,web
c3,C,2024-04-02 10:00:00,70.00,completed,web
x1,C,2024-02-01 10:00:00,abc,completed,web
x2,C,2024-13-45 10:00:00,15.00,completed,web
t1,C,2024-02-02 10:00:00,999.00,completed,test
t2,A,2024-02-03 10:00:00,5.00,completed,test
`;
//   a0: A's refund in January, before A's first purchase (February): in A's January row (period_index -1).
//   b1: B never bought: in B's February row (B has no cohort).
//   a2: cancelled, excluded with its reason (40); c2: a negative completed order is a refund (20.25).
//   c3: after the as-of date (70); x1: quarantined, no readable amount; x2: quarantined with 15.
//   t1, t2: left out by `where` (never landed, so not money of the run).
// Input 30 + 100 + 40 + 25.50 + 200 + 20.25 + 70 + 15 = 500.75
//   = revenue 300 + refunds 75.75 + quarantined 15 + after 70 + cancelled 40.
const invoices = `invoice_id,customer_id,issued_at,due_at,paid_at,amount
i1,A,2024-02-01,2024-02-15,2024-02-10,100.00
i2,B,2024-01-01,2024-01-31,,50.00
i3,C,2024-03-20,2024-04-19,,80.00
i4,C,2024-04-05,2024-05-05,,60.00
i5,C,2024-03-01,soon,,10.00
`;
//   i1: due in February (100); i2: B's, due in January (50), in B's January row.
//   i3: not yet due on the as-of date (80, excluded with its reason); i4: issued after the as-of date (60);
//   i5: quarantined (10). Input 300 = published 150 + quarantined 10 + after 60 + not yet due 80.

/** The reconciliation of a built run, which must have found no problem in what it was given. */
async function reconcileRun(db: Db, configured: Entity[], landing: Partial<Record<Entity, Landing>>) {
  const { reconciliation, problems } = await reconcile(db, configured, landing);
  expect(problems).toEqual([]);
  return reconciliation;
}

describe('reconciliation on a hand-computed fixture', () => {
  let db: Db;
  let landing: Partial<Record<Entity, Landing>>;
  let configured: Entity[];
  let config: Config;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'churn-reconcile-'));
    for (const [name, text] of Object.entries({ customers, orders, invoices })) {
      writeFileSync(join(dir, `${name}.csv`), text);
    }
    config = fixtureConfig({
      sources: {
        customers: { type: 'local', path: 'customers.csv' },
        orders: { type: 'local', path: 'orders.csv', where: "channel <> 'test'" },
        invoices: { type: 'local', path: 'invoices.csv' },
      },
      quality: { max_quarantine_share: 0.5 },
      // The fixture is old on purpose; freshness is not what it checks.
      checks: { freshness: { severity: 'off', audience: 'off' } },
    });
    ({ db, landing, configured } = await buildRun(config, dir, '2024-03-31'));
  });
  afterAll(() => db.close());

  it('accounts for every row: read = staged + quarantined + left out by where + after the as-of date', async () => {
    const reconciliation = await reconcileRun(db, configured, landing);
    expect(reconciliation.rows.orders).toEqual({
      read: 11,
      left_out_by_where: 2,
      landed: 9,
      quarantined: 2,
      after_as_of: 1,
      staged: 6,
      unaccounted: 0,
      balanced: true,
    });
    expect(reconciliation.rows.invoices).toMatchObject({
      read: 5,
      left_out_by_where: 0,
      quarantined: 1,
      after_as_of: 1,
      staged: 3,
      balanced: true,
    });
    expect(reconciliation.rows.customers).toMatchObject({ read: 3, staged: 3, balanced: true });
    expect(reconciliation.balanced).toBe(true);
  });

  it('accounts for every amount, to the cent, with the reason for what the facts leave out', async () => {
    const { reconciliation } = await reconcile(db, configured, landing);
    expect(reconciliation.money.orders).toEqual({
      measure: 'sum of |amount| (a refund counts as money)',
      input: 500.75,
      quarantined: 15,
      quarantined_rows_without_amount: 1,
      after_as_of: 70,
      excluded: [
        {
          reason: 'cancelled orders (status cancelled, positive amount) are neither revenue nor refunds',
          rows: 1,
          amount: 40,
        },
      ],
      published: [
        { column: 'fct_customer_period.revenue', staged: 300, published: 300 },
        { column: 'fct_customer_period.refunds', staged: 75.75, published: 75.75 },
      ],
      unaccounted: 0,
      balanced: true,
    });
    expect(reconciliation.money.invoices).toMatchObject({
      input: 300,
      quarantined: 10,
      after_as_of: 60,
      excluded: [{ rows: 1, amount: 80 }],
      published: [{ column: 'fct_customer_period.invoices_due_amount', staged: 150, published: 150 }],
      unaccounted: 0,
      balanced: true,
    });
  });

  it('puts refunds before the first purchase and of customers who never bought in the period of the refund', async () => {
    const rows = await db.all(
      `select customer_id, strftime(period_start, '%Y-%m') as period, strftime(cohort_period, '%Y-%m') as cohort,
              period_index::int as period_index, is_active, lifecycle, revenue::double as revenue, refunds::double as refunds,
              invoices_due_amount::double as invoiced
       from fct_customer_period order by customer_id, period_start`,
    );
    const columns =
      'customer_id period cohort period_index is_active lifecycle revenue refunds invoiced'.split(' ');
    expect(rows).toEqual(
      [
        ['A', '2024-01', '2024-02', -1, false, 'not_yet_active', 0, 30, 0],
        ['A', '2024-02', '2024-02', 0, true, 'new', 100, 0, 100],
        ['A', '2024-03', '2024-02', 1, false, 'churned', 0, 0, 0],
        ['B', '2024-01', null, null, false, 'not_yet_active', 0, 0, 50],
        ['B', '2024-02', null, null, false, 'not_yet_active', 0, 25.5, 0],
        ['B', '2024-03', null, null, false, 'not_yet_active', 0, 0, 0],
        ['C', '2024-01', '2024-01', 0, true, 'new', 200, 0, 0],
        ['C', '2024-02', '2024-01', 1, false, 'churned', 0, 0, 0],
        ['C', '2024-03', '2024-01', 2, false, 'dormant', 0, 20.25, 0],
      ].map((values) => Object.fromEntries(columns.map((column, i) => [column, values[i]]))),
    );
  });

  it('passes the gates on balanced books, and fails them in one line, before publishing, when they do not balance', async () => {
    const balanced = await runChecks({ db, config, asOf: '2024-03-31', configured, landing });
    expect(balanced.reconciliation.balanced).toBe(true);
    const gates = balanced.results.filter((r) => r.check === 'reconciliation');
    expect(gates.map((r) => [r.target, r.status])).toEqual([
      ['customers rows', 'pass'],
      ['orders rows', 'pass'],
      ['invoices rows', 'pass'],
      ['orders amount', 'pass'],
      ['invoices amount', 'pass'],
    ]);
    expect(balanced.results.filter((r) => r.status !== 'pass')).toEqual([]);

    // A refund that vanishes from the facts and a staged row that vanishes from staging.
    await db.run(`update fct_customer_period set refunds = 0 where customer_id = 'B'`);
    await db.run(`delete from stg_orders where order_id = 'c1'`);
    const broken = await runChecks({ db, config, asOf: '2024-03-31', configured, landing });
    expect(broken.reconciliation.balanced).toBe(false);
    const failed = broken.results.filter((r) => r.status === 'fail').map((r) => r.message);
    expect(failed).toEqual([
      'reconciliation: orders rows do not add up: 9 landed <> 5 staged + 2 quarantined + 1 after the as-of date 2024-03-31 (1 row(s) unaccounted for)',
      'reconciliation: orders amounts do not add up: input 500.75 <> published 350.25 (fct_customer_period.revenue 300.00 + ' +
        'fct_customer_period.refunds 50.25) + quarantined 15.00 + after the as-of date 2024-03-31 70.00 + excluded 40.00 ' +
        '(difference 25.50); fct_customer_period.revenue is 300.00 but the staged rows carry 100.00; ' +
        'fct_customer_period.refunds is 50.25 but the staged rows carry 75.75',
    ]);
    expect(() => assertChecks(broken)).toThrow(
      /^2 data-quality gate\(s\) failed, nothing was published: reconciliation: orders rows/,
    );
    try {
      assertChecks(broken);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

describe('the reconciliation in the manifest of a real run', () => {
  it('states rows and money per entity, balanced', async () => {
    const project = makeProject();
    const exit = await churn(['run', '--config', project.config, '--as-of', '2024-06-30']);
    expect(exit.code, exit.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(project.out, 'current', '_manifest.json'), 'utf8'));
    expect(manifest.reconciliation.balanced).toBe(true);
    const rows = manifest.reconciliation.rows;
    expect(Object.keys(rows)).toEqual(['customers', 'orders', 'email_events', 'surveys']);
    const lines = project.data.orders.trim().split('\n').length - 1;
    expect(rows.orders).toMatchObject({ read: lines, left_out_by_where: 0, landed: lines, unaccounted: 0 });
    expect(rows.orders.staged + rows.orders.quarantined + rows.orders.after_as_of).toBe(lines);
    expect(manifest.reconciliation.money.orders).toMatchObject({ unaccounted: 0, balanced: true });
    expect(manifest.checks.filter((c: { check: string }) => c.check === 'reconciliation')).toHaveLength(5);
  });
});

describe.skipIf(!existsSync(join(datasets, 'online_retail/online_retail.csv.gz')))(
  'reconciliation on Online Retail (as of 2011-11-30)',
  () => {
    it('reconciles every line and every refund to the cent', async () => {
      const file = join(root, 'examples', 'online_retail.yaml');
      const { config } = parseConfig(readFileSync(file, 'utf8'), file, {
        RETAIL_DIR: join(datasets, 'online_retail'),
      });
      const { db, landing, configured } = await buildRun(config, join(root, 'examples'), '2011-11-30', {
        only: ['fct_customer_period', 'quarantine'],
      });
      try {
        const { rows, money, balanced } = await reconcileRun(db, configured, landing);
        // 541,909 lines: 135,080 without a CustomerID left out by `where`; lines after November are outside the run.
        expect(rows.orders).toMatchObject({
          read: 541_909,
          left_out_by_where: 135_080,
          landed: 406_829,
          quarantined: 0,
          staged: 389_168,
          after_as_of: 406_829 - 389_168,
          balanced: true,
        });
        const orders = money.orders;
        expect(orders?.published).toEqual([
          { column: 'fct_customer_period.revenue', staged: 8_393_215.11, published: 8_393_215.11 },
          // Every refund line with a CustomerID up to the as-of date (it was 421,436.53 before).
          { column: 'fct_customer_period.refunds', staged: 435_655.68, published: 435_655.68 },
        ]);
        expect(orders).toMatchObject({ unaccounted: 0, balanced: true });
        expect(balanced).toBe(true);

        // Where the 14,219.15 that used to vanish now is: 33 customers who never bought, and refunds before a first purchase.
        const parts = await db.one(
          `select (count(distinct customer_id) filter (where cohort_period is null))::int as never_bought,
                  sum(refunds) filter (where cohort_period is null)::double as never_bought_refunds,
                  sum(refunds) filter (where period_index < 0)::double as before_first_purchase
           from fct_customer_period`,
        );
        expect(parts).toEqual({
          never_bought: 33,
          never_bought_refunds: 10_408.29,
          before_first_purchase: 3_810.86,
        });
      } finally {
        db.close();
      }
    });
  },
);
