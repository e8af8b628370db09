// Logistic regression (pipelines/fit/logistic.ts) and AUC (pipelines/fit/metrics.ts), on data the test makes.
import { describe, expect, it } from 'vitest';
import { contributions, fitLogistic, type LogisticFit, predictLogistic } from '../pipelines/fit/logistic.js';
import { auc } from '../pipelines/fit/metrics.js';
import { mulberry32, normal } from './support/random.js';

const sigmoid = (eta: number): number => 1 / (1 + Math.exp(-eta));

/** Raw-scale (intercept, slopes) of a fit: undoes the standardisation. */
function rawScale(fit: LogisticFit): { intercept: number; slopes: number[] } {
  const slopes = fit.coefficients.map((c, j) => c / fit.scales[j]!);
  const intercept = fit.intercept - slopes.reduce((s, b, j) => s + b * fit.means[j]!, 0);
  return { intercept, slopes };
}

/** Rows with the given features drawn by `draw` and y ~ Bernoulli(sigmoid(intercept + slopes . x)). */
function simulate(
  n: number,
  seed: number,
  draw: ((u: () => number) => number)[],
  intercept: number,
  slopes: number[],
): { x: Float64Array; y: Uint8Array } {
  const u = mulberry32(seed);
  const p = draw.length;
  const x = new Float64Array(n * p);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let eta = intercept;
    for (let j = 0; j < p; j++) {
      x[i * p + j] = draw[j]!(u);
      eta += slopes[j]! * x[i * p + j]!;
    }
    y[i] = u() < sigmoid(eta) ? 1 : 0;
  }
  return { x, y };
}

describe('fitLogistic', () => {
  it('one binary feature, l2 = 0: the closed form (log odds, log odds ratio)', () => {
    // Group 0: 30 negatives, 10 positives; group 1: 15 negatives, 45 positives.
    const counts = [
      [0, 0, 30],
      [0, 1, 10],
      [1, 0, 15],
      [1, 1, 45],
    ] as const;
    const rows = counts.flatMap(([g, y, n]) => Array.from({ length: n }, () => [g, y] as const));
    const fit = fitLogistic(
      {
        features: ['group'],
        x: Float64Array.from(rows, ([g]) => g),
        y: Uint8Array.from(rows, ([, y]) => y),
      },
      { l2: 0 },
    );
    expect(fit.converged).toBe(true);
    expect(fit.featureNames).toEqual(['group']);
    expect(fit.means[0]).toBeCloseTo(60 / 100, 14);
    expect(fit.scales[0]).toBeCloseTo(Math.sqrt(0.6 * 0.4), 14);
    const raw = rawScale(fit);
    expect(raw.intercept).toBeCloseTo(Math.log(10 / 30), 10);
    expect(raw.slopes[0]).toBeCloseTo(Math.log(45 / 15) - Math.log(10 / 30), 10);
    // The log loss is the groups' binary entropy.
    const entropy =
      -(30 * Math.log(0.75) + 10 * Math.log(0.25) + 15 * Math.log(0.25) + 45 * Math.log(0.75)) / 100;
    expect(fit.logLoss).toBeCloseTo(entropy, 12);

    // The same four cells as weighted rows give the same fit.
    const weighted = fitLogistic(
      {
        features: ['group'],
        x: Float64Array.from(counts, ([g]) => g),
        y: Uint8Array.from(counts, ([, y]) => y),
        weight: Float64Array.from(counts, ([, , n]) => n),
      },
      { l2: 0 },
    );
    expect(weighted.intercept).toBeCloseTo(fit.intercept, 10);
    expect(weighted.coefficients[0]).toBeCloseTo(fit.coefficients[0]!, 10);
    expect(weighted.logLoss).toBeCloseTo(fit.logLoss, 12);
  });

  it('the gradient of the penalised objective vanishes at the optimum (random data, weights, a constant column)', () => {
    const n = 3000;
    const u = mulberry32(99);
    const features = ['a', 'b', 'constant', 'c', 'd'];
    const p = features.length;
    const x = new Float64Array(n * p);
    const y = new Uint8Array(n);
    const weight = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i * p] = normal(u) * 3 + 10;
      x[i * p + 1] = u() < 0.2 ? 1 : 0;
      x[i * p + 2] = 7.25;
      x[i * p + 3] = Math.exp(normal(u));
      x[i * p + 4] = normal(u) * 1e-3;
      y[i] = u() < sigmoid(-0.5 + 0.3 * (x[i * p]! - 10) + x[i * p + 1]! - 0.4 * x[i * p + 3]!) ? 1 : 0;
      weight[i] = 0.5 + 1.5 * u();
    }
    const l2 = 5;
    const fit = fitLogistic({ features, x, y, weight }, { l2 });
    expect(fit.converged).toBe(true);
    expect(fit.iterations).toBeLessThan(15);
    expect([fit.means[2], fit.scales[2], fit.coefficients[2]]).toEqual([7.25, 1, 0]);

    // The objective and gradient in the standardised coefficients, written out here.
    const z = (i: number, j: number): number => (x[i * p + j]! - fit.means[j]!) / fit.scales[j]!;
    const objective = (b0: number, b: number[]): number => {
      let value = 0;
      for (let i = 0; i < n; i++) {
        const eta = b0 + b.reduce((s, bj, j) => s + bj * z(i, j), 0);
        value += weight[i]! * (Math.log1p(Math.exp(eta)) - y[i]! * eta);
      }
      return value + (l2 / 2) * b.reduce((s, bj) => s + bj * bj, 0);
    };
    const gradient = new Array<number>(p + 1).fill(0);
    const predicted = predictLogistic(fit, x);
    for (let i = 0; i < n; i++) {
      const r = weight[i]! * (predicted[i]! - y[i]!);
      gradient[0]! += r;
      for (let j = 0; j < p; j++) gradient[j + 1]! += r * z(i, j);
    }
    fit.coefficients.forEach((b, j) => {
      gradient[j + 1]! += l2 * b;
    });
    for (const g of gradient) expect(Math.abs(g)).toBeLessThan(1e-8);
    // And it is a minimum: nudging any coordinate raises the objective.
    const best = objective(fit.intercept, fit.coefficients);
    expect(best / n).toBeCloseTo(fit.logLoss * (weight.reduce((s, w) => s + w, 0) / n), 1);
    for (let j = -1; j < p; j++) {
      if (j === 2) continue;
      for (const h of [-1e-3, 1e-3]) {
        const b = [...fit.coefficients];
        if (j >= 0) b[j]! += h;
        expect(objective(fit.intercept + (j < 0 ? h : 0), b)).toBeGreaterThan(best);
      }
    }
  });

  it('recovers a known model on 20,000 rows, calibrated by decile', () => {
    // tenure-like N(0, 1), age U(18, 80), a 30% flag, a N(100, 15^2) spend; base rate about 25%.
    const draw = [
      (u: () => number) => normal(u),
      (u: () => number) => 18 + 62 * u(),
      (u: () => number) => (u() < 0.3 ? 1 : 0),
      (u: () => number) => 100 + 15 * normal(u),
    ];
    const slopes = [0.8, -0.03, 1.2, 0.02];
    const intercept = -1.53;
    const n = 20_000;
    const { x, y } = simulate(n, 4242, draw, intercept, slopes);
    const fit = fitLogistic({ features: ['tenure', 'age', 'flag', 'spend'], x, y });
    expect(fit.converged).toBe(true);
    // Standard errors of the standardised coefficients are about 1 / sqrt(n E[mu (1 - mu)]) = 0.02 here; 0.08 is
    // 4 of them. On the raw scale that is 0.08 / scale.
    const raw = rawScale(fit);
    slopes.forEach((b, j) => {
      expect(Math.abs(raw.slopes[j]! - b) * fit.scales[j]!, `slope ${j}: ${raw.slopes[j]}`).toBeLessThan(
        0.08,
      );
    });
    expect(Math.abs(raw.intercept - intercept)).toBeLessThan(0.3);

    const predicted = predictLogistic(fit, x);
    expect(predicted.every((q) => q > 0 && q < 1)).toBe(true);
    // The unpenalised intercept makes the mean prediction the observed rate exactly (its score equation).
    const observed = y.reduce((s, v) => s + v, 0) / n;
    expect(predicted.reduce((s, q) => s + q, 0) / n).toBeCloseTo(observed, 10);
    // Per decile of the prediction: binomial noise on 2,000 rows is at most 0.011; 0.035 is over 3 of it.
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => predicted[a]! - predicted[b]!);
    for (let d = 0; d < 10; d++) {
      const rows = order.slice((d * n) / 10, ((d + 1) * n) / 10);
      const meanPredicted = rows.reduce((s, i) => s + predicted[i]!, 0) / rows.length;
      const rate = rows.reduce((s, i) => s + y[i]!, 0) / rows.length;
      expect(Math.abs(meanPredicted - rate), `decile ${d}: ${meanPredicted} vs ${rate}`).toBeLessThan(0.035);
    }
    expect(auc(predicted, y)).toBeGreaterThan(0.7);

    // Contributions add up to the linear predictor.
    const row = Array.from(x.subarray(0, 4));
    const parts = contributions(fit, row);
    expect(parts).toHaveLength(4);
    expect(sigmoid(fit.intercept + parts.reduce((s, c) => s + c, 0))).toBeCloseTo(predicted[0]!, 12);
    expect(parts[1]).toBeCloseTo((fit.coefficients[1]! * (row[1]! - fit.means[1]!)) / fit.scales[1]!, 14);
  });

  it('separable data: finite coefficients with l2 > 0; no convergence claimed with l2 = 0', () => {
    const u = mulberry32(5);
    const n = 500;
    const x = Float64Array.from({ length: n }, () => 2 * u() - 1);
    const y = Uint8Array.from(x, (v) => (v > 0 ? 1 : 0));
    const fit = fitLogistic({ features: ['score'], x, y });
    expect(fit.converged).toBe(true);
    expect(Number.isFinite(fit.intercept) && Number.isFinite(fit.coefficients[0]!)).toBe(true);
    expect(fit.coefficients[0]!).toBeGreaterThan(5);
    expect(auc(predictLogistic(fit, x), y)).toBe(1);
    // A heavier penalty shrinks the coefficient.
    expect(fitLogistic({ features: ['score'], x, y }, { l2: 50 }).coefficients[0]!).toBeLessThan(
      fit.coefficients[0]!,
    );
    const unpenalised = fitLogistic({ features: ['score'], x, y }, { l2: 0, maxIterations: 200 });
    expect(unpenalised.converged).toBe(false);
    expect(Number.isFinite(unpenalised.coefficients[0]!)).toBe(true);
    expect(unpenalised.coefficients[0]!).toBeGreaterThan(fit.coefficients[0]!);
  });

  it('rejects non-finite inputs, naming the feature', () => {
    const x = Float64Array.from([1, 2, 3, 4, Number.NaN, 6, 7, 8]);
    const y = Uint8Array.from([0, 1, 0, 1]);
    expect(() => fitLogistic({ features: ['tenure', 'spend'], x, y })).toThrow(
      /feature "tenure" is NaN at row 2/,
    );
    x[4] = 5;
    x[7] = Number.POSITIVE_INFINITY;
    expect(() => fitLogistic({ features: ['tenure', 'spend'], x, y })).toThrow(
      /feature "spend" is Infinity at row 3/,
    );
    x[7] = 8;
    const fit = fitLogistic({ features: ['tenure', 'spend'], x, y });
    expect(() => predictLogistic(fit, Float64Array.from([1, Number.NaN]))).toThrow(/feature "spend"/);
    expect(() => contributions(fit, [Number.NEGATIVE_INFINITY, 1])).toThrow(/feature "tenure"/);
    expect(() => fitLogistic({ features: ['tenure', 'spend'], x, y: Uint8Array.from([0, 0, 0, 0]) })).toThrow(
      /both 0s and 1s/,
    );
    expect(() => fitLogistic({ features: ['tenure', 'spend'], x, y: Uint8Array.from([0, 2, 0, 1]) })).toThrow(
      /y is 2 at row 1/,
    );
    expect(() =>
      fitLogistic({ features: ['tenure', 'spend'], x, y, weight: Float64Array.from([1, Number.NaN, 1, 1]) }),
    ).toThrow(/weight is NaN at row 1/);
    expect(() => fitLogistic({ features: ['tenure', 'spend'], x: x.subarray(0, 7), y })).toThrow(/multiple/);
  });
});

describe('auc', () => {
  it('agrees with a brute-force pairwise count on random data with ties', () => {
    const u = mulberry32(31337);
    for (const n of [2, 10, 301, 1000]) {
      const scores = Float64Array.from({ length: n }, () => Math.round(u() * 20) / 10);
      const labels = Uint8Array.from(scores, (s) => (u() < 0.2 + 0.3 * s ? 1 : 0));
      labels[0] = 1;
      labels[1] = 0;
      let wins = 0;
      let pairs = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (labels[i] !== 1 || labels[j] !== 0) continue;
          pairs += 1;
          wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
        }
      }
      expect(auc(scores, labels)).toBeCloseTo(wins / pairs, 12);
      expect(auc(Array.from(scores), Array.from(labels))).toBe(auc(scores, labels));
    }
  });

  it('edge cases', () => {
    expect(auc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])).toBe(1);
    expect(auc([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(auc([0.5, 0.5, 0.5], [0, 1, 1])).toBe(0.5);
    expect(auc([0.1, 0.2], [1, 1])).toBeNaN();
    expect(() => auc([0.1, Number.NaN], [0, 1])).toThrow(/not finite/);
    expect(() => auc([0.1, 0.2], [0, 2])).toThrow(/not 0 or 1/);
    expect(() => auc([0.1], [0, 1])).toThrow(/labels/);
  });
});
