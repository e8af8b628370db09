// Builds the real models on small hand-written exports: real landing, real DuckDB, real SQL.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, configSchema, type Entity } from '../../config/schema.js';
import type { Db } from '../../pipelines/base/duckdb.js';
import { silentLogger } from '../../pipelines/base/log.js';
import { openRunDatabase, type RunDatabase } from '../../pipelines/run/database.js';
import { loadModels, selectModels } from '../../transforms/runner.js';

export interface FixtureOptions {
  asOf: string;
  /** CSV text per entity (header row with canonical names). */
  csv: Partial<Record<Entity, string>>;
  /** Config overrides (merged into the defaults). */
  config?: Record<string, unknown>;
  /** Build only these models and what they need (default: all). */
  only?: string[];
  now?: Date;
}

export function fixtureConfig(overrides: Record<string, unknown> = {}): Config {
  return configSchema.parse({ business_time_zone: 'UTC', ...overrides });
}

/** Lands the CSVs and builds the models; returns the open database (close it). */
export async function buildFixture(options: FixtureOptions): Promise<Db> {
  const dir = mkdtempSync(join(tmpdir(), 'churn-fixture-'));
  const sources: Record<string, unknown> = {};
  for (const [entity, text] of Object.entries(options.csv)) {
    writeFileSync(join(dir, `${entity}.csv`), text);
    sources[entity] = { type: 'local', path: `${entity}.csv` };
  }
  const config = fixtureConfig({ ...options.config, sources });
  return buildModels(config, dir, options.asOf, { only: options.only, now: options.now });
}

/** Lands every configured source of a config (paths relative to baseDir) and builds the models. */
export async function buildModels(
  config: Config,
  baseDir: string,
  asOf: string,
  options: { only?: string[]; now?: Date } = {},
): Promise<Db> {
  return (await buildRun(config, baseDir, asOf, options)).db;
}

/** As buildModels, with what landing counted (the reconciliation's start) and the configured entities. */
export async function buildRun(
  config: Config,
  baseDir: string,
  asOf: string,
  options: { only?: string[]; now?: Date } = {},
): Promise<RunDatabase> {
  return openRunDatabase({
    config,
    baseDir,
    asOf,
    now: options.now,
    landingRoot: join(baseDir, '.landing'),
    log: silentLogger(),
    models: options.only && selectModels(await loadModels(), options.only),
  });
}
