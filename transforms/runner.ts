// Runs the SQL models of sql/ (and the TypeScript models of transforms/models/) in dependency order.
// A model's dependencies are the other models it names; each becomes `create or replace table <name>`.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../pipelines/duckdb.js';
import type { ModelContext, TsModel } from './model.js';

export const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

/** The layers, in the order a reader follows them. */
export const LAYERS = ['staging', 'facts', 'metrics', 'audiences'] as const;
export type Layer = (typeof LAYERS)[number];

export interface SqlModel {
  kind: 'sql';
  name: string;
  layer: Layer;
  file: string;
  sql: string;
}

export interface CodeModel {
  kind: 'ts';
  name: string;
  layer: Layer;
  model: TsModel;
}

export type AnyModel = SqlModel | CodeModel;

export class ModelError extends Error {
  override readonly name = 'ModelError';
}

/** Strips comments and string literals so that only identifiers are scanned for dependencies. */
function codeOnly(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/'(?:[^']|'')*'/g, "''");
}

export function loadSqlModels(dir: string = SQL_DIR): SqlModel[] {
  const models: SqlModel[] = [];
  for (const layer of LAYERS) {
    let files: string[];
    try {
      files = readdirSync(join(dir, layer)).filter((f) => f.endsWith('.sql'));
    } catch {
      continue;
    }
    for (const f of files.sort()) {
      const file = join(dir, layer, f);
      models.push({ kind: 'sql', name: basename(f, '.sql'), layer, file, sql: readFileSync(file, 'utf8') });
    }
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
  if (model.kind === 'ts') return model.model.dependsOn.filter((d) => names.has(d));
  const words = new Set(
    codeOnly(model.sql)
      .toLowerCase()
      .match(/[a-z_][a-z0-9_]*/g) ?? [],
  );
  return [...names].filter((n) => n !== model.name && words.has(n));
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

/** Builds every model in order; calls onModel after each with its row count and time. */
export async function runModels(
  ctx: ModelContext,
  models: AnyModel[],
  onModel?: (timing: ModelTiming) => void,
): Promise<ModelTiming[]> {
  const timings: ModelTiming[] = [];
  for (const model of orderModels(models)) {
    const started = performance.now();
    try {
      if (model.kind === 'sql') {
        await ctx.db.run(`create or replace table ${model.name} as\n${model.sql}`);
      } else {
        await model.model.build(ctx);
      }
    } catch (err) {
      const where = model.kind === 'sql' ? model.file : `transforms/models (${model.name})`;
      throw new ModelError(`model ${model.name} (${where}) failed: ${(err as Error).message}`);
    }
    const rows = await ctx.db.number(`select count(*) from ${model.name}`);
    const timing = {
      model: model.name,
      layer: model.layer,
      rows,
      ms: Math.round(performance.now() - started),
    };
    timings.push(timing);
    onModel?.(timing);
  }
  return timings;
}
