// BG/NBD: the numerics (pipelines/fit/bgnbd.ts), the purchase summary SQL and the bgnbd_scores model.
// The CDNOW checks read the real dataset beside the project (/work/shared/datasets/cdnow) and are skipped where it
// is absent; everything else runs on data the test makes itself.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { Db } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import {
  type BgNbdParams,
  bgnbdLogLikelihood,
  expectedPurchases,
  fitBgNbd,
  hyp2f1,
  lnGamma,
  pAlive,
  type RfGroup,
} from '../pipelines/fit/bgnbd.js';
import type { ModelContext } from '../transforms/model.js';
import { bgnbdScores } from '../transforms/models/bgnbd_scores.js';
import { createRunParams } from '../transforms/params.js';
import { gamma, mulberry32 } from './support/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CDNOW_DIR = path.resolve(here, '../../shared/datasets/cdnow');
const CDNOW_SUMMARY = path.join(CDNOW_DIR, 'cdnow_customers_summary.csv');
const CDNOW_SAMPLE = path.join(CDNOW_DIR, 'CDNOW_sample.txt');
const SUMMARY_SQL = path.resolve(here, '../sql/facts/customer_purchase_summary.sql');

/** lifetimes' documented CDNOW fit (r 0.242593, alpha 4.413532, a 0.792886, b 2.425752; paper: 0.243, 4.414, 0.793, 2.426). */
const LIFETIMES_CDNOW: BgNbdParams = { r: 0.242593, alpha: 4.413532, a: 0.792886, b: 2.425752 };

interface CdnowCustomer {
  id: string;
  x: number;
  tx: number;
  T: number;
}

function readCdnowSummary(): CdnowCustomer[] {
  const [header, ...lines] = readFileSync(CDNOW_SUMMARY, 'utf8').trim().split(/\r?\n/);
  expect(header).toBe('ID,frequency,recency,T');
  return lines.map((line) => {
    const [id, x, tx, T] = line.split(',');
    return { id: id!, x: Number(x), tx: Number(tx), T: Number(T) };
  });
}

function expectRelativelyClose(actual: number, expected: number, tolerance: number): void {
  expect(Math.abs(actual / expected - 1), `${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

async function modelContext(db: Db, log = silentLogger()): Promise<ModelContext> {
  const asOf = String((await db.one('select as_of_date from run_params'))?.as_of_date);
  return { db, config: configSchema.parse({ as_of: asOf }), log, asOf, notes: [] };
}

/** An empty stg_orders with the staging model's columns, and run_params from the real config code. */
async function openPipelineDb(
  asOf: string,
  health: { model_time_unit: 'days' | 'weeks'; model_min_repeat_buyers: number },
) {
  const db = await Db.open();
  const config = configSchema.parse({ as_of: asOf, health });
  await createRunParams(db, config, {
    asOf,
    configuredEntities: ['orders'],
    runStartedAt: new Date(`${asOf}T23:59:59Z`),
  });
  await db.run(`create table stg_orders (
      order_id varchar, customer_id varchar, ordered_at timestamptz, ordered_date date,
      amount decimal(18,2), status varchar, currency varchar)`);
  return db;
}

/** As transforms/runner.ts builds a SQL model. */
async function runSummarySql(db: Db): Promise<void> {
  await db.run(`create or replace table customer_purchase_summary as\n${readFileSync(SUMMARY_SQL, 'utf8')}`);
}

async function insertOrders(
  db: Db,
  rows: { id: string; customer: string; date: string; amount: string; status?: string }[],
): Promise<void> {
  await db.run(
    'create or replace temp table raw_orders (id varchar, customer varchar, day varchar, amount varchar, status varchar)',
  );
  const appender = await db.conn.createAppender('raw_orders', 'main', 'temp');
  for (const row of rows) {
    appender.appendVarchar(row.id);
    appender.appendVarchar(row.customer);
    appender.appendVarchar(row.date);
    appender.appendVarchar(row.amount);
    appender.appendVarchar(row.status ?? 'completed');
    appender.endRow();
  }
  appender.closeSync();
  await db.run(`insert into stg_orders
      select id, customer, day::date::timestamptz, day::date, amount::decimal(18,2), status, 'USD' from raw_orders`);
  await db.run('drop table raw_orders');
}

// ---------------------------------------------------------------------------------------------------------------

describe('special functions', () => {
  it('lnGamma matches exact values', () => {
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 14); // Gamma(1/2) = sqrt(pi)
    expect(lnGamma(1)).toBeCloseTo(0, 14);
    expect(lnGamma(10)).toBeCloseTo(Math.log(362880), 13); // 9!
    expect(lnGamma(0.25)).toBeCloseTo(1.2880225246980774, 14); // Gamma(1/4) = 3.6256099082219083
    // ln Gamma(x + 1) - ln Gamma(x) = ln x, far from the Lanczos sweet spot too.
    expect(lnGamma(1001.3) - lnGamma(1000.3)).toBeCloseTo(Math.log(1000.3), 9);
  });

  it('hyp2f1 matches closed forms and Euler’s transformation', () => {
    // 2F1(1, 1; 2; z) = -ln(1 - z) / z
    expect(hyp2f1(1, 1, 2, 0.5)).toBeCloseTo(2 * Math.log(2), 14);
    // 2F1(a, b; b; z) = (1 - z)^-a
    expect(hyp2f1(0.7, 3.2, 3.2, 0.3)).toBeCloseTo(0.7 ** -0.7, 14);
    // The terms of expectedPurchases for x = 50 with CDNOW's parameters, both ways.
    const { r, a, b } = LIFETIMES_CDNOW;
    const [A, B, C, z] = [r + 50, b + 50, a + b + 49, 0.3];
    const euler = (1 - z) ** (C - A - B) * hyp2f1(C - A, C - B, C, z);
    expectRelativelyClose(hyp2f1(A, B, C, z), euler, 1e-12);
    expectRelativelyClose(hyp2f1(A, B, C, z), 65122228.14691658, 1e-12); // scipy.special.hyp2f1
  });
});

describe('pAlive and expectedPurchases', () => {
  const p = LIFETIMES_CDNOW;

  it('pAlive is 1 without a repeat purchase', () => {
    expect(pAlive(p, 0, 0, 38.86)).toBe(1);
    expect(pAlive(p, 0, 0, 0)).toBe(1);
  });

  it('pAlive matches hand-computed values', () => {
    // CDNOW customer 1: x = 2, t_x = 30.43, T = 38.86 (weeks).
    //   (alpha + T) / (alpha + t_x) = 43.273532 / 34.843532 = 1.24193873...; ln = 0.21667365...
    //   (r + x) * ln(...) = 2.242593 * 0.21667365 = 0.48591082
    //   a / (b + x - 1) = 0.792886 / 3.425752 = 0.23144874...; ln = -1.46339684
    //   log_div = 0.48591082 - 1.46339684 = -0.97748602; exp(log_div) = 0.37625581
    //   P(alive) = 1 / (1 + 0.37625581) = 0.72660910
    expect(pAlive(p, 2, 30.43, 38.86)).toBeCloseTo(0.7266091, 7);
    // A customer who bought just now (t_x = T): the ratio is 1, log_div = ln(a / b), P = b / (a + b) = 0.75365791.
    expect(pAlive(p, 1, 20, 20)).toBeCloseTo(2.425752 / (0.792886 + 2.425752), 12);
    // x = 10 at week 10, silent since, T = 40: ratio 44.413532 / 14.413532 = 3.08137742, ln = 1.12537671;
    //   log_div = 10.242593 * 1.12537671 + ln(0.792886 / 11.425752) = 11.52689 - 2.66806 = 8.85883; P = 1 / (1 + 7036.2) = 0.00014210
    expect(pAlive(p, 10, 10, 40)).toBeCloseTo(0.000142101, 9);
  });

  it('expectedPurchases matches lifetimes’ documented predictions for CDNOW (t = 1 week)', () => {
    // lifetimes README/Quickstart, "Ranking customers from best to worst": the five highest predicted_purchases.
    const documented: [number, number, number, number][] = [
      [18, 35.14, 35.86, 0.424877],
      [19, 34.0, 34.14, 0.474738],
      [17, 28.43, 28.86, 0.486526],
      [29, 37.71, 38.0, 0.662396],
      [26, 30.86, 31.0, 0.710623],
    ];
    for (const [x, tx, T, value] of documented)
      expect(expectedPurchases(p, 1, x, tx, T)).toBeCloseTo(value, 6);
  });

  it('expectedPurchases is 0 at t = 0, grows with t, and stays finite for very frequent buyers', () => {
    expect(expectedPurchases(p, 0, 2, 30.43, 38.86)).toBe(0);
    const values = [1, 4, 13, 52].map((t) => expectedPurchases(p, t, 2, 30.43, 38.86));
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
    // References: lifetimes' formula evaluated with mpmath at 50 digits.
    expect(expectedPurchases(p, 13, 2, 30.43, 38.86)).toBeCloseTo(0.4571567788696493, 12);
    // x = 2000 overflows the direct hypergeometric series; Euler's transformation takes over, as in lifetimes.
    expect(expectedPurchases(p, 13, 2000, 99.9, 100)).toBeCloseTo(236.9620266899826, 8);
    // a = 1 makes the closed form 0/0; it is taken as the limit (mpmath at a = 1 +- 1e-12: 0.4205687189336).
    expect(expectedPurchases({ ...p, a: 1 }, 13, 2, 30.43, 38.86)).toBeCloseTo(0.4205687189336, 9);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('CDNOW (Fader, Hardie & Lee 2005)', () => {
  it.skipIf(!existsSync(CDNOW_SUMMARY))(
    'reproduces the published fit from cdnow_customers_summary.csv',
    () => {
      const groups: RfGroup[] = readCdnowSummary().map((c) => ({ x: c.x, tx: c.tx, T: c.T, n: 1 }));
      const fit = fitBgNbd(groups);
      expect(fit.converged, fit.message).toBe(true);
      // The paper, to three significant figures: r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4.
      expect(fit.r.toPrecision(3)).toBe('0.243');
      expect(fit.alpha.toPrecision(3)).toBe('4.41');
      expect(fit.a.toPrecision(3)).toBe('0.793');
      expect(fit.b.toPrecision(3)).toBe('2.43');
      expect(fit.logLikelihood.toFixed(1)).toBe('-9582.4');
      // And lifetimes' six-digit values.
      for (const k of ['r', 'alpha', 'a', 'b'] as const)
        expectRelativelyClose(fit[k], LIFETIMES_CDNOW[k], 1e-5);
      // The groups' order does not change a bit of the result.
      const reversed = fitBgNbd([...groups].reverse());
      expect([reversed.r, reversed.alpha, reversed.a, reversed.b]).toEqual([fit.r, fit.alpha, fit.a, fit.b]);
    },
  );

  it.skipIf(!existsSync(CDNOW_SAMPLE) || !existsSync(CDNOW_SUMMARY))(
    'runs customer_purchase_summary.sql and bgnbd_scores on the raw CDNOW transactions',
    async () => {
      const asOf = '1997-09-30';
      const db = await openPipelineDb(asOf, { model_time_unit: 'weeks', model_min_repeat_buyers: 20 });
      try {
        // CDNOW_sample.txt: no header, CRLF, whitespace-separated `master_id sample_id date(YYYYMMDD) cds dollars`.
        // stg_orders holds rows up to the as-of date only.
        const lines = readFileSync(CDNOW_SAMPLE, 'utf8')
          .split(/\r?\n/)
          .filter((l) => l.trim() !== '');
        expect(lines).toHaveLength(6919);
        const orders = lines.map((line, i) => {
          const [, sampleId, ymd, , dollars] = line.trim().split(/\s+/);
          const date = `${ymd!.slice(0, 4)}-${ymd!.slice(4, 6)}-${ymd!.slice(6, 8)}`;
          return { id: String(i + 1), customer: String(Number(sampleId)), date, amount: dollars! };
        });
        const calibration = orders.filter((o) => o.date <= asOf);
        await insertOrders(db, calibration);
        await runSummarySql(db);

        // A $0 order is a purchase for the model, as lifetimes and the paper count it (8 customers bought only
        // for $0 in the calibration period): the pipeline's summary is the published one, customer for customer.
        const positive = new Set(calibration.filter((o) => Number(o.amount) > 0).map((o) => o.customer));
        const zeroOnly = new Set(calibration.filter((o) => !positive.has(o.customer)).map((o) => o.customer));
        expect([...zeroOnly].sort()).toEqual(['1080', '1195', '1293', '155', '2086', '227', '286', '87']);

        const published = readCdnowSummary();
        const summary = new Map(
          (await db.all('select customer_id, frequency, recency, t from customer_purchase_summary')).map(
            (row) => [
              String(row.customer_id),
              { x: Number(row.frequency), tx: Number(row.recency), T: Number(row.t) },
            ],
          ),
        );
        expect(summary.size).toBe(published.length);
        for (const c of published) {
          const mine = summary.get(c.id);
          // The CSV has two decimals of the same day counts / 7.
          expect(mine, `customer ${c.id}`).toBeDefined();
          expect(
            [mine!.x, Number(mine!.tx.toFixed(2)), Number(mine!.T.toFixed(2))],
            `customer ${c.id}`,
          ).toEqual([c.x, c.tx, c.T]);
        }
        const groups: RfGroup[] = [...summary.values()].map((s) => ({ ...s, n: 1 }));

        // The model on the pipeline's own summary, from a plain config: the paper's fit.
        const ctx = await modelContext(db);
        await bgnbdScores.build(ctx);
        expect(ctx.notes).toEqual([]);
        const fitRow = (await db.one('select * from bgnbd_fit'))!;
        expect(fitRow).toMatchObject({
          status: 'fitted',
          customers: '2357',
          repeat_buyers: '946',
          time_unit: 'weeks',
        });
        const fitted: BgNbdParams = {
          r: Number(fitRow.r),
          alpha: Number(fitRow.alpha),
          a: Number(fitRow.a),
          b: Number(fitRow.b),
        };
        expect(
          [fitted.r, fitted.alpha, fitted.a, fitted.b, Number(fitRow.log_likelihood)].map((v) =>
            v.toPrecision(3),
          ),
        ).toEqual(['0.243', '4.41', '0.793', '2.43', '-9.58e+3']);
        expect(Number(fitRow.log_likelihood).toFixed(1)).toBe('-9582.4');
        for (const k of ['r', 'alpha', 'a', 'b'] as const)
          expectRelativelyClose(fitted[k], LIFETIMES_CDNOW[k], 0.001);
        expect(Number(fitRow.log_likelihood)).toBeCloseTo(bgnbdLogLikelihood(fitted, groups), 6);

        const scores = await db.all('select * from bgnbd_scores order by customer_id');
        expect(scores).toHaveLength(2357);
        expect(scores.every((s) => s.p_alive !== null && s.expected_purchases_next_90d !== null)).toBe(true);
        const one = scores.find((s) => s.customer_id === '1')!; // x = 2, 213 and 272 days
        expect(one).toMatchObject({ frequency: '2', recency: 213 / 7, t: 272 / 7 });
        expect(one.p_alive).toBe(pAlive(fitted, 2, 213 / 7, 272 / 7));
        expect(one.expected_purchases_next_90d).toBe(expectedPurchases(fitted, 90 / 7, 2, 213 / 7, 272 / 7));
        expect(one.p_alive as number).toBeCloseTo(0.7266, 3); // the hand-computed value above, near-identical params

        // Deterministic: a second build gives the same bits.
        await bgnbdScores.build(await modelContext(db));
        expect(await db.all('select * from bgnbd_scores order by customer_id')).toEqual(scores);
        expect(await db.one('select * from bgnbd_fit')).toEqual(fitRow);

        // health.model_max_fit_customers: the fit sees a hash sample, every customer is scored with it.
        await db.run('update run_params set health_model_max_fit_customers = 1000');
        await bgnbdScores.build(await modelContext(db));
        const sampled = (await db.one('select * from bgnbd_fit'))!;
        expect(sampled).toMatchObject({ status: 'fitted', customers: '2357', repeat_buyers: '946' });
        expect(String(sampled.message)).toMatch(
          /^fitted on a hash sample of 1000 of 2357 customers \(\d+ repeat buyers; health.model_max_fit_customers\) in \d+ iterations$/,
        );
        for (const k of ['r', 'alpha', 'a', 'b'] as const) {
          expect(Number(sampled[k])).not.toBe(fitted[k]);
          expectRelativelyClose(Number(sampled[k]), fitted[k], 0.35);
        }
        const sampledScores = await db.all('select * from bgnbd_scores order by customer_id');
        expect(sampledScores).toHaveLength(2357);
        expect(sampledScores.every((s) => s.p_alive !== null)).toBe(true);
        const sampledOne = sampledScores.find((s) => s.customer_id === '1')!;
        expect(Math.abs(Number(sampledOne.p_alive) - Number(one.p_alive))).toBeLessThan(0.05);
      } finally {
        db.close();
      }
    },
    60_000,
  );
});

// ---------------------------------------------------------------------------------------------------------------

/**
 * BG/NBD customers as lifetimes' beta_geometric_nbd_model draws them: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b);
 * after the first purchase at 0, purchases come at rate lambda until T, and after each repeat purchase the customer
 * drops out with probability p. T is uniform on [tMin, tMax] (customers acquired over a year).
 */
function simulate(
  params: BgNbdParams,
  customers: number,
  seed: number,
  tMin: number,
  tMax: number,
): RfGroup[] {
  const u = mulberry32(seed);
  const groups: RfGroup[] = [];
  for (let i = 0; i < customers; i++) {
    const lambda = gamma(u, params.r) / params.alpha;
    const g1 = gamma(u, params.a);
    const p = g1 / (g1 + gamma(u, params.b));
    const T = tMin + (tMax - tMin) * u();
    let t = 0;
    let x = 0;
    let tx = 0;
    for (;;) {
      t += -Math.log(1 - u()) / lambda;
      if (t > T) break;
      x += 1;
      tx = t;
      if (u() < p) break;
    }
    groups.push({ x, tx, T, n: 1 });
  }
  return groups;
}

describe('parameter recovery', () => {
  it('recovers known parameters from 5,000 simulated customers within 20%', () => {
    // Truth: r = 1, alpha = 5 (weeks), a = 1.5, b = 5; customers observed 52-104 weeks. At this size the standard
    // errors (inverse observed information) are about 2.5% (r), 3.4% (alpha), 6.3% (a) and 8.3% (b), so 20% is at
    // least 2.4 standard errors for every parameter (8 for r); over 20 seeds the worst errors were 6%, 9%, 13%, 17%.
    const truth: BgNbdParams = { r: 1, alpha: 5, a: 1.5, b: 5 };
    const groups = simulate(truth, 5000, 20240601, 52, 104);
    const fit = fitBgNbd(groups);
    expect(fit.converged, fit.message).toBe(true);
    for (const k of ['r', 'alpha', 'a', 'b'] as const) expectRelativelyClose(fit[k], truth[k], 0.2);
    // The maximum is a maximum: no worse than the truth, and no better one nearby.
    expect(fit.logLikelihood).toBeGreaterThanOrEqual(bgnbdLogLikelihood(truth, groups));
    for (const k of ['r', 'alpha', 'a', 'b'] as const) {
      for (const factor of [0.999, 1.001]) {
        expect(bgnbdLogLikelihood({ ...fit, [k]: fit[k] * factor }, groups)).toBeLessThan(fit.logLikelihood);
      }
    }
  }, 30_000);

  it('a penalizer shrinks the parameters', () => {
    const groups = simulate({ r: 0.5, alpha: 4, a: 0.8, b: 2.5 }, 1000, 7, 26, 78);
    const free = fitBgNbd(groups);
    const penalized = fitBgNbd(groups, { penalizer: 0.1 });
    expect(free.converged && penalized.converged).toBe(true);
    expect(penalized.b).toBeLessThan(free.b);
    expect(penalized.logLikelihood).toBeLessThan(free.logLikelihood);
  });

  it('reports what cannot be fitted instead of throwing', () => {
    expect(fitBgNbd([])).toMatchObject({ converged: false, message: 'no customers' });
    expect(fitBgNbd([{ x: 0, tx: 0, T: 10, n: 5 }])).toMatchObject({ converged: false });
    expect(() => fitBgNbd([{ x: 1, tx: 11, T: 10, n: 1 }])).toThrow(RangeError);
    // Everyone bought 3 times, the last at T: no dropout and one rate; the likelihood rises towards a boundary.
    const degenerate = fitBgNbd([
      { x: 2, tx: 10, T: 10, n: 100 },
      { x: 0, tx: 0, T: 10, n: 50 },
    ]);
    expect(degenerate.converged).toBe(false);
    expect(degenerate.message).toMatch(/^did not converge: .*a tends to 0: the data show no dropout/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('bgnbd_scores when the model cannot be fitted', () => {
  function capturingLogger(): { log: pino.Logger; lines: { level: number; msg: string }[] } {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    return { log, lines };
  }

  it('no orders: not_fitted, empty scores, a warning and a note', async () => {
    const db = await openPipelineDb('2024-03-31', { model_time_unit: 'days', model_min_repeat_buyers: 20 });
    try {
      await runSummarySql(db);
      const { log, lines } = capturingLogger();
      const ctx = await modelContext(db, log);
      await bgnbdScores.build(ctx);
      expect(await db.one('select * from bgnbd_fit')).toEqual({
        status: 'not_fitted',
        message: 'no customers with a completed order of positive amount',
        r: null,
        alpha: null,
        a: null,
        b: null,
        log_likelihood: null,
        customers: '0',
        repeat_buyers: '0',
        time_unit: 'days',
      });
      expect(await db.number('select count(*) from bgnbd_scores')).toBe(0);
      const columns = await db.all(`select column_name, data_type from information_schema.columns
          where table_name = 'bgnbd_scores' order by ordinal_position`);
      expect(columns.map((c) => `${c.column_name} ${c.data_type}`)).toEqual([
        'customer_id VARCHAR',
        'frequency BIGINT',
        'recency DOUBLE',
        't DOUBLE',
        'p_alive DOUBLE',
        'expected_purchases_next_90d DOUBLE',
      ]);
      expect(ctx.notes).toEqual([
        'BG/NBD model not fitted: no customers with a completed order of positive amount',
      ]);
      expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(ctx.notes);
    } finally {
      db.close();
    }
  });

  it('too few repeat buyers: every customer gets a row with NULL scores', async () => {
    const db = await openPipelineDb('2024-03-31', { model_time_unit: 'days', model_min_repeat_buyers: 3 });
    try {
      await insertOrders(db, [
        { id: 'o1', customer: 'c1', date: '2024-01-05', amount: '10.00' },
        { id: 'o2', customer: 'c1', date: '2024-01-05', amount: '5.00' }, // same day: one purchase
        { id: 'o3', customer: 'c1', date: '2024-02-15', amount: '20.00' },
        { id: 'o4', customer: 'c1', date: '2024-03-01', amount: '40.00' },
        { id: 'o5', customer: 'c2', date: '2024-03-10', amount: '12.50' },
        { id: 'o6', customer: 'c2', date: '2024-03-20', amount: '99.00', status: 'refunded' },
        { id: 'o7', customer: 'c3', date: '2024-02-01', amount: '0.00' },
        { id: 'o8', customer: 'c3', date: '2024-02-02', amount: '30.00', status: 'cancelled' },
      ]);
      await runSummarySql(db);
      // lifetimes' definitions, in days: c1 bought on 3 days (frequency 2), c2 once, c3 once (a $0 order counts;
      // the cancelled one does not).
      expect(
        await db.all(`select customer_id, first_purchase_date, last_purchase_date, purchase_days, frequency, recency, t,
            time_unit, monetary_value, lifetime_revenue from customer_purchase_summary order by customer_id`),
      ).toEqual([
        {
          customer_id: 'c1',
          first_purchase_date: '2024-01-05',
          last_purchase_date: '2024-03-01',
          purchase_days: '3',
          frequency: '2',
          recency: 56,
          t: 86,
          time_unit: 'days',
          monetary_value: 30, // mean of the repeat days 20 and 40; the first day is left out
          lifetime_revenue: '75.00',
        },
        {
          customer_id: 'c2',
          first_purchase_date: '2024-03-10',
          last_purchase_date: '2024-03-10',
          purchase_days: '1',
          frequency: '0',
          recency: 0,
          t: 21,
          time_unit: 'days',
          monetary_value: 0,
          lifetime_revenue: '12.50',
        },
        {
          customer_id: 'c3',
          first_purchase_date: '2024-02-01',
          last_purchase_date: '2024-02-01',
          purchase_days: '1',
          frequency: '0',
          recency: 0,
          t: 59,
          time_unit: 'days',
          monetary_value: 0,
          lifetime_revenue: '0.00',
        },
      ]);

      const ctx = await modelContext(db);
      await bgnbdScores.build(ctx);
      expect(await db.one('select status, message, r, customers, repeat_buyers from bgnbd_fit')).toEqual({
        status: 'not_fitted',
        message: '1 repeat buyers, fewer than health.model_min_repeat_buyers (3)',
        r: null,
        customers: '3',
        repeat_buyers: '1',
      });
      expect(await db.all('select * from bgnbd_scores order by customer_id')).toEqual([
        {
          customer_id: 'c1',
          frequency: '2',
          recency: 56,
          t: 86,
          p_alive: null,
          expected_purchases_next_90d: null,
        },
        {
          customer_id: 'c2',
          frequency: '0',
          recency: 0,
          t: 21,
          p_alive: null,
          expected_purchases_next_90d: null,
        },
        {
          customer_id: 'c3',
          frequency: '0',
          recency: 0,
          t: 59,
          p_alive: null,
          expected_purchases_next_90d: null,
        },
      ]);
      expect(ctx.notes).toHaveLength(1);
    } finally {
      db.close();
    }
  });
});
