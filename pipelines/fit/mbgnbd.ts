// MBG/NBD (Batislam, Gemici & Kalkan 2007; Wagner & Hoppe 2008, "Erratum on the MBG/NBD model") on compact
// (x, t_x, T, n) groups, with lifetimes' definitions (ModifiedBetaGeoFitter, lifetimes/fitters/
// modified_beta_geo_fitter.py): purchases at rate lambda ~ Gamma(r, alpha) while alive; the customer drops out with
// probability p ~ Beta(a, b) right after the first purchase and after each repeat purchase. Unlike the BG/NBD, a
// one-time buyer (x = 0) may already be gone, so P(alive) falls with T for them too. The fit is bgnbd.ts's
// (fitRfModel: time rescaled to max(T) = 10, lifetimes' penalizer, Nelder-Mead then conjugate gradient, the gradient
// norm as the convergence test) with this model's likelihood and analytic gradient. Pure numerics, deterministic.

import {
  type BgNbdFit,
  type BgNbdFitOptions,
  type BgNbdParams,
  besideAOne,
  CompensatedSum,
  digamma,
  fitRfModel,
  lnAndInverse,
  lnGamma,
  lnHyp2f1,
  type Prepared,
  parameterTerms,
  penalizedObjective,
  probNoPurchaseGivenPAlive,
  type RfGroup,
  rfLogLikelihood,
} from './bgnbd.js';

const MODEL = 'MBG/NBD';

/**
 * P(alive | x, t_x, T) (Batislam et al. 2007, appendix A, eq. 5; lifetimes' conditional_probability_alive):
 * 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x))^(r + x)), for x = 0 too (t_x = 0 there).
 */
export function mbgPAlive(params: BgNbdParams, x: number, tx: number, T: number): number {
  const { r, alpha, a, b } = params;
  const logDiv = Math.log(a / (b + x)) + (r + x) * Math.log((alpha + T) / (alpha + tx));
  return 1 / (1 + Math.exp(logDiv));
}

/**
 * E[repeat purchases in (T, T + t] | x, t_x, T] (Wagner & Hoppe 2008; lifetimes'
 * conditional_expected_number_of_purchases_up_to_time):
 * (a + b + x) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t))^(r + x) * 2F1(r + x, b + x + 1; a + b + x; t / (alpha + T + t)))
 * times P(alive): the BG/NBD's unconditional expectation at the posterior (r + x, alpha + T, a, b + x + 1) of a
 * customer alive at T. At a = 1 exactly the first factor is 0/0; there the mean of a = 1 +- 1e-6 is taken.
 */
export function mbgExpectedPurchases(
  params: BgNbdParams,
  t: number,
  x: number,
  tx: number,
  T: number,
): number {
  if (t <= 0) return 0;
  return besideAOne(params, (p) => conditionalExpectation(p, t, x, tx, T));
}

function conditionalExpectation(params: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  const { r, alpha, a, b } = params;
  const lnHyp = lnHyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t));
  const firstTerm = (a + b + x) / (a - 1);
  const secondTerm = -Math.expm1(lnHyp + (r + x) * Math.log((alpha + T) / (alpha + T + t)));
  return firstTerm * secondTerm * mbgPAlive(params, x, tx, T);
}

/**
 * P(no purchase in (T, T + t] | x, t_x, T) = P(dead at T) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x): the
 * alive branch of the likelihood, (1 - p)^(x + 1) lambda^x e^(-lambda T), gives lambda ~ Gamma(r + x, alpha + T)
 * a posteriori, whose Laplace transform at t is that power; a future dropout needs a future purchase first, so it
 * does not enter.
 */
export function mbgProbNoPurchase(params: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  return probNoPurchaseGivenPAlive(params, mbgPAlive(params, x, tx, T), t, x, T);
}

/** The total MBG/NBD log-likelihood sum_g n_g ln L(r, alpha, a, b | x_g, t_x,g, T_g), in the groups' time unit. */
export function mbgnbdLogLikelihood(params: BgNbdParams, groups: readonly RfGroup[]): number {
  return rfLogLikelihood(mbgObjective, params, groups, MODEL);
}

/**
 * Maximum-likelihood MBG/NBD parameters, as fitBgNbd: never throws for data that cannot be fitted (converged =
 * false and a message), throws a RangeError for groups that are not (x, t_x, T) summaries.
 */
export function fitMbgNbd(groups: readonly RfGroup[], options: BgNbdFitOptions = {}): BgNbdFit {
  return fitRfModel(mbgObjective, groups, options, MODEL);
}

// ---------------------------------------------------------------------------------------------------------------
// The likelihood.

/**
 * lifetimes' ModifiedBetaGeoFitter._negative_log_likelihood: ln L_g = A1 + A2 + ln(exp(A3) + exp(A4)) with
 *   A1 = ln Gamma(r + x) - ln Gamma(r) + r ln alpha,
 *   A2 = ln Gamma(a + b) + ln Gamma(b + x + 1) - ln Gamma(b) - ln Gamma(a + b + x + 1),
 *   A3 = -(r + x) ln(alpha + T)                        (alive at T),
 *   A4 = ln a - ln(b + x) - (r + x) ln(alpha + t_x)    (dropped out right after the purchase at t_x),
 * for every x including 0 (lifetimes writes A3 + logaddexp(A4 - A3, 0)). The objective is
 * -(1/N) sum_g n_g ln L_g + penalizer (r^2 + alpha^2 + a^2 + b^2) in theta = ln(r, alpha, a, b); see RfObjective.
 */
const mbgObjective = penalizedObjective((data, [r, alpha, a, b], d) => {
  const ll = new CompensatedSum();
  const perX = xTerms(data, r, alpha, a, b, ll, d);
  groupTerms(data, r, alpha, a, perX, ll, d);
  return ll.value();
});

/** A1 + A2 summed over the customers with each distinct x, into `ll` and `d`; returns ln(b + x) and 1 / (b + x). */
function xTerms(
  data: Prepared,
  r: number,
  alpha: number,
  a: number,
  b: number,
  ll: CompensatedSum,
  d: Float64Array | null,
): { ln: Float64Array; inv: Float64Array } {
  const { lnAlpha, lgR, lgB, lgAB, psiR, psiB, psiAB } = parameterTerms(r, alpha, a, b, d !== null);
  for (let i = 0; i < data.xs.length; i++) {
    const x = data.xs[i]!;
    const w = data.xWeight[i]!;
    const a1 = lnGamma(r + x) - lgR + r * lnAlpha;
    const a2 = lgAB + lnGamma(b + x + 1) - lgB - lnGamma(a + b + x + 1);
    ll.add(w * (a1 + a2));
    if (d) {
      const psiABx1 = digamma(a + b + x + 1);
      d[0]! += w * (digamma(r + x) - psiR + lnAlpha);
      d[1]! += (w * r) / alpha;
      d[2]! += w * (psiAB - psiABx1);
      d[3]! += w * (psiAB + digamma(b + x + 1) - psiB - psiABx1);
    }
  }
  return lnAndInverse(data.xs, b);
}

/** ln(exp(A3) + exp(A4)) for every group, into `ll` and `d`. */
function groupTerms(
  data: Prepared,
  r: number,
  alpha: number,
  a: number,
  perX: { ln: Float64Array; inv: Float64Array },
  ll: CompensatedSum,
  d: Float64Array | null,
): void {
  const lnA = Math.log(a);
  const { ln: lnT, inv: invT } = lnAndInverse(data.Ts, alpha);
  const { ln: lnTx, inv: invTx } = lnAndInverse(data.txs, alpha);
  const { gx, gtx, gT, gn, xs } = data;
  for (let g = 0; g < gn.length; g++) {
    const ix = gx[g]!;
    const iT = gT[g]!;
    const itx = gtx[g]!;
    const n = gn[g]!;
    const c = r + xs[ix]!;
    const a3 = -c * lnT[iT]!;
    const a4 = lnA - perX.ln[ix]! - c * lnTx[itx]!;
    // w4 = exp(A4) / (exp(A3) + exp(A4)), w3 = 1 - w4, without overflow or cancellation.
    const hi = Math.max(a3, a4);
    const e = Math.exp(-Math.abs(a3 - a4));
    ll.add(n * (hi + Math.log1p(e)));
    if (d) {
      const w4 = a4 > a3 ? 1 / (1 + e) : e / (1 + e);
      const w3 = a4 > a3 ? e / (1 + e) : 1 / (1 + e);
      d[0]! -= n * (w3 * lnT[iT]! + w4 * lnTx[itx]!);
      d[1]! -= n * c * (w3 * invT[iT]! + w4 * invTx[itx]!);
      d[2]! += (n * w4) / a;
      d[3]! -= n * w4 * perX.inv[ix]!;
    }
  }
}
