// `churn run --as-of D --shard I/N`: lands every input, keeps the rows of the customers of shard I (filter.ts),
// builds the local models (plan.ts) and writes their tables to the shard store (store.ts), _SUCCESS last. It takes no
// lock and publishes nothing: `churn merge` does both, once every shard has finished. Shards of one date run at
// the same time, on as many machines as there are shards.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../../config/load.js';
import { ENTITIES, type Entity } from '../../config/schema.js';
import { paramColumns } from '../../transforms/params.js';
import { type AnyModel, loadMacros, loadModels, runModels } from '../../transforms/runner.js';
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';
import { EventStream, logStages, runStage, type StageEvent } from '../base/events.js';
import type { Logger } from '../base/log.js';
import { openRunDatabase } from '../run/database.js';
import { runAsOf } from '../run/dates.js';
import { recordTimings } from '../run/events.js';
import type { ShardLanding } from '../sources/source.js';
import { type LandResult, landAll } from '../stages/land.js';
import {
  assertShardRows,
  checkShardFiltered,
  createShardMacro,
  keepShardCustomers,
  keepShardRows,
  ownedRows,
  rawChecksum,
} from './filter.js';
import { planShards } from './plan.js';
import type { ShardFilterKind, ShardSpec } from './spec.js';
import { createShardStore, type ShardManifest, writeShardManifest } from './store.js';

export interface ShardRunOptions {
  asOf?: string;
  shard: ShardSpec;
  log: Logger;
  /** Wall clock of the shard's start (tests pin it); rows stamped later are quarantined, as in a run. */
  now?: Date;
}

export interface ShardRunResult {
  asOf: string;
  shard: ShardSpec;
  /** Where the shard was written (`.../_shards/as_of=D/shard=I`). */
  location: string;
  tables: Record<string, number>;
  ms: number;
}

/**
 * What the shards and the merge must agree on: the as-of date, the shard count, the local models and macros, and
 * the config they read (sources, segments and every run parameter). Settings of the machine (duckdb, lock, output
 * paths) may differ.
 */
export function shardFingerprint(loaded: LoadedConfig, asOf: string, count: number, digest: string): string {
  const { config } = loaded;
  const configured = ENTITIES.filter((e) => config.sources[e] !== undefined);
  const params = paramColumns(config, { asOf, configuredEntities: configured, runStartedAt: new Date(0) });
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({ asOf, count, digest, sources: config.sources, segments: config.segment_by, params }),
  );
  for (const macro of loadMacros()) hash.update(macro.sql);
  return hash.digest('hex');
}

async function writeTable(db: Db, table: string, dir: string): Promise<ShardManifest['tables'][string]> {
  const columns = await db.all<{ column_name: string; column_type: string }>(`describe ${sqlIdent(table)}`);
  const file = join(dir, `${table}.parquet`);
  await db.run(
    `copy (select * from ${sqlIdent(table)}) to ${sqlString(file)} (format parquet, compression zstd)`,
  );
  return {
    rows: await db.number(`select count(*) from ${sqlIdent(table)}`),
    columns: columns.map((c) => ({ name: c.column_name, type: c.column_type })),
  };
}

export async function runShard(loaded: LoadedConfig, options: ShardRunOptions): Promise<ShardRunResult> {
  const { config } = loaded;
  const { log, shard } = options;
  const started = performance.now();
  const now = options.now ?? new Date();
  const asOf = runAsOf(config, options.asOf, now);
  const name = `${shard.index}-of-${shard.count}`;
  const stateDir = resolvePath(loaded, config.state_dir);
  const tmpDir = join(stateDir, 'tmp', `${asOf}_shard-${name}_${randomBytes(3).toString('hex')}`);
  const timings: Record<string, number> = {};
  const events = new EventStream<StageEvent>();
  events.on(logStages(log, { shard: name }));
  events.on(recordTimings(timings));
  log.info({ asOf, shard: name, config: loaded.file }, 'shard run started');
  const plan = await planShards(await loadModels());
  await mkdir(tmpDir, { recursive: true });
  const store = await createShardStore(loaded, asOf);
  const landed: Partial<Record<Entity, LandResult>> = {};
  /** The entities whose source filtered by shard itself (a warehouse query): how, and the rows it had in all. */
  const sourceFiltered: Partial<Record<Entity, { how: ShardFilterKind; rows: number | null }>> = {};
  const landingShard: ShardLanding = {
    ...shard,
    filtered: (e, how, rows) => {
      sourceFiltered[e] = { how, rows };
    },
  };
  let opened: Db | undefined;
  try {
    const { db, configured } = await openRunDatabase({
      config,
      baseDir: loaded.baseDir,
      asOf,
      now,
      // Each shard lands into its own folder: shards on one machine never share a source's incremental state.
      landingRoot: join(stateDir, 'shards', name, 'landing'),
      land: (db, cfg, dirs, landLog, onEntity) =>
        landAll(db, cfg, { ...dirs, shard: landingShard }, landLog, onEntity),
      log,
      scratchDir: tmpDir,
      onLanded: (entity, _rows, result) => {
        landed[entity] = result;
      },
      models: [],
      events,
    });
    opened = db;
    await createShardMacro(db);

    const landing: ShardManifest['landing'] = {};
    for (const entity of configured) {
      const result = landed[entity];
      if (!result) continue;
      const { checksum } = await rawChecksum(db, entity);
      const { files, read, excluded, rows } = result;
      const how = sourceFiltered[entity]?.how;
      if (how) await checkShardFiltered(db, entity, shard, how);
      // A source that extracted only this shard's part: the merge adds up the rows each shard accounts for.
      const part = how && {
        shard_filter: how,
        owned: await ownedRows(db, entity, shard),
        source_rows: sourceFiltered[entity]?.rows ?? null,
      };
      landing[entity] = { files, read, excluded, rows, checksum, ...part };
    }

    const ctx = { db, config, log, asOf, notes: [] as string[] };
    await runStage(events, 'transform', async () => {
      const filtered = new Set<string>();
      for (const model of plan.checked) {
        for (const entity of ENTITIES) {
          const raw = `raw_${entity}`;
          if (filtered.has(raw) || !(plan.rawInputs.get(model.name) ?? []).includes(raw)) continue;
          await keepShardRows(db, entity, shard);
          filtered.add(raw);
        }
        await runModels(ctx, [model]);
      }
      for (const model of plan.checked) await keepShardCustomers(db, model.name, shard);
      await runModels(ctx, plan.local);
      for (const model of [...plan.checked, ...plan.local]) {
        await assertShardRows(db, model.name, model.file, shard);
      }
    });

    const locals: AnyModel[] = [...plan.checked, ...plan.local];
    const staged = await store.staging(shard.index);
    const tables: ShardManifest['tables'] = {};
    try {
      await runStage(events, 'export', async () => {
        for (const model of locals) tables[model.name] = await writeTable(db, model.name, staged);
      });
      await writeShardManifest(staged, {
        as_of: asOf,
        shard,
        fingerprint: shardFingerprint(loaded, asOf, shard.count, plan.digest),
        started_at: now.toISOString(),
        finished_at: new Date().toISOString(),
        landing,
        tables,
        timings_ms: timings,
      });
      await runStage(events, 'publish', async () => {
        // Every file is written, the shard is not yet complete.
        await events.emit({ type: 'step', stage: 'publish', step: 'shard-commit' });
        await store.commit(shard.index, staged, log);
      });
    } catch (err) {
      await rm(staged, { recursive: true, force: true });
      throw err;
    }
    const location = `${store.location}/shard=${shard.index}`;
    const rows = Object.fromEntries(Object.entries(tables).map(([t, m]) => [t, m.rows]));
    const ms = Math.round(performance.now() - started);
    log.info({ asOf, shard: name, location, ms }, 'shard run succeeded');
    return { asOf, shard, location, tables: rows, ms };
  } finally {
    opened?.close();
    await store.close();
    await rm(tmpDir, { recursive: true, force: true });
  }
}
