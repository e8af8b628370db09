// Crash safety of publishing to an S3 output (a real s3rver, with the output's local copy): `churn run` and
// `churn backfill` killed with SIGKILL at every stage and publish step (the scenarios are in crash.ts).
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, vi } from 'vitest';
import { createS3Client } from '../../pipelines/s3client.js';
import { type S3rverHandle, startS3rver } from '../support/s3rver.js';
import { CRED_ENV, crashScenarios, s3Output } from './crash.js';

let server: S3rverHandle;
let client: S3Client;

beforeAll(async () => {
  for (const [k, v] of Object.entries(CRED_ENV)) vi.stubEnv(k, v);
  server = await startS3rver({ buckets: ['lake'] });
  // Generous attempts: s3rver closes idle keep-alive connections, and a request may race that close.
  client = createS3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    maxAttempts: 5,
  });
}, 30_000);

afterAll(async () => {
  client?.destroy();
  await server?.stop();
  vi.unstubAllEnvs();
});

describe('a killed run or backfill on an S3 output never damages what was published', () => {
  crashScenarios('s3', () => s3Output(server.endpoint, client));
});
