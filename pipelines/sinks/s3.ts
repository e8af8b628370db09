// The S3 sink: publishes a staged run under `s3://bucket/prefix` in the layout of sink.ts.
//
// S3 has no rename and no multi-object transaction, and readers read fixed keys (`<table>/as_of=D/part-0.parquet`,
// `current/...`). So a publish keeps the old version whole until the new one is complete in S3, commits, then
// replaces keys with server-side copies, and a commit record lets the next run finish a swap that was killed:
//   1. upload every staged file (below subfolders too: exports/<export>/<file>), the run's top-level files and the
//      manifest to _staging/<runId>/ (with their sha256 as object metadata).
//      Nothing a reader sees has changed (step `publish-version`); a kill here leaves an upload that the
//      next recovery deletes.
//   2. commit: put _staging/<runId>/_COMMITTED (as-of date, files, sizes, checksums). From here the new version is
//      the published one (`publish-commit`).
//   3. history of D: the keys whose bytes change are copied from _staging into <folder>/as_of=D/ (the top-level
//      files into runs/as_of=D/); only when some do
//      (or keys of an earlier publish of D must go), runs/as_of=D/_SUCCESS is deleted first and put back last,
//      after runs/as_of=D/_manifest.json (`publish-swap` falls inside this window). A re-run whose files are
//      byte-identical changes only the manifest and never removes _SUCCESS.
//   4. current/, the same way, only when D is the newest published date (`publish-current` comes before): a backfill
//      or a re-run of an older date leaves current/ alone; a re-run of the newest date replaces it.
//   5. delete _staging/<runId>/, its _COMMITTED last.
// recover() (at the start of every run, under the lock) finishes every committed swap from its _staging copy
// (steps 3-5, idempotent), and deletes uploads that were never committed. It deletes nothing else: never a
// published key that is the last copy of its version.
//
// Guarantees:
// - runs/as_of=D/_SUCCESS and current/_SUCCESS exist only beside exactly the complete files of their manifest.
// - A kill before the commit leaves every published key as it was. A kill after it leaves each key either the old
//   or the new version (each object is replaced whole), with the marker of a partition absent only inside the
//   short window of server-side copies of step 3 or 4; the next run's recovery completes the new version before it
//   reads any history. Configure a lifecycle rule on _staging/ (expire after a week) only as a backstop: it must
//   not remove the copy of a committed swap before a run has recovered it.
// - A reader that checked _SUCCESS before a swap started and is still reading while keys are replaced can see a
//   mix: check _SUCCESS again after reading, or read history.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { OutputConfig } from '../../config/schema.js';
import { type Logger, silentLogger } from '../base/log.js';
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
} from '../base/s3client.js';
import { publishStep, type Sink, SinkError, type StagedRun } from './sink.js';

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
const STAGING = '_staging';
const COMMITTED = '_COMMITTED';
/** Top-level folders of the layout that are not tables. */
const RESERVED = new Set(['runs', 'current', '_state', STAGING]);
const AS_OF = /^\d{4}-\d{2}-\d{2}$/;
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** CopyObject copies objects up to 5 GiB; larger ones are copied in parts of this size. */
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_PART = 512 * 1024 ** 2;

interface StagedFile {
  table: string;
  name: string;
  local: string;
  size: number;
  sha256: string;
}

/** The commit record of a swap: what _staging/<run_id>/ holds, complete, and where it goes. */
interface Commit {
  run_id: string;
  as_of: string;
  committed_at: string;
  /** Files of the folders (tables, exports); `name` is the path below the folder. */
  files: { table: string; name: string; size: number; sha256: string }[];
  /** Top-level files of the run (absent in commit records of earlier releases). */
  top?: { name: string; size: number; sha256: string }[];
  manifest: { size: number; sha256: string };
}

/** One set of keys to replace: the history partition of a date, or current/. */
interface Replacement {
  files: { from: string; to: string; size: number; sha256: string }[];
  /** Keys of the set that the new version does not have. */
  stale: string[];
  manifest: { from: string; to: string; size: number; sha256: string };
  success: string;
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
    if (!RUN_ID.test(run.runId)) throw new SinkError(`publish: run id "${run.runId}" cannot name a key`);
    const files = await this.stagedFiles(run);
    const top = await this.stagedTopFiles(run);
    const manifest = path.join(run.stagedDir, MANIFEST);
    await stat(manifest).catch(() => {
      throw new SinkError(`publish: the staged run has no ${MANIFEST} (${manifest})`);
    });
    const staging = this.stagingPrefix(run.runId);
    const context = { runId: run.runId, asOf: run.asOf, location: this.location };

    // 1. The whole new version beside the published one.
    await this.uploadAll(
      files,
      files.map((f) => `${staging}${f.table}/${f.name}`),
      log,
    );
    for (const file of top) await this.uploadFile(file.local, `${staging}${file.name}`, log, file.sha256);
    const manifestSha = await sha256File(manifest);
    await this.uploadFile(manifest, `${staging}${MANIFEST}`, log, manifestSha);
    const bytes = [...files, ...top].reduce((sum, f) => sum + f.size, 0);
    log.info({ ...context, files: files.length, bytes, ms: Date.now() - started }, 'new version uploaded');
    await publishStep(run, 'publish-version');

    // 2. Commit.
    const commit: Commit = {
      run_id: run.runId,
      as_of: run.asOf,
      committed_at: new Date().toISOString(),
      files: files.map((f) => ({ table: f.table, name: f.name, size: f.size, sha256: f.sha256 })),
      top: top.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })),
      manifest: { size: (await stat(manifest)).size, sha256: manifestSha },
    };
    const record = `${staging}${COMMITTED}`;
    await this.wrap('write', record, 's3:PutObject', async () => {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: record,
          Body: JSON.stringify(commit),
          ContentType: 'application/json',
        }),
      );
    });
    await publishStep(run, 'publish-commit');

    // 3-5.
    await this.apply(commit, log, (step) => publishStep(run, step));
    log.info({ ...context, ms: Date.now() - started }, 'published');
  }

  /**
   * Steps 3-5 of a publish for a committed version in _staging/<run_id>/: idempotent, so that recovery can run
   * it again after a kill at any point.
   */
  private async apply(commit: Commit, log: Logger, step?: (name: string) => Promise<void>): Promise<void> {
    const staging = this.stagingPrefix(commit.run_id);
    const context = { runId: commit.run_id, asOf: commit.as_of, location: this.location };
    const from = (f: { table: string; name: string }) => `${staging}${f.table}/${f.name}`;
    const runPrefix = `${this.root}runs/as_of=${commit.as_of}/`;
    const manifestFrom = { from: `${staging}${MANIFEST}`, ...commit.manifest };

    // The copies of the version into one place (the history partition, or current/): the table files at
    // `tableKey`, the top-level files, the manifest and _SUCCESS under `topPrefix`; `keep`, every key that belongs there.
    const top = commit.top ?? [];
    const placement = (tableKey: (f: { table: string; name: string }) => string, topPrefix: string) => {
      const files = [
        ...commit.files.map((f) => ({ from: from(f), to: tableKey(f), size: f.size, sha256: f.sha256 })),
        ...top.map((f) => ({ from: `${staging}${f.name}`, to: `${topPrefix}${f.name}`, ...f })),
      ];
      const manifest = { ...manifestFrom, to: `${topPrefix}${MANIFEST}` };
      const success = `${topPrefix}${SUCCESS}`;
      return { files, manifest, success, keep: new Set([...files.map((f) => f.to), manifest.to, success]) };
    };

    // 3. History partition as_of=D.
    const { keep: keepHistory, ...historySet } = placement(
      (f) => `${this.root}${f.table}/as_of=${commit.as_of}/${f.name}`,
      runPrefix,
    );
    const history = await this.replace(
      { ...historySet, stale: await this.stalePartitionKeys(commit.as_of, keepHistory) },
      step,
    );
    log.info({ ...context, ...history }, 'history partition published');
    await step?.('publish-current');

    // 4. current/, forward only: to the newest published date (D itself is published now).
    const newest = await this.newestPublished();
    if (newest === commit.as_of) {
      const currentPrefix = `${this.root}current/`;
      const { keep, ...currentSet } = placement((f) => `${currentPrefix}${f.table}/${f.name}`, currentPrefix);
      const stale: string[] = [];
      await this.wrap('list', currentPrefix, 's3:ListBucket', async () => {
        for await (const object of listObjects(this.client, this.bucket, currentPrefix)) {
          if (!keep.has(object.Key!)) stale.push(object.Key!);
        }
      });
      const current = await this.replace({ ...currentSet, stale });
      log.info({ ...context, ...current }, 'current/ published');
    } else {
      log.info({ ...context, newest }, 'current/ left at the newest published date');
    }

    // 5. The staged copy is no longer needed.
    const staged: string[] = [];
    await this.wrap('list', staging, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, staging)) {
        if (object.Key !== `${staging}${COMMITTED}`) staged.push(object.Key!);
      }
    });
    await this.deleteKeys(staged);
    await this.deleteKey(`${staging}${COMMITTED}`);
  }

  /**
   * Replaces a set of keys by server-side copies. _SUCCESS is taken away only when some key changes (its bytes
   * differ, by the sha256 metadata) or must go, and put back after the manifest. Keys already in place are not
   * copied again: applied a second time (recovery), a finished swap copies nothing, and needs no staged key.
   */
  private async replace(
    set: Replacement,
    step?: (name: string) => Promise<void>,
  ): Promise<{ copied: number; unchanged: number; removed: number }> {
    const changed: Replacement['files'] = [];
    await forEachLimit(set.files, this.concurrency, async (file) => {
      if ((await this.sha256Of(file.to)) !== file.sha256) changed.push(file);
    });
    changed.sort((a, b) => (a.to < b.to ? -1 : 1));
    if (changed.length > 0 || set.stale.length > 0) {
      await this.deleteKey(set.success);
      const [first, ...rest] = changed;
      if (first) {
        await this.copyObject(first.from, first.to, first.size);
        // Inside the window: the marker is off, one key is new (a test kills here).
        await step?.('publish-swap');
      }
      await forEachLimit(rest, this.concurrency, (f) => this.copyObject(f.from, f.to, f.size));
      await this.deleteKeys(set.stale);
    }
    if ((await this.sha256Of(set.manifest.to)) !== set.manifest.sha256) {
      await this.copyObject(set.manifest.from, set.manifest.to, set.manifest.size);
    }
    await this.putEmpty(set.success);
    return {
      copied: changed.length,
      unchanged: set.files.length - changed.length,
      removed: set.stale.length,
    };
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
    // 1. Swaps that a killed run committed are finished; uploads it never committed are deleted.
    const prefix = `${this.root}${STAGING}/`;
    const byRun = new Map<string, string[]>();
    await this.wrap('list', prefix, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, prefix)) {
        const runId = object.Key!.slice(prefix.length).split('/')[0]!;
        byRun.set(runId, [...(byRun.get(runId) ?? []), object.Key!]);
      }
    });
    const commits: Commit[] = [];
    for (const [runId, keys] of byRun) {
      if (keys.includes(`${prefix}${runId}/${COMMITTED}`)) {
        commits.push(await this.readCommit(`${prefix}${runId}/${COMMITTED}`));
      } else {
        await this.deleteKeys(keys);
        log.warn(
          { runId, keys: keys.length, location: this.location },
          'removed the upload of a run that was stopped before it published',
        );
      }
    }
    commits.sort((a, b) => a.committed_at.localeCompare(b.committed_at));
    for (const commit of commits) {
      log.warn(
        { runId: commit.run_id, asOf: commit.as_of, location: this.location },
        'finishing the publish of a run that was stopped after its new version was complete',
      );
      try {
        await this.apply(commit, log);
      } catch (error) {
        throw new SinkError(
          `recover: could not finish publishing run ${commit.run_id} (as_of ${commit.as_of}) from ` +
            `${s3Url(this.bucket, this.stagingPrefix(commit.run_id))}: ${(error as Error).message}. ` +
            'Fix the cause and run again; to give that version up instead, delete that prefix.',
        );
      }
    }
    // 2. current/ is only ever replaced by a committed swap, which step 1 completes.
    const key = `${this.root}current/${SUCCESS}`;
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) {
        log.warn(
          { location: this.location },
          'current/ has no _SUCCESS: no run was published yet, or an earlier release stopped while replacing it; the next run of the newest date republishes it',
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

  private stagingPrefix(runId: string): string {
    return `${this.root}${STAGING}/${runId}/`;
  }

  private async readCommit(key: string): Promise<Commit> {
    let text = '';
    await this.wrap('read', key, 's3:GetObject', async () => {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      text = (await response.Body?.transformToString()) ?? '';
    });
    try {
      const commit = JSON.parse(text) as Commit;
      if (!AS_OF.test(commit.as_of) || !RUN_ID.test(commit.run_id) || !Array.isArray(commit.files)) {
        throw new Error('fields missing');
      }
      return commit;
    } catch (error) {
      throw new SinkError(
        `recover: ${s3Url(this.bucket, key)} is not a commit record written by churn (${(error as Error).message}); delete it and run again`,
      );
    }
  }

  /** The newest as-of date with runs/as_of=D/_SUCCESS. */
  private async newestPublished(): Promise<string | undefined> {
    const runsPrefix = `${this.root}runs/`;
    let newest: string | undefined;
    await this.wrap('list', runsPrefix, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, runsPrefix)) {
        const asOf = /^as_of=(\d{4}-\d{2}-\d{2})\/_SUCCESS$/.exec(object.Key!.slice(runsPrefix.length))?.[1];
        if (asOf && (newest === undefined || asOf > newest)) newest = asOf;
      }
    });
    return newest;
  }

  /** The sha256 metadata of a key (written by this sink), or undefined when absent or the key does not exist. */
  private async sha256Of(key: string): Promise<string | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.Metadata?.sha256;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new SinkError(
        `publish (head): ${describeS3Error(error, s3Url(this.bucket, key), 's3:GetObject')}`,
      );
    }
  }

  /** A server-side copy (metadata and content type kept); in parts above CopyObject's 5 GiB limit. */
  private async copyObject(from: string, to: string, size: number): Promise<void> {
    const source = encodeURI(`${this.bucket}/${from}`);
    await this.wrap('copy', to, 's3:PutObject', async () => {
      if (size <= MAX_SINGLE_COPY) {
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: to,
            CopySource: source,
            MetadataDirective: 'COPY',
          }),
        );
        return;
      }
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: from }));
      const { UploadId } = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: to,
          ContentType: head.ContentType,
          Metadata: head.Metadata,
        }),
      );
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let start = 0, part = 1; start < size; start += COPY_PART, part += 1) {
        const end = Math.min(start + COPY_PART, size) - 1;
        const result = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: to,
            UploadId,
            PartNumber: part,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ ETag: result.CopyPartResult?.ETag ?? '', PartNumber: part });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: to,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    });
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
        names = await filesBelow(dir);
      } catch (error) {
        throw new SinkError(`publish: staged table folder ${dir} is unreadable (${errorCode(error)})`);
      }
      for (const name of names) {
        const local = path.join(dir, name);
        const info = await stat(local).catch(() => {
          throw new SinkError(`publish: staged file ${local} disappeared before the publish started`);
        });
        const sha256 = await sha256File(local).catch(() => {
          throw new SinkError(`publish: staged file ${local} disappeared before the publish started`);
        });
        files.push({ table, name, local, size: info.size, sha256 });
      }
    }
    return files;
  }

  /** The run's top-level files (StagedRun.files), checked before anything is uploaded. */
  private async stagedTopFiles(run: StagedRun): Promise<Omit<StagedFile, 'table'>[]> {
    const files: Omit<StagedFile, 'table'>[] = [];
    for (const name of run.files ?? []) {
      if (
        !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) ||
        name === MANIFEST ||
        name === SUCCESS ||
        name === COMMITTED
      ) {
        throw new SinkError(`publish: "${name}" cannot be a top-level file of a run in ${this.location}`);
      }
      const local = path.join(run.stagedDir, name);
      const info = await stat(local).catch(() => {
        throw new SinkError(`publish: staged file ${local} is missing; the run named it as a top-level file`);
      });
      files.push({ name, local, size: info.size, sha256: await sha256File(local) });
    }
    return files;
  }

  /**
   * Keys under `<folder>/as_of=D/` of any folder (also folders this run no longer has) and under `runs/as_of=D/`
   * that are not part of this run: what an earlier publish of D left. A flat listing of the prefix, since a Delimiter listing is not
   * reliable on every S3-compatible store (s3rver omits common prefixes of deeper keys).
   */
  private async stalePartitionKeys(asOf: string, keep: Set<string>): Promise<string[]> {
    const stale: string[] = [];
    const marker = `/as_of=${asOf}/`;
    await this.wrap('list', this.root, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, this.root)) {
        const rest = object.Key!.slice(this.root.length);
        const slash = rest.indexOf('/');
        if (slash <= 0 || (RESERVED.has(rest.slice(0, slash)) && rest.slice(0, slash) !== 'runs')) continue;
        if (rest.startsWith(marker, slash) && !keep.has(object.Key!)) stale.push(object.Key!);
      }
    });
    return stale;
  }

  private async uploadAll(files: StagedFile[], keys: string[], log: Logger): Promise<void> {
    await forEachLimit(
      files.map((file, i) => ({ file, key: keys[i]! })),
      this.concurrency,
      ({ file, key }) => this.uploadFile(file.local, key, log, file.sha256),
    );
  }

  /** A multipart, streamed upload of a local file; the whole upload is retried with a fresh stream. */
  private async uploadFile(local: string, key: string, log: Logger, sha256: string): Promise<void> {
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
              Metadata: { sha256 },
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

/** The files below a folder (dotfiles left out), as relative paths with `/`, sorted. */
async function filesBelow(dir: string, rel = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await filesBelow(path.join(dir, entry.name), relPath)));
    else if (entry.isFile()) found.push(relPath);
  }
  return found.sort();
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function contentType(key: string): string {
  if (key.endsWith('.parquet')) return 'application/vnd.apache.parquet';
  if (key.endsWith('.csv')) return 'text/csv; charset=utf-8';
  if (key.endsWith('.json')) return 'application/json';
  // report.html opens in a browser from the S3 console or a presigned link.
  if (key.endsWith('.html')) return 'text/html; charset=utf-8';
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
