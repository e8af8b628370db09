// MBG/NBD (pipelines/fit/mbgnbd.ts) and the BG/NBD's P(no purchase) (pipelines/fit/bgnbd.ts). The CDNOW checks
// read the real dataset beside the project (/work/shared/datasets/cdnow) and are skipped where it is absent; the
// rest runs on lifetimes' published parameters and on data the test simulates itself.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type BgNbdParams,
  bgProbNoPurchase,
  expectedPurchases,
  lnGamma,
  pAlive,
  type RfGroup,
} from '../pipelines/fit/bgnbd.js';
import {
  fitMbgNbd,
  mbgExpectedPurchases,
  mbgnbdLogLikelihood,
  mbgPAlive,
  mbgProbNoPurchase,
} from '../pipelines/fit/mbgnbd.js';
import { gamma, mulberry32 } from './support/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CDNOW_SUMMARY = path.resolve(here, '../../shared/datasets/cdnow/cdnow_customers_summary.csv');
const HAVE_CDNOW = existsSync(CDNOW_SUMMARY);
const SKIP_NOTE = HAVE_CDNOW ? '' : ` (SKIPPED: ${CDNOW_SUMMARY} is absent)`;

/**
 * lifetimes' ModifiedBetaGeoFitter on CDNOW's summary (weeks): tests/test_estimation.py,
 * TestModifiedBetaGammaFitter.test_params_out_is_close_to_BTYDplus, `expected = [0.525, 6.183, 0.891, 1.614]`
 * (r, alpha, a, b) checked with assert_array_almost_equal(decimal=3); "See https://github.com/mplatzer/BTYDplus".
 * The same values are lifetimes' TestModifiedBetaGeoNBDGeneration.params (tests/test_generate_data.py).
 */
const LIFETIMES_MBG_CDNOW: BgNbdParams = { r: 0.525, alpha: 6.183, a: 0.891, b: 1.614 };
/** lifetimes' BetaGeoFitter on the same data (as in test/bgnbd.test.ts). */
const LIFETIMES_BG_CDNOW: BgNbdParams = { r: 0.242593, alpha: 4.413532, a: 0.792886, b: 2.425752 };

function readCdnowGroups(): RfGroup[] {
  const [header, ...lines] = readFileSync(CDNOW_SUMMARY, 'utf8').trim().split(/\r?\n/);
  expect(header).toBe('ID,frequency,recency,T');
  const counts = new Map<string, RfGroup>();
  for (const line of lines) {
    const [, x, tx, T] = line.split(',');
    const key = `${x},${tx},${T}`;
    const group = counts.get(key);
    if (group) group.n += 1;
    else counts.set(key, { x: Number(x), tx: Number(tx), T: Number(T), n: 1 });
  }
  return [...counts.values()];
}

let cdnowFitMemo: ReturnType<typeof fitMbgNbd> | undefined;
function cdnowFit(): ReturnType<typeof fitMbgNbd> {
  cdnowFitMemo ??= fitMbgNbd(readCdnowGroups());
  return cdnowFitMemo;
}

/**
 * The MBG/NBD log-likelihood of one customer, written out from Batislam et al. (2007), eq. (3):
 * B(a, b + x + 1) / B(a, b) * Gamma(r + x) alpha^r / Gamma(r) * [(alpha + T)^-(r + x) + a / (b + x) (alpha + t_x)^-(r + x)],
 * the bracket's two logs combined by log-sum-exp (the powers underflow for large x).
 */
function directLogLikelihood(p: BgNbdParams, x: number, tx: number, T: number): number {
  const { r, alpha, a, b } = p;
  const lnBeta = (u: number, v: number): number => lnGamma(u) + lnGamma(v) - lnGamma(u + v);
  const lnAlive = -(r + x) * Math.log(alpha + T);
  const lnDroppedAtTx = Math.log(a / (b + x)) - (r + x) * Math.log(alpha + tx);
  const top = Math.max(lnAlive, lnDroppedAtTx);
  const lnBracket = top + Math.log(Math.exp(lnAlive - top) + Math.exp(lnDroppedAtTx - top));
  return lnBeta(a, b + x + 1) - lnBeta(a, b) + lnGamma(r + x) - lnGamma(r) + r * Math.log(alpha) + lnBracket;
}

// ---------------------------------------------------------------------------------------------------------------
// Sampling (seeded draws from test/support/random.ts).

/** Customers from the prior, one entry each. */
interface Draws {
  lambda: Float64Array;
  p: Float64Array;
  /** Purchases in the next `horizon` by a customer alive now: rate lambda, dropout with probability p after each. */
  future: Float64Array;
}

/** Customers from the prior lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b), each with a simulated future. */
function drawCustomers(params: BgNbdParams, count: number, horizon: number, seed: number): Draws {
  const u = mulberry32(seed);
  const draws: Draws = {
    lambda: new Float64Array(count),
    p: new Float64Array(count),
    future: new Float64Array(count),
  };
  for (let i = 0; i < count; i++) {
    const lambda = gamma(u, params.r) / params.alpha;
    const g = gamma(u, params.a);
    const p = g / (g + gamma(u, params.b));
    let future = 0;
    for (let t = -Math.log(1 - u()) / lambda; t <= horizon; t += -Math.log(1 - u()) / lambda) {
      future += 1;
      if (u() < p) break;
    }
    draws.lambda[i] = lambda;
    draws.p[i] = p;
    draws.future[i] = future;
  }
  return draws;
}

/** k ln(v), with 0 x ln(0) = 0. */
function times(k: number, logValue: number): number {
  return k === 0 ? 0 : k * logValue;
}

/**
 * ln of the density of a history (x repeat purchases, the last at t_x, observed until T) given lambda and p, split
 * by whether the customer is alive at T, straight from the generative story. MBG/NBD: a coin with P(drop) = p is
 * tossed after the first purchase and after each repeat purchase; BG/NBD: after each repeat purchase only.
 */
function historyLogDensity(
  model: 'mbg' | 'bg',
  lambda: number,
  p: number,
  [x, tx, T]: History,
): { alive: number; dead: number } {
  const tosses = model === 'mbg' ? x + 1 : x; // coins tossed up to and including the purchase at t_x
  const purchases = times(x, Math.log(lambda));
  const alive = times(tosses, Math.log1p(-p)) + purchases - lambda * T;
  const dead =
    tosses > 0
      ? times(tosses - 1, Math.log1p(-p)) + Math.log(p) + purchases - lambda * tx
      : Number.NEGATIVE_INFINITY;
  return { alive, dead };
}

type History = [x: number, tx: number, T: number];

interface Estimate {
  value: number;
  se: number;
}

/** What a customer with that many future purchases contributes to a posterior mean, by whether alive at T. */
type Quantity = (future: number, alive: boolean) => number;

/**
 * Self-normalised importance sampling over prior draws: E[f | history] = sum_i (wA_i f(alive) + wD_i f(dead)) /
 * sum_i (wA_i + wD_i), with wA, wD the history's density in each branch, and the delta-method standard error of
 * that ratio; for several quantities at once.
 */
function posteriorMeans<K extends string>(
  model: 'mbg' | 'bg',
  draws: Draws,
  history: History,
  quantities: Record<K, Quantity>,
): Record<K, Estimate> {
  const n = draws.lambda.length;
  const wAlive = new Float64Array(n);
  const wDead = new Float64Array(n);
  let top = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const l = historyLogDensity(model, draws.lambda[i]!, draws.p[i]!, history);
    wAlive[i] = l.alive;
    wDead[i] = l.dead;
    top = Math.max(top, l.alive, l.dead);
  }
  let den = 0;
  for (let i = 0; i < n; i++) {
    wAlive[i] = Math.exp(wAlive[i]! - top);
    wDead[i] = Math.exp(wDead[i]! - top);
    den += wAlive[i]! + wDead[i]!;
  }
  const out = {} as Record<K, Estimate>;
  for (const key of Object.keys(quantities) as K[]) {
    const f = quantities[key];
    const fDead = f(0, false);
    const fAlive = draws.future.map((future) => f(future, true));
    let num = 0;
    for (let i = 0; i < n; i++) num += wAlive[i]! * fAlive[i]! + wDead[i]! * fDead;
    const value = num / den;
    let variance = 0;
    for (let i = 0; i < n; i++) {
      const residual = wAlive[i]! * (fAlive[i]! - value) + wDead[i]! * (fDead - value);
      variance += residual * residual;
    }
    out[key] = { value, se: Math.sqrt(variance) / den };
  }
  return out;
}

const QUANTITIES = {
  alive: (_future: number, alive: boolean) => Number(alive),
  purchases: (future: number, alive: boolean) => (alive ? future : 0),
  noPurchase: (future: number, alive: boolean) => Number(!alive || future === 0),
} satisfies Record<string, Quantity>;

function expectAgrees(closedForm: number, mc: Estimate, label: string): void {
  // 4.5 standard errors (about 1 in 150,000 for a normal estimate), and the estimate must be precise enough
  // (a 3% standard error at most) for the check to mean something.
  expect(mc.se / Math.max(closedForm, 1e-3), `${label}: MC standard error too large`).toBeLessThan(0.03);
  expect(
    Math.abs(closedForm - mc.value),
    `${label}: closed form ${closedForm} vs MC ${mc.value} +- ${mc.se}`,
  ).toBeLessThanOrEqual(4.5 * mc.se);
}

// ---------------------------------------------------------------------------------------------------------------

describe('MBG/NBD on CDNOW (lifetimes’ ModifiedBetaGeoFitter)', () => {
  it.skipIf(!HAVE_CDNOW)(`reproduces lifetimes’ published parameters${SKIP_NOTE}`, () => {
    const groups = readCdnowGroups();
    expect(groups.reduce((s, g) => s + g.n, 0)).toBe(2357);
    const fit = cdnowFit();
    expect(fit.converged, fit.message).toBe(true);
    expect(fit.message).toBe('');
    // assert_array_almost_equal(decimal=3): |fit - expected| < 1.5e-3.
    for (const k of ['r', 'alpha', 'a', 'b'] as const)
      expect(Math.abs(fit[k] - LIFETIMES_MBG_CDNOW[k]), `${k} = ${fit[k]}`).toBeLessThan(1.5e-3);
    expect(fit.logLikelihood).toBeCloseTo(mbgnbdLogLikelihood(fit, groups), 9);
    // The maximum is a maximum: no better point nearby, and no worse than the published (rounded) parameters.
    expect(fit.logLikelihood).toBeGreaterThanOrEqual(mbgnbdLogLikelihood(LIFETIMES_MBG_CDNOW, groups));
    for (const k of ['r', 'alpha', 'a', 'b'] as const) {
      for (const factor of [0.999, 1.001])
        expect(mbgnbdLogLikelihood({ ...fit, [k]: fit[k] * factor }, groups)).toBeLessThan(fit.logLikelihood);
      // The central difference of the log-likelihood vanishes there (the fit stops on the analytic gradient).
      const h = 1e-5 * fit[k];
      const slope =
        (mbgnbdLogLikelihood({ ...fit, [k]: fit[k] + h }, groups) -
          mbgnbdLogLikelihood({ ...fit, [k]: fit[k] - h }, groups)) /
        (2 * h);
      expect(Math.abs(slope * fit[k]), `d LL / d ln ${k}`).toBeLessThan(1e-3);
    }
    // Deterministic, whatever the order of the groups or how customers are grouped.
    const reversed = fitMbgNbd([...groups].reverse());
    expect([reversed.r, reversed.alpha, reversed.a, reversed.b]).toEqual([fit.r, fit.alpha, fit.a, fit.b]);
    const split = groups.flatMap((g) => Array.from({ length: g.n }, () => ({ ...g, n: 1 })));
    const ungrouped = fitMbgNbd(split);
    expect([ungrouped.r, ungrouped.alpha, ungrouped.a, ungrouped.b]).toEqual([
      fit.r,
      fit.alpha,
      fit.a,
      fit.b,
    ]);
  });

  it.skipIf(!HAVE_CDNOW)(`the log-likelihood is the per-customer sum${SKIP_NOTE}`, () => {
    const customers = readCdnowGroups().flatMap((g) => Array.from({ length: g.n }, () => g));
    for (const p of [LIFETIMES_MBG_CDNOW, LIFETIMES_BG_CDNOW, { r: 2, alpha: 0.5, a: 3, b: 0.4 }]) {
      const direct = customers.reduce((s, c) => s + directLogLikelihood(p, c.x, c.tx, c.T), 0);
      const mine = mbgnbdLogLikelihood(
        p,
        customers.map((c) => ({ ...c, n: 1 })),
      );
      expect(Math.abs(mine / direct - 1), `${mine} vs ${direct}`).toBeLessThan(1e-12);
    }
    // At the optimum: -9582.13, a little above the BG/NBD's -9582.43 on the same customers.
    expect(cdnowFit().logLikelihood.toFixed(2)).toBe('-9582.13');
  });

  it.skipIf(!HAVE_CDNOW)(`a penalizer shrinks the parameters${SKIP_NOTE}`, () => {
    const groups = readCdnowGroups();
    const free = cdnowFit();
    const penalized = fitMbgNbd(groups, { penalizer: 0.1 });
    expect(penalized.converged, penalized.message).toBe(true);
    expect(penalized.r + penalized.alpha + penalized.a + penalized.b).toBeLessThan(
      free.r + free.alpha + free.a + free.b,
    );
    expect(penalized.logLikelihood).toBeLessThan(free.logLikelihood);
  });
});

describe('mbgnbdLogLikelihood', () => {
  it('is the per-customer sum, with counts as multiplicities (no dataset needed)', () => {
    const groups: RfGroup[] = [
      { x: 0, tx: 0, T: 0, n: 3 },
      { x: 0, tx: 0, T: 52.5, n: 7 },
      { x: 1, tx: 1e-9, T: 10, n: 1 },
      { x: 3, tx: 20, T: 20, n: 2 },
      { x: 12, tx: 40.25, T: 77, n: 5 },
      { x: 250, tx: 99, T: 100, n: 1 },
    ];
    for (const p of [LIFETIMES_MBG_CDNOW, { r: 0.01, alpha: 300, a: 25, b: 0.02 }]) {
      const direct = groups.reduce((s, g) => s + g.n * directLogLikelihood(p, g.x, g.tx, g.T), 0);
      expect(Math.abs(mbgnbdLogLikelihood(p, groups) / direct - 1)).toBeLessThan(1e-12);
    }
  });
});

describe('mbgPAlive, mbgExpectedPurchases, mbgProbNoPurchase', () => {
  const p = LIFETIMES_MBG_CDNOW;

  it('P(alive) of a one-time buyer falls with T (it is 1 under BG/NBD)', () => {
    // At T = 0: b / (a + b), the chance of surviving the coin tossed after the first purchase.
    expect(mbgPAlive(p, 0, 0, 0)).toBeCloseTo(p.b / (p.a + p.b), 14);
    const ages = Array.from({ length: 201 }, (_, i) => i * 0.5);
    const alive = ages.map((T) => mbgPAlive(p, 0, 0, T));
    for (let i = 1; i < alive.length; i++) expect(alive[i]!).toBeLessThan(alive[i - 1]!);
    expect(alive.every((v) => v > 0 && v < 1)).toBe(true);
    expect(ages.every((T) => pAlive(LIFETIMES_BG_CDNOW, 0, 0, T) === 1)).toBe(true);
  });

  it('P(alive) falls with the time since the last purchase for fixed x', () => {
    for (const x of [1, 2, 5, 20]) {
      // Fixed t_x, growing T; and fixed T, earlier t_x.
      const byT = Array.from({ length: 60 }, (_, i) => mbgPAlive(p, x, 10, 10 + i));
      const byTx = Array.from({ length: 52 }, (_, i) => mbgPAlive(p, x, 52 - i, 52));
      for (const series of [byT, byTx])
        for (let i = 1; i < series.length; i++) expect(series[i]!).toBeLessThan(series[i - 1]!);
      // Just bought: (b + x) / (a + b + x), whatever T.
      expect(mbgPAlive(p, x, 30, 30)).toBeCloseTo((p.b + x) / (p.a + p.b + x), 14);
    }
  });

  it('matches lifetimes’ Hardie-sheet check and the limits', () => {
    // lifetimes' test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet (MBG/NBD): 1.226 +- 0.05.
    expect(Math.abs(mbgExpectedPurchases(p, 39, 2, 30.43, 38.86) - 1.226)).toBeLessThan(0.05);
    expect(mbgExpectedPurchases(p, 0, 2, 30.43, 38.86)).toBe(0);
    expect(mbgProbNoPurchase(p, 0, 2, 30.43, 38.86)).toBe(1);
    expect(bgProbNoPurchase(LIFETIMES_BG_CDNOW, 0, 2, 30.43, 38.86)).toBe(1);
    const values = [1, 4, 13, 52, 520].map((t) => mbgExpectedPurchases(p, t, 2, 30.43, 38.86));
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
    const silent = [1, 4, 13, 52, 5200].map((t) => mbgProbNoPurchase(p, t, 2, 30.43, 38.86));
    for (let i = 1; i < silent.length; i++) expect(silent[i]!).toBeLessThan(silent[i - 1]!);
    // Over a very long horizon only the dead stay silent.
    expect(silent[4]!).toBeCloseTo(1 - mbgPAlive(p, 2, 30.43, 38.86), 3);
    // a = 1 is 0/0 in the closed form; the limit is continuous.
    const atOne = mbgExpectedPurchases({ ...p, a: 1 }, 13, 2, 30.43, 38.86);
    expect(atOne).toBeCloseTo(mbgExpectedPurchases({ ...p, a: 1 + 1e-4 }, 13, 2, 30.43, 38.86), 4);
    // Very frequent buyers: the direct series overflows and Euler's transformation takes over.
    const frequent = mbgExpectedPurchases(p, 13, 2000, 99.9, 100);
    expect(Number.isFinite(frequent) && frequent > 200 && frequent < 300).toBe(true);
  });
});

describe('closed forms against Monte Carlo', () => {
  // Fitted CDNOW parameters where the dataset is there (lifetimes' published values otherwise: they agree to 3
  // decimals, see above). 200,000 prior draws, reused for every history.
  const horizon = 26;
  const histories: History[] = [
    [0, 0, 2],
    [0, 0, 30],
    [1, 5, 35],
    [2, 30.43, 38.86],
    [5, 20, 30],
  ];

  /** One model's closed forms against the posterior means of `seed`'s draws from its prior, for every history. */
  function expectClosedFormsAgree(
    model: 'mbg' | 'bg',
    params: BgNbdParams,
    seed: number,
    forms: {
      alive: (params: BgNbdParams, ...history: History) => number;
      purchases: (params: BgNbdParams, t: number, ...history: History) => number;
      noPurchase: (params: BgNbdParams, t: number, ...history: History) => number;
    },
  ): void {
    const draws = drawCustomers(params, 200_000, horizon, seed);
    for (const h of histories) {
      const label = `${model === 'mbg' ? 'MBG/NBD' : 'BG/NBD'} history ${h.join(', ')}`;
      const mc = posteriorMeans(model, draws, h, QUANTITIES);
      expectAgrees(forms.alive(params, ...h), mc.alive, `${label}: P(alive)`);
      expectAgrees(forms.purchases(params, horizon, ...h), mc.purchases, `${label}: E[purchases]`);
      expectAgrees(forms.noPurchase(params, horizon, ...h), mc.noPurchase, `${label}: P(no purchase)`);
    }
  }

  it(`MBG/NBD: P(alive), E[purchases] and P(no purchase) over ${horizon} weeks`, () => {
    expectClosedFormsAgree('mbg', HAVE_CDNOW ? cdnowFit() : LIFETIMES_MBG_CDNOW, 20250101, {
      alive: mbgPAlive,
      purchases: mbgExpectedPurchases,
      noPurchase: mbgProbNoPurchase,
    });
  });

  it(`BG/NBD: bgProbNoPurchase and expectedPurchases over ${horizon} weeks`, () => {
    const params = LIFETIMES_BG_CDNOW;
    expectClosedFormsAgree('bg', params, 20250102, {
      alive: pAlive,
      purchases: expectedPurchases,
      noPurchase: bgProbNoPurchase,
    });
    // x = 0: always alive under BG/NBD, so P(no purchase) is the gamma mixture's ((alpha + T) / (alpha + T + t))^r.
    const { r, alpha } = params;
    expect(bgProbNoPurchase(params, 13, 0, 0, 30)).toBeCloseTo(((alpha + 30) / (alpha + 43)) ** r, 14);
  });
});

describe('fitMbgNbd input handling', () => {
  it('reports what cannot be fitted, names the model in errors', () => {
    expect(fitMbgNbd([])).toMatchObject({ converged: false, message: 'no customers' });
    expect(fitMbgNbd([{ x: 0, tx: 0, T: 10, n: 5 }])).toMatchObject({ converged: false });
    expect(() => fitMbgNbd([{ x: 1, tx: 11, T: 10, n: 1 }])).toThrow(/^MBG\/NBD group \(x=1, t_x=11, T=10/);
    expect(() => mbgnbdLogLikelihood(LIFETIMES_MBG_CDNOW, [{ x: 0, tx: 1, T: 10, n: 1 }])).toThrow(
      RangeError,
    );
  });
});
