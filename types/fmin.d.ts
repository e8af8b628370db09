// Types for fmin 0.0.4 (benfred/fmin), which ships none. Only the two optimisers this project uses.
//
// Caveat (see pipelines/fit/bgnbd.ts): the 0.0.4 package is `"type": "module"` but its entry point is a UMD
// bundle, so under Node's ESM loader the module namespace is empty and the bundle attaches itself to
// `globalThis.fmin` instead (benfred/fmin#19). These declarations describe the API, wherever it is found.
declare module 'fmin' {
  /** A point that fmin annotates in place with its function value. */
  export type FminPoint = number[] & { fx?: number; id?: number };

  export interface NelderMeadOptions {
    /** Default 200 x dimension. */
    maxIterations?: number;
    /** Initial simplex: a non-zero coordinate is multiplied by this (default 1.05). */
    nonZeroDelta?: number;
    /** Initial simplex: a zero coordinate becomes this (default 0.001). */
    zeroDelta?: number;
    /**
     * Stops when the simplex's function values differ by less than this (default 1e-6). In 0.0.4 the same value
     * also replaces the coordinate tolerance (`minTolerance` is read from `minErrorDelta`, benfred/fmin#14).
     */
    minErrorDelta?: number;
    rho?: number;
    chi?: number;
    psi?: number;
    /** Shrink factor; with sigma >= 1 the search stops where it would shrink (0.0.4's shrink throws, #23). */
    sigma?: number;
    /** Receives one entry per iteration. */
    history?: unknown[];
  }

  export interface NelderMeadResult {
    fx: number;
    x: FminPoint;
  }

  export function nelderMead(
    f: (x: number[]) => number,
    x0: number[],
    parameters?: NelderMeadOptions,
  ): NelderMeadResult;

  export interface ConjugateGradientOptions {
    /** Default 20 x dimension. Stops earlier when the gradient's L2 norm is <= 1e-5. */
    maxIterations?: number;
    /** Receives one entry per iteration. */
    history?: unknown[];
  }

  export interface ConjugateGradientResult {
    x: number[];
    fx: number;
    fxprime: number[];
  }

  /** Polak-Ribiere conjugate gradient with a Wolfe line search; `f` writes the gradient into `fxprime`. */
  export function conjugateGradient(
    f: (x: number[], fxprime: number[]) => number,
    initial: number[],
    params?: ConjugateGradientOptions,
  ): ConjugateGradientResult;
}
