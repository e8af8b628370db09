// Runs the SQL models of sql/ (and the TypeScript models of transforms/models/) in dependency order.
// A model's dependencies are the tables its SQL reads, as DuckDB's parser sees them (transforms/dependencies.ts);
// each SQL model becomes `create or replace table <name>`. A table that is neither a model nor a source of the
// run (sql/staging/__sources.yml) is an error that names it and the file that reads it.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { Db, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { tablesRead } from './dependencies.js';
import { LAYERS, type Layer, type ModelCatalog, readCatalog, SQL_DIR } from './metadata.js';
import type { ModelContext, TsModel } from './model.js';
import { tsModels } from './models/index.js';

export { LAYERS, type Layer, SQL_DIR } from './metadata.js';

interface ModelBase {
  name: string;
  layer: Layer;
  /** Where it is defined, relative to the project root (sql/facts/x.sql, transforms/models/x.ts). */
  file: string;
  /** The models it reads (the ones that create the tables it reads), sorted. */
  reads: readonly string[];
  /** The tables of the run it reads (sql/staging/__sources.yml: run_params, raw_<entity>...), sorted. */
  sources: readonly string[];
  /** The tables it creates: its own, and for a TypeScript model the others its yml names. */
  creates: readonly string[];
}

export interface SqlModel extends ModelBase {
  kind: 'sql';
  sql: string;
  /** `customer_id`: built in ranges of customer_id on a large population (its yml's config.batch_by). */
  batchBy: 'customer_id' | null;
}

export interface CodeModel extends ModelBase {
  kind: 'ts';
  model: TsModel;
}

export type AnyModel = SqlModel | CodeModel;

export class ModelError extends Error {
  override readonly name = 'ModelError';
}

export interface LoadOptions {
  /** The folder of the layer folders and macros (default: the project's sql/). */
  dir?: string;
  /** The TypeScript models (default: transforms/models/). */
  tsModels?: readonly TsModel[];
}

function sqlFiles(dir: string): { name: string; layer: Layer; path: string }[] {
  const files: { name: string; layer: Layer; path: string }[] = [];
  for (const layer of LAYERS) {
    let names: string[];
    try {
      names = readdirSync(join(dir, layer)).filter((f) => f.endsWith('.sql'));
    } catch {
      continue;
    }
    for (const f of names.sort()) files.push({ name: basename(f, '.sql'), layer, path: join(dir, layer, f) });
  }
  return files;
}

interface Placed {
  model: TsModel;
  file: string;
  layer: Layer;
  creates: string[];
}

/** Each TypeScript model with its layer and the tables its yml says it creates (`materialized_by`). */
function placeTsModels(catalog: ModelCatalog, models: readonly TsModel[]): Placed[] {
  return models.map((model) => {
    const file = `transforms/models/${model.name}.ts`;
    const described = catalog.models.filter((m) => m.materializedBy === file);
    const own = described.find((m) => m.name === model.name);
    if (!own) {
      throw new ModelError(
        `the TypeScript model ${model.name} (${file}) has no yml: describe its table ${model.name} in ` +
          `sql/<layer>/${model.name}.yml with config: { materialized_by: ${file} }`,
      );
    }
    const others = described.map((m) => m.name).filter((n) => n !== model.name);
    return { model, file, layer: own.layer, creates: [model.name, ...others] };
  });
}

/** Maps the tables a model reads to the models that create them; a table nobody creates is an error. */
function resolver(
  catalog: ModelCatalog,
  sqlNames: readonly string[],
  placed: readonly Placed[],
): (model: string, file: string, tables: readonly string[]) => { reads: string[]; sources: string[] } {
  const producer = new Map<string, string>(sqlNames.map((name) => [name, name]));
  for (const p of placed) for (const table of p.creates) producer.set(table, p.model.name);
  for (const meta of catalog.models) {
    if (!producer.has(meta.name)) {
      throw new ModelError(
        `${meta.file} describes model ${meta.name}, but there is no sql/${meta.layer}/${meta.name}.sql` +
          `${meta.materializedBy ? ` and no TypeScript model ${basename(meta.materializedBy, '.ts')}` : ''}: add the model or remove the entry`,
      );
    }
  }
  // Sources: the tables the run provides before any model.
  const sources = new Set(catalog.sources.map((s) => s.name));
  return (model, file, tables) => {
    const reads = new Set<string>();
    const fromRun = new Set<string>();
    for (const table of tables) {
      const by = producer.get(table);
      if (by !== undefined) {
        if (by !== model) reads.add(by);
      } else if (sources.has(table)) {
        fromRun.add(table);
      } else {
        throw new ModelError(
          `model ${model} (${file}) reads ${table}, which is not a model (no sql/<layer>/${table}.sql) nor a table the ` +
            'run provides (sql/staging/__sources.yml): fix the name, or add the model',
        );
      }
    }
    return { reads: [...reads].sort(), sources: [...fromRun].sort() };
  };
}

/**
 * Every model of `dir` (SQL files and the TypeScript models), each with the models it reads, resolved by DuckDB's
 * parser. Throws a ModelError naming the file when a model cannot be parsed or reads a table no model creates.
 */
export async function loadModels(options: LoadOptions = {}): Promise<AnyModel[]> {
  const dir = options.dir ?? SQL_DIR;
  const root = join(dir, '..');
  const catalog = readCatalog(dir);
  const files = sqlFiles(dir);
  const placed = placeTsModels(catalog, options.tsModels ?? tsModels);
  const resolve = resolver(
    catalog,
    files.map((f) => f.name),
    placed,
  );
  const models: AnyModel[] = [];
  const db = await Db.open();
  try {
    for (const f of files) {
      const sql = readFileSync(f.path, 'utf8');
      const file = relative(root, f.path);
      const parsed = await tablesRead(db, sql);
      if ('error' in parsed) {
        throw new ModelError(`model ${f.name} (${file}) cannot be parsed: ${parsed.error}; fix the SQL`);
      }
      const { reads, sources } = resolve(f.name, file, parsed.tables);
      const batchBy = catalog.models.find((m) => m.name === f.name)?.batchBy ?? null;
      if (batchBy && !/\bin_customer_batch\s*\(/.test(sql)) {
        throw new ModelError(
          `model ${f.name} (${file}) says batch_by: ${batchBy} in its yml but never calls in_customer_batch(customer_id): ` +
            'filter each import CTE of per-customer rows with it (sql/macros/batch.sql), or remove batch_by',
        );
      }
      models.push({
        kind: 'sql',
        name: f.name,
        layer: f.layer,
        file,
        sql,
        batchBy,
        reads,
        sources,
        creates: [f.name],
      });
    }
  } finally {
    db.close();
  }
  for (const p of placed) {
    const { reads, sources } = resolve(p.model.name, p.file, p.model.dependsOn);
    models.push({
      kind: 'ts',
      name: p.model.name,
      layer: p.layer,
      file: p.file,
      model: p.model,
      reads,
      sources,
      creates: p.creates,
    });
  }
  return models;
}

const MACRO_ORDER = ['text.sql', 'time.sql', 'quality.sql'];

export function loadMacros(dir: string = SQL_DIR): { file: string; sql: string }[] {
  const macroDir = join(dir, 'macros');
  // Macros that others call come first.
  const rank = (f: string) => {
    const i = MACRO_ORDER.indexOf(f);
    return i === -1 ? MACRO_ORDER.length : i;
  };
  return readdirSync(macroDir)
    .filter((f) => f.endsWith('.sql'))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((f) => ({ file: join(macroDir, f), sql: readFileSync(join(macroDir, f), 'utf8') }));
}

/** The models a model reads, among the given names. */
export function dependencies(model: AnyModel, names: ReadonlySet<string>): string[] {
  return model.reads.filter((d) => names.has(d));
}

/** The wanted models and every model they read, directly or not. */
export function selectModels(models: AnyModel[], wanted: readonly string[]): AnyModel[] {
  const byName = new Map(models.map((m) => [m.name, m]));
  const names = new Set(byName.keys());
  const keep = new Set<string>();
  const visit = (name: string): void => {
    if (keep.has(name)) return;
    const model = byName.get(name);
    if (!model) throw new ModelError(`no model named ${name}`);
    keep.add(name);
    for (const dep of dependencies(model, names)) visit(dep);
  };
  for (const name of wanted) visit(name);
  return models.filter((m) => keep.has(m.name));
}

/** Models in an order where each comes after everything it reads (stable: layer, then name). */
export function orderModels(models: AnyModel[]): AnyModel[] {
  const byName = new Map(models.map((m) => [m.name, m]));
  const names = new Set(byName.keys());
  const ordered: AnyModel[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (model: AnyModel, path: string[]): void => {
    const s = state.get(model.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw new ModelError(`models depend on each other in a cycle: ${[...path, model.name].join(' -> ')}`);
    }
    state.set(model.name, 'visiting');
    for (const dep of dependencies(model, names)) visit(byName.get(dep)!, [...path, model.name]);
    state.set(model.name, 'done');
    ordered.push(model);
  };
  const layerRank = (m: AnyModel) => LAYERS.indexOf(m.layer);
  for (const model of [...models].sort(
    (a, b) => layerRank(a) - layerRank(b) || a.name.localeCompare(b.name),
  )) {
    visit(model, []);
  }
  return ordered;
}

export interface ModelTiming {
  model: string;
  layer: Layer;
  rows: number;
  ms: number;
  /** Built in this many ranges of customer_id (a batched model on a large population); absent for one pass. */
  batches?: number;
}

/** sql/macros/batch.sql: the batch filter that keeps every row, run again after a batched model. */
const EVERY_CUSTOMER = readFileSync(join(SQL_DIR, 'macros', 'batch.sql'), 'utf8');

/**
 * The ranges of customer_id a batched model is built in, as SQL predicates on `customer_id`: contiguous, covering
 * every value, from the quantiles of stg_customers' ids; none when the population fits one batch
 * (duckdb.customers_per_batch) or there is no stg_customers to count.
 */
async function customerBatches(ctx: ModelContext): Promise<string[]> {
  const perBatch = ctx.config.duckdb.customers_per_batch;
  if (perBatch === 0 || !(await ctx.db.tableExists('stg_customers'))) return [];
  const customers = await ctx.db.number('select count(*) from stg_customers');
  const k = Math.ceil(customers / perBatch);
  if (k <= 1) return [];
  const quantiles = Array.from({ length: k - 1 }, (_, i) => (i + 1) / k);
  const row = await ctx.db.one<{ bounds: string[] }>(
    `select quantile_disc(customer_id, [${quantiles.join(', ')}]) as bounds from stg_customers`,
  );
  const bounds = [...new Set(row?.bounds ?? [])].map(sqlString);
  return bounds.length === 0
    ? []
    : [
        `customer_id < ${bounds[0]}`,
        ...bounds.slice(1).map((b, i) => `customer_id >= ${bounds[i]} and customer_id < ${b}`),
        `customer_id >= ${bounds[bounds.length - 1]}`,
      ];
}

/** Builds a SQL model's table; a batched one once per range of customer_id. Returns the number of passes. */
async function buildSqlModel(ctx: ModelContext, model: SqlModel): Promise<number> {
  const batches = model.batchBy ? await customerBatches(ctx) : [];
  if (batches.length === 0) {
    await ctx.db.run(`create or replace table ${model.name} as\n${model.sql}`);
    return 1;
  }
  try {
    for (const [i, predicate] of batches.entries()) {
      await ctx.db.run(`create or replace macro in_customer_batch(customer_id) as ${predicate}`);
      await ctx.db.run(
        i === 0
          ? `create or replace table ${model.name} as\n${model.sql}`
          : `insert into ${model.name}\n${model.sql}`,
      );
      ctx.log.debug({ model: model.name, batch: i + 1, of: batches.length }, 'customer batch built');
    }
  } finally {
    await ctx.db.run(EVERY_CUSTOMER);
  }
  return batches.length;
}

export async function runMacros(db: Db, dir: string = SQL_DIR): Promise<void> {
  for (const macro of loadMacros(dir)) {
    try {
      await db.run(macro.sql);
    } catch (err) {
      throw new ModelError(`macro file ${macro.file} failed: ${(err as Error).message}`);
    }
  }
}

/**
 * A read of built tables outside the models (a gate's query) that must happen while they exist: when the runner
 * drops tables after their last reader, it runs this as soon as every table it reads is built, and keeps those
 * tables until it has.
 */
export interface TableReader {
  /** What it reads for (in errors). */
  name: string;
  tables: readonly string[];
  run(): Promise<void>;
}

/**
 * Dropping each table once nothing reads it any more, so that the raw, checked and staging tables do not stay
 * resident while the later models build (a run's memory and spill at scale).
 */
export interface ReleaseOptions {
  /** Tables read after the models (published, exported, the manifest's and the summary's): never dropped. */
  keep: ReadonlySet<string>;
  /**
   * Tables there before the first model that may be dropped after their last reader, by what made them: a source
   * (raw_<entity>: itself) or a model built elsewhere (`churn merge` loads the shards' tables: its tables).
   */
  inputs: ReadonlyMap<string, readonly string[]>;
  /** Reads of tables besides the models'; a reader of kept tables only is not run (its tables stay). */
  readers: readonly TableReader[];
}

/** Where, in the build order, each reader runs and each droppable table is dropped (-1: before the first model). */
function releasePlan(
  ordered: readonly AnyModel[],
  release: ReleaseOptions,
): { readersAfter: Map<number, TableReader[]>; dropsAfter: Map<number, string[]> } {
  const producer = new Map<string, number>();
  ordered.forEach((m, i) => {
    for (const t of m.creates) producer.set(t, i);
  });
  const byName = new Map(ordered.map((m) => [m.name, m]));
  const given = new Set([...release.inputs.values()].flat());
  const droppable = (t: string) => !release.keep.has(t) && (producer.has(t) || given.has(t));
  const lastUse = new Map<string, number>();
  const use = (t: string, i: number) => {
    if (droppable(t)) lastUse.set(t, Math.max(lastUse.get(t) ?? i, i));
  };
  for (const t of given) use(t, -1);
  ordered.forEach((m, i) => {
    for (const t of m.creates) use(t, i);
    for (const t of m.sources) use(t, i);
    // A model reads every table of the models it reads (a TypeScript model creates several).
    for (const r of m.reads) for (const t of byName.get(r)?.creates ?? release.inputs.get(r) ?? []) use(t, i);
  });
  const readersAfter = new Map<number, TableReader[]>();
  for (const reader of release.readers) {
    if (!reader.tables.some(droppable)) continue;
    const at = Math.max(-1, ...reader.tables.map((t) => producer.get(t) ?? -1));
    readersAfter.set(at, [...(readersAfter.get(at) ?? []), reader]);
    for (const t of reader.tables) use(t, at);
  }
  const dropsAfter = new Map<number, string[]>();
  for (const [t, i] of lastUse) dropsAfter.set(i, [...(dropsAfter.get(i) ?? []), t]);
  return { readersAfter, dropsAfter };
}

async function released(ctx: ModelContext, at: number, plan: ReturnType<typeof releasePlan>): Promise<void> {
  for (const reader of plan.readersAfter.get(at) ?? []) {
    try {
      await reader.run();
    } catch (err) {
      throw new ModelError(
        `reading ${reader.tables.join(', ')} for ${reader.name} failed: ${(err as Error).message}`,
      );
    }
  }
  const drops = (plan.dropsAfter.get(at) ?? []).sort();
  for (const table of drops) await ctx.db.run(`drop table if exists ${sqlIdent(table)}`);
  if (drops.length > 0) ctx.log.debug({ tables: drops }, 'tables dropped after their last reader');
}

/**
 * Builds every model in order; calls onModel after each with its row count and time. With `release`, runs its
 * readers as soon as their tables are built and drops every table that is not kept after its last reader.
 */
export async function runModels(
  ctx: ModelContext,
  models: AnyModel[],
  onModel?: (timing: ModelTiming) => void,
  release?: ReleaseOptions,
): Promise<ModelTiming[]> {
  const timings: ModelTiming[] = [];
  const ordered = orderModels(models);
  const plan = release && releasePlan(ordered, release);
  if (plan) await released(ctx, -1, plan);
  for (const [index, model] of ordered.entries()) {
    const started = performance.now();
    let passes = 1;
    try {
      if (model.kind === 'sql') passes = await buildSqlModel(ctx, model);
      else await model.model.build(ctx);
    } catch (err) {
      throw new ModelError(`model ${model.name} (${model.file}) failed: ${(err as Error).message}`);
    }
    const rows = await ctx.db.number(`select count(*) from ${model.name}`);
    const timing: ModelTiming = {
      model: model.name,
      layer: model.layer,
      rows,
      ms: Math.round(performance.now() - started),
      ...(passes > 1 && { batches: passes }),
    };
    if (plan) await released(ctx, index, plan);
    timings.push(timing);
    onModel?.(timing);
  }
  return timings;
}
