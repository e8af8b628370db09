// Where the shards of an as-of date wait for the merge, beside the output's published tables:
//   <output>/_shards/as_of=D/shard=I/<table>.parquet   one file per local table (the shard's customers' rows)
//   <output>/_shards/as_of=D/shard=I/_shard.json       what the shard landed and built (the merge checks it)
//   <output>/_shards/as_of=D/shard=I/_SUCCESS          written last: the shard is complete
// A folder starting with `_` is never a published table: the sinks' recovery and the catalog leave it alone.
// A local store writes a shard beside its folder and renames it into place (a re-run replaces it whole); the S3
// store (s3-store.ts) deletes the old _SUCCESS first and uploads the new one last.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedConfig } from '../../config/load.js';
import { resolvePath } from '../../config/load.js';
import type { Entity } from '../../config/schema.js';
import type { Logger } from '../base/log.js';
import type { ShardFilterKind } from './spec.js';

export const SHARDS_DIR = '_shards';
export const SHARD_MANIFEST = '_shard.json';
export const SHARD_SUCCESS = '_SUCCESS';

export interface ShardColumn {
  name: string;
  type: string;
}

export interface ShardLandingEntry {
  files: number;
  read: number;
  excluded: number | null;
  rows: number;
  checksum: string;
  /** Set when the source filtered by shard itself (a warehouse query): which rows it kept. */
  shard_filter?: ShardFilterKind;
  /** With shard_filter: the rows this shard accounts for (its customers', and in shard 0 those without one). */
  owned?: number;
  /** With shard_filter: the rows the source had in all (the same in every shard), null when it cannot say. */
  source_rows?: number | null;
}

/** `_shard.json`: what one shard landed and built. */
export interface ShardManifest {
  as_of: string;
  shard: { index: number; count: number };
  /** Digest of the config, the as-of date, the shard count and the local models: every shard and the merge agree. */
  fingerprint: string;
  started_at: string;
  finished_at: string;
  /**
   * Per configured entity, the input as landed: the whole of it (every shard reads all of it), or, with
   * `shard_filter`, the part of it the source extracted for this shard (a warehouse query), with `owned`, which adds
   * up to the input over the shards.
   */
  landing: Partial<Record<Entity, ShardLandingEntry>>;
  /** The shard's local tables: rows and DuckDB column types. */
  tables: Record<string, { rows: number; columns: ShardColumn[] }>;
  timings_ms: Record<string, number>;
}

export interface ShardStore {
  /** Where the shards of the date are (`/abs/out/_shards/as_of=D`, `s3://bucket/prefix/_shards/as_of=D`). */
  readonly location: string;
  /** A local folder to write shard `index` into before `commit`. */
  staging(index: number): Promise<string>;
  /** Publishes the staged shard (its files, then _SUCCESS), replacing an earlier copy of the same shard. */
  commit(index: number, staged: string, log: Logger): Promise<void>;
  /** The shards among 0..count-1 that have no _SUCCESS. */
  missing(count: number): Promise<number[]>;
  /** A local folder holding the shard's files (downloaded into scratch when the store is remote). */
  fetch(index: number, scratch: string, log: Logger): Promise<string>;
  /** Removes every shard of the date. */
  remove(): Promise<void>;
  close(): Promise<void>;
}

export function shardFolder(index: number): string {
  return `shard=${index}`;
}

export function dateFolder(asOf: string): string {
  return `as_of=${asOf}`;
}

export async function readShardManifest(dir: string): Promise<ShardManifest> {
  return JSON.parse(await readFile(join(dir, SHARD_MANIFEST), 'utf8')) as ShardManifest;
}

export async function writeShardManifest(dir: string, manifest: ShardManifest): Promise<void> {
  await writeFile(join(dir, SHARD_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
}

class LocalShardStore implements ShardStore {
  readonly location: string;

  constructor(root: string, asOf: string) {
    this.location = join(root, SHARDS_DIR, dateFolder(asOf));
  }

  async staging(index: number): Promise<string> {
    const dir = join(
      this.location,
      `.${shardFolder(index)}.${process.pid}-${randomBytes(3).toString('hex')}`,
    );
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async commit(index: number, staged: string): Promise<void> {
    await writeFile(join(staged, SHARD_SUCCESS), '');
    const target = join(this.location, shardFolder(index));
    if (existsSync(target)) {
      const aside = `${staged}.old`;
      await rename(target, aside);
      await rename(staged, target);
      await rm(aside, { recursive: true, force: true });
    } else {
      await rename(staged, target);
    }
    // What killed runs of this shard left (a duplicate still writing it fails its own commit: the shard is done).
    const leftover = new RegExp(`^\\.${shardFolder(index)}\\.`);
    for (const entry of await readdir(this.location)) {
      if (leftover.test(entry)) await rm(join(this.location, entry), { recursive: true, force: true });
    }
  }

  async missing(count: number): Promise<number[]> {
    const missing: number[] = [];
    for (let i = 0; i < count; i++) {
      if (!existsSync(join(this.location, shardFolder(i), SHARD_SUCCESS))) missing.push(i);
    }
    return missing;
  }

  async fetch(index: number): Promise<string> {
    return join(this.location, shardFolder(index));
  }

  async remove(): Promise<void> {
    await rm(this.location, { recursive: true, force: true });
  }

  async close(): Promise<void> {}
}

/** The shard store of the config's output (a local folder, or the S3 prefix of an S3 output). */
export async function createShardStore(loaded: LoadedConfig, asOf: string): Promise<ShardStore> {
  const output = loaded.config.output;
  if (output.type === 'local') return new LocalShardStore(resolvePath(loaded, output.path), asOf);
  const { S3ShardStore } = await import('./s3-store.js');
  return new S3ShardStore(output, asOf, join(resolvePath(loaded, loaded.config.state_dir), 'tmp'));
}
