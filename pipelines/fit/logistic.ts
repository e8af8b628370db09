// L2-regularised logistic regression for the churn classifier, fitted by Newton's method (IRLS; e.g. Hastie,
// Tibshirani & Friedman, The Elements of Statistical Learning, 2nd ed., section 4.4.1, with the ridge term of
// section 4.4.4) on compact row-major Float64Array data. Features are standardised internally with the (weighted)
// training mean and standard deviation, and the objective is
//   sum_i w_i [log(1 + e^eta_i) - y_i eta_i] + (l2 / 2) sum_j beta_j^2,   eta_i = beta_0 + sum_j beta_j z_ij,
// with z_ij = (x_ij - mean_j) / scale_j and the intercept beta_0 unpenalised (scikit-learn's LogisticRegression with
// C = 1 / l2 on standardised features). Each Newton step solves (Z'SZ + l2 I) d = gradient, S = diag(w mu (1 - mu)),
// by Cholesky (ml-matrix), with step halving when a full step would not lower the objective. Deterministic.

import { CholeskyDecomposition, Matrix } from 'ml-matrix';

export interface LogisticFit {
  /** On the standardised scale: eta = intercept + sum_j coefficients[j] * (x_j - means[j]) / scales[j]. */
  intercept: number;
  /** Per feature, on the standardised scale (raw-scale slope: coefficients[j] / scales[j]); 0 for a constant one. */
  coefficients: number[];
  /** Training means (weighted), per feature. */
  means: number[];
  /** Training standard deviations (weighted, population), per feature; 1 for a constant feature. */
  scales: number[];
  /** Newton steps taken. */
  iterations: number;
  /** The last Newton step moved no (standardised) coefficient by more than `tolerance`. */
  converged: boolean;
  /** Mean (weighted) negative log-likelihood of the training rows at the fit, without the penalty. */
  logLoss: number;
  featureNames: string[];
}

export interface LogisticData {
  features: string[];
  /** Row-major n x p, p = features.length. */
  x: Float64Array;
  /** 0 or 1 per row. */
  y: Uint8Array;
  /** Non-negative row weights; default 1. */
  weight?: Float64Array;
}

export interface LogisticOptions {
  /** Ridge penalty (l2 / 2) ||beta||^2 on the standardised coefficients, not on the intercept. Default 1.0. */
  l2?: number;
  /** Newton steps at most. Default 100. */
  maxIterations?: number;
  /** Converged when a Newton step moves no (standardised) coefficient by more than this. Default 1e-8. */
  tolerance?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Input checks and standardisation.

function checkRows(features: readonly string[], x: Float64Array, where: string): number {
  const p = features.length;
  if (p === 0 ? x.length !== 0 : x.length % p !== 0)
    throw new Error(`${where}: x has ${x.length} values, not a multiple of ${p} features`);
  for (let k = 0; k < x.length; k++) {
    if (!Number.isFinite(x[k]!)) {
      const row = Math.floor(k / p);
      throw new Error(`${where}: feature "${features[k % p]}" is ${x[k]} at row ${row}`);
    }
  }
  return p === 0 ? 0 : x.length / p;
}

function checkData(data: LogisticData): { n: number; p: number; w: Float64Array } {
  const p = data.features.length;
  const n = p === 0 ? data.y.length : checkRows(data.features, data.x, 'fitLogistic');
  if (data.y.length !== n) throw new Error(`fitLogistic: y has ${data.y.length} rows, x has ${n}`);
  const w = data.weight ?? new Float64Array(n).fill(1);
  if (w.length !== n) throw new Error(`fitLogistic: weight has ${w.length} rows, x has ${n}`);
  const classWeight = [0, 0];
  for (let i = 0; i < n; i++) {
    const yi = data.y[i]!;
    if (yi !== 0 && yi !== 1) throw new Error(`fitLogistic: y is ${yi} at row ${i}, not 0 or 1`);
    if (!(Number.isFinite(w[i]!) && w[i]! >= 0))
      throw new Error(`fitLogistic: weight is ${w[i]} at row ${i}, not a finite number >= 0`);
    classWeight[yi]! += w[i]!;
  }
  if (!(classWeight[0]! > 0 && classWeight[1]! > 0))
    throw new Error('fitLogistic: y must have both 0s and 1s (with positive weight)');
  return { n, p, w };
}

interface Standardisation {
  means: number[];
  scales: number[];
  /** Features that vary (over rows of positive weight): the ones with a coefficient to fit. */
  active: number[];
}

function standardise(x: Float64Array, w: Float64Array, n: number, p: number): Standardisation {
  const means: number[] = [];
  const scales: number[] = [];
  const active: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) total += w[i]!;
  for (let j = 0; j < p; j++) {
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      if (w[i] === 0) continue;
      const v = x[i * p + j]!;
      sum += w[i]! * v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const mean = sum / total;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const d = x[i * p + j]! - mean;
      squares += w[i]! * d * d;
    }
    const sd = Math.sqrt(squares / total);
    const constant = !(max > min) || !(sd > 0);
    means.push(constant ? (min === max ? min : mean) : mean);
    scales.push(constant ? 1 : sd);
    if (!constant) active.push(j);
  }
  return { means, scales, active };
}

// ---------------------------------------------------------------------------------------------------------------
// The objective and its derivatives.

interface Problem {
  x: Float64Array;
  y: Uint8Array;
  w: Float64Array;
  n: number;
  p: number;
  std: Standardisation;
  l2: number;
  totalWeight: number;
}

interface Evaluation {
  /** The penalised objective. */
  objective: number;
  /** sum_i w_i loss_i / sum_i w_i. */
  logLoss: number;
  /** Gradient and Hessian (k x k, row-major, full) of the objective in theta = [intercept, active coefficients]. */
  gradient?: Float64Array;
  hessian?: Float64Array;
}

/** log(1 + e^eta) without overflow. */
function softplus(eta: number): number {
  return eta > 0 ? eta + Math.log1p(Math.exp(-eta)) : Math.log1p(Math.exp(eta));
}

function sigmoid(eta: number): number {
  if (eta >= 0) return 1 / (1 + Math.exp(-eta));
  const e = Math.exp(eta);
  return e / (1 + e);
}

/** Rows per block of the Hessian's accumulation. */
const CHUNK = 256;

/** sum_i u[uo + i] v[vo + i] for i < m, four partial sums (a fixed order: deterministic). */
function dot(u: Float64Array, uo: number, v: Float64Array, vo: number, m: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < m; i += 4) {
    s0 += u[uo + i]! * v[vo + i]!;
    s1 += u[uo + i + 1]! * v[vo + i + 1]!;
    s2 += u[uo + i + 2]! * v[vo + i + 2]!;
    s3 += u[uo + i + 3]! * v[vo + i + 3]!;
  }
  for (; i < m; i++) s0 += u[uo + i]! * v[vo + i]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * One pass over the rows at theta, with the derivatives when asked. Rows go in blocks of CHUNK, their standardised
 * features stored column by column (z, and s z with s = w mu (1 - mu)), so that each entry of the Hessian's upper
 * triangle gains one dot product per block; the lower triangle is mirrored at the end.
 */
function evaluate(pb: Problem, theta: Float64Array, derivatives: boolean): Evaluation {
  const { x, y, w, n, p, std, l2 } = pb;
  const k = theta.length;
  const column = Int32Array.from(std.active);
  const mean = Float64Array.from(std.active, (j) => std.means[j]!);
  const invScale = Float64Array.from(std.active, (j) => 1 / std.scales[j]!);
  const z = new Float64Array(k * CHUNK).fill(1, 0, CHUNK); // z[a * CHUNK + i]; column 0 is the intercept's 1
  const sz = new Float64Array(derivatives ? k * CHUNK : 0);
  const gradient = new Float64Array(derivatives ? k : 0);
  const hessian = new Float64Array(derivatives ? k * k : 0);
  let loss = 0;
  for (let start = 0; start < n; start += CHUNK) {
    const m = Math.min(CHUNK, n - start);
    for (let i = 0; i < m; i++) {
      const row = start + i;
      const wi = w[row]!;
      let eta = theta[0]!;
      for (let a = 1; a < k; a++) {
        const v = (x[row * p + column[a - 1]!]! - mean[a - 1]!) * invScale[a - 1]!;
        z[a * CHUNK + i] = v;
        eta += theta[a]! * v;
      }
      if (wi > 0) loss += wi * (softplus(eta) - y[row]! * eta);
      if (!derivatives) continue;
      const mu = sigmoid(eta);
      const r = wi * (mu - y[row]!);
      const s = wi * mu * (1 - mu);
      for (let a = 0; a < k; a++) {
        const v = z[a * CHUNK + i]!;
        gradient[a]! += r * v;
        sz[a * CHUNK + i] = s * v;
      }
    }
    if (!derivatives) continue;
    for (let a = 0; a < k; a++)
      for (let b = a; b < k; b++) hessian[a * k + b]! += dot(sz, a * CHUNK, z, b * CHUNK, m);
  }
  let penalty = 0;
  for (let a = 1; a < k; a++) penalty += theta[a]! * theta[a]!;
  const objective = loss + 0.5 * l2 * penalty;
  if (!derivatives) return { objective, logLoss: loss / pb.totalWeight };
  for (let a = 0; a < k; a++) {
    if (a > 0) {
      gradient[a]! += l2 * theta[a]!;
      hessian[a * k + a]! += l2;
    }
    for (let b = 0; b < a; b++) hessian[a * k + b] = hessian[b * k + a]!;
  }
  return { objective, logLoss: loss / pb.totalWeight, gradient, hessian };
}

/** The Newton direction H^-1 g, or null when H is not (numerically) positive definite. */
function newtonDirection(gradient: Float64Array, hessian: Float64Array): Float64Array | null {
  const k = gradient.length;
  const h = new Matrix(k, k);
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) h.set(a, b, hessian[a * k + b]!);
  const cholesky = new CholeskyDecomposition(h);
  if (!cholesky.isPositiveDefinite()) return null;
  const d = Float64Array.from(cholesky.solve(Matrix.columnVector(gradient)).getColumn(0));
  return d.every(Number.isFinite) ? d : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Fitting and scoring.

/**
 * Fits the model. Throws an Error for malformed input: a non-finite feature value (naming the feature and row), a
 * y that is not 0/1, a bad weight, mismatched lengths, or a single class. Separable data give finite coefficients
 * when l2 > 0; with l2 = 0 they diverge, and the fit stops (converged = false) where the Hessian degenerates.
 */
export function fitLogistic(data: LogisticData, options: LogisticOptions = {}): LogisticFit {
  const l2 = options.l2 ?? 1.0;
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? 1e-8;
  if (!(l2 >= 0 && Number.isFinite(l2)))
    throw new Error(`fitLogistic: l2 must be a finite number >= 0, got ${l2}`);
  const { n, p, w } = checkData(data);
  const std = standardise(data.x, w, n, p);
  let totalWeight = 0;
  for (let i = 0; i < n; i++) totalWeight += w[i]!;
  const pb: Problem = { x: data.x, y: data.y, w, n, p, std, l2, totalWeight };

  // Start at the base rate's log odds with every coefficient 0.
  let theta: Float64Array = new Float64Array(1 + std.active.length);
  let positiveWeight = 0;
  for (let i = 0; i < n; i++) positiveWeight += data.y[i]! * w[i]!;
  theta[0] = Math.log(positiveWeight / (totalWeight - positiveWeight));
  let current = evaluate(pb, theta, true);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIterations) {
    const direction = newtonDirection(current.gradient!, current.hessian!);
    if (!direction) break;
    // Converged when the Newton step itself is this small; it is still taken, whole (quadratic convergence).
    const small = direction.every((d) => Math.abs(d) <= tolerance);
    const next = small ? theta.map((v, a) => v - direction[a]!) : lineSearch(pb, theta, current, direction);
    if (!next) break;
    iterations += 1;
    theta = next;
    current = evaluate(pb, theta, !small);
    if (small) {
      converged = true;
      break;
    }
  }

  const coefficients = new Array<number>(p).fill(0);
  std.active.forEach((j, a) => {
    coefficients[j] = theta[a + 1]!;
  });
  return {
    intercept: theta[0]!,
    coefficients,
    means: std.means,
    scales: std.scales,
    iterations,
    converged,
    logLoss: current.logLoss,
    featureNames: [...data.features],
  };
}

/**
 * theta - t d for the largest t in 1, 1/2, 1/4, ... (30 halvings) with sufficient decrease (Armijo, c = 1e-4), up to
 * the objective's rounding: a sum of n terms is good to about n ulps, and near the optimum a Newton step lowers it by
 * less than that. Null when no such step exists.
 */
function lineSearch(
  pb: Problem,
  theta: Float64Array,
  current: Evaluation,
  direction: Float64Array,
): Float64Array | null {
  let slope = 0; // directional derivative along -direction
  for (let a = 0; a < theta.length; a++) slope -= current.gradient![a]! * direction[a]!;
  const rounding = Math.max(pb.n, 16) * Number.EPSILON * Math.abs(current.objective);
  let t = 1;
  for (let halving = 0; halving <= 30; halving++, t /= 2) {
    const next = theta.map((v, a) => v - t * direction[a]!);
    const value = evaluate(pb, next, false).objective;
    if (value <= current.objective + 1e-4 * t * slope + rounding) return next;
  }
  return null;
}

function linearPredictor(fit: LogisticFit, row: ArrayLike<number>, offset: number): number {
  let eta = fit.intercept;
  for (let j = 0; j < fit.coefficients.length; j++)
    eta += (fit.coefficients[j]! * (row[offset + j]! - fit.means[j]!)) / fit.scales[j]!;
  return eta;
}

/** P(y = 1) per row of x (row-major n x p, the fit's features in order). Throws on a non-finite value. */
export function predictLogistic(fit: LogisticFit, x: Float64Array): Float64Array {
  const p = fit.featureNames.length;
  const n = checkRows(fit.featureNames, x, 'predictLogistic');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = sigmoid(linearPredictor(fit, x, i * p));
  return out;
}

/**
 * Each feature's term of the linear predictor for one row, coefficient_j * (x_j - mean_j) / scale_j (they add up to
 * eta - intercept): reason codes for a score. Throws on a non-finite value or a row of the wrong length.
 */
export function contributions(fit: LogisticFit, row: ArrayLike<number>): number[] {
  const p = fit.featureNames.length;
  if (row.length !== p)
    throw new Error(`contributions: row has ${row.length} values, the fit has ${p} features`);
  return fit.coefficients.map((c, j) => {
    const v = row[j]!;
    if (!Number.isFinite(v)) throw new Error(`contributions: feature "${fit.featureNames[j]}" is ${v}`);
    return (c * (v - fit.means[j]!)) / fit.scales[j]!;
  });
}
