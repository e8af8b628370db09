// A run's database: DuckDB opened in the business time zone with file paths relative to the config, the run
// parameters, the macros, the history placeholders, the landed exports and the models built on them. The run,
// a shard, the sample's detection replay and the tests all open it here, so that they build the same tables.
import { join } from 'node:path';
import type { Config, Entity } from '../../config/schema.js';
import { ENTITIES } from '../../config/schema.js';
import { createRunParams } from '../../transforms/params.js';
import type { Landing } from '../../transforms/reconciliation.js';
import {
  type AnyModel,
  loadModels,
  type ModelTiming,
  type ReleaseOptions,
  runMacros,
  runModels,
  type TableReader,
} from '../../transforms/runner.js';
import { Db, sqlString } from '../base/duckdb.js';
import { EventStream, runStage, type StageEvent, type StageEvents } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { HistoryFile } from '../outcomes/history.js';
import { type LandResult, landAll } from '../stages/land.js';

export interface RunDatabaseOptions {
  config: Config;
  /** The config's folder: relative source paths and DuckDB's file_search_path resolve against it. */
  baseDir: string;
  asOf: string;
  /** The run's start: rows stamped later are quarantined (default 2030-01-01, far after any fixture). */
  now?: Date;
  /** Where the sources keep what they land (`<state>/landing`). */
  landingRoot: string;
  log: Logger;
  /**
   * The run's scratch folder: its database file and DuckDB's spill, under the config's memory limit and threads (a
   * run); without it, an in-memory database with DuckDB's defaults.
   */
  scratchDir?: string;
  /** Loads the raw tables in landing's place (default landAll; `churn merge` loads the shards' tables). */
  land?: typeof landAll;
  /** After each entity is landed. */
  onLanded?: (entity: Entity, rows: number, result: LandResult) => void;
  /**
   * Reads what the run needs of the output's history, after landing (the audiences a suppression window and the
   * outcomes read). Without it both history tables stay empty.
   */
  history?: (db: Db) => Promise<void>;
  /** The models to build (default every model; `[]` builds none). */
  models?: AnyModel[];
  /** Where land and transform tell their start, progress and end (a run's stream; default none). */
  events?: StageEvents;
  /**
   * Drop every table once its last reader is done, except `keep` (what the stages after the models read), and
   * take the `readers` (the gates' reads, made once landing has counted) while their tables exist. Without it every
   * table stays to the end (the tests and a shard read them).
   */
  release?: {
    keep: ReadonlySet<string>;
    readers: (landed: Pick<RunDatabase, 'db' | 'configured' | 'landing'>) => readonly TableReader[];
  };
}

export interface RunDatabase {
  db: Db;
  /** The entities with a configured source. */
  configured: Entity[];
  /** What landing counted per entity (read, left out by `where`): the reconciliation starts from it. */
  landing: Partial<Record<Entity, Landing>>;
  /** Raw rows landed per entity. */
  landed: Record<string, number>;
  /** Each model built, in order. */
  timings: ModelTiming[];
  /** What the models noted for the manifest. */
  notes: string[];
}

/** The run's database file in its scratch folder. */
export const RUN_DATABASE_FILE = 'run.duckdb';

/** The run's start when the caller gives none: after any date a fixture stamps, so that nothing is "future". */
const FIXTURE_NOW = new Date('2030-01-01T00:00:00Z');

/**
 * Replaces audience_history (the published audiences a suppression window reads) with the given partitions of
 * reactivation_audience; empty without any.
 */
export async function loadAudienceHistory(db: Db, files: readonly HistoryFile[]): Promise<void> {
  if (files.length === 0) {
    await db.run(
      `create or replace table audience_history as
       select cast(null as date) as as_of, cast(null as varchar) as customer_id, cast(null as varchar) as email limit 0`,
    );
    return;
  }
  const parts = files.map(
    (f) =>
      `select date ${sqlString(f.asOf)} as as_of, customer_id, email from read_parquet(${sqlString(f.path)})`,
  );
  await db.run(`create or replace table audience_history as ${parts.join(' union all ')}`);
}

/**
 * The tables there before the models that the transform may drop after their last reader: the raw tables, and the
 * tables of models built elsewhere (`churn merge` loads the shards'), each under the model that made it.
 */
async function releasableInputs(
  db: Db,
  all: readonly AnyModel[],
  building: readonly AnyModel[],
): Promise<ReleaseOptions['inputs']> {
  const present = new Set(
    (
      await db.all<{ table_name: string }>(
        `select table_name from information_schema.tables where table_schema = 'main' and table_type = 'BASE TABLE'`,
      )
    ).map((r) => r.table_name),
  );
  const inputs = new Map<string, readonly string[]>();
  for (const table of present) if (/^raw_[a-z_]+$/.test(table)) inputs.set(table, [table]);
  const built = new Set(building.map((m) => m.name));
  for (const model of all) {
    if (built.has(model.name)) continue;
    const tables = model.creates.filter((t) => present.has(t));
    if (tables.length > 0) inputs.set(model.name, tables);
  }
  return inputs;
}

/** Opens the run's database and builds it up to its models (close the database when done). */
export async function openRunDatabase(options: RunDatabaseOptions): Promise<RunDatabase> {
  const { config, baseDir, asOf, log } = options;
  const events = options.events ?? new EventStream<StageEvent>();
  const db = await Db.open({
    ...(options.scratchDir && {
      // `duckdb.storage: file`: a database file in the scratch folder rather than memory: DuckDB writes each table
      // compressed and can evict its pages under the memory limit, instead of spilling them whole to temp files.
      // Removed with the folder.
      ...(config.duckdb.storage === 'file' && { path: join(options.scratchDir, RUN_DATABASE_FILE) }),
      memoryLimit: config.duckdb.memory_limit,
      threads: config.duckdb.threads,
      tempDirectory: options.scratchDir,
    }),
    timeZone: config.business_time_zone,
    fileSearchPath: baseDir,
  });
  try {
    const configured = ENTITIES.filter((e) => config.sources[e] !== undefined);
    await createRunParams(db, config, {
      asOf,
      runStartedAt: options.now ?? FIXTURE_NOW,
      configuredEntities: configured,
    });
    // The macros also create reactivation_audience_history, empty (sql/macros/outcomes.sql).
    await runMacros(db);
    await loadAudienceHistory(db, []);

    const landing: RunDatabase['landing'] = {};
    const landed: Record<string, number> = {};
    const total = configured.length;
    await runStage(
      events,
      'land',
      (progress) => {
        progress({ done: 0, total, unit: 'sources' });
        return (options.land ?? landAll)(
          db,
          config,
          { baseDir, landingRoot: options.landingRoot },
          log,
          (entity, rows, result) => {
            landed[entity] = rows;
            landing[entity] = { read: result.read, excluded: result.excluded };
            const done = Object.keys(landed).length;
            progress({ done, total, unit: 'sources', item: entity, rows });
            options.onLanded?.(entity, rows, result);
          },
        );
      },
      (rows) => ({ rows: { ...landed }, fields: { rows } }),
    );
    await options.history?.(db);

    const notes: string[] = [];
    const models = options.models ?? (await loadModels());
    const release = options.release && {
      keep: options.release.keep,
      inputs: await releasableInputs(db, options.models ? await loadModels() : models, models),
      readers: options.release.readers({ db, configured, landing }),
    };
    const timings: ModelTiming[] = [];
    if (models.length > 0) {
      await runStage(
        events,
        'transform',
        (progress) => {
          progress({ done: 0, total: models.length, unit: 'models' });
          return runModels(
            { db, config, log, asOf, notes },
            models,
            (t) => {
              timings.push(t);
              progress({
                done: timings.length,
                total: models.length,
                unit: 'models',
                item: t.model,
                rows: t.rows,
              });
              log.debug({ model: t.model, rows: t.rows, ms: t.ms }, 'model built');
            },
            release,
          );
        },
        (built) => ({
          rows: Object.fromEntries(built.map((t) => [t.model, t.rows])),
          fields: { models: built.length },
        }),
      );
    }
    return { db, configured, landing, landed, timings, notes };
  } catch (err) {
    db.close();
    throw err;
  }
}
