// Hand-computed fixtures for the metric tables: the expected numbers are worked out in the comments.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../pipelines/duckdb.js';
import { buildFixture } from './support/models.js';

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

// Four customers, monthly periods, as of 2024-04-30 (April complete).
//   A: Jan 100, Feb 50, Mar -, Apr 80      -> new, retained, churned, resurrected
//   B: Jan 200, Feb 200, Mar 100, Apr 300  -> new, retained, retained, retained
//   C: Feb 60                              -> new (Feb cohort), churned, dormant
//   D: Mar 10, Apr 10                      -> new (Mar cohort), retained
const customers = `customer_id,segment
A,smb
B,smb
C,enterprise
D,enterprise
`;
const orders = `order_id,customer_id,ordered_at,amount,status
a1,A,2024-01-10 10:00:00,100,completed
a2,A,2024-02-10 10:00:00,50,completed
a3,A,2024-04-10 10:00:00,80,completed
a4,A,2024-03-10 10:00:00,999,cancelled
b1,B,2024-01-10 10:00:00,200,completed
b2,B,2024-02-10 10:00:00,200,completed
b3,B,2024-03-10 10:00:00,100,completed
b4,B,2024-04-10 10:00:00,300,completed
c1,C,2024-02-10 10:00:00,60,completed
c2,C,2024-03-12 10:00:00,60,refunded
d1,D,2024-03-10 10:00:00,10,completed
d2,D,2024-04-10 10:00:00,10,completed
d3,D,2024-05-02 10:00:00,10,completed
`;

describe('churn_summary and cohort_retention on a hand-computed fixture', () => {
  let db: Db;
  beforeAll(async () => {
    db = await buildFixture({ asOf: '2024-04-30', csv: { customers, orders } });
  });
  afterAll(() => db.close());

  it('assigns the Amplitude lifecycle per customer and month', async () => {
    const rows = await db.all<{ customer_id: string; lifecycles: string }>(
      `select customer_id, string_agg(lifecycle, ',' order by period_start) as lifecycles
       from fct_customer_period group by customer_id order by customer_id`,
    );
    expect(rows).toEqual([
      { customer_id: 'A', lifecycles: 'new,retained,churned,resurrected' },
      { customer_id: 'B', lifecycles: 'new,retained,retained,retained' },
      { customer_id: 'C', lifecycles: 'new,churned,dormant' },
      { customer_id: 'D', lifecycles: 'new,retained' },
    ]);
  });

  it('counts orders, revenue and refunds; the order after the as-of date is outside the run', async () => {
    const c = await db.one(
      `select orders, revenue, refunds from fct_customer_period where customer_id = 'C' and period_start = '2024-03-01'`,
    );
    expect([num(c?.orders), num(c?.revenue), num(c?.refunds)]).toEqual([0, 0, 60]);
    const d = await db.number(`select sum(revenue) from fct_customer_period where customer_id = 'D'`);
    expect(d).toBe(20);
  });

  it('computes churn, retention, NRR and GRR of the start base', async () => {
    const rows = await db.all(
      `select strftime(period_start, '%Y-%m') as p, customers_start, new_customers, retained, resurrected, churned,
              active_customers, churn_rate_pct, retention_rate_pct, nrr_pct, grr_pct
       from churn_summary where segment_by = 'all' order by period_start`,
    );
    const table = rows.map((r) => Object.values(r).map((v, i) => (i === 0 ? v : num(v))));
    expect(table).toEqual([
      // Jan: nobody at the start; A and B are new.
      ['2024-01', 0, 2, 0, 0, 0, 2, null, null, null, null],
      // Feb: start {A,B}; both retained; C new. Base revenue Jan 300 -> Feb 250: NRR = GRR = 83.3333.
      ['2024-02', 2, 1, 2, 0, 0, 3, 0, 100, 83.3333, 83.3333],
      // Mar: start {A,B,C}; B retained, A and C churned (2/3 = 66.6667%); D new.
      // Base revenue Feb 310 -> Mar 100: NRR = 32.2581; GRR: min(0,50)+min(100,200)+min(0,60) = 100 -> 32.2581.
      ['2024-03', 3, 1, 1, 0, 2, 2, 66.6667, 33.3333, 32.2581, 32.2581],
      // Apr: start {B,D}; both retained, A resurrected. Base Mar 110 -> Apr 310: NRR 281.8182; GRR 110/110 = 100.
      ['2024-04', 2, 0, 2, 1, 0, 3, 0, 100, 281.8182, 100],
    ]);
  });

  it('splits by segment with the same definitions', async () => {
    const smb = await db.one(
      `select customers_start, churned, churn_rate_pct from churn_summary
       where segment_by = 'segment' and segment = 'smb' and period_start = '2024-03-01'`,
    );
    // Mar, smb = {A,B}: start 2, A churned -> 50%.
    expect([num(smb?.customers_start), num(smb?.churned), num(smb?.churn_rate_pct)]).toEqual([2, 1, 50]);
  });

  it('computes on and on-or-after retention, revenue and cumulative revenue per customer', async () => {
    const rows = await db.all(
      `select strftime(cohort_period, '%Y-%m') as cohort, period_index, cohort_size, active_customers, retention_pct,
              unbounded_active, unbounded_retention_pct, revenue, cumulative_revenue_per_customer
       from cohort_retention where segment_by = 'all' order by cohort_period, period_index`,
    );
    const table = rows.map((r) => Object.values(r).map((v, i) => (i === 0 ? v : num(v))));
    expect(table).toEqual([
      // Jan cohort {A,B}: A inactive in Mar only; both active in Apr, so on-or-after stays 100%.
      ['2024-01', 0, 2, 2, 100, 2, 100, 300, 150],
      ['2024-01', 1, 2, 2, 100, 2, 100, 250, 275],
      ['2024-01', 2, 2, 1, 50, 2, 100, 100, 325],
      ['2024-01', 3, 2, 2, 100, 2, 100, 380, 515],
      // Feb cohort {C}: never back.
      ['2024-02', 0, 1, 1, 100, 1, 100, 60, 60],
      ['2024-02', 1, 1, 0, 0, 0, 0, 0, 60],
      ['2024-02', 2, 1, 0, 0, 0, 0, 0, 60],
      // Mar cohort {D}.
      ['2024-03', 0, 1, 1, 100, 1, 100, 10, 10],
      ['2024-03', 1, 1, 1, 100, 1, 100, 10, 20],
    ]);
  });
});

describe('incomplete periods', () => {
  it('flags the period containing the as-of date and leaves it out of rates and cohort cells', async () => {
    const db = await buildFixture({ asOf: '2024-04-15', csv: { customers, orders } });
    try {
      const apr = await db.one(
        `select is_complete, churn_rate_pct, nrr_pct from churn_summary where segment_by = 'all' and period_start = '2024-04-01'`,
      );
      expect(apr).toEqual({ is_complete: false, churn_rate_pct: null, nrr_pct: null });
      expect(
        await db.number(`select count(*) from cohort_retention where period_start >= '2024-04-01'`),
      ).toBe(0);
      expect(
        await db.number(
          `select count(*) from fct_customer_period where not is_complete and period_start <> '2024-04-01'`,
        ),
      ).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('MRR movements (ChartMogul)', () => {
  // As of 2024-03-31, MRR snapshot at each month end.
  //   S1: 100 from Jan, running                  -> Jan new 100
  //   S2: 50 Jan 1 - Feb 10, then 80 from Feb 10 -> Feb expansion 30
  //   S3: 200 Jan 1 - Feb 15, 150 from Mar 5     -> Feb churned 200, Mar reactivation 150
  //   S4: 120 Jan 1 - Mar 1, then 90 from Mar 1  -> Mar contraction 30
  // Feb: start 470 + 30 - 200 = 300 = end; GRR (470 - 200) / 470 = 57.4468; NRR (470 + 30 - 200) / 470 = 63.8298.
  // Mar: start 300 + 150 - 30 = 420 = end; GRR (300 - 30) / 300 = 90; NRR 90.
  const subscriptions = `subscription_id,customer_id,started_at,ended_at,mrr
s1,S1,2024-01-01,,100
s2a,S2,2024-01-01,2024-02-10,50
s2b,S2,2024-02-10,,80
s3a,S3,2024-01-01,2024-02-15,200
s3b,S3,2024-03-05,,150
s4a,S4,2024-01-01,2024-03-01,120
s4b,S4,2024-03-01,,90
`;
  it('balances start + new + expansion - contraction - churned + reactivation = end', async () => {
    const db = await buildFixture({ asOf: '2024-03-31', csv: { subscriptions } });
    try {
      const rows = await db.all(
        `select strftime(period_start, '%Y-%m') as p, mrr_start, mrr_new, mrr_expansion, mrr_contraction, mrr_churned,
                mrr_reactivation, mrr_end, mrr_grr_pct, mrr_nrr_pct
         from churn_summary where segment_by = 'all' order by period_start`,
      );
      const table = rows.map((r) => Object.values(r).map((v, i) => (i === 0 ? v : num(v))));
      expect(table).toEqual([
        ['2024-01', 0, 470, 0, 0, 0, 0, 470, null, null],
        ['2024-02', 470, 0, 30, 0, 200, 0, 300, 57.4468, 63.8298],
        ['2024-03', 300, 0, 0, 30, 0, 150, 420, 90, 90],
      ]);
    } finally {
      db.close();
    }
  });
});

describe('survey_trends', () => {
  // NPS Jan: 10 9 8 5 0 -> P 2, passive 1, D 2, n 5: NPS 0; moe = 1.96*100*sqrt((.4+.4-0)/5) = 78.4.
  // NPS Feb: 10 10 10 7 -> P 3, passive 1, D 0, n 4: NPS 75; moe = 1.96*100*sqrt((.75 - .5625)/4) = 42.4352.
  //   delta 75 < sqrt(78.4^2 + 42.4352^2) = 89.148: not significant. rolling_3 Feb: (5 - 2) / 9 = 33.3333.
  // CSAT Jan (1-5): 5 4 3 1 -> satisfied 2 of 4 = 50%, mean 3.25.
  const surveys = `customer_id,responded_at,survey_type,score
A,2024-01-05,nps,10
B,2024-01-05,nps,9
C,2024-01-05,nps,8
D,2024-01-05,nps,5
E,2024-01-05,nps,0
A,2024-02-05,nps,10
B,2024-02-05,nps,10
C,2024-02-05,nps,10
D,2024-02-05,nps,7
A,2024-01-06,csat,5
B,2024-01-06,csat,4
C,2024-01-06,csat,3
D,2024-01-06,csat,1
`;
  const activity = `customer_id,occurred_at
A,2024-01-01
B,2024-01-01
C,2024-01-01
D,2024-01-01
E,2024-01-01
`;
  it('computes NPS groups, margin of error, CSAT top-two-box, rolling and deltas', async () => {
    const db = await buildFixture({ asOf: '2024-02-29', csv: { surveys, activity } });
    try {
      const nps = await db.all(
        `select promoters, passives, detractors, nps, nps_moe95, rolling_3, delta_vs_prev, significant_change
         from survey_trends where segment_by = 'all' and survey_type = 'nps' order by period_start`,
      );
      expect(nps.map((r) => Object.values(r).map((v) => (typeof v === 'boolean' ? v : num(v))))).toEqual([
        [2, 1, 2, 0, 78.4, 0, null, null],
        [3, 1, 0, 75, 42.4352, 33.3333, 75, false],
      ]);
      const csat = await db.one(
        `select responses, satisfied, csat_pct, score_avg from survey_trends where segment_by = 'all' and survey_type = 'csat'`,
      );
      expect(Object.values(csat ?? {}).map(num)).toEqual([4, 2, 50, 3.25]);
    } finally {
      db.close();
    }
  });
});
