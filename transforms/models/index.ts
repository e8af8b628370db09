// The TypeScript models: the few steps that fit a statistical model on compact per-customer arrays.
import type { CodeModel } from '../runner.js';
import { bgnbdScores } from './bgnbd_scores.js';
import { healthScores } from './health_scores.js';

export const codeModels: CodeModel[] = [
  { kind: 'ts', name: bgnbdScores.name, layer: 'metrics', model: bgnbdScores },
  { kind: 'ts', name: healthScores.name, layer: 'metrics', model: healthScores },
];
