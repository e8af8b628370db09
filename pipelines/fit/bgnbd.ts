// BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way") fitted on compact groups of customers
// that share (x, t_x, T), with lifetimes' definitions (BetaGeoFitter): the likelihood in log-parameters, time
// rescaled so that max(T) = 10 while fitting, an optional L2 penalty on the parameters, the mean negative
// log-likelihood as the objective. fmin's Nelder-Mead finds the optimum (warm-started on coarsened groups when there
// are very many) and its conjugate gradient, with the analytic gradient, polishes it; convergence is the gradient
// norm at the end. Pure numerics: no I/O, deterministic (the groups are sorted before anything is summed, so the
// same groups give the same bits in any input order). The fitting machinery is shared with the MBG/NBD
// (mbgnbd.ts): fitRfModel takes the objective, everything else is the same.

import type {
  ConjugateGradientOptions,
  ConjugateGradientResult,
  NelderMeadOptions,
  NelderMeadResult,
} from 'fmin';
import * as fminModule from 'fmin';

/** Customers with the same history: x repeat purchases, the last at t_x, observed for T (time units since their first). */
export interface RfGroup {
  x: number;
  tx: number;
  T: number;
  /** How many customers share this (x, t_x, T). */
  n: number;
}

export interface BgNbdParams {
  r: number;
  alpha: number;
  a: number;
  b: number;
}

export interface BgNbdFit extends BgNbdParams {
  /** Total log-likelihood of the groups at the parameters, in the groups' time unit, without the penalty. */
  logLikelihood: number;
  /** Nelder-Mead plus conjugate-gradient iterations. */
  iterations: number;
  /** The gradient of the objective vanished (see gradientNorm) and every parameter is finite and in range. */
  converged: boolean;
  /** L2 norm of the gradient of the objective (mean negative log-likelihood + penalty) in log-parameters. */
  gradientNorm: number;
  /** Why it did not converge; empty when it did. */
  message: string;
}

export interface BgNbdFitOptions {
  /** lifetimes' penalizer_coef: adds penalizer x (r^2 + alpha^2 + a^2 + b^2) to the mean negative LL (alpha in the rescaled time). */
  penalizer?: number;
  /** Starting point; default lifetimes' exp(0.1) for every parameter in the rescaled time. */
  initialParams?: BgNbdParams;
  /** Convergence: the gradient norm of the objective at the optimum must be at most this. Default 1e-6. */
  gradientTolerance?: number;
  /** Nelder-Mead iterations per (re)start. Default 1000. */
  maxIterations?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// fmin 0.0.4: `"type": "module"` with a UMD entry point, so Node's ESM loader sees no named exports and the bundle
// assigns itself to globalThis.fmin instead (benfred/fmin#19). Take the named exports when a fixed release has them.

interface FminApi {
  nelderMead(f: (x: number[]) => number, x0: number[], parameters?: NelderMeadOptions): NelderMeadResult;
  conjugateGradient(
    f: (x: number[], fxprime: number[]) => number,
    initial: number[],
    params?: ConjugateGradientOptions,
  ): ConjugateGradientResult;
}

function isFminApi(value: unknown): value is FminApi {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof FminApi, unknown>>;
  return typeof candidate.nelderMead === 'function' && typeof candidate.conjugateGradient === 'function';
}

function fmin(): FminApi {
  const fromGlobal = (globalThis as { fmin?: unknown }).fmin;
  if (isFminApi(fminModule)) return fminModule;
  if (isFminApi(fromGlobal)) return fromGlobal;
  throw new Error(
    'the fmin package did not load: neither its module exports nor globalThis.fmin has nelderMead',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Special functions.

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
] as const;
const HALF_LN_2PI = 0.5 * Math.log(2 * Math.PI);

/** ln |Gamma(z)| by the Lanczos approximation (g = 7, 9 terms; about 15 significant digits), reflection below 1/2. */
export function lnGamma(z: number): number {
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - lnGamma(1 - z);
  const zm1 = z - 1;
  let sum = LANCZOS_COEFFICIENTS[0];
  for (let i = 1; i < LANCZOS_COEFFICIENTS.length; i++) sum += LANCZOS_COEFFICIENTS[i]! / (zm1 + i);
  const t = zm1 + LANCZOS_G + 0.5;
  return HALF_LN_2PI + (zm1 + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** psi(z) = d/dz ln Gamma(z) for z > 0: recurrence up to 10, then the asymptotic series (error below 1e-13). */
export function digamma(z: number): number {
  let result = 0;
  let x = z;
  while (x < 10) {
    result -= 1 / x;
    x += 1;
  }
  const f = 1 / (x * x);
  const series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (1 / 132)))));
  return result + Math.log(x) - 0.5 / x - series;
}

/**
 * The Gauss hypergeometric series 2F1(a, b; c; z) = sum_k (a)_k (b)_k / ((c)_k k!) z^k for |z| < 1, summed until
 * the terms no longer change the sum. NaN when it does not converge within maxTerms or overflows.
 */
export function hyp2f1(a: number, b: number, c: number, z: number, maxTerms = 100_000): number {
  let term = 1;
  let sum = 1;
  for (let k = 0; k < maxTerms; k++) {
    const ratio = (((a + k) * (b + k)) / ((c + k) * (k + 1))) * z;
    term *= ratio;
    sum += term;
    if (!Number.isFinite(sum)) return Number.NaN;
    if (term === 0 || (Math.abs(term) <= 1e-17 * Math.abs(sum) && Math.abs(ratio) < 1)) return sum;
  }
  return Number.NaN;
}

/**
 * ln 2F1(a, b; c; z) as lifetimes takes it in conditional_expected_number_of_purchases_up_to_time: the direct series,
 * or, when that is not finite (large x makes it overflow), Euler's transformation
 * 2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z), whose parameters do not grow with x.
 */
export function lnHyp2f1(a: number, b: number, c: number, z: number): number {
  const direct = hyp2f1(a, b, c, z, 20_000);
  if (Number.isFinite(direct) && direct > 0) return Math.log(direct);
  return Math.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * Math.log1p(-z);
}

// ---------------------------------------------------------------------------------------------------------------
// Customer-level quantities (lifetimes' BetaGeoFitter methods).

/**
 * P(alive | x, t_x, T) (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model", brucehardie.com note 021;
 * lifetimes' conditional_probability_alive):
 * 1 for x = 0, else 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)).
 */
export function pAlive(params: BgNbdParams, x: number, tx: number, T: number): number {
  if (x === 0) return 1;
  const { r, alpha, a, b } = params;
  const logDiv = (r + x) * Math.log((alpha + T) / (alpha + tx)) + Math.log(a / (b + x - 1));
  return 1 / (1 + Math.exp(logDiv));
}

/**
 * E[repeat purchases in (T, T + t] | x, t_x, T] (equation 10 of the paper; lifetimes'
 * conditional_expected_number_of_purchases_up_to_time):
 * (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t))^(r + x) * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t)))
 * times P(alive). At a = 1 exactly the first factor is 0/0; there the mean of a = 1 +- 1e-6 is taken.
 */
export function expectedPurchases(params: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  if (t <= 0) return 0;
  return besideAOne(params, (p) => conditionalExpectation(p, t, x, tx, T));
}

/**
 * `f` at `params`; at a = 1 (where the expectations of both models are 0/0) the mean of `f` at a = 1 - 1e-6 and
 * a = 1 + 1e-6.
 */
export function besideAOne(params: BgNbdParams, f: (params: BgNbdParams) => number): number {
  if (Math.abs(params.a - 1) < 1e-6) {
    const below = f({ ...params, a: 1 - 1e-6 });
    const above = f({ ...params, a: 1 + 1e-6 });
    return (below + above) / 2;
  }
  return f(params);
}

function conditionalExpectation(params: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  const { r, alpha, a, b } = params;
  const hypA = r + x;
  const hypB = b + x;
  const hypC = a + b + x - 1;
  const z = t / (alpha + T + t);
  const lnHyp = lnHyp2f1(hypA, hypB, hypC, z);
  const firstTerm = (a + b + x - 1) / (a - 1);
  const secondTerm = -Math.expm1(lnHyp + (r + x) * Math.log((alpha + T) / (alpha + t + T)));
  return firstTerm * secondTerm * pAlive(params, x, tx, T);
}

/**
 * P(no purchase in (T, T + t] | x, t_x, T): dead at T, or alive and silent for t. A customer alive at T has the
 * purchase rate lambda ~ Gamma(r + x, alpha + T) a posteriori (the alive branch of the likelihood is
 * lambda^x e^(-lambda T) times a factor of p alone), and E[e^(-lambda t)] under it is ((alpha + T) / (alpha + T + t))^(r + x);
 * a dropout can only follow a purchase, so it does not change "no purchase". 1 - P(alive) + P(alive) x that.
 */
export function bgProbNoPurchase(params: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  return probNoPurchaseGivenPAlive(params, pAlive(params, x, tx, T), t, x, T);
}

/** 1 - pAlive + pAlive ((alpha + T) / (alpha + T + t))^(r + x), for a model whose alive customers have that rate posterior. */
export function probNoPurchaseGivenPAlive(
  params: BgNbdParams,
  alive: number,
  t: number,
  x: number,
  T: number,
): number {
  if (t <= 0) return 1;
  const silent = Math.exp(-(params.r + x) * Math.log1p(t / (params.alpha + T)));
  return 1 - alive + alive * silent;
}

/** The total BG/NBD log-likelihood sum_g n_g ln L(r, alpha, a, b | x_g, t_x,g, T_g), in the groups' time unit. */
export function bgnbdLogLikelihood(params: BgNbdParams, groups: readonly RfGroup[]): number {
  return rfLogLikelihood(objective, params, groups);
}

/** The total log-likelihood of the groups under a model given by its objective (see RfObjective), in their time unit. */
export function rfLogLikelihood(
  f: RfObjective,
  params: BgNbdParams,
  groups: readonly RfGroup[],
  model = 'BG/NBD',
): number {
  const prepared = prepareGroups(groups, 1, model);
  const theta = [Math.log(params.r), Math.log(params.alpha), Math.log(params.a), Math.log(params.b)];
  return -f(prepared, theta, 0, null) * prepared.total;
}

// ---------------------------------------------------------------------------------------------------------------
// The likelihood on prepared groups.

/** Groups sorted by (x, t_x, T) and merged, with the distinct x, t_x and T values each group points into. */
export interface Prepared {
  total: number;
  /** Distinct x values (ascending) and the customers with each. */
  xs: Float64Array;
  xWeight: Float64Array;
  /** Distinct rescaled t_x and T values. */
  txs: Float64Array;
  Ts: Float64Array;
  /** Per group: index into xs, txs, Ts; customers. */
  gx: Int32Array;
  gtx: Int32Array;
  gT: Int32Array;
  gn: Float64Array;
}

/** Throws a RangeError naming the first group that is not a (x, t_x, T, n) summary; `model` names the model in it. */
export function validateGroups(groups: readonly RfGroup[], model = 'BG/NBD'): void {
  for (const g of groups) {
    let problem = '';
    if (!Number.isInteger(g.x) || g.x < 0) problem = 'x must be a non-negative integer';
    else if (!(g.tx >= 0 && g.tx <= g.T && Number.isFinite(g.T))) problem = 'need 0 <= t_x <= T';
    else if (g.x === 0 && g.tx !== 0) problem = 't_x must be 0 when x = 0';
    else if (!(g.n >= 0 && Number.isFinite(g.n))) problem = 'n must be a non-negative count';
    if (problem)
      throw new RangeError(`${model} group (x=${g.x}, t_x=${g.tx}, T=${g.T}, n=${g.n}): ${problem}`);
  }
}

function distinctSorted(values: number[]): Float64Array {
  const sorted = Float64Array.from(values).sort();
  let k = 0;
  for (let i = 0; i < sorted.length; i++)
    if (i === 0 || sorted[i] !== sorted[k - 1]) sorted[k++] = sorted[i]!;
  return sorted.slice(0, k);
}

function indexOf(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sorts and merges the groups (dropping n = 0) and rescales time by `scale`. */
export function prepareGroups(groups: readonly RfGroup[], scale: number, model = 'BG/NBD'): Prepared {
  validateGroups(groups, model);
  const sorted = groups.filter((g) => g.n > 0).sort((p, q) => p.x - q.x || p.tx - q.tx || p.T - q.T);
  const merged: RfGroup[] = [];
  for (const g of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.x === g.x && last.tx === g.tx && last.T === g.T) last.n += g.n;
    else merged.push({ ...g });
  }
  const xs = distinctSorted(merged.map((g) => g.x));
  const txs = distinctSorted(merged.map((g) => g.tx * scale));
  const Ts = distinctSorted(merged.map((g) => g.T * scale));
  const xWeight = new Float64Array(xs.length);
  const gx = new Int32Array(merged.length);
  const gtx = new Int32Array(merged.length);
  const gT = new Int32Array(merged.length);
  const gn = new Float64Array(merged.length);
  let total = 0;
  merged.forEach((g, i) => {
    gx[i] = indexOf(xs, g.x);
    gtx[i] = indexOf(txs, g.tx * scale);
    gT[i] = indexOf(Ts, g.T * scale);
    gn[i] = g.n;
    xWeight[gx[i]!]! += g.n;
    total += g.n;
  });
  return { total, xs, xWeight, txs, Ts, gx, gtx, gT, gn };
}

/** Log-parameters outside this box are rejected (the objective is +Infinity there): exp(+-40) is 4e-18 .. 2e17. */
export const MAX_ABS_LOG_PARAM = 40;

/**
 * A model's objective on prepared groups: the mean negative log-likelihood plus penalizer x (r^2 + alpha^2 + a^2 +
 * b^2), at theta = ln(r, alpha, a, b); writes the gradient in theta into `grad` when given; +Infinity (gradient 0)
 * outside the MAX_ABS_LOG_PARAM box or where it cannot be evaluated.
 */
export type RfObjective = (
  data: Prepared,
  theta: readonly number[],
  penalizer: number,
  grad: number[] | null,
) => number;

/** The objective where it cannot be evaluated: +Infinity, with a zero gradient. */
export function failedObjective(grad: number[] | null): number {
  if (grad) grad.fill(0);
  return Number.POSITIVE_INFINITY;
}

/** (r, alpha, a, b) = exp(theta); null when a component of theta is out of bounds (|theta_i| > MAX_ABS_LOG_PARAM). */
export function paramsOfTheta(theta: readonly number[]): [number, number, number, number] | null {
  for (const t of theta) if (!(Math.abs(t) <= MAX_ABS_LOG_PARAM)) return null;
  return [Math.exp(theta[0]!), Math.exp(theta[1]!), Math.exp(theta[2]!), Math.exp(theta[3]!)];
}

/** The log-likelihood's terms that depend on the parameters alone; the digammas only for a gradient (else 0). */
export function parameterTerms(r: number, alpha: number, a: number, b: number, withGradient: boolean) {
  return {
    lnAlpha: Math.log(alpha),
    lgR: lnGamma(r),
    lgB: lnGamma(b),
    lgAB: lnGamma(a + b),
    psiR: withGradient ? digamma(r) : 0,
    psiB: withGradient ? digamma(b) : 0,
    psiAB: withGradient ? digamma(a + b) : 0,
  };
}

/**
 * A model's RfObjective from its log-likelihood: `logLikelihood` returns sum_g n_g ln L_g at (r, alpha, a, b) and,
 * given `d`, writes its gradient in those parameters there. The objective is -(1/N) of it plus the penalty, its
 * gradient the chain rule into theta; +Infinity (gradient 0) where either is not finite.
 */
export function penalizedObjective(
  logLikelihood: (
    data: Prepared,
    params: readonly [number, number, number, number],
    d: Float64Array | null,
  ) => number,
): RfObjective {
  return (data, theta, penalizer, grad) => {
    const params = paramsOfTheta(theta);
    if (!params) return failedObjective(grad);
    const [r, alpha, a, b] = params;
    const d = grad ? new Float64Array(4) : null;
    const ll = logLikelihood(data, params, d);
    const value = -ll / data.total + penalizer * (r * r + alpha * alpha + a * a + b * b);
    if (!Number.isFinite(value)) return failedObjective(grad);
    if (grad && d) {
      // d/dtheta_i = p_i d/dp_i; the penalty p^2 gives 2 p^2.
      params.forEach((p, i) => {
        grad[i] = (-d[i]! * p) / data.total + 2 * penalizer * p * p;
      });
      if (!grad.every(Number.isFinite)) return failedObjective(grad);
    }
    return value;
  };
}

/** Neumaier-compensated running sum: the likelihood's rounding limits how flat a minimum can be resolved. */
export class CompensatedSum {
  private sum = 0;
  private compensation = 0;

  add(v: number): void {
    const next = this.sum + v;
    this.compensation += Math.abs(this.sum) >= Math.abs(v) ? this.sum - next + v : v - next + this.sum;
    this.sum = next;
  }

  value(): number {
    return this.sum + this.compensation;
  }
}

/**
 * ln(offset + v + shift) and 1 / (offset + v + shift) for each of `values`: the likelihoods' per-distinct-value
 * tables (ln(alpha + T), ln(b + x - 1), ...). `shift` is added last, so that b + x - 1 rounds as written.
 */
export function lnAndInverse(
  values: Float64Array,
  offset: number,
  shift = 0,
): { ln: Float64Array; inv: Float64Array } {
  const ln = new Float64Array(values.length);
  const inv = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = offset + values[i]! + shift;
    ln[i] = Math.log(v);
    inv[i] = 1 / v;
  }
  return { ln, inv };
}

/**
 * lifetimes' objective: -(1/N) sum_g n_g ln L_g + penalizer * (r^2 + alpha^2 + a^2 + b^2), with theta = ln(r, alpha,
 * a, b). ln L_g = A1 + A2 + ln(exp(A3) + [x > 0] exp(A4)), the two terms combined as max + log1p(exp(-|A3 - A4|)).
 * Here the log-likelihood and its gradient in (r, alpha, a, b); penalizedObjective makes them the objective.
 */
const objective = penalizedObjective((data, [r, alpha, a, b], d) => {
  const lnA = Math.log(a);
  const { lnAlpha, lgR, lgB, lgAB, psiR, psiB, psiAB } = parameterTerms(r, alpha, a, b, d !== null);

  const ll = new CompensatedSum();
  let dR = 0;
  let dAlpha = 0;
  let dA = 0;
  let dB = 0;

  // Terms that depend on x only: A1 + A2 (0 + r ln alpha for x = 0), and ln(b + x - 1) for A4 (read for x > 0 only).
  const bx = lnAndInverse(data.xs, b, -1);
  for (let i = 0; i < data.xs.length; i++) {
    const x = data.xs[i]!;
    const w = data.xWeight[i]!;
    let a12 = r * lnAlpha;
    if (x > 0) a12 += lnGamma(r + x) - lgR + lgAB + lnGamma(b + x) - lgB - lnGamma(a + b + x);
    ll.add(w * a12);
    if (d) {
      dR += w * lnAlpha;
      dAlpha += (w * r) / alpha;
      if (x > 0) {
        const psiABx = digamma(a + b + x);
        dR += w * (digamma(r + x) - psiR);
        dA += w * (psiAB - psiABx);
        dB += w * (psiAB + digamma(b + x) - psiB - psiABx);
      }
    }
  }

  // ln(alpha + T), ln(alpha + t_x) and their reciprocals, once per distinct value.
  const { ln: lnT, inv: invT } = lnAndInverse(data.Ts, alpha);
  const { ln: lnTx, inv: invTx } = lnAndInverse(data.txs, alpha);

  const { gx, gtx, gT, gn, xs } = data;
  const groups = gn.length;
  for (let g = 0; g < groups; g++) {
    const ix = gx[g]!;
    const iT = gT[g]!;
    const n = gn[g]!;
    const x = xs[ix]!;
    const c = r + x;
    const a3 = -c * lnT[iT]!;
    if (x === 0) {
      ll.add(n * a3);
      if (d) {
        dR -= n * lnT[iT]!;
        dAlpha -= n * c * invT[iT]!;
      }
      continue;
    }
    const itx = gtx[g]!;
    const a4 = lnA - bx.ln[ix]! - c * lnTx[itx]!;
    // w4 = exp(A4) / (exp(A3) + exp(A4)), w3 = 1 - w4, both without overflow or cancellation.
    let term: number;
    let w3: number;
    let w4: number;
    if (a4 > a3) {
      const e = Math.exp(a3 - a4);
      term = a4 + Math.log1p(e);
      w3 = e / (1 + e);
      w4 = 1 / (1 + e);
    } else {
      const e = Math.exp(a4 - a3);
      term = a3 + Math.log1p(e);
      w3 = 1 / (1 + e);
      w4 = e / (1 + e);
    }
    ll.add(n * term);
    if (d) {
      dR -= n * (w3 * lnT[iT]! + w4 * lnTx[itx]!);
      dAlpha -= n * c * (w3 * invT[iT]! + w4 * invTx[itx]!);
      dA += (n * w4) / a;
      dB -= n * w4 * bx.inv[ix]!;
    }
  }

  if (d) d.set([dR, dAlpha, dA, dB]);
  return ll.value();
});

// ---------------------------------------------------------------------------------------------------------------
// Fitting.

/** Nelder-Mead restarts: each starts a fresh simplex at the best point so far. */
const MAX_RESTARTS = 8;
/** Nelder-Mead stops when the simplex's values and coordinates (in log-parameters) agree to this. */
const NM_TOLERANCE = 1e-8;
/**
 * fmin's conjugate gradient stops when the L2 norm of the gradient is <= 1e-5, so it minimises the objective times
 * this factor and stops at a gradient norm of 1e-7 of the objective itself. It runs in short chunks, stopping when a
 * chunk no longer lowers the objective: near the floor set by the objective's rounding its line search only spins.
 */
const CG_SCALE = 100;
const CG_TARGET = 1e-5 / CG_SCALE;
const CG_CHUNK_ITERATIONS = 10;
const CG_MAX_CHUNKS = 20;
/**
 * With more groups than this (a large base in days: 1M customers make some 300k (x, t_x, T) groups), Nelder-Mead
 * first runs on a copy with t_x and T rounded to COARSE_STEPS steps of max(T), which has far fewer groups; the
 * conjugate gradient then finishes on the exact groups (and Nelder-Mead again if it cannot).
 */
const COARSE_ABOVE_GROUPS = 20_000;
const COARSE_STEPS = 64;

function coarsen(groups: readonly RfGroup[], maxT: number): RfGroup[] {
  const h = maxT / COARSE_STEPS;
  // Rounding is monotone, so t_x <= T still holds, and x = 0 keeps t_x = 0.
  return groups.map((g) => ({ x: g.x, tx: Math.round(g.tx / h) * h, T: Math.round(g.T / h) * h, n: g.n }));
}

type Objective = (theta: readonly number[], grad: number[] | null) => number;

interface Search {
  best: number[];
  bestF: number;
  iterations: number;
}

/**
 * Nelder-Mead in coordinates centred on the current best point (theta = best + v - 1, v0 = [1, 1, 1, 1]), so that
 * fmin's multiplicative initial simplex (v_i x nonZeroDelta) has the same size in every log-parameter. sigma = 1
 * makes it stop where it would shrink the simplex (fmin 0.0.4's shrink step throws, benfred/fmin#23); a restart
 * then builds a smaller simplex around the best point, until a restart no longer improves.
 */
function nelderMeadSearch(
  api: FminApi,
  f: Objective,
  start: Search,
  step0: number,
  maxIterations: number,
): Search {
  let { best, bestF, iterations } = start;
  let step = step0;
  for (let restart = 0; restart < MAX_RESTARTS; restart++) {
    const centre = best.slice();
    const history: unknown[] = [];
    const result = api.nelderMead(
      (v) =>
        f(
          centre.map((c, i) => c + v[i]! - 1),
          null,
        ),
      [1, 1, 1, 1],
      {
        maxIterations,
        nonZeroDelta: 1 + step,
        minErrorDelta: NM_TOLERANCE,
        sigma: 1,
        history,
      },
    );
    iterations += history.length;
    const improvement = bestF - result.fx;
    if (result.fx < bestF) {
      best = centre.map((c, i) => c + result.x[i]! - 1);
      bestF = result.fx;
    }
    if (!(improvement > 1e-13 * (1 + Math.abs(bestF)))) break;
    step = Math.max(step / 4, 1e-3);
  }
  return { best, bestF, iterations };
}

/** fmin's conjugate gradient with the analytic gradient, in chunks, until the gradient is small or progress stops. */
function conjugateGradientSearch(api: FminApi, f: Objective, start: Search): Search {
  let { best, bestF, iterations } = start;
  const grad = [0, 0, 0, 0];
  const scaled = (theta: number[], fxprime: number[]): number => {
    const value = f(theta, fxprime);
    for (let i = 0; i < fxprime.length; i++) fxprime[i] = fxprime[i]! * CG_SCALE;
    return value * CG_SCALE;
  };
  for (let chunk = 0; chunk < CG_MAX_CHUNKS; chunk++) {
    f(best, grad);
    if (Math.hypot(...grad) <= CG_TARGET) break;
    const history: unknown[] = [];
    const result = api.conjugateGradient(scaled, best, { maxIterations: CG_CHUNK_ITERATIONS, history });
    iterations += history.length;
    const value = f(result.x, null);
    if (!(value < bestF) || !result.x.every(Number.isFinite)) break;
    best = result.x.slice();
    bestF = value;
  }
  return { best, bestF, iterations };
}

/**
 * Where a fit that does not converge is heading, when it is one of the BG/NBD's limiting cases: the likelihood then
 * keeps rising towards a boundary and has no interior maximum, whatever the optimiser.
 */
function degeneracies(p: BgNbdParams): string[] {
  const found: string[] = [];
  if (p.a > 1e3 && p.b > 1e3) {
    found.push(
      `a and b grow without bound with a / (a + b) = ${(p.a / (p.a + p.b)).toPrecision(3)}: the data show one ` +
        'dropout probability for every customer (no heterogeneity for the beta distribution to describe)',
    );
  }
  if (p.r > 1e3 && p.alpha > 1e3) {
    found.push(
      `r and alpha grow without bound with r / alpha = ${(p.r / p.alpha).toPrecision(3)}: one purchase rate for everyone`,
    );
  }
  if (p.a < 1e-3) found.push('a tends to 0: the data show no dropout');
  return found;
}

/**
 * Maximum-likelihood BG/NBD parameters for the groups. Never throws for data that cannot be fitted (no customers,
 * no repeat buyers, a likelihood that does not converge): it returns converged = false and a message. Throws a
 * RangeError for groups that are not BG/NBD summaries (t_x > T, x not an integer, ...).
 */
export function fitBgNbd(groups: readonly RfGroup[], opts: BgNbdFitOptions = {}): BgNbdFit {
  return fitRfModel(objective, groups, opts, 'BG/NBD');
}

/**
 * fitBgNbd for any four-parameter (r, alpha, a, b) model of (x, t_x, T) groups given by its objective: the same
 * rescaling, starting point, searches, convergence test and messages. `model` names it in errors.
 */
export function fitRfModel(
  f0: RfObjective,
  groups: readonly RfGroup[],
  opts: BgNbdFitOptions = {},
  model = 'BG/NBD',
): BgNbdFit {
  const penalizer = opts.penalizer ?? 0;
  const gradientTolerance = opts.gradientTolerance ?? 1e-6;
  const maxIterations = opts.maxIterations ?? 1000;
  if (!(penalizer >= 0)) throw new RangeError(`penalizer must be >= 0, got ${penalizer}`);
  validateGroups(groups, model);

  const notFitted = (message: string): BgNbdFit => ({
    r: Number.NaN,
    alpha: Number.NaN,
    a: Number.NaN,
    b: Number.NaN,
    logLikelihood: Number.NaN,
    iterations: 0,
    converged: false,
    gradientNorm: Number.NaN,
    message,
  });

  let maxT = 0;
  let customers = 0;
  let repeatBuyers = 0;
  for (const g of groups) {
    maxT = Math.max(maxT, g.T);
    customers += g.n;
    if (g.x > 0) repeatBuyers += g.n;
  }
  if (customers === 0) return notFitted('no customers');
  if (repeatBuyers === 0) return notFitted('no repeat buyers: the model is not identified');

  // lifetimes' _scale_time: fit in time units where the oldest customer has T = 10 (only alpha depends on it).
  const scale = maxT > 0 ? 10 / maxT : 1;
  const data = prepareGroups(groups, scale, model);
  const f: Objective = (theta, grad) => f0(data, theta, penalizer, grad);

  const init = opts.initialParams;
  const theta0 = init
    ? [Math.log(init.r), Math.log(init.alpha * scale), Math.log(init.a), Math.log(init.b)]
    : [0.1, 0.1, 0.1, 0.1];
  let search: Search = { best: theta0, bestF: f(theta0, null), iterations: 0 };
  if (!Number.isFinite(search.bestF))
    return notFitted('the log-likelihood cannot be evaluated at the starting point');

  const api = fmin();
  let nelderMeadStep = 0.5;
  if (data.gn.length > COARSE_ABOVE_GROUPS) {
    const coarse = prepareGroups(coarsen(groups, maxT), scale, model);
    const fCoarse: Objective = (theta, grad) => f0(coarse, theta, penalizer, grad);
    const warm = nelderMeadSearch(
      api,
      fCoarse,
      { ...search, bestF: fCoarse(search.best, null) },
      0.5,
      maxIterations,
    );
    const warmF = f(warm.best, null);
    search = warmF < search.bestF ? { ...warm, bestF: warmF } : { ...search, iterations: warm.iterations };
    search = conjugateGradientSearch(api, f, search);
    nelderMeadStep = 0.05;
  }
  const grad = [0, 0, 0, 0];
  f(search.best, grad);
  if (!(Math.hypot(...grad) <= gradientTolerance)) {
    search = nelderMeadSearch(api, f, search, nelderMeadStep, maxIterations);
    search = conjugateGradientSearch(api, f, search);
    f(search.best, grad);
  }

  const { best, bestF, iterations } = search;
  const gradientNorm = Math.hypot(...grad);
  const params: BgNbdParams = {
    r: Math.exp(best[0]!),
    alpha: Math.exp(best[1]!) / scale,
    a: Math.exp(best[2]!),
    b: Math.exp(best[3]!),
  };
  const logLikelihood = rfLogLikelihood(f0, params, groups, model);
  const problems: string[] = [];
  if (!Number.isFinite(bestF) || !Number.isFinite(logLikelihood))
    problems.push('the log-likelihood is not finite');
  if (!(gradientNorm <= gradientTolerance)) {
    problems.push(`the gradient norm ${gradientNorm.toExponential(2)} is above ${gradientTolerance}`);
  }
  if (best.some((t) => Math.abs(t) > 0.9 * MAX_ABS_LOG_PARAM)) {
    problems.push('a parameter ran off to 0 or infinity (a degenerate fit)');
  }
  if (problems.length > 0) problems.push(...degeneracies(params));
  return {
    ...params,
    logLikelihood,
    iterations,
    converged: problems.length === 0,
    gradientNorm,
    message: problems.length === 0 ? '' : `did not converge: ${problems.join('; ')}`,
  };
}
