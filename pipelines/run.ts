// One run: land every export, build the models, check the quality gates, export and publish.
// Nothing is published unless every stage before publishing succeeded.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../config/load.js';
import { ENTITIES } from '../config/schema.js';
import {
  assertChecks,
  type CheckResult,
  type ChecksOutcome,
  runChecks,
  withheldAudience,
  withholdAudience,
} from '../transforms/checks.js';
import { codeModels } from '../transforms/models/index.js';
import { createRunParams } from '../transforms/params.js';
import type { Landing } from '../transforms/reconciliation.js';
import {
  type AnyModel,
  loadSqlModels,
  type ModelTiming,
  runMacros,
  runModels,
} from '../transforms/runner.js';
import { Db, sqlString } from './duckdb.js';
import type { Logger, ProgressListener } from './log.js';
import { acquireRunLock, LockError, type RunLock } from './ops/lock.js';
import { notify } from './ops/notify.js';
import { clearPauseMarkers, createPause, type Pause } from './ops/pause.js';
import {
  currentRuns,
  type LedgerEntry,
  lastSuccess,
  localStateStore,
  markAbandoned,
  startedEntry,
  type Trigger,
} from './ops/state.js';
import { createSink } from './sinks/index.js';
import type { Sink } from './sinks/sink.js';
import { writeCatalog } from './stages/catalog.js';
import { exportTables, type Manifest, type TableManifest, writeManifest } from './stages/export.js';
import { InputError, landAll } from './stages/land.js';

export { QualityError } from '../transforms/checks.js';

export interface RunOptions {
  asOf?: string;
  log: Logger;
  /** Build everything but publish nothing (`churn validate`). */
  dryRun?: boolean;
  /** Wall clock of the run start (tests pin it); rows stamped later are quarantined. */
  now?: Date;
  /** What started the run (recorded in the ledger); default `run`. */
  trigger?: Trigger;
  /** When another run holds the output's lock: wait for it (true, or at most this many seconds) instead of refusing. */
  wait?: boolean | number;
  /** Called as the long stages advance (sources landed, models built): a terminal draws it as a progress bar. */
  onProgress?: ProgressListener;
}

export interface RunResult {
  runId: string;
  asOf: string;
  outputDir: string;
  catalog: string | null;
  manifest: Manifest & { checks: CheckResult[] };
  summary: Record<string, string | number | null>;
}

/** What a run got to, for its ledger entry (filled in as the stages finish). */
interface RunProgress {
  timings: Record<string, number>;
  landed: Record<string, number>;
  tables: Record<string, number>;
  checks: ChecksOutcome | null;
}

interface RunContext {
  runId: string;
  asOf: string;
  now: Date;
  sink: Sink;
  localRoot: string;
  progress: RunProgress;
  pause: Pause;
  /** The output's lock (absent for a dry run). */
  lock: RunLock | null;
  /** The previous successful run of this output (the volume gate compares against it). */
  previous: LedgerEntry | undefined;
}

/** Yesterday in the business time zone, as YYYY-MM-DD. */
export function defaultAsOf(timeZone: string, now: Date = new Date()): string {
  const today = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(now);
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
    (f) =>
      `select date ${sqlString(f.asOf)} as as_of, customer_id, email from read_parquet(${sqlString(f.path)})`,
  );
  await db.run(`create or replace table audience_history as ${parts.join(' union all ')}`);
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
        (select count(*) from customer_health where status <> 'never_active') as customers_with_activity,
        (select risk_model from health_model where snapshot_role = 'score' and target = 'churn') as risk_model,
        (select auc from early_warning_backtest where section = 'overall') as backtest_auc,
        (select auc_recency from early_warning_backtest where section = 'overall') as backtest_auc_recency,
        (select auc_p_alive from early_warning_backtest where section = 'overall') as backtest_auc_p_alive,
        (select auc_p_decline from early_warning_backtest where section = 'overall') as backtest_auc_p_decline,
        (select precision from early_warning_backtest where section = 'overall') as backtest_precision,
        (select recall from early_warning_backtest where section = 'overall') as backtest_recall,
        (select flagged_share from early_warning_backtest where section = 'overall') as backtest_flagged_share,
        (select churn_rate from early_warning_backtest where section = 'overall') as backtest_churn_rate,
        (select strftime(backtest_as_of, '%Y-%m-%d') from early_warning_backtest where section = 'overall') as backtest_as_of,
        (select count(*) from reactivation_audience where "group" = 'target') as audience_target,
        (select count(*) from reactivation_audience where "group" = 'control') as audience_control,
        (select count(*) from quarantine) as quarantined_rows`);
  const summary: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(row ?? {})) {
    summary[k] =
      v === null ? null : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : (v as string);
  }
  return summary;
}

function sumQuarantined(checks: ChecksOutcome | null): number {
  return Object.values(checks?.quarantine ?? {}).reduce((n, q) => n + q.quarantined, 0);
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}

/**
 * Runs the pipeline for one as-of date: takes the output's lock (refusing, or waiting with `wait`, when another
 * run holds it), cleans up after a killed run, records the run in the ledger, and notifies the webhook.
 */
export async function runPipeline(loaded: LoadedConfig, options: RunOptions): Promise<RunResult> {
  const { config } = loaded;
  const now = options.now ?? new Date();
  const asOf = validateAsOf(options.asOf ?? config.as_of ?? defaultAsOf(config.business_time_zone, now));
  const runId = newRunId(asOf, now);
  const trigger = options.trigger ?? 'run';
  const created = await createSink(loaded);
  try {
    return await runOnSink(loaded, options, { runId, asOf, now, trigger, ...created });
  } finally {
    await created.close();
  }
}

async function runOnSink(
  loaded: LoadedConfig,
  options: RunOptions,
  base: { runId: string; asOf: string; now: Date; trigger: Trigger; sink: Sink; localRoot: string },
): Promise<RunResult> {
  const { config } = loaded;
  const log = options.log;
  const { runId, asOf, now, trigger, sink, localRoot } = base;
  const store = localStateStore(localRoot);
  const progress: RunProgress = { timings: {}, landed: {}, tables: {}, checks: null };
  const context = { runId, asOf, now, sink, localRoot, progress, pause: createPause(store.dir) };
  if (options.dryRun) {
    const previous = lastSuccess(currentRuns(await store.readLedger()));
    return executeRun(loaded, options, { ...context, lock: null, previous });
  }

  const lock = await acquireRunLock(store, {
    runId,
    asOf,
    trigger,
    wait: options.wait,
    staleMs: config.lock.stale_seconds * 1000,
    log,
  });
  try {
    // Holding the lock, no other run of this output is going: whatever the ledger says is running was killed.
    for (const run of await markAbandoned(store)) {
      log.warn({ runId: run.run_id, asOf: run.as_of, pid: run.pid }, 'marked an unfinished run as abandoned');
      const leftover = join(resolvePath(loaded, config.state_dir), 'tmp', run.run_id);
      await rm(leftover, { recursive: true, force: true });
    }
    await clearPauseMarkers(store.dir);
    const previous = lastSuccess(currentRuns(await store.readLedger()));
    // Started (for the ledger) once it holds the lock: a run that waited for another one starts after it.
    const started = startedEntry(runId, asOf, trigger, new Date());
    await store.appendLedger(started);
    const finish = (status: 'success' | 'failed', error: string | null): LedgerEntry => {
      const checks = progress.checks;
      return {
        ...started,
        status,
        finished_at: new Date().toISOString(),
        timings_ms: progress.timings,
        landed_rows: progress.landed,
        table_rows: progress.tables,
        quarantined: Object.fromEntries(
          Object.entries(checks?.quarantine ?? {})
            .filter(([, q]) => q.rows > 0)
            .map(([entity, q]) => [entity, q.quarantined]),
        ),
        checks: checks && {
          passed: checks.passed,
          warned: checks.warned,
          failed: checks.failed,
          messages: checks.results.filter((r) => r.status !== 'pass').map((r) => r.message),
        },
        error,
      };
    };
    const counts = () => ({
      ...Object.fromEntries(Object.entries(progress.landed).map(([k, v]) => [`${k}_rows`, v])),
      quarantined_rows: sumQuarantined(progress.checks),
    });
    let result: RunResult;
    try {
      result = await executeRun(loaded, options, { ...context, lock, previous });
    } catch (err) {
      const reason = oneLine(err);
      const entry = finish('failed', reason);
      await store
        .appendLedger(entry)
        .catch((e: Error) => log.error({ err: e.message }, 'could not record the failed run in the ledger'));
      await notify(
        config.notifications,
        { runId, asOf, trigger, status: 'failed', output: sink.location, reason, counts: counts() },
        log,
      );
      throw err;
    }
    const entry = finish('success', null);
    await store.appendLedger(entry);
    await notify(
      config.notifications,
      {
        runId,
        asOf,
        trigger,
        status: 'success',
        output: sink.location,
        warnings: entry.checks?.messages,
        counts: { ...result.summary, ...counts() },
      },
      log,
    );
    return result;
  } finally {
    await lock.release();
  }
}

async function executeRun(loaded: LoadedConfig, options: RunOptions, run: RunContext): Promise<RunResult> {
  const { config } = loaded;
  const log = options.log;
  const { runId, asOf, now, sink, localRoot, progress, pause } = run;
  const stateDir = resolvePath(loaded, config.state_dir);
  const timings = progress.timings;
  const stage = async <T>(name: string, fn: () => Promise<T>, fields?: (r: T) => Record<string, unknown>) => {
    await pause(name);
    const started = performance.now();
    let result: T;
    try {
      result = await fn();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
    const ms = timings[name];
    log.info({ stage: name, ms, ...(fields ? fields(result) : {}) }, `stage ${name} done`);
    return result;
  };

  log.info({ runId, asOf, config: loaded.file }, 'run started');
  if (!options.dryRun) await stage('recover', () => sink.recover(log));
  const tmpDir = join(stateDir, 'tmp', runId);
  await mkdir(tmpDir, { recursive: true });
  const db = await Db.open({
    memoryLimit: config.duckdb.memory_limit,
    threads: config.duckdb.threads,
    tempDirectory: tmpDir,
    timeZone: config.business_time_zone,
    fileSearchPath: loaded.baseDir,
  });
  try {
    const configured = ENTITIES.filter((e) => config.sources[e] !== undefined);
    // What landing counted per entity (read, left out by `where`): the reconciliation starts from it.
    const landing: Partial<Record<(typeof ENTITIES)[number], Landing>> = {};
    await createRunParams(db, config, { asOf, runStartedAt: now, configuredEntities: configured });
    await runMacros(db);

    const onProgress = options.onProgress ?? (() => {});
    onProgress({ stage: 'land', done: 0, total: configured.length, unit: 'sources' });
    await stage(
      'land',
      () =>
        landAll(
          db,
          config,
          { baseDir: loaded.baseDir, landingRoot: join(stateDir, 'landing') },
          log,
          (entity, rows, result) => {
            progress.landed[entity] = rows;
            const done = Object.keys(progress.landed).length;
            onProgress({ stage: 'land', done, total: configured.length, unit: 'sources', item: entity });
            landing[entity] = { read: result.read, excluded: result.excluded };
          },
        ),
      (rows) => ({ rows }),
    );

    const suppressionFrom = new Date(`${asOf}T00:00:00Z`);
    suppressionFrom.setUTCDate(suppressionFrom.getUTCDate() - config.audience.suppression_days);
    const history = options.dryRun
      ? []
      : await sink.history(
          'reactivation_audience',
          suppressionFrom.toISOString().slice(0, 10),
          asOf,
          join(tmpDir, 'history'),
        );
    await loadAudienceHistory(db, history);

    const notes: string[] = [];
    const models: AnyModel[] = [...loadSqlModels(), ...codeModels];
    const modelTimings: ModelTiming[] = [];
    onProgress({ stage: 'transform', done: 0, total: models.length, unit: 'models' });
    await stage(
      'transform',
      () =>
        runModels({ db, config, log, asOf, notes }, models, (t) => {
          modelTimings.push(t);
          const done = modelTimings.length;
          onProgress({ stage: 'transform', done, total: models.length, unit: 'models', item: t.model });
          log.debug({ model: t.model, rows: t.rows, ms: t.ms }, 'model built');
        }),
      (t) => ({ models: t.length }),
    );

    const checks = await stage(
      'quality',
      async () => {
        const outcome = await runChecks({
          db,
          config,
          asOf,
          configured,
          previous: run.previous && {
            runId: run.previous.run_id,
            asOf: run.previous.as_of,
            landedRows: run.previous.landed_rows,
          },
          landing,
        });
        progress.checks = outcome;
        for (const warning of outcome.results.filter((r) => r.status === 'warn')) {
          log.warn({ check: warning.check, target: warning.target }, warning.message);
        }
        assertChecks(outcome);
        // Stale activity with checks.freshness.audience: warn: the metric tables publish, the audience is empty.
        const withheld = withheldAudience(outcome);
        if (withheld) {
          await withholdAudience(db);
          notes.push(withheld.message);
        }
        return outcome;
      },
      (c) => ({
        quarantined: Object.values(c.quarantine).reduce((n, e) => n + e.quarantined, 0),
        checks: { passed: c.passed, warned: c.warned, failed: c.failed },
      }),
    );
    const quarantine = checks.quarantine;
    const summary = await readSummary(db);
    summary.checks_warned = checks.warned;

    const stagedDir = join(localRoot, '.staging', runId);
    const tables: Record<string, TableManifest> = options.dryRun
      ? {}
      : await stage(
          'export',
          () => exportTables(db, stagedDir),
          (t) => ({ tables: Object.keys(t).length }),
        );
    const fit = (await db.tableExists('bgnbd_fit')) ? ((await db.one('select * from bgnbd_fit')) ?? {}) : {};
    const healthModel = (await db.tableExists('health_model'))
      ? await db.all('select * from health_model order by target, snapshot_role')
      : [];
    const backtest = (await db.tableExists('early_warning_backtest'))
      ? await db.all(
          `select * exclude (backtest_as_of, outcome_as_of), strftime(backtest_as_of, '%Y-%m-%d') as backtest_as_of,
              strftime(outcome_as_of, '%Y-%m-%d') as outcome_as_of
           from early_warning_backtest where section in ('overall', 'status') order by section, status`,
        )
      : [];
    const manifest: Manifest & { checks: CheckResult[] } = {
      run_id: runId,
      as_of: asOf,
      status: 'success',
      started_at: now.toISOString(),
      finished_at: '',
      config_file: loaded.file,
      tables,
      quarantine,
      reconciliation: checks.reconciliation,
      timings_ms: timings,
      model_timings: modelTimings,
      notes,
      model: Object.fromEntries(
        Object.entries(fit).map(([k, v]) => [k, v === null || typeof v === 'number' ? v : String(v)]),
      ),
      health_model: healthModel,
      early_warning_backtest: backtest,
      checks: checks.results,
    };
    if (options.dryRun) {
      return { runId, asOf, outputDir: sink.location, catalog: null, manifest, summary };
    }
    progress.tables = Object.fromEntries(Object.entries(tables).map(([name, t]) => [name, t.rows]));
    await writeFile(join(stagedDir, 'checks.json'), `${JSON.stringify(checks.results, null, 2)}\n`);
    manifest.finished_at = new Date().toISOString();
    await writeManifest(stagedDir, manifest);
    if (run.lock?.compromised) {
      throw new LockError(
        `the run lock ${run.lock.path} was lost during the run (${run.lock.compromised.message}); nothing was published, run again`,
      );
    }
    const staged = { asOf, runId, stagedDir, tables: Object.keys(tables), pause };
    await stage('publish', () => sink.publish(staged, log));
    const catalog = await stage('catalog', () => writeCatalog(localRoot));
    log.info({ runId, asOf, output: sink.location, ...summary }, 'run succeeded');
    return { runId, asOf, outputDir: sink.location, catalog, manifest, summary };
  } finally {
    db.close();
    await rm(tmpDir, { recursive: true, force: true });
  }
}
