// The S3 source: lands the objects under `s3://bucket/prefix` whose key (below the prefix) matches `glob`.
//
// Incremental: a state file in the landing folder remembers every landed key with its ETag and size, so a night
// downloads only new or changed objects. The landed set mirrors the bucket prefix: a changed object replaces its
// landed file, an object deleted from S3 disappears from the landing folder. Objects are streamed to disk
// (temp file, then rename), never held whole in memory; `.gz` objects stay gzipped (DuckDB reads .csv.gz) but
// their gzip stream is verified end to end before they are accepted.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import picomatch from 'picomatch';
import type { S3SourceConfig } from '../../config/schema.js';
import {
  clientForConfig,
  DEFAULT_RETRY_POLICY,
  describeS3Error,
  downloadObject,
  errorCode,
  isGenericForbidden,
  listObjects,
  normalizePrefix,
  ObjectVanishedError,
  type RetryPolicy,
  s3Url,
} from '../base/s3client.js';
import { parseExpression } from './expression.js';
import { isGzipName, verifyGzip } from './files.js';
import { type Landed, type LandedFile, type Source, type SourceContext, SourceError } from './source.js';

export interface S3SourceOptions {
  /** A ready client (tests, shared connection pools); created from the config when absent. */
  client?: S3Client;
  retry?: Partial<RetryPolicy>;
  /** Parallel downloads (default 8). */
  concurrency?: number;
}

/** One listed object that matched the glob. */
export interface ListedObject {
  key: string;
  etag: string | undefined;
  size: number;
}

/** The result of the listing phase of `land`. */
export interface S3Listing {
  bucket: string;
  prefix: string;
  /** Keys under the prefix (before the glob). */
  total: number;
  /** Matching objects, sorted by key. */
  objects: ListedObject[];
}

interface StateEntry {
  etag: string | undefined;
  size: number;
  /** File name inside the landing folder's `objects/`. */
  file: string;
}

interface LandingState {
  version: 1;
  bucket: string;
  prefix: string;
  objects: Record<string, StateEntry>;
}

const STATE_FILE = 's3-state.json';
const OBJECTS_DIR = 'objects';
/** Persist the state after this many downloads, so a killed night keeps most of its progress. */
const SAVE_EVERY = 50;

export class S3Source implements Source {
  private readonly prefix: string;
  private readonly retry: RetryPolicy;
  private readonly concurrency: number;
  private clientInstance: S3Client | undefined;

  constructor(
    private readonly config: S3SourceConfig,
    options: S3SourceOptions = {},
  ) {
    this.prefix = normalizePrefix(config.prefix);
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.clientInstance = options.client;
  }

  private get client(): S3Client {
    this.clientInstance ??= clientForConfig(this.config, this.retry.maxAttempts);
    return this.clientInstance;
  }

  private get where(): string {
    return s3Url(this.config.bucket, this.prefix);
  }

  async land(ctx: SourceContext): Promise<Landed> {
    return this.landListed(ctx, await this.list(ctx));
  }

  /** Phase one of `land`: lists the prefix (every page) and keeps the keys that match the glob. */
  async list(ctx: SourceContext): Promise<S3Listing> {
    const objects: ListedObject[] = [];
    let total = 0;
    try {
      for await (const object of listObjects(this.client, this.config.bucket, this.prefix)) {
        const key = object.Key!;
        if (key.endsWith('/')) continue; // a "folder" placeholder
        total += 1;
        if (!matchesGlob(key.slice(this.prefix.length), this.config.glob)) continue;
        objects.push({ key, etag: object.ETag, size: object.Size ?? 0 });
      }
    } catch (error) {
      throw new SourceError(
        `${ctx.entity}: cannot list ${describeS3Error(error, this.where, 's3:ListBucket')}`,
      );
    }
    objects.sort((a, b) => compareKeys(a.key, b.key));
    return { bucket: this.config.bucket, prefix: this.prefix, total, objects };
  }

  /** Phase two of `land`: downloads what is new or changed, removes what is gone, returns the landed files. */
  async landListed(ctx: SourceContext, listing: S3Listing): Promise<Landed> {
    const started = Date.now();
    const objectsDir = path.join(ctx.landingDir, OBJECTS_DIR);
    await mkdir(objectsDir, { recursive: true });
    const state = await this.loadState(ctx);

    const toFetch: ListedObject[] = [];
    let reused = 0;
    for (const object of listing.objects) {
      const known = state.objects[object.key];
      if (known && known.etag === object.etag && known.size === object.size) {
        const onDisk = await stat(path.join(objectsDir, known.file)).catch(() => undefined);
        if (onDisk?.isFile() && onDisk.size === known.size) {
          reused += 1;
          continue;
        }
      }
      toFetch.push(object);
    }

    let downloaded = 0;
    let bytes = 0;
    let vanished = 0;
    let sinceSave = 0;
    const failure = await runPool(toFetch, this.concurrency, async (object) => {
      const file = landedFileName(object.key);
      const url = s3Url(this.config.bucket, object.key);
      try {
        const result = await downloadObject(
          this.client,
          this.config.bucket,
          object.key,
          path.join(objectsDir, file),
          {
            policy: this.retry,
            log: ctx.log,
            verify: isGzipName(object.key) ? (temp) => verifyGzip(temp, url, ctx.entity) : undefined,
          },
        );
        // The listed ETag and size, not the downloaded ones: should the object change between listing and
        // download, the next night sees a different ETag and fetches it again (never the reverse). S3-compatible
        // servers may also format ETags differently in listings and GETs.
        state.objects[object.key] = { etag: object.etag, size: object.size, file };
        downloaded += 1;
        bytes += result.size;
      } catch (error) {
        if (error instanceof ObjectVanishedError) {
          ctx.log.warn(
            { entity: ctx.entity, object: url },
            'object deleted between listing and download; skipped',
          );
          vanished += 1;
          delete state.objects[object.key];
          await rm(path.join(objectsDir, file), { force: true });
          return;
        }
        if (error instanceof SourceError) throw error;
        throw new SourceError(
          `${ctx.entity}: cannot download ${describeS3Error(error, url, 's3:GetObject')}`,
        );
      }
      sinceSave += 1;
      if (sinceSave >= SAVE_EVERY) {
        sinceSave = 0;
        await this.saveState(ctx, state);
      }
    });
    if (failure !== undefined) {
      // Keep what was downloaded: the next night reuses it.
      await this.saveState(ctx, state);
      throw failure;
    }

    // Mirror the prefix: whatever is no longer listed (deleted in S3, or no longer matching) leaves the landing.
    const listedKeys = new Set(listing.objects.map((o) => o.key));
    let removed = 0;
    for (const [key, entry] of Object.entries(state.objects)) {
      if (listedKeys.has(key)) continue;
      await rm(path.join(objectsDir, entry.file), { force: true });
      delete state.objects[key];
      removed += 1;
    }
    await this.saveState(ctx, state);
    // Leftovers that no state entry names (temp files of a killed night, files of another bucket/prefix).
    const keep = new Set(Object.values(state.objects).map((e) => e.file));
    for (const name of await readdir(objectsDir)) {
      if (!keep.has(name)) await rm(path.join(objectsDir, name), { force: true, recursive: true });
    }

    const files: LandedFile[] = Object.entries(state.objects)
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([key, entry]) => ({
        path: path.join(objectsDir, entry.file),
        origin: s3Url(this.config.bucket, key),
      }));
    ctx.log.info(
      {
        entity: ctx.entity,
        location: this.where,
        listed: listing.total,
        matched: listing.objects.length,
        downloaded,
        reused,
        removed,
        vanished,
        bytes,
        ms: Date.now() - started,
      },
      's3 source landed',
    );
    return { files, format: this.config.format, csv: this.config.csv };
  }

  async check(ctx: SourceContext): Promise<void> {
    if (this.config.where) await parseExpression(undefined, this.config.where, `sources.${ctx.entity}.where`);
    const bucketUrl = s3Url(this.config.bucket);
    let headError: unknown;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (error) {
      // A bare 403 cannot tell bad credentials from missing permissions: the listing below says which.
      if (!isGenericForbidden(error)) {
        throw new SourceError(`${ctx.entity}: ${describeS3Error(error, bucketUrl, 's3:ListBucket')}`);
      }
      headError = error;
    }
    let count = 0;
    try {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: this.prefix, MaxKeys: 1 }),
      );
      count = page.KeyCount ?? page.Contents?.length ?? 0;
    } catch (error) {
      throw new SourceError(`${ctx.entity}: ${describeS3Error(error, this.where, 's3:ListBucket')}`);
    }
    if (headError !== undefined) {
      throw new SourceError(`${ctx.entity}: ${describeS3Error(headError, bucketUrl, 's3:ListBucket')}`);
    }
    if (count === 0) {
      throw new SourceError(
        `${ctx.entity}: no objects under ${this.where}. Check \`prefix\` (a folder below the bucket, e.g. ` +
          '"exports/orders/") and that the export has run.',
      );
    }
    ctx.log.debug({ entity: ctx.entity, location: this.where }, 's3 source reachable');
  }

  async close(): Promise<void> {
    this.clientInstance?.destroy();
    this.clientInstance = undefined;
  }

  private async loadState(ctx: SourceContext): Promise<LandingState> {
    const fresh: LandingState = { version: 1, bucket: this.config.bucket, prefix: this.prefix, objects: {} };
    let text: string;
    try {
      text = await readFile(path.join(ctx.landingDir, STATE_FILE), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return fresh;
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as Partial<LandingState>;
      if (
        parsed.version === 1 &&
        parsed.bucket === this.config.bucket &&
        parsed.prefix === this.prefix &&
        typeof parsed.objects === 'object' &&
        parsed.objects !== null
      ) {
        return { ...fresh, objects: parsed.objects };
      }
      ctx.log.info(
        { entity: ctx.entity, location: this.where },
        's3 source location changed; landing everything anew',
      );
    } catch {
      ctx.log.warn({ entity: ctx.entity }, 'unreadable s3 landing state; landing everything anew');
    }
    return fresh;
  }

  private saving: Promise<void> = Promise.resolve();

  /** Writes the state atomically (temp file, rename); saves from parallel downloads run one after another. */
  private async saveState(ctx: SourceContext, state: LandingState): Promise<void> {
    const file = path.join(ctx.landingDir, STATE_FILE);
    const write = async (): Promise<void> => {
      const temp = `${file}.tmp`;
      await writeFile(temp, `${JSON.stringify(state, null, 1)}\n`);
      await rename(temp, file);
    };
    const next = this.saving.then(write, write);
    this.saving = next.catch(() => undefined);
    await next;
  }
}

/**
 * Whether a key (relative to the prefix) matches a glob: `*` and `?` stay within one path segment, `**` spans
 * segments, `[...]` and `{a,b}` as usual, and wildcards do not match a leading dot (picomatch).
 */
export function matchesGlob(key: string, glob: string): boolean {
  let matcher = globCache.get(glob);
  if (!matcher) {
    matcher = picomatch(glob, { dot: false, posix: true });
    globCache.set(glob, matcher);
  }
  return matcher(key);
}

const globCache = new Map<string, (key: string) => boolean>();

/** Plain code-unit order, as S3 lists keys (UTF-8 byte order for the BMP). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A key's landed file name: flat, filesystem-safe, unique per key (a hash prefix) and keeping the key's file
 * name and extensions, so DuckDB recognises `.csv.gz`, `.parquet`, `.ndjson`.
 */
export function landedFileName(key: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 16);
  const base = (key.split('/').pop() ?? '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return `${hash}-${base.slice(-120) || 'object'}`;
}

/**
 * Runs `work` over items with at most `limit` at once. On the first error no new item starts; the error is
 * returned once the items already running have settled (so no download is still writing into the landing).
 */
async function runPool<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<Error | undefined> {
  let next = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next]!;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return failure;
}
