// One run: land every export, build the models, check the quality gates, export and publish.
// Nothing is published unless every stage before publishing succeeded.
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../config/load.js';
import { ENTITIES, type Entity } from '../config/schema.js';
import { codeModels } from '../transforms/models/index.js';
import { createRunParams } from '../transforms/params.js';
import { type AnyModel, loadSqlModels, type ModelTiming, runMacros, runModels } from '../transforms/runner.js';
import { Db, sqlString } from './duckdb.js';
import type { Logger } from './log.js';
import { createSink } from './sinks/index.js';
import { writeCatalog } from './stages/catalog.js';
import { exportTables, type Manifest, type TableManifest, writeManifest } from './stages/export.js';
import { InputError, landEntity } from './stages/land.js';
import { createSource } from './sources/index.js';

export class QualityError extends Error {
  override readonly name = 'QualityError';
}

export interface RunOptions {
  asOf?: string;
  log: Logger;
  /** Build everything but publish nothing (`churn validate`). */
  dryRun?: boolean;
  /** Wall clock of the run start (tests pin it); rows stamped later are quarantined. */
  now?: Date;
}

export interface RunResult {
  runId: string;
  asOf: string;
  outputDir: string;
  catalog: string | null;
  manifest: Manifest;
  summary: Record<string, string | number | null>;
}

/** Yesterday in the business time zone, as YYYY-MM-DD. */
export function defaultAsOf(timeZone: string, now: Date = new Date()): string {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  const d = new Date(`${today}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

export function validateAsOf(asOf: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(asOf) || Number.isNaN(Date.parse(`${asOf}T00:00:00Z`))) {
    throw new InputError(`as-of date "${asOf}" is not a date; give it as YYYY-MM-DD`);
  }
  return asOf;
}

function newRunId(asOf: string, now: Date): string {
  return `${asOf}_${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}_${randomBytes(3).toString('hex')}`;
}

async function loadAudienceHistory(db: Db, files: { asOf: string; path: string }[]): Promise<void> {
  if (files.length === 0) {
    await db.run(
      `create or replace table audience_history as
       select cast(null as date) as as_of, cast(null as varchar) as customer_id, cast(null as varchar) as email limit 0`,
    );
    return;
  }
  const parts = files.map(
    (f) => `select date ${sqlString(f.asOf)} as as_of, customer_id, email from read_parquet(${sqlString(f.path)})`,
  );
  await db.run(`create or replace table audience_history as ${parts.join(' union all ')}`);
}

async function quarantineGate(
  db: Db,
  maxShare: number,
): Promise<Record<string, { rows: number; quarantined: number; share: number }>> {
  const counts: Record<string, { rows: number; quarantined: number; share: number }> = {};
  const failures: string[] = [];
  for (const entity of ENTITIES) {
    const rows = await db.number(`select count(*) from raw_${entity}`);
    const quarantined = await db.number(`select count(*) from quarantine where entity = '${entity}'`);
    const share = rows === 0 ? 0 : quarantined / rows;
    counts[entity] = { rows, quarantined, share: Number(share.toFixed(6)) };
    if (share > maxShare) {
      const top = await db.all<{ column_name: string; reason: string; n: string; example: string }>(
        `select column_name, reason, count(*) as n,
                min(source_file || ' row ' || source_row) as example
         from quarantine where entity = '${entity}' group by all order by n desc limit 3`,
      );
      failures.push(
        `${entity}: ${quarantined} of ${rows} rows (${(share * 100).toFixed(2)}%) quarantined, above quality.max_quarantine_share ` +
          `${(maxShare * 100).toFixed(2)}%; most common: ${top.map((t) => `${t.column_name} ${t.reason} (${t.n}x, e.g. ${t.example})`).join('; ')}`,
      );
    }
  }
  if (failures.length) {
    throw new QualityError(
      `${failures.join('\n')}\nNothing was published. Fix the export (or the column mapping in the config) and run again.`,
    );
  }
  return counts;
}

async function readSummary(db: Db): Promise<Record<string, string | number | null>> {
  const row = await db.one(`
    with last_period as (
        select * from churn_summary
        where segment_by = 'all' and is_complete
        order by period_start desc limit 1
    ),
    last_nps as (
        select * from survey_trends
        where segment_by = 'all' and survey_type = 'nps' and is_complete
        order by period_start desc limit 1
    )
    select
        (select count(*) from stg_customers) as customers,
        (select strftime(period_start, '%Y-%m-%d') from last_period) as last_complete_period,
        (select churn_rate_pct from last_period) as churn_rate_pct,
        (select nps from last_nps) as nps,
        (select count(*) from customer_health where status in ('at_risk', 'silent_churn')) as customers_flagged,
        (select count(*) from reactivation_audience where "group" = 'target') as audience_target,
        (select count(*) from reactivation_audience where "group" = 'control') as audience_control,
        (select count(*) from quarantine) as quarantined_rows`);
  const summary: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(row ?? {})) {
    summary[k] = v === null ? null : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : (v as string);
  }
  return summary;
}

export async function runPipeline(loaded: LoadedConfig, options: RunOptions): Promise<RunResult> {
  const { config } = loaded;
  const log = options.log;
  const now = options.now ?? new Date();
  const asOf = validateAsOf(options.asOf ?? config.as_of ?? defaultAsOf(config.business_time_zone, now));
  const runId = newRunId(asOf, now);
  const stateDir = resolvePath(loaded, config.state_dir);
  const timings: Record<string, number> = {};
  const stage = async <T>(name: string, fn: () => Promise<T>, fields?: (r: T) => Record<string, unknown>) => {
    const started = performance.now();
    const result = await fn();
    const ms = Math.round(performance.now() - started);
    timings[name] = ms;
    log.info({ stage: name, ms, ...(fields ? fields(result) : {}) }, `stage ${name} done`);
    return result;
  };

  log.info({ runId, asOf, config: loaded.file }, 'run started');
  const { sink, localRoot } = await createSink(loaded);
  if (!options.dryRun) await stage('recover', () => sink.recover(log));
  const tmpDir = join(stateDir, 'tmp', runId);
  await mkdir(tmpDir, { recursive: true });
  const db = await Db.open({
    memoryLimit: config.duckdb.memory_limit,
    threads: config.duckdb.threads,
    tempDirectory: tmpDir,
    timeZone: config.business_time_zone,
  });
  try {
    const configured = ENTITIES.filter((e) => config.sources[e] !== undefined);
    await createRunParams(db, config, { asOf, runStartedAt: now, configuredEntities: configured });
    await runMacros(db);

    await stage(
      'land',
      async () => {
        const rows: Partial<Record<Entity, number>> = {};
        for (const entity of ENTITIES) {
          const spec = config.sources[entity];
          if (!spec) {
            await landEntity(db, entity, undefined, undefined, log);
            continue;
          }
          const source = await createSource(spec);
          try {
            const ctx = { entity, landingDir: join(stateDir, 'landing', entity), baseDir: loaded.baseDir, log };
            await mkdir(ctx.landingDir, { recursive: true });
            const landed = await source.land(ctx);
            rows[entity] = (await landEntity(db, entity, spec, landed, log)).rows;
          } finally {
            await source.close?.();
          }
        }
        if (!configured.some((e) => e === 'orders' || e === 'activity' || e === 'subscriptions')) {
          throw new InputError(
            'no activity-bearing entity is configured: add sources.orders, sources.activity or sources.subscriptions',
          );
        }
        return rows;
      },
      (rows) => ({ rows }),
    );

    const suppressionFrom = new Date(`${asOf}T00:00:00Z`);
    suppressionFrom.setUTCDate(suppressionFrom.getUTCDate() - config.audience.suppression_days);
    const history = options.dryRun
      ? []
      : await sink.history('reactivation_audience', suppressionFrom.toISOString().slice(0, 10), asOf, join(tmpDir, 'history'));
    await loadAudienceHistory(db, history);

    const notes: string[] = [];
    const models: AnyModel[] = [...loadSqlModels(), ...codeModels];
    const modelTimings: ModelTiming[] = [];
    await stage(
      'transform',
      () =>
        runModels({ db, config, log, asOf, notes }, models, (t) => {
          modelTimings.push(t);
          log.debug({ model: t.model, rows: t.rows, ms: t.ms }, 'model built');
        }),
      (t) => ({ models: t.length }),
    );

    const quarantine = await stage(
      'quality',
      () => quarantineGate(db, config.quality.max_quarantine_share),
      (q) => ({ quarantined: Object.values(q).reduce((n, e) => n + e.quarantined, 0) }),
    );
    const summary = await readSummary(db);

    const stagedDir = join(localRoot, '.staging', runId);
    const tables: Record<string, TableManifest> = options.dryRun
      ? {}
      : await stage(
          'export',
          () => exportTables(db, stagedDir),
          (t) => ({ tables: Object.keys(t).length }),
        );
    const fit = (await db.tableExists('bgnbd_fit')) ? ((await db.one('select * from bgnbd_fit')) ?? {}) : {};
    const manifest: Manifest = {
      run_id: runId,
      as_of: asOf,
      status: 'success',
      started_at: now.toISOString(),
      finished_at: '',
      config_file: loaded.file,
      tables,
      quarantine,
      timings_ms: timings,
      model_timings: modelTimings,
      notes,
      model: Object.fromEntries(
        Object.entries(fit).map(([k, v]) => [k, v === null || typeof v === 'number' ? v : String(v)]),
      ),
    };
    if (options.dryRun) {
      return { runId, asOf, outputDir: sink.location, catalog: null, manifest, summary };
    }
    manifest.finished_at = new Date().toISOString();
    await writeManifest(stagedDir, manifest);
    await stage('publish', () =>
      sink.publish({ asOf, runId, stagedDir, tables: Object.keys(tables) }, log),
    );
    const catalog = await stage('catalog', () => writeCatalog(localRoot));
    log.info({ runId, asOf, output: sink.location, ...summary }, 'run succeeded');
    return { runId, asOf, outputDir: sink.location, catalog, manifest, summary };
  } finally {
    db.close();
    await rm(tmpDir, { recursive: true, force: true });
  }
}
