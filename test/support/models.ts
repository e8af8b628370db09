// Builds the real models on small hand-written exports: real landing, real DuckDB, real SQL.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, configSchema, ENTITIES, type Entity } from '../../config/schema.js';
import { Db } from '../../pipelines/duckdb.js';
import { silentLogger } from '../../pipelines/log.js';
import { landAll } from '../../pipelines/stages/land.js';
import { codeModels } from '../../transforms/models/index.js';
import { createRunParams } from '../../transforms/params.js';
import { type AnyModel, loadSqlModels, runMacros, runModels, selectModels } from '../../transforms/runner.js';

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
  const db = await Db.open({ timeZone: config.business_time_zone, fileSearchPath: baseDir });
  const log = silentLogger();
  const configured = ENTITIES.filter((e) => config.sources[e]);
  await createRunParams(db, config, {
    asOf,
    runStartedAt: options.now ?? new Date('2030-01-01T00:00:00Z'),
    configuredEntities: configured,
  });
  await runMacros(db);
  await db.run(
    `create table audience_history as select null::date as as_of, null::varchar as customer_id, null::varchar as email limit 0`,
  );
  await landAll(db, config, { baseDir, landingRoot: join(baseDir, '.landing') }, log);
  let models: AnyModel[] = [...loadSqlModels(), ...codeModels];
  if (options.only) models = selectModels(models, options.only);
  await runModels({ db, config, log, asOf, notes: [] }, models);
  return db;
}
