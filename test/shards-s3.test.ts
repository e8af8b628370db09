// Shards of an S3 output (a real s3rver): the shards upload to s3://bucket/prefix/_shards/as_of=D/shard=I/ from
// separate processes, the merge reads them back, refuses while one is missing, and publishes what a single-node run
// on a local output publishes; --remove-shards deletes them once published.
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db } from '../pipelines/base/duckdb.js';
import { churn, type Exit, makeProject, type Project, reason } from './ops/support.js';
import { differences, exportFiles } from './support/compare.js';
import { S3RVER_ENV, s3rverForTests } from './support/s3rver.js';

const AS_OF = '2024-06-30';
// The fixture's exports are a few days old on the as-of date, and a tenth of its customers have no consent.
const EXTRA = ['checks:', '  freshness:', "    severity: 'off'"].join('\n');

const s3 = s3rverForTests(['lake']);
let db: Db;

beforeAll(async () => {
  db = await Db.open();
});

afterAll(() => db?.close());

async function exists(key: string): Promise<boolean> {
  try {
    await s3.client.send(new HeadObjectCommand({ Bucket: 'lake', Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe('shards of an S3 output', () => {
  let single: Project;
  let sharded: Project;
  const ok = (exit: Exit, what: string) => expect(exit.code, `${what}: ${reason(exit)}`).toBe(0);

  beforeAll(async () => {
    single = makeProject(EXTRA);
    sharded = makeProject(EXTRA, undefined, [
      'output:',
      '  type: s3',
      '  bucket: lake',
      '  prefix: churn',
      `  endpoint: ${s3.server.endpoint}`,
      '  force_path_style: true',
      '  local_path: out',
    ]);
    ok(await churn(['--config', single.config, 'run', '--as-of', AS_OF]), 'single-node run');
  }, 120_000);

  it('publishes the single-node tables from two shards, and nothing while one is missing', async () => {
    const run = (i: number) =>
      churn(['--config', sharded.config, 'run', '--as-of', AS_OF, '--shard', `${i}/2`], S3RVER_ENV);
    const merge = () =>
      churn(
        ['--config', sharded.config, 'merge', '--as-of', AS_OF, '--shards', '2', '--remove-shards'],
        S3RVER_ENV,
      );
    ok(await run(1), 'shard 1/2');
    expect(await exists(`churn/_shards/as_of=${AS_OF}/shard=1/_SUCCESS`)).toBe(true);
    expect(await exists(`churn/_shards/as_of=${AS_OF}/shard=1/_shard.json`)).toBe(true);

    const missing = await merge();
    expect(missing.code).toBe(1);
    expect(reason(missing)).toContain(
      `shard 0 of 2 as of ${AS_OF} has not finished (no _SUCCESS in s3://lake/churn/_shards/as_of=${AS_OF}/shard=0)`,
    );
    expect(await exists(`churn/runs/as_of=${AS_OF}/_SUCCESS`)).toBe(false);

    ok(await run(0), 'shard 0/2');
    ok(await merge(), 'merge');
    expect(await exists(`churn/runs/as_of=${AS_OF}/_SUCCESS`)).toBe(true);
    expect(await exists('churn/current/_SUCCESS')).toBe(true);
    expect(await differences(db, single.out, sharded.out)).toEqual({});
    expect(exportFiles(sharded.out)).toEqual(exportFiles(single.out));
    const left = await s3.client.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'churn/_shards/' }));
    expect(left.KeyCount ?? 0).toBe(0);
  }, 240_000);
});
