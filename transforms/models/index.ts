// The TypeScript models: the few steps that fit a statistical model on compact per-customer arrays. Each one's
// tables are described in the yml of its layer (sql/metrics/<name>.yml, `materialized_by: transforms/models/<name>.ts`).
import type { TsModel } from '../model.js';
import { bgnbdScores } from './bgnbd_scores.js';
import { healthScores } from './health_scores.js';

export const tsModels: readonly TsModel[] = [bgnbdScores, healthScores];
