// CDNOW (23,570 customers, examples/cdnow.yaml) on one node and as 4 shards in separate processes: the same published
// tables and import files. Skipped where the datasets are not beside the clone (as test/realdata.test.ts).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db } from '../pipelines/base/duckdb.js';
import { churn, type Exit, ROOT, reason } from './ops/support.js';
import { differences, exportFiles } from './support/compare.js';

const CDNOW_DIR = resolve(ROOT, '../shared/datasets/cdnow');
const AS_OF = '1998-06-30';

describe.skipIf(!existsSync(join(CDNOW_DIR, 'CDNOW_master.txt')))('CDNOW as 4 shards', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-shards-cdnow-'));
  const env = { CDNOW_DIR };
  const config = (name: string) => join(dir, `${name}.yaml`);
  const ok = (exit: Exit, what: string) => expect(exit.code, `${what}: ${reason(exit)}`).toBe(0);
  let db: Db;

  beforeAll(async () => {
    const example = readFileSync(join(ROOT, 'examples', 'cdnow.yaml'), 'utf8');
    for (const name of ['single', 'sharded']) {
      const text = example
        .replace('output: { type: local, path: ../out/cdnow }', `output: { type: local, path: out-${name} }`)
        .replace('state_dir: ../.churn/cdnow', `state_dir: .churn-${name}`);
      expect(text).toContain(`out-${name}`);
      writeFileSync(config(name), `${text}duckdb:\n  threads: 1\n`);
    }
    db = await Db.open();
  });
  afterAll(() => db?.close());

  it('publishes the single-node tables', async () => {
    ok(await churn(['-c', config('single'), 'run', '--as-of', AS_OF], env), 'single-node run');
    for (const pair of [
      [0, 1],
      [2, 3],
    ]) {
      const exits = await Promise.all(
        pair.map((i) => churn(['-c', config('sharded'), 'run', '--as-of', AS_OF, '--shard', `${i}/4`], env)),
      );
      for (const [k, exit] of exits.entries()) ok(exit, `shard ${pair[k]}/4`);
    }
    ok(await churn(['-c', config('sharded'), 'merge', '--as-of', AS_OF, '--shards', '4'], env), 'merge');
    expect(await differences(db, join(dir, 'out-single'), join(dir, 'out-sharded'))).toEqual({});
    expect(exportFiles(join(dir, 'out-sharded'))).toEqual(exportFiles(join(dir, 'out-single')));
  }, 300_000);
});
