// Seeded random numbers for tests that simulate data: reproducible on every machine.

/** mulberry32: a tiny seeded 32-bit PRNG, uniform on [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller). */
export function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 by Gamma(shape + 1) x U^(1/shape). */
export function gamma(u: () => number, shape: number): number {
  if (shape < 1) return gamma(u, shape + 1) * (1 - u()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(u);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    if (Math.log(1 - u()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}
