// The example configs on the real datasets of ../shared/datasets, checked against an independent computation
// of the same definitions (plain TypeScript over the rows, not the SQL models). Skipped where the datasets
// are not beside the clone.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../pipelines/base/duckdb.js';
import { earlyWarningNotes } from '../pipelines/run/summary.js';
import { BROKEN_INVARIANTS } from './support/invariants.js';
import { buildModels } from './support/models.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const datasets = resolve(root, '../shared/datasets');

async function runExample(
  name: string,
  env: Record<string, string>,
  asOf: string,
  only: string[],
  health: Partial<Config['health']> = {},
): Promise<Db> {
  const file = join(root, 'examples', `${name}.yaml`);
  const { config } = parseConfig(readFileSync(file, 'utf8'), file, env);
  return buildModels({ ...config, health: { ...config.health, ...health } }, join(root, 'examples'), asOf, {
    only,
  });
}

/** What `read` finds in Online Retail's health_scores as of 2011-09-30, under the given health settings. */
async function onlineRetailScores<T>(
  health: Partial<Config['health']>,
  read: (db: Db) => Promise<T>,
): Promise<T> {
  const db = await runExample(
    'online_retail',
    EXAMPLES.online_retail.env,
    '2011-09-30',
    ['health_scores'],
    health,
  );
  try {
    return await read(db);
  } finally {
    db.close();
  }
}

interface Purchase {
  customer: string;
  month: string;
  amount: number;
}

/** churn_summary for segment all, from first principles: month sets per customer. */
function independentChurn(purchases: Purchase[], months: string[]) {
  const revenue = new Map<string, Map<string, number>>();
  for (const p of purchases) {
    if (!(p.amount > 0)) continue;
    const byMonth = revenue.get(p.customer) ?? new Map<string, number>();
    byMonth.set(p.month, (byMonth.get(p.month) ?? 0) + p.amount);
    revenue.set(p.customer, byMonth);
  }
  return months.slice(1).map((month, i) => {
    const prev = months[i]!;
    let start = 0;
    let churned = 0;
    let retained = 0;
    let resurrected = 0;
    let newCustomers = 0;
    let revStart = 0;
    let revNow = 0;
    for (const byMonth of revenue.values()) {
      const was = byMonth.has(prev);
      const is = byMonth.has(month);
      const before = [...byMonth.keys()].some((m) => m < month);
      if (was) {
        start += 1;
        revStart += byMonth.get(prev)!;
        revNow += byMonth.get(month) ?? 0;
        if (is) retained += 1;
        else churned += 1;
      } else if (is) {
        if (before) resurrected += 1;
        else newCustomers += 1;
      }
    }
    return {
      month,
      customers_start: start,
      new_customers: newCustomers,
      retained,
      resurrected,
      churned,
      churn_rate_pct: Number(((100 * churned) / start).toFixed(4)),
      nrr_pct: Number(((100 * revNow) / revStart).toFixed(4)),
    };
  });
}

async function modelChurn(db: Db) {
  const rows = await db.all(
    `select strftime(period_start, '%Y-%m') as month, customers_start, new_customers, retained, resurrected, churned,
            churn_rate_pct, nrr_pct
     from churn_summary where segment_by = 'all' and customers_start > 0 order by period_start`,
  );
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'month' ? v : Number(v)])),
  );
}

function monthsBetween(from: string, to: string): string[] {
  const out: string[] = [];
  const d = new Date(`${from}-01T00:00:00Z`);
  while (d.toISOString().slice(0, 7) <= to) {
    out.push(d.toISOString().slice(0, 7));
    d.setUTCMonth(d.getUTCMonth() + 1);
  }
  return out;
}

/** A dataset file that is not beside the clone: the tests of its example are skipped. */
const missing = (file: string) => !existsSync(join(datasets, file));

/** The examples checked on their datasets: the environment their configs read, the as-of date and the models. */
const EXAMPLES = {
  cdnow: {
    env: { CDNOW_DIR: join(datasets, 'cdnow') },
    asOf: '1998-06-30',
    only: ['churn_summary', 'cohort_retention', 'quarantine'],
  },
  online_retail: {
    env: { RETAIL_DIR: join(datasets, 'online_retail') },
    asOf: '2011-11-30',
    only: ['churn_summary'],
  },
  olist: {
    env: { OLIST_DIR: join(datasets, 'olist_sample') },
    asOf: '2018-08-31',
    only: ['survey_trends', 'churn_summary', 'cohort_retention'],
  },
};

/** Builds the models of an example (EXAMPLES), hands them to `check` and closes them. */
async function withExample(name: keyof typeof EXAMPLES, check: (db: Db) => Promise<void>): Promise<void> {
  const { env, asOf, only } = EXAMPLES[name];
  const db = await runExample(name, env, asOf, only);
  try {
    await check(db);
  } finally {
    db.close();
  }
}

describe.skipIf(missing('cdnow/CDNOW_master.txt'))('CDNOW example', () => {
  it('agrees with an independent computation of churn, lifecycle and NRR, month by month', () =>
    withExample('cdnow', async (db) => {
      const purchases = readFileSync(join(datasets, 'cdnow/CDNOW_master.txt'), 'utf8')
        .split(/\r?\n/)
        .slice(1)
        .filter((l) => l.trim())
        .map((line) => {
          const [customer, date, , dollars] = line.trim().split(/\s+/);
          return {
            customer: customer!,
            month: `${date!.slice(0, 4)}-${date!.slice(4, 6)}`,
            amount: Number(dollars),
          };
        });
      expect(purchases).toHaveLength(69_659);
      expect(await db.number('select count(*) from stg_customers')).toBe(23_570);
      expect(await db.number('select count(*) from quarantine')).toBe(0);
      expect(await modelChurn(db)).toEqual(independentChurn(purchases, monthsBetween('1997-01', '1998-06')));
      expect(await db.all(BROKEN_INVARIANTS)).toEqual([]);
      // Invariants: cohort sizes add up to the customers with a positive purchase.
      const buyers = new Set(purchases.filter((p) => p.amount > 0).map((p) => p.customer)).size;
      expect(
        await db.number(
          `select sum(cohort_size) from cohort_retention where segment_by = 'all' and period_index = 0`,
        ),
      ).toBe(buyers);
    }));
});

describe.skipIf(missing('online_retail/online_retail.csv.gz'))('Online Retail example', () => {
  it('agrees with an independent computation and reports what it left out', () =>
    withExample('online_retail', async (db) => {
      // Rows read back as plain values; the metric logic below is independent of the SQL models.
      const rows = await db.all<{ customer: string; ts: string; amount: number; invoice: string }>(
        `select regexp_replace(CustomerID, '\\.0$', '') as customer, InvoiceDate as ts, InvoiceNo as invoice,
                try_cast(Quantity as double) * try_cast(UnitPrice as double) as amount
         from read_csv('${join(datasets, 'online_retail/online_retail.csv.gz')}', all_varchar = true)
         where CustomerID is not null and InvoiceDate < '2011-12-01'`,
      );
      const purchases = rows
        .filter((r) => !r.invoice.startsWith('C'))
        .map((r) => ({
          customer: r.customer,
          month: r.ts.slice(0, 7),
          amount: Number(r.amount.toFixed(2)),
        }));
      expect(await modelChurn(db)).toEqual(independentChurn(purchases, monthsBetween('2010-12', '2011-11')));
      expect(await db.number('select count(*) from raw_orders')).toBe(541_909 - 135_080);
      expect(await db.number(`select count(*) from stg_orders where status = 'refunded'`)).toBeGreaterThan(
        8000,
      );
      // Small numbers: Netherlands 2011-08 has one customer at the start (NRR was 154,987.7%): no rate, the
      // base is published; no segment-month gets a rate on fewer than 10 customers.
      expect(
        await db.one(
          `select customers_start::integer as customers_start, revenue_start::double as revenue_start,
                    nrr_pct, grr_pct, churn_rate_pct from churn_summary
             where segment_by = 'country' and segment = 'NETHERLANDS' and period_start = '2011-08-01'`,
        ),
      ).toEqual({
        customers_start: 1,
        revenue_start: 26.02,
        nrr_pct: null,
        grr_pct: null,
        churn_rate_pct: null,
      });
      expect(
        await db.number(
          `select count(*) from churn_summary where customers_start < 10 and (nrr_pct is not null or churn_rate_pct is not null)`,
        ),
      ).toBe(0);
      expect(await db.number(`select max(nrr_pct) from churn_summary`)).toBeLessThan(300);
    }));
});

describe.skipIf(missing('online_retail/online_retail.csv.gz'))('Online Retail early warning', () => {
  it("learns from its own history that a wholesale buyer's drop is no sign of leaving, and flags a short list", async () => {
    const db = await runExample('online_retail', EXAMPLES.online_retail.env, '2011-09-30', [
      'int_health_status',
      'int_health_drop_record',
    ]);
    try {
      // On this shop, customers with a drop declined about as often as steady ones at the snapshot before.
      const record = await db.all<{ snapshot_role: string; drops_trusted: boolean; drop_lift: number }>(
        `select snapshot_role, any_value(drops_trusted) as drops_trusted, round(any_value(drop_lift), 2)::double as drop_lift
         from int_health_status group by all order by snapshot_role`,
      );
      expect(record.map((r) => [r.snapshot_role, r.drops_trusted])).toEqual([
        ['score', false],
        ['train', false],
      ]);
      for (const r of record) expect(r.drop_lift).toBeLessThan(1.25);
      // The manifest says so.
      expect(await earlyWarningNotes(db)).toEqual([
        expect.stringMatching(
          /^early warning: at the snapshot before, customers with a drop \(ACTIVITY_DROP, SPEND_DROP\) declined (0\.\d\d|1\.[01]\d)x as often as steady ones, below health\.drop_min_lift 1\.25: a drop alone sets no status tonight \(at_risk needs p_churn >= 0\.5\)$/,
        ),
      ]);
      // A drop alone sets no status: every at_risk customer is there with p_churn >= 0.5 or for a silence.
      expect(
        await db.number(
          `select count(*) from int_health_status
           where status = 'at_risk' and p_churn < 0.5 and not list_contains(reasons, 'INACTIVE')`,
        ),
      ).toBe(0);
      // The flagged customers of the backtest snapshot left more often than the active ones with a rhythm.
      const train = await db.one<{ flagged: number; flagged_churn: number; active_churn: number }>(
        `select count(*) filter (where status in ('at_risk', 'silent_churn'))::integer as flagged,
                avg(churned_in_horizon::integer) filter (where status in ('at_risk', 'silent_churn')) as flagged_churn,
                avg(churned_in_horizon::integer) filter (where status = 'active' and has_rhythm) as active_churn
         from int_health_status where snapshot_role = 'train'`,
      );
      expect(train?.flagged).toBeGreaterThan(20);
      expect(train?.flagged).toBeLessThan(200);
      expect(train?.flagged_churn).toBeGreaterThan(1.5 * (train?.active_churn ?? 1));
    } finally {
      db.close();
    }
  });

  it('fits MBG/NBD on a hash sample of health.model_max_fit_customers and scores every purchaser with it', async () => {
    const scores = (health: Partial<Config['health']>) =>
      onlineRetailScores(health, async (db) => {
        const message = await db.one<{ m: string }>(
          `select purchase_model_message as m from health_model where snapshot_role = 'score' and target = 'churn'`,
        );
        const rows = await db.all<{ customer_id: string; p_alive: number }>(
          `select customer_id, p_alive from health_scores where snapshot_role = 'score' and p_alive is not null order by all`,
        );
        return { message: message?.m ?? '', rows };
      });
    const full = await scores({});
    const sampled = await scores({ model_max_fit_customers: 1000 });
    expect(full.message).toMatch(
      new RegExp(`^fitted on ${full.rows.length} customers \\(\\d+ repeat buyers\\)`),
    );
    expect(sampled.message).toMatch(
      new RegExp(
        `^fitted on a hash sample of 1000 of ${full.rows.length} customers \\(health.model_max_fit_customers\\)`,
      ),
    );
    expect(sampled.rows.map((r) => r.customer_id)).toEqual(full.rows.map((r) => r.customer_id));
    const gap = Math.max(...sampled.rows.map((r, i) => Math.abs(r.p_alive - (full.rows[i]?.p_alive ?? 0))));
    expect(gap).toBeGreaterThan(0);
    expect(gap).toBeLessThan(0.15);
  });

  it('learns the risk model from a hash sample of health.model_max_training_rows and scores everyone with it', async () => {
    const learned = (health: Partial<Config['health']>) =>
      onlineRetailScores(health, async (db) => {
        const model = await db.one<{ risk_model: string; reason: string; training_customers: number }>(
          `select risk_model, reason, training_customers::integer as training_customers
           from health_model where snapshot_role = 'score' and target = 'churn'`,
        );
        const scored = await db.number(
          `select count(*) from health_scores where snapshot_role = 'score' and p_churn is not null`,
        );
        return { model, scored };
      });
    const full = await learned({});
    const sampled = await learned({ model_max_training_rows: 500 });
    expect(full.model?.training_customers).toBeGreaterThan(1000);
    expect(sampled.model).toMatchObject({ risk_model: 'logistic', training_customers: 500 });
    expect(sampled.model?.reason).toMatch(/^learned from 500 customers as of the train snapshot/);
    expect(sampled.scored).toBe(full.scored);
  });
});

describe.skipIf(missing('olist_sample/olist_orders_dataset.csv'))('Olist example', () => {
  it('reads multi-line quoted reviews as CSAT and joins them to the person behind the order', () =>
    withExample('olist', async (db) => {
      const reviews = await db.number(`select count(*) from raw_surveys`);
      expect(reviews).toBeGreaterThan(3900);
      expect(
        await db.number(`select count(*) from stg_surveys where comment like '%' || chr(10) || '%'`),
      ).toBeGreaterThan(0);
      const csat = await db.one(
        `select sum(responses) as n, sum(satisfied) as s from survey_trends where segment_by = 'all' and survey_type = 'csat'`,
      );
      const direct = await db.one(
        `select count(*) as n, count(*) filter (where score >= 4) as s from stg_surveys`,
      );
      expect(csat).toEqual(direct);
      expect(await db.all(BROKEN_INVARIANTS)).toEqual([]);
      // Small numbers: a state-month with a handful of reviews is never a significant change (54 were, 49 of
      // them on fewer than 10 responses in one of the two months); the national months keep theirs.
      expect(
        await db.number(
          `select count(*) from survey_trends where significant_change and least(responses, previous_responses) < 30`,
        ),
      ).toBe(0);
      const national = await db.all<{ month: string }>(
        `select strftime(period_start, '%Y-%m') as month from survey_trends
         where segment_by = 'all' and significant_change order by 1`,
      );
      expect(national.map((r) => r.month)).toEqual(expect.arrayContaining(['2018-03', '2018-04', '2018-05']));
    }));
});
