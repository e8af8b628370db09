// S3 source and sink against a real s3rver over HTTP on 127.0.0.1 (no mocked clients).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outputSchema, type S3SourceConfig, sourceSchema } from '../config/schema.js';
import type { Logger } from '../pipelines/base/log.js';
import { listObjects } from '../pipelines/base/s3client.js';
import { type S3OutputConfig, S3Sink } from '../pipelines/sinks/s3.js';
import { SinkError, type StagedRun } from '../pipelines/sinks/sink.js';
import { matchesGlob, S3Source } from '../pipelines/sources/s3.js';
import { type SourceContext, SourceError } from '../pipelines/sources/source.js';
import { stopAtStep } from './support/events.js';
import { type S3rverHandle, s3rverClient, startS3rver, stubS3rverEnv } from './support/s3rver.js';

const SRC = 'src-bucket';
const OUT = 'out-bucket';
const FAST_RETRY = { maxAttempts: 2, objectRetries: 1, minRetryDelayMs: 20 };

let server: S3rverHandle;
let client: S3Client;
let scratch: string;

beforeAll(async () => {
  stubS3rverEnv();
  scratch = await mkdtemp(path.join(tmpdir(), 's3-test-'));
  server = await startS3rver({ buckets: [SRC, OUT] });
  client = rawClient(server);
}, 30_000);

afterAll(async () => {
  client?.destroy();
  await server?.stop();
  await rm(scratch, { recursive: true, force: true });
  if (server) await rm(server.directory, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

function rawClient(s: S3rverHandle): S3Client {
  return s3rverClient(s, 2);
}

function sourceConfig(fields: Record<string, unknown>): S3SourceConfig {
  const parsed = sourceSchema.parse({
    type: 's3',
    bucket: SRC,
    endpoint: server.endpoint,
    force_path_style: true,
    ...fields,
  });
  if (parsed.type !== 's3') throw new Error('expected an s3 source');
  return parsed;
}

function outputConfig(fields: Record<string, unknown> = {}): S3OutputConfig {
  const parsed = outputSchema.parse({
    type: 's3',
    bucket: OUT,
    prefix: 'churn',
    endpoint: server.endpoint,
    force_path_style: true,
    ...fields,
  });
  if (parsed.type !== 's3') throw new Error('expected an s3 output');
  return parsed;
}

interface Captured {
  log: Logger;
  lines: Array<Record<string, unknown>>;
}

/** A real pino logger whose JSON lines are kept. */
function captureLogger(): Captured {
  const lines: Array<Record<string, unknown>> = [];
  const stream = {
    write(text: string) {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
    },
  };
  return { log: pino({ level: 'debug', base: undefined }, stream), lines };
}

async function sourceContext(log: Logger): Promise<SourceContext> {
  const landingDir = await mkdtemp(path.join(scratch, 'landing-'));
  return { entity: 'orders', landingDir, baseDir: scratch, log };
}

async function put(key: string, body: string | Buffer, bucket = SRC): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

async function getText(key: string, bucket = OUT): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return response.Body!.transformToString();
}

async function exists(key: string, bucket = OUT): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function keysUnder(prefix: string, bucket = OUT, c: S3Client = client): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of listObjects(c, bucket, prefix)) keys.push(object.Key!);
  return keys.sort();
}

function landedLog(lines: Array<Record<string, unknown>>): Record<string, unknown> {
  const found = lines.filter((l) => l.msg === 's3 source landed').at(-1);
  if (!found) throw new Error('no "s3 source landed" log line');
  return found;
}

async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next]!;
        next += 1;
        await work(item);
      }
    }),
  );
}

describe('glob matching', () => {
  it('glob matching (picomatch) agrees with path.matchesGlob', () => {
    const cases: Array<[string, string]> = [
      ['orders.csv', '**'],
      ['a/b/orders.csv', '**'],
      ['.hidden.csv', '*.csv'],
      ['a/.hidden.csv', '**/*.csv'],
      ['x.csv', '**/*.csv'],
      ['a/b/x.csv', '**/*.csv'],
      ['a/b/x.csv', '*.csv'],
      ['a/x.csv', 'a/**/x.csv'],
      ['a/b/c/x.csv', 'a/**/x.csv'],
      ['2024-01-01/orders.csv.gz', '*/orders.csv.gz'],
      ['2024-01-01/orders.csv', '*/orders.csv.gz'],
      ['a.csv', '{a,b}.csv'],
      ['c.csv', '{a,b}.csv'],
      ['part-1.parquet', 'part-[0-9].parquet'],
      ['part-x.parquet', 'part-[!0-9].parquet'],
      ['orders (1).csv', 'orders (1).csv'],
      ['a+b.csv', 'a+b.csv'],
      ['orders_2024.ndjson', 'orders_????.ndjson'],
    ];
    for (const [key, glob] of cases) {
      expect(matchesGlob(key, glob)).toBe(path.matchesGlob(key, glob));
    }
  });
});

describe('S3Source', () => {
  it('lists every page (>1000 keys), downloads only matching keys, and a second night downloads nothing', async () => {
    const keys = Array.from(
      { length: 1205 },
      (_, i) => `exports/orders/day=${i % 7}/part-${String(i).padStart(5, '0')}.csv`,
    );
    await runLimited(keys, 24, (key) => put(key, `order_id\n${key}\n`));
    await put('exports/orders/README.txt', 'not data');
    await put('exports/other/part-0.csv', 'outside the prefix');

    const source = new S3Source(sourceConfig({ prefix: 'exports/orders/', glob: '**/*.csv' }), {
      retry: FAST_RETRY,
    });
    const first = captureLogger();
    const ctx = await sourceContext(first.log);
    const landed = await source.land(ctx);

    expect(landed.format).toBe('csv');
    expect(landed.csv?.header).toBe(true);
    expect(landed.files).toHaveLength(1205);
    const sortedKeys = [...keys].sort();
    expect(landed.files.map((f) => f.origin)).toEqual(sortedKeys.map((k) => `s3://${SRC}/${k}`));
    for (const file of [landed.files[0]!, landed.files[700]!, landed.files[1204]!]) {
      const key = file.origin.slice(`s3://${SRC}/`.length);
      expect(await readFile(file.path, 'utf8')).toBe(`order_id\n${key}\n`);
      expect(file.path.endsWith('.csv')).toBe(true);
    }
    expect(landedLog(first.lines)).toMatchObject({
      listed: 1206,
      matched: 1205,
      downloaded: 1205,
      reused: 0,
    });
    // Counts only, never contents.
    expect(JSON.stringify(first.lines)).not.toContain('order_id');

    const mtimes = await Promise.all(
      landed.files.slice(0, 20).map(async (f) => (await stat(f.path)).mtimeMs),
    );
    const second = captureLogger();
    const again = await source.land({ ...ctx, log: second.log });
    expect(again.files).toEqual(landed.files);
    expect(landedLog(second.lines)).toMatchObject({ downloaded: 0, reused: 1205, removed: 0, bytes: 0 });
    const mtimesAfter = await Promise.all(
      again.files.slice(0, 20).map(async (f) => (await stat(f.path)).mtimeMs),
    );
    expect(mtimesAfter).toEqual(mtimes);
    await source.close();
  }, 120_000);

  it('re-downloads a changed object, lands a new one, and removes a deleted one', async () => {
    await put('mirror/a.csv', 'id\n1\n');
    await put('mirror/b.csv', 'id\n2\n');
    await put('mirror/c.csv', 'id\n3\n');
    const source = new S3Source(sourceConfig({ prefix: 'mirror', glob: '*.csv' }), { retry: FAST_RETRY });
    const ctx = await sourceContext(captureLogger().log);
    const first = await source.land(ctx);
    expect(first.files.map((f) => f.origin)).toEqual(
      ['a', 'b', 'c'].map((k) => `s3://${SRC}/mirror/${k}.csv`),
    );
    const cPath = first.files[2]!.path;

    await put('mirror/b.csv', 'id\n2\n22\n'); // changed (new ETag and size)
    await client.send(new DeleteObjectCommand({ Bucket: SRC, Key: 'mirror/c.csv' }));
    await put('mirror/d.csv', 'id\n4\n');
    const captured = captureLogger();
    const second = await source.land({ ...ctx, log: captured.log });

    expect(second.files.map((f) => f.origin)).toEqual(
      ['a', 'b', 'd'].map((k) => `s3://${SRC}/mirror/${k}.csv`),
    );
    expect(second.files[1]!.path).toBe(first.files[1]!.path); // replaced in place
    expect(await readFile(second.files[1]!.path, 'utf8')).toBe('id\n2\n22\n');
    expect(await readFile(second.files[2]!.path, 'utf8')).toBe('id\n4\n');
    await expect(stat(cPath)).rejects.toThrow();
    expect(landedLog(captured.lines)).toMatchObject({ downloaded: 2, reused: 1, removed: 1 });
    // The landing folder holds exactly the landed files (no temp files, nothing of deleted keys).
    const onDisk = (await readdir(path.dirname(second.files[0]!.path))).sort();
    expect(onDisk).toEqual(second.files.map((f) => path.basename(f.path)).sort());
  });

  it('keeps .gz objects gzipped and fails on a corrupted gzip naming the object', async () => {
    const text = Array.from({ length: 2000 }, (_, i) => `${i},customer-${i},${i * 3}.50`).join('\n');
    const good = gzipSync(`order_id,customer_id,amount\n${text}\n`);
    await put('gz/good.csv.gz', good);
    const source = new S3Source(sourceConfig({ prefix: 'gz/', glob: '*.csv.gz' }), { retry: FAST_RETRY });
    const ctx = await sourceContext(captureLogger().log);
    const landed = await source.land(ctx);
    expect(landed.files).toHaveLength(1);
    expect(landed.files[0]!.path.endsWith('.csv.gz')).toBe(true);
    expect((await readFile(landed.files[0]!.path)).equals(good)).toBe(true);

    await put('gz/truncated.csv.gz', good.subarray(0, Math.floor(good.length / 2)));
    const error = await source.land(ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toContain(`s3://${SRC}/gz/truncated.csv.gz`);
    expect((error as Error).message).toMatch(/not a valid gzip file.*re-export it/s);
    await client.send(new DeleteObjectCommand({ Bucket: SRC, Key: 'gz/truncated.csv.gz' }));

    await put('gz/plain.csv.gz', 'order_id\n1\n');
    await expect(source.land(ctx)).rejects.toThrow(`s3://${SRC}/gz/plain.csv.gz is not a valid gzip file`);
    // The failed objects left nothing behind; the good one stays landed.
    const onDisk = await readdir(path.dirname(landed.files[0]!.path));
    expect(onDisk).toEqual([path.basename(landed.files[0]!.path)]);
  });

  it('skips an object deleted between listing and download, with a warning', async () => {
    for (const name of ['v1', 'v2', 'v3']) await put(`vanish/${name}.ndjson`, `{"id":"${name}"}\n`);
    const source = new S3Source(sourceConfig({ prefix: 'vanish', format: 'ndjson' }), { retry: FAST_RETRY });
    const captured = captureLogger();
    const ctx = await sourceContext(captured.log);
    const listing = await source.list(ctx);
    expect(listing.objects.map((o) => o.key)).toEqual([
      'vanish/v1.ndjson',
      'vanish/v2.ndjson',
      'vanish/v3.ndjson',
    ]);
    await client.send(new DeleteObjectCommand({ Bucket: SRC, Key: 'vanish/v2.ndjson' }));

    const landed = await source.landListed(ctx, listing);
    expect(landed.format).toBe('ndjson');
    expect(landed.files.map((f) => f.origin)).toEqual([
      `s3://${SRC}/vanish/v1.ndjson`,
      `s3://${SRC}/vanish/v3.ndjson`,
    ]);
    expect(captured.lines).toContainEqual(
      expect.objectContaining({ level: 40, object: `s3://${SRC}/vanish/v2.ndjson` }),
    );
    expect(landedLog(captured.lines)).toMatchObject({ downloaded: 2, vanished: 1 });
  });

  it('streams a 64 MB object to disk chunk by chunk', async () => {
    // Memory is measured by `npm run bench`, not here: this test checks the behaviour that bounds it, i.e. the
    // landed file grows while the body is still arriving instead of appearing whole at the end.
    const size = 64 * 1024 * 1024;
    const block = randomBytes(64 * 1024);
    const hash = createHash('sha256');
    let sent = 0;
    const body = Readable.from(
      (function* () {
        while (sent < size) {
          sent += block.length;
          hash.update(block);
          yield block;
        }
      })(),
    );
    await new Upload({ client, params: { Bucket: SRC, Key: 'big/orders.parquet', Body: body } }).done();
    const expected = hash.digest('hex');

    const source = new S3Source(sourceConfig({ prefix: 'big', format: 'parquet' }), { retry: FAST_RETRY });
    const ctx = await sourceContext(captureLogger().log);
    let sawPartialFile = false;
    const objectsDir = path.join(ctx.landingDir, 'objects');
    const sampler = setInterval(() => {
      readdir(objectsDir)
        .then(async (names) => {
          for (const name of names.filter((n) => n.endsWith('.part'))) {
            const partial = await stat(path.join(objectsDir, name)).catch(() => undefined);
            if (partial && partial.size > 0 && partial.size < size) sawPartialFile = true;
          }
        })
        .catch(() => undefined);
    }, 2);
    const landed = await source.land(ctx);
    clearInterval(sampler);

    const file = landed.files[0]!.path;
    expect((await stat(file)).size).toBe(size);
    const digest = createHash('sha256');
    for await (const chunk of createReadStream(file)) digest.update(chunk as Buffer);
    expect(digest.digest('hex')).toBe(expected);
    // The body went to a temp file chunk by chunk (seen growing), not collected in memory first.
    expect(sawPartialFile).toBe(true);
    // A multipart object (s3rver's ETag format differs from S3's) is still recognised as unchanged.
    const captured = captureLogger();
    await source.land({ ...ctx, log: captured.log });
    expect(landedLog(captured.lines)).toMatchObject({ downloaded: 0, reused: 1 });
  }, 60_000);

  it('check() passes for a reachable prefix and names bucket, prefix and cause otherwise', async () => {
    const ctx = await sourceContext(captureLogger().log);
    await new S3Source(sourceConfig({ prefix: 'mirror/' })).check(ctx);

    const missing = new S3Source(sourceConfig({ bucket: 'no-such-bucket', prefix: 'x' }), {
      retry: FAST_RETRY,
    });
    await expect(missing.check(ctx)).rejects.toThrow(
      /orders: s3:\/\/no-such-bucket\/: the bucket does not exist/,
    );

    const empty = new S3Source(sourceConfig({ prefix: 'nothing-here' }), { retry: FAST_RETRY });
    await expect(empty.check(ctx)).rejects.toThrow(`no objects under s3://${SRC}/nothing-here/`);

    vi.stubEnv('AWS_ACCESS_KEY_ID', 'WRONG-KEY');
    try {
      const badKeys = new S3Source(sourceConfig({ prefix: 'mirror/' }), { retry: FAST_RETRY });
      const error = await badKeys.check(ctx).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SourceError);
      expect((error as Error).message).toContain(`s3://${SRC}/`);
      expect((error as Error).message).toMatch(/credentials are missing, invalid or expired/);
      await expect(badKeys.land(ctx)).rejects.toThrow(
        /cannot list s3:\/\/src-bucket\/mirror\/: AWS credentials/,
      );
    } finally {
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Sink

interface StagedTable {
  [file: string]: string | Buffer;
}

/** Writes a staged run folder: <dir>/<table>/<file> and a _manifest.json listing every file with its sha256. */
async function stageRun(
  asOf: string,
  runId: string,
  tables: Record<string, StagedTable>,
): Promise<StagedRun> {
  const stagedDir = await mkdtemp(path.join(scratch, `staged-${asOf}-`));
  const files: Array<{ table: string; file: string; sha256: string }> = [];
  for (const [table, content] of Object.entries(tables)) {
    await mkdir(path.join(stagedDir, table));
    for (const [file, body] of Object.entries(content)) {
      await writeFile(path.join(stagedDir, table, file), body);
      files.push({ table, file, sha256: createHash('sha256').update(body).digest('hex') });
    }
  }
  await writeFile(path.join(stagedDir, '_manifest.json'), JSON.stringify({ runId, asOf, files }));
  return { asOf, runId, stagedDir, tables: Object.keys(tables) };
}

/** The invariant readers rely on: when current/_SUCCESS exists, current/ holds exactly its manifest's files. */
async function assertCurrentConsistent(c: S3Client, prefix = 'churn/'): Promise<boolean> {
  const keys = await keysUnder(`${prefix}current/`, OUT, c);
  if (!keys.includes(`${prefix}current/_SUCCESS`)) return false;
  const read = async (key: string): Promise<Buffer> => {
    const response = await c.send(new GetObjectCommand({ Bucket: OUT, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  };
  const manifest = JSON.parse((await read(`${prefix}current/_manifest.json`)).toString()) as {
    files: Array<{ table: string; file: string; sha256: string }>;
  };
  const expected = manifest.files.map((f) => `${prefix}current/${f.table}/${f.file}`);
  expect(keys).toEqual([...expected, `${prefix}current/_SUCCESS`, `${prefix}current/_manifest.json`].sort());
  for (const f of manifest.files) {
    const body = await read(`${prefix}current/${f.table}/${f.file}`);
    expect(createHash('sha256').update(body).digest('hex')).toBe(f.sha256);
  }
  return true;
}

describe('S3Sink', () => {
  const big = randomBytes(11 * 1024 * 1024); // > one 5 MiB part: a real multipart upload

  it('publishes history, runs/ markers and current/; a second run replaces current/ and removes stale keys', async () => {
    const sink = new S3Sink(outputConfig(), { retry: FAST_RETRY, partSize: 5 * 1024 * 1024 });
    /** Stages and publishes a run: current/ then holds exactly the files of that run's manifest. */
    const publish = async (asOf: string, runId: string, tables: Record<string, StagedTable>) => {
      await sink.publish(await stageRun(asOf, runId, tables), captureLogger().log);
      expect(await getText('churn/current/_manifest.json')).toContain(`"runId":"${runId}"`);
      expect(await assertCurrentConsistent(client)).toBe(true);
    };
    expect(sink.location).toBe(`s3://${OUT}/churn`);
    await sink.check();
    expect(await keysUnder('churn/_state/')).toEqual([]);

    await publish('2024-01-01', 'run-1', {
      customer_health: { 'part-0.parquet': big },
      reactivation_audience: { 'part-0.parquet': 'audience-parquet-1', 'audience.csv': 'email\n' },
    });
    expect(await keysUnder('churn/')).toEqual([
      'churn/current/_SUCCESS',
      'churn/current/_manifest.json',
      'churn/current/customer_health/part-0.parquet',
      'churn/current/reactivation_audience/audience.csv',
      'churn/current/reactivation_audience/part-0.parquet',
      'churn/customer_health/as_of=2024-01-01/part-0.parquet',
      'churn/reactivation_audience/as_of=2024-01-01/audience.csv',
      'churn/reactivation_audience/as_of=2024-01-01/part-0.parquet',
      'churn/runs/as_of=2024-01-01/_SUCCESS',
      'churn/runs/as_of=2024-01-01/_manifest.json',
    ]);
    expect(await getText('churn/runs/as_of=2024-01-01/_manifest.json')).toContain('"runId":"run-1"');
    expect(await getText('churn/runs/as_of=2024-01-01/_SUCCESS')).toBe('');
    const head = await client.send(
      new HeadObjectCommand({ Bucket: OUT, Key: 'churn/customer_health/as_of=2024-01-01/part-0.parquet' }),
    );
    expect(head.ContentLength).toBe(big.length);
    expect(head.ContentType).toBe('application/vnd.apache.parquet');

    // Run 2: reactivation_audience is gone from the run, customer_health changed.
    await publish('2024-01-02', 'run-2', { customer_health: { 'part-0.parquet': 'health-2' } });
    expect(await keysUnder('churn/current/')).toEqual([
      'churn/current/_SUCCESS',
      'churn/current/_manifest.json',
      'churn/current/customer_health/part-0.parquet',
    ]);
    expect(await getText('churn/current/customer_health/part-0.parquet')).toBe('health-2');
    // History of 2024-01-01 is untouched.
    expect(await exists('churn/reactivation_audience/as_of=2024-01-01/audience.csv')).toBe(true);
    expect(await exists('churn/runs/as_of=2024-01-01/_SUCCESS')).toBe(true);
    expect(await sink.isPublished('2024-01-01')).toBe(true);
    expect(await sink.isPublished('2024-01-05')).toBe(false);

    // Re-publishing 2024-01-02 with another file set replaces that partition exactly.
    await publish('2024-01-02', 'run-2b', {
      customer_health: { 'part-0.parquet': 'health-2b', 'part-1.parquet': 'health-2b-1' },
    });
    expect(await keysUnder('churn/customer_health/as_of=2024-01-02/')).toEqual([
      'churn/customer_health/as_of=2024-01-02/part-0.parquet',
      'churn/customer_health/as_of=2024-01-02/part-1.parquet',
    ]);
    expect(await getText('churn/runs/as_of=2024-01-02/_manifest.json')).toContain('"runId":"run-2b"');
    expect(await keysUnder('churn/_staging/')).toEqual([]);

    // history(): partitions in [from, to) that have runs/as_of=D/_SUCCESS only.
    await put('churn/customer_health/as_of=2024-01-03/part-0.parquet', 'unfinished', OUT); // no _SUCCESS
    const dir = await mkdtemp(path.join(scratch, 'history-'));
    const all = await sink.history('customer_health', '2024-01-01', '2024-01-31', dir);
    expect(all.map((h) => [h.asOf, path.relative(dir, h.path)])).toEqual([
      ['2024-01-01', path.join('customer_health', 'as_of=2024-01-01', 'part-0.parquet')],
      ['2024-01-02', path.join('customer_health', 'as_of=2024-01-02', 'part-0.parquet')],
      ['2024-01-02', path.join('customer_health', 'as_of=2024-01-02', 'part-1.parquet')],
    ]);
    expect((await readFile(all[0]!.path)).equals(big)).toBe(true); // Buffer.equals: toEqual is slow on 11 MB
    expect(await readFile(all[1]!.path, 'utf8')).toBe('health-2b');
    const ranged = await sink.history('customer_health', '2024-01-02', '2024-01-03', dir);
    expect(ranged.map((h) => h.asOf)).toEqual(['2024-01-02', '2024-01-02']);
    expect(await sink.history('customer_health', '2023-01-01', '2024-01-01', dir)).toEqual([]);
    expect(await sink.history('no_such_table', '2024-01-01', '2024-02-01', dir)).toEqual([]);
    await sink.close();
  }, 60_000);

  it('re-publishes a date (an older one too) without ever removing a _SUCCESS when the files are unchanged', async () => {
    const cfg = outputConfig({ prefix: 'rerun' });
    const deleted: string[] = [];
    const sinkClient = rawClient(server);
    sinkClient.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectCommand' || context.commandName === 'DeleteObjectsCommand') {
          const input = args.input as { Key?: string; Delete?: { Objects?: { Key?: string }[] } };
          deleted.push(
            ...[input.Key, ...(input.Delete?.Objects ?? []).map((o) => o.Key)].filter((k) => k !== undefined),
          );
        }
        return next(args);
      },
      { step: 'initialize', name: 'recordDeletes' },
    );
    const sink = new S3Sink(cfg, { client: sinkClient, retry: FAST_RETRY });
    const tables = {
      customer_health: { 'part-0.parquet': 'h' },
      cohort_retention: { 'part-0.parquet': 'c' },
    };
    await sink.publish(await stageRun('2024-05-01', 'a', tables), captureLogger().log);
    await sink.publish(await stageRun('2024-05-02', 'b', tables), captureLogger().log);
    deleted.length = 0;
    // A re-run of the newest date, then of an older one, with byte-identical files.
    await sink.publish(await stageRun('2024-05-02', 'b2', tables), captureLogger().log);
    await sink.publish(await stageRun('2024-05-01', 'a2', tables), captureLogger().log);
    expect(deleted.filter((k) => !k.startsWith('rerun/_staging/'))).toEqual([]);
    expect(await getText('rerun/runs/as_of=2024-05-02/_manifest.json')).toContain('"runId":"b2"');
    expect(await getText('rerun/runs/as_of=2024-05-01/_manifest.json')).toContain('"runId":"a2"');
    // current/ stays at the newest date: the re-run of 2024-05-01 leaves it alone.
    expect(await getText('rerun/current/_manifest.json')).toContain('"runId":"b2"');
    expect(await assertCurrentConsistent(client, 'rerun/')).toBe(true);
    expect(await keysUnder('rerun/_staging/')).toEqual([]);
    sinkClient.destroy();
  });

  it('a publish stopped before its commit changes nothing published; recover() deletes its upload', async () => {
    const sink = new S3Sink(outputConfig({ prefix: 'uncommitted' }), { retry: FAST_RETRY });
    await sink.publish(
      await stageRun('2024-02-01', 'ok', { customer_health: { 'part-0.parquet': 'ok-1' } }),
      captureLogger().log,
    );
    const before = await keysUnder('uncommitted/');

    // A staged run without its manifest: refused before anything is uploaded.
    const broken = await stageRun('2024-02-01', 'broken', { customer_health: { 'part-0.parquet': 'x' } });
    await rm(path.join(broken.stagedDir, '_manifest.json'));
    await expect(sink.publish(broken, captureLogger().log)).rejects.toThrow(SinkError);
    expect(await keysUnder('uncommitted/')).toEqual(before);

    // Stopped (as a kill would) once the new version is uploaded, before the commit.
    const run = await stageRun('2024-02-01', 'stopped', { customer_health: { 'part-0.parquet': 'new' } });
    run.events = stopAtStep('publish-version');
    await expect(sink.publish(run, captureLogger().log)).rejects.toThrow('stopped');
    expect(await keysUnder('uncommitted/_staging/')).toHaveLength(2);
    expect((await keysUnder('uncommitted/')).filter((k) => !k.includes('/_staging/'))).toEqual(before);
    expect(await getText('uncommitted/customer_health/as_of=2024-02-01/part-0.parquet')).toBe('ok-1');
    const recovered = captureLogger();
    await sink.recover(recovered.log);
    expect(recovered.lines.map((l) => l.msg)).toContain(
      'removed the upload of a run that was stopped before it published',
    );
    expect(await keysUnder('uncommitted/')).toEqual(before);
    await sink.close();
  });

  it('a publish stopped inside its swap is finished by recover(): old or new keys, never a _SUCCESS beside a mix', async () => {
    const sink = new S3Sink(outputConfig({ prefix: 'swap' }), { retry: FAST_RETRY, concurrency: 1 });
    await sink.publish(
      await stageRun('2024-02-01', 'old', {
        a_table: { 'part-0.parquet': 'a-1' },
        z_table: { 'part-0.parquet': 'z-1' },
        gone_table: { 'part-0.parquet': 'g-1' },
      }),
      captureLogger().log,
    );
    const run = await stageRun('2024-02-01', 'new', {
      a_table: { 'part-0.parquet': 'a-2' },
      z_table: { 'part-0.parquet': 'z-2' },
    });
    const points: string[] = [];
    run.events = stopAtStep('publish-swap', points);
    await expect(sink.publish(run, captureLogger().log)).rejects.toThrow('stopped');
    expect(points).toEqual(['publish-version', 'publish-commit', 'publish-swap']);
    // Inside the window: the marker is off, one table is new, the other still old; current/ is untouched.
    expect(await exists('swap/runs/as_of=2024-02-01/_SUCCESS')).toBe(false);
    expect(await getText('swap/a_table/as_of=2024-02-01/part-0.parquet')).toBe('a-2');
    expect(await getText('swap/z_table/as_of=2024-02-01/part-0.parquet')).toBe('z-1');
    expect(await getText('swap/current/_manifest.json')).toContain('"runId":"old"');
    expect(await assertCurrentConsistent(client, 'swap/')).toBe(true);

    const recovered = captureLogger();
    await sink.recover(recovered.log);
    expect(recovered.lines).toContainEqual(
      expect.objectContaining({ level: 40, runId: 'new', asOf: '2024-02-01', location: `s3://${OUT}/swap` }),
    );
    expect(await exists('swap/runs/as_of=2024-02-01/_SUCCESS')).toBe(true);
    expect(await getText('swap/runs/as_of=2024-02-01/_manifest.json')).toContain('"runId":"new"');
    expect(await getText('swap/z_table/as_of=2024-02-01/part-0.parquet')).toBe('z-2');
    expect(await keysUnder('swap/gone_table/')).toEqual([]);
    expect(await getText('swap/current/_manifest.json')).toContain('"runId":"new"');
    expect(await assertCurrentConsistent(client, 'swap/')).toBe(true);
    expect(await keysUnder('swap/_staging/')).toEqual([]);
    // Nothing left to recover.
    const again = captureLogger();
    await sink.recover(again.log);
    expect(again.lines.filter((l) => l.level === 40)).toEqual([]);
    await sink.close();
  });

  it('a publish stopped while it removes its staged copy is cleaned up by recover(), changing nothing', async () => {
    const sinkClient = rawClient(server);
    let failCommitDelete = true;
    sinkClient.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (
          failCommitDelete &&
          context.commandName === 'DeleteObjectCommand' &&
          key.endsWith('/_COMMITTED')
        ) {
          throw Object.assign(new Error('stopped'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failCommitDelete' },
    );
    const sink = new S3Sink(outputConfig({ prefix: 'cleanup' }), { client: sinkClient, retry: FAST_RETRY });
    await expect(
      sink.publish(
        await stageRun('2024-04-01', 'r1', { customer_health: { 'part-0.parquet': 'h-1' } }),
        captureLogger().log,
      ),
    ).rejects.toThrow(SinkError);
    // Only the commit record is left of the staged copy.
    expect(await keysUnder('cleanup/_staging/')).toEqual(['cleanup/_staging/r1/_COMMITTED']);
    const published = await keysUnder('cleanup/');
    failCommitDelete = false;
    await sink.recover(captureLogger().log);
    expect(await keysUnder('cleanup/')).toEqual(published.filter((k) => !k.includes('/_staging/')));
    expect(await assertCurrentConsistent(client, 'cleanup/')).toBe(true);
    sinkClient.destroy();
  });

  it('a server that dies while current/ is replaced: no current/_SUCCESS beside the mix; recover() finishes it', async () => {
    // A second s3rver of its own, so killing it does not disturb the other tests.
    const own = await startS3rver({ buckets: [OUT] });
    const cfg = outputConfig({ prefix: 'killed', endpoint: own.endpoint });
    let sinkClient = rawClient(own);
    let restarted: S3rverHandle | undefined;
    try {
      await new S3Sink(cfg, { client: sinkClient, retry: FAST_RETRY }).publish(
        await stageRun('2024-03-01', 'first', {
          customer_health: { 'part-0.parquet': 'h-1' },
          cohort_retention: { 'part-0.parquet': 'c-1' },
        }),
        captureLogger().log,
      );
      expect(await assertCurrentConsistent(sinkClient, 'killed/')).toBe(true);

      // Kill the server when the publish copies the second file into current/ (after current/_SUCCESS is gone and
      // one new file is in place).
      let currentCopies = 0;
      sinkClient.middlewareStack.add(
        (next, context) => async (args) => {
          const key = (args.input as { Key?: string }).Key ?? '';
          if (context.commandName === 'CopyObjectCommand' && /^killed\/current\/[^_]/.test(key)) {
            currentCopies += 1;
            if (currentCopies === 2) await own.kill();
          }
          return next(args);
        },
        { step: 'initialize', name: 'killServerMidPublish' },
      );
      const sink = new S3Sink(cfg, { client: sinkClient, retry: FAST_RETRY, concurrency: 1 });
      const run = await stageRun('2024-03-02', 'second', {
        customer_health: { 'part-0.parquet': 'h-2' },
        cohort_retention: { 'part-0.parquet': 'c-2' },
      });
      const error = await sink.publish(run, captureLogger().log).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as Error).message).toMatch(/S3 endpoint unreachable|kept failing/);

      restarted = await startS3rver({ directory: own.directory });
      sinkClient.destroy();
      sinkClient = rawClient(restarted);
      const keys = await keysUnder('killed/current/', OUT, sinkClient);
      expect(keys).not.toContain('killed/current/_SUCCESS');
      // It died half-way: one table is new, the other still old. Exactly why _SUCCESS must be absent.
      const read = async (key: string) =>
        (await sinkClient.send(new GetObjectCommand({ Bucket: OUT, Key: key }))).Body!.transformToString();
      expect(await read('killed/current/cohort_retention/part-0.parquet')).toBe('c-2');
      expect(await read('killed/current/customer_health/part-0.parquet')).toBe('h-1');
      expect(await assertCurrentConsistent(sinkClient, 'killed/')).toBe(false);
      expect(await keysUnder('killed/runs/as_of=2024-03-02/', OUT, sinkClient)).toContain(
        'killed/runs/as_of=2024-03-02/_SUCCESS',
      );

      // The next run's recovery finishes the committed swap from its staged copy.
      const again = new S3Sink(outputConfig({ prefix: 'killed', endpoint: restarted.endpoint }), {
        client: sinkClient,
        retry: FAST_RETRY,
      });
      await again.recover(captureLogger().log);
      expect(await assertCurrentConsistent(sinkClient, 'killed/')).toBe(true);
      expect(await read('killed/current/customer_health/part-0.parquet')).toBe('h-2');
      expect(await keysUnder('killed/_staging/', OUT, sinkClient)).toEqual([]);
    } finally {
      sinkClient.destroy();
      await own.kill();
      await restarted?.stop();
      await rm(own.directory, { recursive: true, force: true });
    }
  }, 60_000);

  it('publishes files below subfolders (exports/) and top-level files, and removes them when a re-run lacks them', async () => {
    const config = outputConfig({ prefix: 'nested' });
    const sink = new S3Sink(config, { retry: FAST_RETRY });
    const stagedDir = await mkdtemp(path.join(scratch, 'staged-nested-'));
    await mkdir(path.join(stagedDir, 'a'));
    await writeFile(path.join(stagedDir, 'a', 'part-0.parquet'), 'a1');
    await mkdir(path.join(stagedDir, 'exports', 'crm_flags'), { recursive: true });
    await writeFile(path.join(stagedDir, 'exports', 'crm_flags', 'crm_flags.csv'), 'c1');
    await writeFile(path.join(stagedDir, 'report.html'), '<p>1</p>');
    await writeFile(path.join(stagedDir, '_manifest.json'), '{"runId":"n1"}');
    await sink.publish(
      { asOf: '2024-03-01', runId: 'n1', stagedDir, tables: ['a', 'exports'], files: ['report.html'] },
      captureLogger().log,
    );
    expect(await keysUnder('nested/')).toEqual([
      'nested/a/as_of=2024-03-01/part-0.parquet',
      'nested/current/_SUCCESS',
      'nested/current/_manifest.json',
      'nested/current/a/part-0.parquet',
      'nested/current/exports/crm_flags/crm_flags.csv',
      'nested/current/report.html',
      'nested/exports/as_of=2024-03-01/crm_flags/crm_flags.csv',
      'nested/runs/as_of=2024-03-01/_SUCCESS',
      'nested/runs/as_of=2024-03-01/_manifest.json',
      'nested/runs/as_of=2024-03-01/report.html',
    ]);
    expect(await getText('nested/exports/as_of=2024-03-01/crm_flags/crm_flags.csv')).toBe('c1');

    const rerun = await stageRun('2024-03-01', 'n2', { a: { 'part-0.parquet': 'a2' } });
    await new S3Sink(config, { retry: FAST_RETRY }).publish(rerun, captureLogger().log);
    expect(await keysUnder('nested/')).toEqual([
      'nested/a/as_of=2024-03-01/part-0.parquet',
      'nested/current/_SUCCESS',
      'nested/current/_manifest.json',
      'nested/current/a/part-0.parquet',
      'nested/runs/as_of=2024-03-01/_SUCCESS',
      'nested/runs/as_of=2024-03-01/_manifest.json',
    ]);
  });

  it('check() names a missing bucket', async () => {
    const sink = new S3Sink(outputConfig({ bucket: 'no-such-output' }), { retry: FAST_RETRY });
    await expect(sink.check()).rejects.toThrow(/s3:\/\/no-such-output\/: the bucket does not exist/);
  });
});
