// Hand-computed fixtures for the metric tables: the expected numbers are worked out in the comments.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../pipelines/base/duckdb.js';
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

// The fixtures are tiny: the small-number guards (metrics.min_base_customers) are lowered to 1 so that every
// rate is published, except in the tests of the guards themselves.
const everyRate = { metrics: { min_base_customers: 1 } };

describe('churn_summary and cohort_retention on a hand-computed fixture', () => {
  let db: Db;
  beforeAll(async () => {
    db = await buildFixture({ asOf: '2024-04-30', csv: { customers, orders }, config: everyRate });
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
    const db = await buildFixture({ asOf: '2024-04-15', csv: { customers, orders }, config: everyRate });
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
    const db = await buildFixture({ asOf: '2024-03-31', csv: { subscriptions }, config: everyRate });
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

describe('small numbers (metrics.min_base_customers)', () => {
  /** The four-customer fixture as of 2024-04-30 with metrics.min_base_customers at `minimum`. */
  const withMinimum = (minimum: number) =>
    buildFixture({
      asOf: '2024-04-30',
      csv: { customers, orders },
      config: { metrics: { min_base_customers: minimum } },
    });

  it('publishes no churn, retention, NRR or GRR on a start base below the minimum, and keeps the base', async () => {
    // The default minimum is 10 customers: the four-customer fixture gets counts and no rates.
    const db = await buildFixture({ asOf: '2024-04-30', csv: { customers, orders } });
    try {
      const rates = await db.one(
        `select count(*) filter (where churn_rate_pct is not null or retention_rate_pct is not null
                                 or nrr_pct is not null or grr_pct is not null) as rated,
                sum(customers_start) as bases, sum(revenue_start) as revenue_bases
         from churn_summary`,
      );
      // Base revenue of Feb (300), Mar (310) and Apr (110) in every dimension: all, and segment (smb + enterprise).
      expect([num(rates?.rated), num(rates?.bases), num(rates?.revenue_bases)]).toEqual([0, 14, 1440]);
      const cells = await db.one(
        `select count(*) as cells, count(retention_pct) as rated, count(unbounded_retention_pct) as rated_unbounded,
                sum(active_customers) as active
         from cohort_retention where segment_by = 'all'`,
      );
      expect([num(cells?.cells), num(cells?.rated), num(cells?.rated_unbounded), num(cells?.active)]).toEqual(
        [9, 0, 0, 10],
      );
    } finally {
      db.close();
    }
  });

  it('rates exactly the bases at or above the minimum', async () => {
    // With a minimum of 3, only March (start {A,B,C}) is rated, and no cohort cell (the largest cohort, Jan
    // {A,B}, has 2); with a minimum of 2, the Jan cohort's cells are.
    const db = await withMinimum(3);
    try {
      const rows = await db.all(
        `select strftime(period_start, '%Y-%m') as p, customers_start, churn_rate_pct, retention_rate_pct, nrr_pct, grr_pct
         from churn_summary where segment_by = 'all' order by period_start`,
      );
      const table = rows.map((r) => Object.values(r).map((v, i) => (i === 0 ? v : num(v))));
      expect(table).toEqual([
        ['2024-01', 0, null, null, null, null],
        ['2024-02', 2, null, null, null, null],
        ['2024-03', 3, 66.6667, 33.3333, 32.2581, 32.2581],
        ['2024-04', 2, null, null, null, null],
      ]);
      expect(await db.number(`select count(retention_pct) from cohort_retention`)).toBe(0);
    } finally {
      db.close();
    }
    const two = await withMinimum(2);
    try {
      const rated = await two.all(
        `select strftime(cohort_period, '%Y-%m') as cohort, count(retention_pct) as rated, count(*) as cells
         from cohort_retention where segment_by = 'all' group by 1 order by 1`,
      );
      expect(rated.map((r) => [r.cohort, num(r.rated), num(r.cells)])).toEqual([
        ['2024-01', 4, 4],
        ['2024-02', 0, 3],
        ['2024-03', 0, 2],
      ]);
    } finally {
      two.close();
    }
  });

  it('guards MRR-based GRR and NRR by the customers with MRR at the start, and publishes that base', async () => {
    // Three subscribers from January; February's base is 3 customers with MRR.
    const subscriptions = `subscription_id,customer_id,started_at,ended_at,mrr
s1,S1,2024-01-01,,100
s2,S2,2024-01-01,,50
s3,S3,2024-01-01,2024-02-15,200
`;
    for (const [minimum, rated] of [
      [3, true],
      [4, false],
    ] as const) {
      const db = await buildFixture({
        asOf: '2024-02-29',
        csv: { subscriptions },
        config: { metrics: { min_base_customers: minimum } },
      });
      try {
        const feb = await db.one(
          `select mrr_customers_start, mrr_start, mrr_churned, mrr_grr_pct, mrr_nrr_pct from churn_summary
           where segment_by = 'all' and period_start = '2024-02-01'`,
        );
        // GRR = NRR = (350 - 200) / 350 = 42.8571.
        expect(Object.values(feb ?? {}).map(num)).toEqual(
          rated ? [3, 350, 200, 42.8571, 42.8571] : [3, 350, 200, null, null],
        );
      } finally {
        db.close();
      }
    }
  });
});

describe('survey_trends significance (two-sample tests, metrics.min_survey_responses)', () => {
  /** n responses per period as CSV rows, scores given as [score, how many]. */
  function responses(period: string, type: 'nps' | 'csat', ...scores: [number, number][]): string[] {
    const rows: string[] = [];
    for (const [score, count] of scores) {
      for (let i = 0; i < count; i++) rows.push(`c${rows.length},${period}-10,${type},${score}`);
    }
    return rows;
  }
  async function trend(surveyRows: string[], config: Record<string, unknown> = {}) {
    const customerIds = new Set(surveyRows.map((r) => r.split(',')[0]));
    const db = await buildFixture({
      asOf: '2024-02-29',
      csv: {
        surveys: `customer_id,responded_at,survey_type,score\n${surveyRows.join('\n')}\n`,
        activity: `customer_id,occurred_at\n${[...customerIds].map((c) => `${c},2024-01-01`).join('\n')}\n`,
      },
      config,
    });
    try {
      const rows = await db.all(
        `select survey_type, responses, previous_responses, delta_vs_prev, change_z, significant_change
         from survey_trends where segment_by = 'all' and period_start = '2024-02-01' order by survey_type`,
      );
      return rows.map((r) =>
        Object.values(r).map((v, i) => (i === 0 || typeof v === 'boolean' ? v : num(v))),
      );
    } finally {
      db.close();
    }
  }

  it('tests two CSAT proportions (pooled) and the difference of two NPS values', async () => {
    // CSAT: Jan 15 of 30 satisfied (50%), Feb 24 of 30 (80%). Pooled p = 39/60 = 0.65,
    //   se = 100 x sqrt(0.65 x 0.35 x (1/30 + 1/30)) = 12.3153; z = 30 / 12.3153 = 2.4360 > 1.96.
    // NPS: Jan 40 answers, 20 promoters and 10 detractors (NPS 25); Feb 10 promoters, 20 detractors (NPS -25).
    //   var = (0.5 + 0.25 - 0.25^2) / 40 = 0.0171875 each; se = 100 x sqrt(2 x 0.0171875) = 18.5405;
    //   z = -50 / 18.5405 = -2.6968.
    const rows = [
      ...responses('2024-01', 'csat', [5, 15], [2, 15]),
      ...responses('2024-02', 'csat', [4, 24], [1, 6]),
      ...responses('2024-01', 'nps', [10, 20], [8, 10], [3, 10]),
      ...responses('2024-02', 'nps', [9, 10], [7, 10], [0, 20]),
    ];
    expect(await trend(rows)).toEqual([
      ['csat', 30, 30, 30, 2.436, true],
      ['nps', 40, 40, -50, -2.6968, true],
    ]);
  });

  it('does not call a change significant that the test does not support', async () => {
    // CSAT 50% -> 60% on 30 each: pooled p = 0.55, se = 12.8452, z = 0.7785.
    const rows = [
      ...responses('2024-01', 'csat', [5, 15], [2, 15]),
      ...responses('2024-02', 'csat', [5, 18], [2, 12]),
    ];
    expect(await trend(rows)).toEqual([['csat', 30, 30, 10, 0.7785, false]]);
  });

  it('is never significant below the minimum responses in either period, whatever the change', async () => {
    // One answer per month, 5 then 1: the old margin of 0 made this "significant". Pooled p = 1/2,
    // se = 100 x sqrt(1/4 x 2) = 70.7107, z = -100 / 70.7107 = -sqrt(2).
    const single = [...responses('2024-01', 'csat', [5, 1]), ...responses('2024-02', 'csat', [1, 1])];
    expect(await trend(single)).toEqual([['csat', 1, 1, -100, -Number(Math.SQRT2.toFixed(4)), false]]);
    // 29 answers in January (all satisfied) against 30 (none): a real change, but below 30 in one period...
    const justBelow = [...responses('2024-01', 'csat', [5, 29]), ...responses('2024-02', 'csat', [1, 30])];
    expect((await trend(justBelow))[0]?.at(-1)).toBe(false);
    // ...and significant once the minimum allows it.
    expect((await trend(justBelow, { metrics: { min_survey_responses: 29 } }))[0]?.at(-1)).toBe(true);
  });
});

describe('segment_by on any customer column', () => {
  it('splits by text columns, marketing_consent and the period of a timestamp column (unknown when missing)', async () => {
    const db = await buildFixture({
      asOf: '2024-04-30',
      csv: {
        customers: `customer_id,segment,country,marketing_consent,signup_at,cancelled_at
A,smb,de,true,2023-12-20 10:00:00,
B,smb,,false,2024-01-03 10:00:00,2024-03-02 10:00:00
C,enterprise,fr,,2024-01-31 23:30:00,
D,enterprise,fr,true,,
`,
        orders,
      },
      config: { segment_by: ['country', 'marketing_consent', 'signup_at', 'cancelled_at'] },
    });
    try {
      const rows = await db.all<{ segment_by: string; segments: string }>(
        `select segment_by, string_agg(customer_id || '=' || segment, ' ' order by customer_id) as segments
         from int_customer_segments group by 1 order by 1`,
      );
      expect(Object.fromEntries(rows.map((r) => [r.segment_by, r.segments]))).toEqual({
        all: 'A=all B=all C=all D=all',
        cancelled_at: 'A=unknown B=2024-03-01 C=unknown D=unknown',
        country: 'A=DE B=unknown C=FR D=FR',
        marketing_consent: 'A=true B=false C=false D=true',
        signup_at: 'A=2023-12-01 B=2024-01-01 C=2024-01-01 D=unknown',
      });
      // The metric tables carry every configured dimension.
      const dims = await db.all<{ segment_by: string }>(
        `select distinct segment_by from churn_summary order by 1`,
      );
      expect(dims.map((d) => d.segment_by)).toEqual([
        'all',
        'cancelled_at',
        'country',
        'marketing_consent',
        'signup_at',
      ]);
    } finally {
      db.close();
    }
  });
});
