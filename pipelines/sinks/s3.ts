// The S3 sink: publishes a staged run under `s3://bucket/prefix` in the layout of sink.ts.
//
// Order of a publish (S3 has no atomic rename, so `_SUCCESS` markers carry the guarantees):
//   1. delete runs/as_of=D/_SUCCESS (when D was published before);
//      upload <table>/as_of=D/<file> for every staged file; delete keys of an earlier publish of D that this run
//      does not have; upload runs/as_of=D/_manifest.json, then runs/as_of=D/_SUCCESS.
//   2. delete current/_SUCCESS; upload current/<table>/<file>; delete every other key under current/;
//      upload current/_manifest.json, then current/_SUCCESS.
//
// Guarantees:
// - `runs/as_of=D/_SUCCESS` exists only while every file of partition D (all tables) is complete and belongs to
//   the run described by runs/as_of=D/_manifest.json. history() reads only such partitions.
// - `current/_SUCCESS` is absent for the whole time current/ is being replaced; when it exists, current/ holds
//   exactly the files of the run described by current/_manifest.json.
// - A publish that fails in step 1 leaves current/ (with its _SUCCESS) and every other partition untouched. A
//   publish that fails in step 2 leaves current/ without _SUCCESS (possibly mixing old and new files) until the
//   next successful publish; readers must treat a current/ without _SUCCESS as unavailable, or read the newest
//   partition that has runs/as_of=D/_SUCCESS. A reader that checked _SUCCESS before a publish started and is
//   still reading while it replaces current/ can see a mix: check _SUCCESS again after reading, or read history.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { OutputConfig } from '../../config/schema.js';
import { type Logger, silentLogger } from '../log.js';
import {
  clientForConfig,
  DEFAULT_RETRY_POLICY,
  describeS3Error,
  downloadObject,
  errorCode,
  isGenericForbidden,
  isNotFound,
  listObjects,
  normalizePrefix,
  type RetryPolicy,
  s3Url,
  withRetry,
} from '../s3client.js';
import { type Sink, SinkError, type StagedRun } from './sink.js';

export type S3OutputConfig = Extract<OutputConfig, { type: 's3' }>;

export interface S3SinkOptions {
  /** A ready client (tests, shared connection pools); created from the config when absent. */
  client?: S3Client;
  retry?: Partial<RetryPolicy>;
  /** Files uploaded or downloaded at once (default 4). */
  concurrency?: number;
  /** Multipart part size in bytes (default 8 MiB, S3's minimum is 5 MiB). */
  partSize?: number;
}

const MANIFEST = '_manifest.json';
const SUCCESS = '_SUCCESS';
/** Top-level folders of the layout that are not tables. */
const RESERVED = new Set(['runs', 'current', '_state']);
const AS_OF = /^\d{4}-\d{2}-\d{2}$/;

interface StagedFile {
  table: string;
  name: string;
  local: string;
  size: number;
}

export class S3Sink implements Sink {
  readonly location: string;
  private readonly root: string;
  private readonly bucket: string;
  private readonly retry: RetryPolicy;
  private readonly concurrency: number;
  private readonly partSize: number;
  private clientInstance: S3Client | undefined;

  constructor(
    private readonly config: S3OutputConfig,
    options: S3SinkOptions = {},
  ) {
    this.bucket = config.bucket;
    this.root = normalizePrefix(config.prefix);
    this.location = s3Url(this.bucket, this.root).replace(/\/$/, '');
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? 8 * 1024 * 1024);
    this.clientInstance = options.client;
  }

  private get client(): S3Client {
    this.clientInstance ??= clientForConfig(this.config, this.retry.maxAttempts);
    return this.clientInstance;
  }

  async publish(run: StagedRun, log: Logger): Promise<void> {
    const started = Date.now();
    if (!AS_OF.test(run.asOf)) throw new SinkError(`publish: as_of "${run.asOf}" is not a YYYY-MM-DD date`);
    const files = await this.stagedFiles(run);
    const manifest = path.join(run.stagedDir, MANIFEST);
    await stat(manifest).catch(() => {
      throw new SinkError(`publish: the staged run has no ${MANIFEST} (${manifest})`);
    });
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    const runPrefix = `${this.root}runs/as_of=${run.asOf}/`;
    const currentPrefix = `${this.root}current/`;
    const context = { runId: run.runId, asOf: run.asOf, location: this.location };

    // 1. History partition as_of=D.
    await this.deleteKey(`${runPrefix}${SUCCESS}`);
    const historyKeys = files.map((f) => `${this.root}${f.table}/as_of=${run.asOf}/${f.name}`);
    await this.uploadAll(files, historyKeys, log);
    const staleHistory = await this.stalePartitionKeys(run.asOf, new Set(historyKeys));
    await this.deleteKeys(staleHistory);
    await this.uploadFile(manifest, `${runPrefix}${MANIFEST}`, log);
    await this.putEmpty(`${runPrefix}${SUCCESS}`);
    log.info(
      { ...context, files: files.length, bytes, replaced: staleHistory.length },
      'history partition published',
    );
    await run.pause?.('publish-current');

    // 2. current/: _SUCCESS off, files in, strays out, manifest, _SUCCESS on.
    await this.deleteKey(`${currentPrefix}${SUCCESS}`);
    const currentKeys = files.map((f) => `${currentPrefix}${f.table}/${f.name}`);
    await this.uploadAll(files, currentKeys, log);
    const keep = new Set([...currentKeys, `${currentPrefix}${MANIFEST}`, `${currentPrefix}${SUCCESS}`]);
    const stale: string[] = [];
    await this.wrap('list', currentPrefix, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, currentPrefix)) {
        if (!keep.has(object.Key!)) stale.push(object.Key!);
      }
    });
    await this.deleteKeys(stale);
    await this.uploadFile(manifest, `${currentPrefix}${MANIFEST}`, log);
    await this.putEmpty(`${currentPrefix}${SUCCESS}`);
    log.info(
      {
        ...context,
        tables: run.tables.length,
        files: files.length,
        removed: stale.length,
        ms: Date.now() - started,
      },
      'current/ published',
    );
  }

  async history(
    table: string,
    from: string,
    to: string,
    scratchDir: string,
  ): Promise<{ asOf: string; path: string }[]> {
    const tablePrefix = `${this.root}${table}/`;
    const runsPrefix = `${this.root}runs/`;
    const complete = new Set<string>();
    const wanted: { asOf: string; key: string; local: string }[] = [];
    // Flat listings (no Delimiter): a partition folder is recognised from its keys. This works the same on
    // every S3-compatible store, and a table's history is a few hundred keys a year.
    await this.wrap('list', runsPrefix, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, runsPrefix)) {
        const match = /^as_of=(\d{4}-\d{2}-\d{2})\/_SUCCESS$/.exec(object.Key!.slice(runsPrefix.length));
        if (match) complete.add(match[1]!);
      }
    });
    await this.wrap('list', tablePrefix, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, tablePrefix)) {
        const match = /^as_of=(\d{4}-\d{2}-\d{2})\/(.+)$/.exec(object.Key!.slice(tablePrefix.length));
        // The Parquet files only, as LocalSink.history: the audience partition also holds its CSV exports.
        if (!match || !match[2]!.endsWith('.parquet')) continue;
        const asOf = match[1]!;
        if (asOf < from || asOf >= to || !complete.has(asOf)) continue;
        const local = path.join(scratchDir, table, `as_of=${asOf}`, match[2]!.replaceAll('/', '_'));
        wanted.push({ asOf, key: object.Key!, local });
      }
    });
    for (const dir of new Set(wanted.map((w) => path.dirname(w.local))))
      await mkdir(dir, { recursive: true });
    // history() has no logger parameter: its retries stay silent.
    const silent = silentLogger();
    await forEachLimit(wanted, this.concurrency, async (item) => {
      try {
        await downloadObject(this.client, this.bucket, item.key, item.local, {
          policy: this.retry,
          log: silent,
        });
      } catch (error) {
        throw new SinkError(
          `history: ${describeS3Error(error, s3Url(this.bucket, item.key), 's3:GetObject')}`,
        );
      }
    });
    return wanted
      .map(({ asOf, local }) => ({ asOf, path: local }))
      .sort((a, b) => (a.asOf === b.asOf ? (a.path < b.path ? -1 : 1) : a.asOf < b.asOf ? -1 : 1));
  }

  /** Whether runs/as_of=D/_SUCCESS exists: partition D was completely published. */
  async isPublished(asOf: string): Promise<boolean> {
    const key = `${this.root}runs/as_of=${asOf}/${SUCCESS}`;
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new SinkError(`isPublished: ${describeS3Error(error, s3Url(this.bucket, key), 's3:GetObject')}`);
    }
  }

  async recover(log: Logger): Promise<void> {
    // Nothing to clean: a half-published partition or current/ simply has no _SUCCESS, and the next publish
    // replaces it. Failed multipart uploads are aborted by the uploader; for killed processes configure the
    // bucket lifecycle rule AbortIncompleteMultipartUpload.
    const key = `${this.root}current/${SUCCESS}`;
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) {
        log.warn(
          { location: this.location },
          'current/ has no _SUCCESS: no run was published yet, or the last publish did not finish; the next run republishes it',
        );
        return;
      }
      log.warn({ location: this.location, error: errorCode(error) }, 'cannot check current/_SUCCESS');
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      let detail = error;
      if (isGenericForbidden(error)) {
        // A bare 403 cannot tell bad credentials from missing permissions: a listing's error body can.
        detail = await this.client
          .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root, MaxKeys: 1 }))
          .then(
            () => error,
            (listError: unknown) => listError,
          );
      }
      throw new SinkError(`output: ${describeS3Error(detail, s3Url(this.bucket), 's3:ListBucket')}`);
    }
    const probe = `${this.root}_state/probe-${randomUUID()}`;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: 'probe' }));
    } catch (error) {
      throw new SinkError(`output: ${describeS3Error(error, s3Url(this.bucket, probe), 's3:PutObject')}`);
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
    } catch (error) {
      throw new SinkError(`output: ${describeS3Error(error, s3Url(this.bucket, probe), 's3:DeleteObject')}`);
    }
  }

  async close(): Promise<void> {
    this.clientInstance?.destroy();
    this.clientInstance = undefined;
  }

  /** Every staged file of the run's tables, checked before anything is uploaded. */
  private async stagedFiles(run: StagedRun): Promise<StagedFile[]> {
    const files: StagedFile[] = [];
    for (const table of run.tables) {
      if (RESERVED.has(table) || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(table)) {
        throw new SinkError(`publish: "${table}" cannot be a table name in ${this.location}`);
      }
      const dir = path.join(run.stagedDir, table);
      let names: string[];
      try {
        names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
      } catch (error) {
        throw new SinkError(`publish: staged table folder ${dir} is unreadable (${errorCode(error)})`);
      }
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        const local = path.join(dir, name);
        const info = await stat(local).catch(() => {
          throw new SinkError(`publish: staged file ${local} disappeared before the publish started`);
        });
        files.push({ table, name, local, size: info.size });
      }
    }
    return files;
  }

  /**
   * Keys under `<table>/as_of=D/` of any table (also tables this run no longer has) that are not part of this
   * run: what an earlier publish of D left. A flat listing of the prefix, since a Delimiter listing is not
   * reliable on every S3-compatible store (s3rver omits common prefixes of deeper keys).
   */
  private async stalePartitionKeys(asOf: string, keep: Set<string>): Promise<string[]> {
    const stale: string[] = [];
    const marker = `/as_of=${asOf}/`;
    await this.wrap('list', this.root, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, this.root)) {
        const rest = object.Key!.slice(this.root.length);
        const slash = rest.indexOf('/');
        if (slash <= 0 || RESERVED.has(rest.slice(0, slash))) continue;
        if (rest.startsWith(marker, slash) && !keep.has(object.Key!)) stale.push(object.Key!);
      }
    });
    return stale;
  }

  private async uploadAll(files: StagedFile[], keys: string[], log: Logger): Promise<void> {
    await forEachLimit(
      files.map((file, i) => ({ file, key: keys[i]! })),
      this.concurrency,
      ({ file, key }) => this.uploadFile(file.local, key, log),
    );
  }

  /** A multipart, streamed upload of a local file; the whole upload is retried with a fresh stream. */
  private async uploadFile(local: string, key: string, log: Logger): Promise<void> {
    const url = s3Url(this.bucket, key);
    try {
      await withRetry(
        async () => {
          // Fails with ENOENT (not retried) when the staged file has gone.
          await stat(local);
          const upload = new Upload({
            client: this.client,
            params: {
              Bucket: this.bucket,
              Key: key,
              Body: createReadStream(local),
              ContentType: contentType(key),
            },
            partSize: this.partSize,
            queueSize: 2,
            leavePartsOnError: false,
          });
          await upload.done();
        },
        { policy: this.retry, log, what: url },
      );
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        throw new SinkError(`publish: staged file ${local} disappeared before its upload to ${url}`);
      }
      throw new SinkError(`publish: ${describeS3Error(error, url, 's3:PutObject')}`);
    }
  }

  private async putEmpty(key: string): Promise<void> {
    await this.wrap('write', key, 's3:PutObject', async () => {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: '', ContentLength: 0 }),
      );
    });
  }

  private async deleteKey(key: string): Promise<void> {
    await this.wrap('delete', key, 's3:DeleteObject', async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    });
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.wrap('delete', batch[0]!, 's3:DeleteObject', async () => {
        const result = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = result.Errors ?? [];
        if (failed.length > 0) {
          const first = failed[0]!;
          throw Object.assign(
            new Error(`${failed.length} deletes failed, first ${first.Key}: ${first.Message}`),
            {
              Code: first.Code,
            },
          );
        }
      });
    }
  }

  /** Runs an S3 call, turning its error into a SinkError that names the key and what to fix. */
  private async wrap(verb: string, key: string, action: string, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (error instanceof SinkError) throw error;
      throw new SinkError(`publish (${verb}): ${describeS3Error(error, s3Url(this.bucket, key), action)}`);
    }
  }
}

function contentType(key: string): string {
  if (key.endsWith('.parquet')) return 'application/vnd.apache.parquet';
  if (key.endsWith('.csv')) return 'text/csv; charset=utf-8';
  if (key.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

/** Runs `work` over items, at most `limit` at once; stops starting new items after the first error, rethrows it. */
async function forEachLimit<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next]!;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        if (!failed) failure = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}
