// Customer-hash shards (docs/shards.md): the generated sample, with rows planted whose checks cross shards, run on
// one node and as 1, 2 and 4 shards in separate processes (`churn run --shard`, then `churn merge`); every published
// table, import file, quarantine count and reconciliation must equal the single-node run's, and a missing or killed
// shard must leave nothing published until it is re-run.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_FILE } from '../config/load.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { generateSample } from '../pipelines/sample/generate.js';
import {
  assertShardRows,
  createShardMacro,
  DEDUPLICATION_KEYS,
  keepShardCustomers,
} from '../pipelines/shard/filter.js';
import { planShards } from '../pipelines/shard/plan.js';
import { parseShard, resolveShard } from '../pipelines/shard/spec.js';
import { modelCatalog } from '../transforms/metadata.js';
import { loadModels } from '../transforms/runner.js';
import { churn, type Exit, killAt, reason } from './ops/support.js';
import { differences, exportFiles, PLANTED_QUARANTINE, publishedQuarantine } from './support/compare.js';

const SQL = join(import.meta.dirname, '..', 'sql');

/** The shard of a customer, as the pipeline computes it (first 8 hex digits of SHA-256, modulo N). */
function shardOf(id: string, count: number): number {
  return Number.parseInt(createHash('sha256').update(id).digest('hex').slice(0, 8), 16) % count;
}

describe('shard options', () => {
  it('reads I/N, or N with the index of a Kubernetes Indexed Job or an AWS Batch array job', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(resolveShard({})).toBeUndefined();
    expect(resolveShard({ shards: '4' }, { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 3, count: 4 });
    expect(resolveShard({ shards: 2 }, { AWS_BATCH_JOB_ARRAY_INDEX: '1' })).toEqual({ index: 1, count: 2 });
    expect(() => parseShard('4/4')).toThrow(/only 4 shards \(0 to 3\)/);
    expect(() => parseShard('1-4')).toThrow(/is not I\/N/);
    expect(() => resolveShard({ shards: '4' }, {})).toThrow(/JOB_COMPLETION_INDEX/);
    expect(() => resolveShard({ shard: '1/4', shards: '2' })).toThrow(/disagree/);
  });

  it('hashes customer ids in SQL as SHA-256 does', async () => {
    const db = await Db.open();
    try {
      await createShardMacro(db);
      const ids = ['C000001', 'C000117', 'x', 'Ümlaut-42'];
      for (const id of ids) {
        for (const n of [1, 2, 4, 7]) {
          expect(await db.number(`select shard_of(${sqlString(id)}, ${n})`)).toBe(shardOf(id, n));
        }
      }
      expect(await db.number('select shard_of(null, 4)')).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('shard plan', () => {
  it('builds staging and facts per shard, quarantine, the model fits and everything after them in the merge', async () => {
    const plan = await planShards(await loadModels());
    const checked = plan.checked.map((m) => m.name);
    const local = plan.local.map((m) => m.name);
    const global = plan.global.map((m) => m.name);
    expect(checked.sort()).toEqual(
      ['activity', 'customers', 'email_events', 'invoices', 'orders', 'subscriptions', 'surveys', 'tickets']
        .map((e) => `chk_${e}`)
        .sort(),
    );
    expect(local).toEqual(expect.arrayContaining(['stg_orders', 'stg_customers', 'fct_customer_period']));
    expect(global).toEqual(
      expect.arrayContaining([
        'quarantine',
        'int_health_features',
        'bgnbd_scores',
        'health_scores',
        'churn_summary',
      ]),
    );
    expect(new Set([...checked, ...local, ...global]).size).toBe(
      checked.length + local.length + global.length,
    );
  });

  it('refuses a local model that reads a global one, and a global model that reads raw rows', async () => {
    const models = await loadModels();
    const real = modelCatalog();
    const marked = (name: string, shard: 'local' | 'global') => ({
      model: (n: string) => {
        const meta = real.model(n);
        return meta && n === name ? { ...meta, shard } : meta;
      },
    });
    await expect(planShards(models, marked('int_health_features', 'local'))).rejects.toThrow(
      /model int_health_features \(sql\/metrics\/int_health_features.sql\) is shard: local but reads [a-z_]+, which is built in the merge .*: mark [a-z_]+ shard: local if its rows are per customer, or make int_health_features global/,
    );
    await expect(planShards(models, marked('chk_orders', 'global'))).rejects.toThrow(
      /model chk_orders \(sql\/staging\/chk_orders.sql\) reads raw_orders, which a merge holds only as row provenance/,
    );
  });

  it('refuses a local table with rows of another shard or without customer_id', async () => {
    const db = await Db.open();
    try {
      await createShardMacro(db);
      const ids = ['C1', 'C2', 'C3', 'C4', 'C5', 'C6'];
      const mine = ids.filter((id) => shardOf(id, 2) === 1);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.length).toBeLessThan(ids.length);
      await db.run(`create table t as select unnest([${ids.map(sqlString).join(', ')}]) as customer_id`);
      await expect(assertShardRows(db, 't', 'sql/facts/t.sql', { index: 1, count: 2 })).rejects.toThrow(
        `model t (sql/facts/t.sql) is shard: local but built ${ids.length - mine.length} row(s) of customers of other shards`,
      );
      await keepShardCustomers(db, 't', { index: 1, count: 2 });
      await assertShardRows(db, 't', 'sql/facts/t.sql', { index: 1, count: 2 });
      await db.run('create table u as select 1 as n');
      await expect(assertShardRows(db, 'u', 'sql/facts/u.sql', { index: 0, count: 2 })).rejects.toThrow(
        /has no customer_id column/,
      );
    } finally {
      db.close();
    }
  });

  it('deduplicates on the keys the staging SQL partitions by, and reads customer_id as the filter does', () => {
    for (const file of readdirSync(join(SQL, 'staging')).filter((f) => /^chk_.*\.sql$/.test(f))) {
      const entity = file.slice(4, -4) as keyof typeof DEDUPLICATION_KEYS;
      const sql = readFileSync(join(SQL, 'staging', file), 'utf8');
      const partitions = [...sql.matchAll(/duplicate_key_checked\(row_checked, '([a-z_]+)'\)/g)].map(
        (m) => m[1],
      );
      const key = DEDUPLICATION_KEYS[entity];
      if (entity === 'customers') expect(partitions).toEqual(['customer_id']);
      else expect(partitions, file).toEqual(key ? [key] : []);
      if (key) expect(sql, file).toContain(`clean_text(source.${key}) as ${key}`);
      expect(sql, file).toContain('clean_text(source.customer_id)');
    }
  });
});

interface PublishedManifest {
  tables: Record<string, { rows: number }>;
  quarantine: unknown;
  reconciliation: unknown;
  checks: { check: string; target: string; status: string }[];
}

function manifest(out: string): PublishedManifest {
  return JSON.parse(readFileSync(join(out, 'current', '_manifest.json'), 'utf8')) as PublishedManifest;
}

describe('the sample as 1, 2 and 4 shards in separate processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-shards-'));
  const config = (name: string) => join(dir, `${name}.yaml`);
  const out = (name: string) => join(dir, `out-${name}`);
  let asOf = '';
  let db: Db;
  let planted: { a: string; b: string };

  const ok = (exit: Exit, what: string) => expect(exit.code, `${what}: ${reason(exit)}`).toBe(0);
  const shard = (name: string, args: string[], env: Record<string, string> = {}) =>
    churn(['-c', config(name), 'run', '--as-of', asOf, ...args], env);
  const merge = (name: string, count: number) =>
    churn(['-c', config(name), 'merge', '--as-of', asOf, '--shards', String(count)]);

  /** Rows whose checks need rows of another shard: duplicate keys across customers, e-mail-only events. */
  function plantCrossShardRows(data: string): { a: string; b: string } {
    const customers = readFileSync(join(data, 'customers.csv'), 'utf8').trim().split('\n').slice(1);
    const rows = customers.map((line) => line.split(','));
    // a in shard 1 of 2 and 1 or 3 of 4, b in shard 0 of 2 and 0 or 2 of 4: they differ in every split.
    const a = rows.find((r) => r[0] && r[1] && shardOf(r[0], 4) % 2 === 1);
    const b = rows.find((r) => r[0] && shardOf(r[0], 4) % 2 === 0);
    if (!a?.[0] || !a[1] || !b?.[0]) throw new Error('the sample has no customers to plant rows for');
    const [idA, emailA, idB] = [a[0], a[1], b[0]];
    const ordersFile = join(data, 'orders.csv.gz');
    const orders = gunzipSync(readFileSync(ordersFile)).toString('utf8');
    const moreOrders = [
      // the same order_id for two customers: b's row, the later one, is the duplicate
      `O90000001,${idA},2026-05-10 10:00:00,50.00,completed,EUR`,
      `O90000001,${idB},2026-05-11 10:00:00,60.00,completed,EUR`,
      // a's row is rejected (no such day), so b's is the first good one and no duplicate
      `O90000002,${idA},2026-02-30 10:00:00,20.00,completed,EUR`,
      `O90000002,${idB},2026-05-13 10:00:00,30.00,completed,EUR`,
      // no customer
      'O90000003,,2026-05-14 10:00:00,10.00,completed,EUR',
    ];
    writeFileSync(ordersFile, gzipSync(`${orders.replace(/\n?$/, '\n')}${moreOrders.join('\n')}\n`));
    const surveysFile = join(data, 'surveys.csv');
    writeFileSync(
      surveysFile,
      `${readFileSync(surveysFile, 'utf8')}R9000001,${idA},2026-05-11 12:00:00,nps,9,\nR9000001,${idB},2026-05-12 12:00:00,nps,3,\n`,
    );
    const eventsFile = join(data, 'email_events.ndjson');
    const events = [
      // by address only (upper case): a's, in a's shard
      {
        customer_id: null,
        email: ` ${emailA.toUpperCase()} `,
        occurred_at: '2026-06-01 10:00:00',
        event_type: 'open',
        campaign_id: 'planted',
      },
      {
        customer_id: null,
        email: 'nobody-known@example.com',
        occurred_at: '2026-06-01 10:00:00',
        event_type: 'open',
        campaign_id: 'planted',
      },
      {
        customer_id: null,
        email: null,
        occurred_at: '2026-06-01 10:00:00',
        event_type: 'sent',
        campaign_id: 'planted',
      },
    ];
    writeFileSync(
      eventsFile,
      `${readFileSync(eventsFile, 'utf8').replace(/\n?$/, '\n')}${events.map((e) => JSON.stringify(e)).join('\n')}\n`,
    );
    return { a: idA, b: idB };
  }

  beforeAll(async () => {
    const sample = await generateSample({ dir: join(dir, 'data', 'sample'), customers: 300, seed: 7 });
    asOf = sample.asOf;
    planted = plantCrossShardRows(join(dir, 'data', 'sample'));
    const base = readFileSync(DEFAULT_CONFIG_FILE, 'utf8');
    for (const name of ['single', 's1', 's2', 's4']) {
      const text = base
        .replace(/^ {2}path: out$/m, `  path: out-${name}`)
        .replace(/^state_dir: \.churn$/m, `state_dir: .churn-${name}`);
      expect(text).toContain(`out-${name}`);
      expect(text).toContain(`.churn-${name}`);
      writeFileSync(config(name), `${text}\nduckdb:\n  threads: 1\n  memory_limit: 1GB\n`);
    }
    writeFileSync(
      config('s1-weekly'),
      readFileSync(config('s1'), 'utf8').replace(/^period_grain: month$/m, 'period_grain: week'),
    );
    ok(await shard('single', []), 'single-node run');
    db = await Db.open();
  }, 300_000);
  afterAll(() => db?.close());

  it('has the planted rows in the single-node quarantine, so the shards are judged on them', async () => {
    const found = await publishedQuarantine(db, out('single'));
    expect(found).toEqual(
      expect.arrayContaining([
        ...PLANTED_QUARANTINE,
        'email_events customer_id neither customer_id nor email',
      ]),
    );
    // O90000002 of b is the first good row of its key, not a duplicate; the event of a's address is a's.
    expect(found.filter((f) => f.includes('O90000002'))).toEqual([]);
    const health = sqlString(join(out('single'), 'current', 'customer_health', 'part-0.parquet'));
    expect(
      await db.number(
        `select count(*) from read_parquet(${health}) where customer_id in ('${planted.a}', '${planted.b}')`,
      ),
    ).toBe(2);
  });

  it('publishes the single-node tables from one shard (index from JOB_COMPLETION_INDEX)', async () => {
    ok(await shard('s1', ['--shards', '1'], { JOB_COMPLETION_INDEX: '0' }), 'shard 0/1');
    ok(await merge('s1', 1), 'merge of 1 shard');
    expect(await differences(db, out('single'), out('s1'))).toEqual({});
    expect(exportFiles(out('s1'))).toEqual(exportFiles(out('single')));
  });

  it('refuses shards built with another config', async () => {
    const exit = await churn(['-c', config('s1-weekly'), 'merge', '--as-of', asOf, '--shards', '1']);
    expect(exit.code).toBe(1);
    expect(reason(exit)).toMatch(
      /shard 0 was built with another config, model or version than this merge's: re-run/,
    );
  });

  it('publishes the single-node tables from two shards (index from AWS_BATCH_JOB_ARRAY_INDEX)', async () => {
    const shards = await Promise.all(
      [0, 1].map((i) => shard('s2', ['--shards', '2'], { AWS_BATCH_JOB_ARRAY_INDEX: String(i) })),
    );
    for (const [i, exit] of shards.entries()) ok(exit, `shard ${i}/2`);
    ok(await merge('s2', 2), 'merge of 2 shards');
    expect(await differences(db, out('single'), out('s2'))).toEqual({});
    expect(exportFiles(out('s2'))).toEqual(exportFiles(out('single')));
    const [single, merged] = [manifest(out('single')), manifest(out('s2'))];
    expect(Object.fromEntries(Object.entries(merged.tables).map(([t, m]) => [t, m.rows]))).toEqual(
      Object.fromEntries(Object.entries(single.tables).map(([t, m]) => [t, m.rows])),
    );
    expect(merged.quarantine).toEqual(single.quarantine);
    expect(merged.reconciliation).toEqual(single.reconciliation);
    expect(merged.checks.map((c) => `${c.check} ${c.target} ${c.status}`)).toEqual(
      single.checks.map((c) => `${c.check} ${c.target} ${c.status}`),
    );
    const ledger = readFileSync(join(out('s2'), '_state', 'ledger.jsonl'), 'utf8');
    expect(ledger).toContain('"trigger":"merge"');
  });

  it('publishes nothing while a shard is missing or was killed, and the single-node tables once it is re-run', async () => {
    const first = await Promise.all([0, 1, 2].map((i) => shard('s4', ['--shard', `${i}/4`])));
    for (const [i, exit] of first.entries()) ok(exit, `shard ${i}/4`);
    const missing = await merge('s4', 4);
    expect(missing.code).toBe(1);
    expect(reason(missing)).toMatch(
      /^churn: shard 3 of 4 as of \d{4}-\d{2}-\d{2} has not finished \(no _SUCCESS in .*shard=3\), so nothing was merged or published: run churn run --as-of .* --shard 3\/4/,
    );
    expect(existsSync(join(out('s4'), 'current'))).toBe(false);

    // Killed with every file written, before its _SUCCESS.
    const stop = killAt('shard-commit');
    const child = await churn(['-c', config('s4'), 'run', '--as-of', asOf, '--shard', '3/4'], stop.env);
    expect(child.signal, child.stderr.slice(-2000)).toBe('SIGKILL');
    expect(existsSync(stop.marker)).toBe(true);
    const killed = await merge('s4', 4);
    expect(killed.code).toBe(1);
    expect(reason(killed)).toContain('shard 3 of 4');
    expect(existsSync(join(out('s4'), 'current'))).toBe(false);
    expect(existsSync(join(out('s4'), 'runs'))).toBe(false);

    // A merge started before the shard is re-run waits for it (--wait-for-shards).
    const waiting = churn([
      '-c',
      config('s4'),
      'merge',
      '--as-of',
      asOf,
      '--shards',
      '4',
      '--wait-for-shards',
      '300',
    ]);
    ok(await shard('s4', ['--shard', '3/4']), 'shard 3/4 re-run');
    const shardsDir = join(out('s4'), '_shards', `as_of=${asOf}`);
    expect(readdirSync(shardsDir).sort()).toEqual(['shard=0', 'shard=1', 'shard=2', 'shard=3']);
    const merged = await waiting;
    ok(merged, 'merge of 4 shards, waiting for shard 3');
    expect(merged.stderr).toContain('waiting for shards to finish');
    expect(await differences(db, out('single'), out('s4'))).toEqual({});
    expect(exportFiles(out('s4'))).toEqual(exportFiles(out('single')));
    expect(manifest(out('s4')).reconciliation).toEqual(manifest(out('single')).reconciliation);
  }, 400_000);
});
