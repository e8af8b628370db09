// Crash safety of publishing to a local output: `churn run` and `churn backfill` killed with SIGKILL at every
// stage and publish step (the scenarios are in crash.ts; crash-s3.test.ts runs them on an S3 output).
import { describe } from 'vitest';
import { crashScenarios, localOutput } from './crash.js';

describe('a killed run or backfill on a local output never damages what was published', () => {
  crashScenarios('local', localOutput);
});
