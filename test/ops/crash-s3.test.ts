// Crash safety of publishing to an S3 output (a real s3rver, with the output's local copy): `churn run` and
// `churn backfill` killed with SIGKILL at every stage and publish step (the scenarios are in crash.ts).
import { describe } from 'vitest';
import { s3rverForTests } from '../support/s3rver.js';
import { crashScenarios, s3Output } from './crash.js';

const s3 = s3rverForTests(['lake']);

describe('a killed run or backfill on an S3 output never damages what was published', () => {
  crashScenarios('s3', () => s3Output(s3.server.endpoint, s3.client));
});
