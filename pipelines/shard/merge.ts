// `churn merge --as-of D --shards N`: checks that every shard of D has finished and was built from the same inputs,
// config and models, loads the union of the shards' local tables into one DuckDB database, and then runs exactly
// what a single-node run runs after landing (runPipeline with the shards in landing's place): the global models,
// the quality gates, the export, the report, and the publish through the output's lock, ledger and sink.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LoadedConfig, resolvePath } from '../../config/load.js';
import { ENTITIES, type Entity } from '../../config/schema.js';
import { loadModels } from '../../transforms/runner.js';
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';
import type { Logger, ProgressListener } from '../base/log.js';
import { type PrebuiltTables, type RunResult, runAsOf, runPipeline } from '../run/index.js';
import { type LandResult, landEntity } from '../stages/land.js';
import { planShards, type ShardPlan } from './plan.js';
import { shardFingerprint } from './run.js';
import { ShardError } from './spec.js';
import {
  createShardStore,
  readShardManifest,
  type ShardLandingEntry,
  type ShardManifest,
  type ShardStore,
  shardFolder,
} from './store.js';

export interface MergeOptions {
  asOf?: string;
  /** The shard count N of `churn run --shard I/N`. */
  shards: number;
  log: Logger;
  /** When a shard has not finished: wait up to this many seconds for it instead of refusing. */
  waitForShards?: number;
  /** When another run holds the output's lock: wait for it (as `churn run --wait`). */
  wait?: boolean | number;
  /** Delete the shards of the date once the merge has published them. */
  removeShards?: boolean;
  now?: Date;
  onProgress?: ProgressListener;
}

interface Shard {
  index: number;
  dir: string;
  manifest: ShardManifest;
}

function list(indexes: readonly number[]): string {
  return indexes.length === 1 ? `shard ${indexes[0]}` : `shards ${indexes.join(', ')}`;
}

async function waitForShards(
  store: ShardStore,
  options: { asOf: string; count: number; seconds: number; log: Logger },
): Promise<void> {
  const until = Date.now() + options.seconds * 1000;
  let missing = await store.missing(options.count);
  while (missing.length > 0 && Date.now() < until) {
    options.log.info({ missing, location: store.location }, 'waiting for shards to finish');
    await sleep(Math.min(5_000, Math.max(100, until - Date.now())));
    missing = await store.missing(options.count);
  }
  if (missing.length === 0) return;
  const first = missing[0] ?? 0;
  throw new ShardError(
    `${list(missing)} of ${options.count} as of ${options.asOf} ${missing.length === 1 ? 'has' : 'have'} not finished ` +
      `(no _SUCCESS in ${store.location}/${shardFolder(first)}), so nothing was merged or published: run ` +
      `churn run --as-of ${options.asOf} --shard ${first}/${options.count}${missing.length > 1 ? ' (and the others)' : ''}, ` +
      'or re-run those indexes of the job, then merge again',
  );
}

/**
 * What every shard must agree on about an entity's input: all of it as landed, or, when its source extracted only
 * each shard's part (a warehouse query, `shard_filter`), which part: the shards' counts then add up (loadRaw).
 */
function sharedLanding(entry: ShardLandingEntry | undefined): string {
  if (!entry) return 'null';
  const { files, read, excluded, rows, checksum, shard_filter } = entry;
  return JSON.stringify(
    shard_filter ? { shard_filter, excluded } : { files, read, excluded, rows, checksum },
  );
}

function landingOf(manifest: ShardManifest): string {
  return ENTITIES.map((e) => `${e}:${sharedLanding(manifest.landing[e])}`).join('\n');
}

/** Checks that the shards belong together: one date, one count, one fingerprint, the same inputs. */
function checkShards(
  shards: readonly Shard[],
  expected: { asOf: string; count: number; fingerprint: string },
): void {
  const first = shards[0];
  if (!first) throw new ShardError('no shards to merge; give --shards N');
  for (const shard of shards) {
    const m = shard.manifest;
    if (m.as_of !== expected.asOf || m.shard.count !== expected.count || m.shard.index !== shard.index) {
      throw new ShardError(
        `${shard.dir} holds shard ${m.shard.index}/${m.shard.count} as of ${m.as_of}, not shard ${shard.index}/${expected.count} ` +
          `as of ${expected.asOf}: re-run that shard with --as-of ${expected.asOf} --shard ${shard.index}/${expected.count}`,
      );
    }
    if (m.fingerprint !== expected.fingerprint) {
      throw new ShardError(
        `shard ${shard.index} was built with another config, model or version than this merge's: re-run every shard ` +
          'with the config and image of the merge, then merge again',
      );
    }
    if (landingOf(m) !== landingOf(first.manifest)) {
      const differs = ENTITIES.find(
        (e) => sharedLanding(m.landing[e]) !== sharedLanding(first.manifest.landing[e]),
      );
      const [mine, theirs] = [m.landing[differs ?? 'orders'], first.manifest.landing[differs ?? 'orders']];
      if (mine?.shard_filter !== theirs?.shard_filter) {
        throw new ShardError(
          `shard ${shard.index} extracted ${differs} ${mine?.shard_filter ? `filtered by shard (${mine.shard_filter})` : 'whole'}, ` +
            `shard ${first.index} ${theirs?.shard_filter ? `filtered by shard (${theirs.shard_filter})` : 'whole'}: ` +
            "the source's columns changed while the shards ran; re-run every shard on the same inputs, then merge again",
        );
      }
      throw new ShardError(
        `shard ${shard.index} landed other ${differs ?? 'inputs'} than shard ${first.index} ` +
          `(${m.landing[differs ?? 'orders']?.rows ?? 0} vs ${first.manifest.landing[differs ?? 'orders']?.rows ?? 0} rows, or other contents): ` +
          'the exports changed while the shards ran; re-run every shard on the same inputs, then merge again',
      );
    }
  }
  for (const entity of ENTITIES) checkFilteredRows(entity, shards);
}

/**
 * An entity whose source extracted each shard's part (a warehouse query): every shard saw the same number of source
 * rows, and the shards account for each of them once (each row is one shard's: its customer's, or shard 0's).
 */
function checkFilteredRows(entity: Entity, shards: readonly Shard[]): void {
  const entries = shards.map((s) => s.manifest.landing[entity]);
  if (!entries[0]?.shard_filter) return;
  const counts = entries.map((e) => e?.source_rows ?? null);
  if (counts.some((n) => n === null)) return; // an incremental landing: the source's count says nothing
  const other = counts.findIndex((n) => n !== counts[0]);
  if (other >= 0) {
    throw new ShardError(
      `the ${entity} source had ${counts[0]} rows when shard 0 ran and ${counts[other]} when shard ${other} ran: ` +
        'it changed while the shards ran; re-run every shard on the same data, then merge again',
    );
  }
  const owned = entries.reduce((n, e) => n + (e?.owned ?? 0), 0);
  if (owned !== counts[0]) {
    throw new ShardError(
      `the shards account for ${owned} of the ${counts[0]} ${entity} rows of the source, so the warehouse put rows ` +
        'in other shards than the pipeline does (its text of customer_id differs from the landed text, e.g. a ' +
        'timestamp or binary column) or the table changed while the shards ran; nothing was published: make ' +
        'customer_id a text or integer column (cast it in a query: source) and re-run every shard, then merge again',
    );
  }
}

/** Loads the union of the shards' local tables, typed as the shards built them. */
async function loadTables(db: Db, shards: readonly Shard[], plan: ShardPlan): Promise<void> {
  for (const model of [...plan.checked, ...plan.local]) {
    const described = shards.map((s) => s.manifest.tables[model.name]);
    const columns = described[0]?.columns;
    if (!columns || described.some((t) => JSON.stringify(t?.columns) !== JSON.stringify(columns))) {
      throw new ShardError(
        `the shards' ${model.name} tables are missing or differ in their columns: re-run every shard, then merge again`,
      );
    }
    const files = shards.map((s) => sqlString(join(s.dir, `${model.name}.parquet`)));
    const select = columns.map((c) => `cast(${sqlIdent(c.name)} as ${c.type}) as ${sqlIdent(c.name)}`);
    await db.run(
      `create or replace table ${sqlIdent(model.name)} as
       select ${select.join(', ')} from read_parquet([${files.join(', ')}])`,
    );
    const rows = await db.number(`select count(*) from ${sqlIdent(model.name)}`);
    const expected = described.reduce((n, t) => n + (t?.rows ?? 0), 0);
    if (rows !== expected) {
      throw new ShardError(
        `the shards' ${model.name} files hold ${rows} rows, their manifests ${expected}: re-run every shard, then merge again`,
      );
    }
  }
}

/**
 * An entity's whole input as the shards landed it: every shard's landing, or, when its source filtered by shard, the
 * sum of the rows each shard accounts for (each row is one shard's: its customer's, or shard 0's without one).
 */
function inputOf(
  entity: Entity,
  shards: readonly Shard[],
): Pick<ShardLandingEntry, 'files' | 'read' | 'excluded' | 'rows'> | undefined {
  const first = shards[0]?.manifest.landing[entity];
  if (!first?.shard_filter) return first;
  const entries = shards.map((s) => s.manifest.landing[entity]);
  const rows = entries.reduce((n, e) => n + (e?.owned ?? 0), 0);
  const files = entries.reduce((n, e) => n + (e?.files ?? 0), 0);
  // A source that filters by shard applies `where:` in its query too: it reads the rows it lands.
  return { files, read: rows, excluded: first.excluded, rows };
}

/**
 * The raw tables of the merge: one row per landed row (its provenance), from the checked tables, which hold one row
 * per raw row. Every landed row must be in exactly one shard; the gates count raw rows from here.
 */
async function loadRaw(
  db: Db,
  shards: readonly Shard[],
  plan: ShardPlan,
  log: Logger,
  onEntity?: (entity: Entity, rows: number, result: LandResult) => void,
): Promise<Partial<Record<Entity, number>>> {
  const landed: Partial<Record<Entity, number>> = {};
  for (const entity of ENTITIES) {
    const landing = inputOf(entity, shards);
    if (!landing) {
      await landEntity(db, entity, undefined, undefined, log);
      continue;
    }
    const checked = `chk_${entity}`;
    if (!plan.checked.some((m) => m.name === checked)) {
      throw new ShardError(
        `no shard built ${checked}, so the ${entity} rows cannot be counted: mark it shard: local`,
      );
    }
    await db.run(
      `create or replace table ${sqlIdent(`raw_${entity}`)} as select _source_file, _source_row from ${sqlIdent(checked)}`,
    );
    const rows = await db.number(`select count(*) from ${sqlIdent(`raw_${entity}`)}`);
    if (rows !== landing.rows) {
      throw new ShardError(
        `the shards hold ${rows} ${entity} rows but ${landing.rows} were landed: a row went to no shard or to two; ` +
          'nothing was published; run the date on one node (churn run) and report the inputs that cause it',
      );
    }
    landed[entity] = rows;
    onEntity?.(entity, rows, {
      entity,
      files: landing.files,
      rows,
      read: landing.read,
      excluded: landing.excluded,
    });
  }
  return landed;
}

/** Merges the finished shards of D and publishes the result as `churn run` would (trigger `merge` in the ledger). */
export async function mergeShards(loaded: LoadedConfig, options: MergeOptions): Promise<RunResult> {
  const { config } = loaded;
  const { log } = options;
  const count = options.shards;
  const now = options.now ?? new Date();
  const asOf = runAsOf(config, options.asOf, now);
  const store = await createShardStore(loaded, asOf);
  const scratch = join(
    resolvePath(loaded, config.state_dir),
    'tmp',
    `merge-${asOf}-${randomBytes(3).toString('hex')}`,
  );
  try {
    await waitForShards(store, { asOf, count, seconds: options.waitForShards ?? 0, log });
    const plan = await planShards(await loadModels());
    const shards: Shard[] = [];
    for (let index = 0; index < count; index++) {
      const dir = await store.fetch(index, scratch, log);
      shards.push({ index, dir, manifest: await readShardManifest(dir) });
    }
    checkShards(shards, { asOf, count, fingerprint: shardFingerprint(loaded, asOf, count, plan.digest) });
    const globalNames = new Set(plan.global.map((m) => m.name));
    const prebuilt: PrebuiltTables = {
      land: async (db, _config, _dirs, landLog, onEntity) => {
        await loadTables(db, shards, plan);
        return loadRaw(db, shards, plan, landLog, onEntity);
      },
      models: (all) => all.filter((m) => globalNames.has(m.name)),
    };
    log.info({ asOf, shards: count, location: store.location }, 'merging shards');
    const result = await runPipeline(loaded, {
      asOf,
      log,
      now,
      wait: options.wait,
      onProgress: options.onProgress,
      trigger: 'merge',
      prebuilt,
    });
    if (options.removeShards) await store.remove();
    return result;
  } finally {
    await store.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
