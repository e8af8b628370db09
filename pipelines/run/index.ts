// One run: land every export, build the models, check the quality gates, export and publish.
// Nothing is published unless every stage before publishing succeeded. Each stage has its file in this folder:
// lock.ts (the output's lock, cleanup after killed runs), database.ts (open, land, transform), quality.ts,
// export.ts, manifest.ts, summary.ts, publish.ts (report, publish, catalog). The run and its stages tell what they
// do on one event stream (events.ts): the log, the progress bar, the ledger and the webhook subscribe to it.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../../config/load.js';
import { GateReads } from '../../transforms/checks.js';
import { loadModels } from '../../transforms/runner.js';
import { oneLine, runStage } from '../base/events.js';
import { addDays } from '../ops/dates.js';
import { notifyWebhook } from '../ops/notify.js';
import { localStateStore, recordInLedger } from '../ops/state.js';
import { loadOutcomeAudiences } from '../outcomes/history.js';
import { createSink } from '../sinks/index.js';
import type { Sink } from '../sinks/sink.js';
import { loadAudienceHistory, openRunDatabase } from './database.js';
import { newRunId, runAsOf } from './dates.js';
import { logRun, RunEvents, recordTimings, showProgress } from './events.js';
import { exportFields, exportRun, NOTHING_EXPORTED, stagedFolders, tableRows } from './export.js';
import { previousSuccess, takeOutput } from './lock.js';
import { buildManifest, writeStagedManifest } from './manifest.js';
import { publishRun } from './publish.js';
import { checkedEvent, checkQuality, qualityFields, qualityReaders } from './quality.js';
import { residentTables } from './resident.js';
import { earlyWarningNotes, readSummary } from './summary.js';
import type { RunContext, RunOptions, RunResult } from './types.js';

export { QualityError } from '../../transforms/checks.js';
export { openRunDatabase, type RunDatabase, type RunDatabaseOptions } from './database.js';
export { defaultAsOf, runAsOf, validateAsOf } from './dates.js';
export type { RunEvent } from './events.js';
export type { PrebuiltTables, RunManifest, RunOptions, RunResult } from './types.js';

/**
 * Runs the pipeline for one as-of date: takes the output's lock (refusing, or waiting with `wait`, when another
 * run holds it), cleans up after a killed run, records the run in the ledger, and notifies the webhook.
 */
export async function runPipeline(loaded: LoadedConfig, options: RunOptions): Promise<RunResult> {
  const { config } = loaded;
  const now = options.now ?? new Date();
  const asOf = runAsOf(config, options.asOf, now);
  const runId = newRunId(asOf, now);
  const created = await createSink(loaded);
  try {
    return await runOnSink(loaded, options, { runId, asOf, now, ...created });
  } finally {
    await created.close();
  }
}

async function runOnSink(
  loaded: LoadedConfig,
  options: RunOptions,
  base: { runId: string; asOf: string; now: Date; sink: Sink; localRoot: string },
): Promise<RunResult> {
  const { config } = loaded;
  const { log } = options;
  const { runId, asOf, sink } = base;
  const store = localStateStore(base.localRoot);
  const events = new RunEvents();
  events.on(logRun(log));
  if (options.onProgress) events.on(showProgress(options.onProgress));
  if (options.dryRun) {
    const previous = await previousSuccess(store);
    return observeRun(events, base, () =>
      executeRun(loaded, options, { ...base, events, lock: null, previous }),
    );
  }

  const lock = await takeOutput(store, {
    runId,
    asOf,
    trigger: options.trigger ?? 'run',
    wait: options.wait,
    staleMs: config.lock.stale_seconds * 1000,
    stateDir: resolvePath(loaded, config.state_dir),
    log,
  });
  try {
    const previous = await previousSuccess(store);
    events.on(recordInLedger(store, log));
    events.on(notifyWebhook(config.notifications, sink.location, log));
    return await observeRun(events, base, () =>
      executeRun(loaded, options, { ...base, events, lock, previous }),
    );
  } finally {
    await lock.release();
  }
}

/** Tells the stream how the run ended: succeeded with its summary, or failed with its error (rethrown). */
async function observeRun(
  events: RunEvents,
  run: { runId: string; asOf: string },
  execute: () => Promise<RunResult>,
): Promise<RunResult> {
  const { runId, asOf } = run;
  let result: RunResult;
  try {
    result = await execute();
  } catch (err) {
    await events.emit({ type: 'run-failed', runId, asOf, error: oneLine(err) });
    throw err;
  }
  await events.emit({
    type: 'run-succeeded',
    runId,
    asOf,
    output: result.outputDir,
    summary: result.summary,
  });
  return result;
}

async function executeRun(loaded: LoadedConfig, options: RunOptions, run: RunContext): Promise<RunResult> {
  const { config } = loaded;
  const { log, dryRun } = options;
  const { runId, asOf, now, sink, localRoot, events } = run;
  const stateDir = resolvePath(loaded, config.state_dir);
  const timings: Record<string, number> = {};
  events.on(recordTimings(timings));

  await events.emit({
    type: 'run-started',
    runId,
    asOf,
    trigger: options.trigger ?? 'run',
    configFile: loaded.file,
  });
  if (!dryRun) await runStage(events, 'recover', () => sink.recover(log));
  const tmpDir = join(stateDir, 'tmp', runId);
  await mkdir(tmpDir, { recursive: true });
  // The gates' reads of the tables the transform drops after their last reader, taken before it does.
  const reads = new GateReads();
  try {
    const built = await openRunDatabase({
      config,
      baseDir: loaded.baseDir,
      asOf,
      now,
      landingRoot: join(stateDir, 'landing'),
      log,
      scratchDir: tmpDir,
      land: options.prebuilt?.land,
      // The audiences published before D: the suppression window's, and those reactivation_outcomes measures,
      // read back from the output's history.
      history: dryRun
        ? undefined
        : async (db) => {
            const from = addDays(asOf, -config.audience.suppression_days);
            await loadAudienceHistory(
              db,
              await sink.history('reactivation_audience', from, asOf, join(tmpDir, 'history')),
            );
            await loadOutcomeAudiences(db, sink, {
              asOf,
              outcomes: config.outcomes,
              scratchDir: join(tmpDir, 'outcomes'),
            });
          },
      models: options.prebuilt?.models(await loadModels()),
      events,
      release: {
        keep: residentTables(),
        readers: (landed) => qualityReaders({ ...landed, config, asOf, reads }),
      },
    });
    const { db, notes } = built;
    try {
      for (const note of await earlyWarningNotes(db)) {
        log.warn({ model: 'health' }, note);
        notes.push(note);
      }
      const checks = await runStage(
        events,
        'quality',
        () =>
          checkQuality({
            ...built,
            config,
            asOf,
            previous: run.previous,
            log,
            reads,
            onOutcome: (outcome) => events.emit(checkedEvent(outcome)),
          }),
        (c) => ({ fields: qualityFields(c) }),
      );
      const summary = await readSummary(db, checks);

      const stagedDir = join(localRoot, '.staging', runId);
      const exported = dryRun
        ? NOTHING_EXPORTED
        : await runStage(
            events,
            'export',
            () => exportRun(db, stagedDir, config, notes, log),
            (e) => ({ rows: tableRows(e), fields: exportFields(e) }),
          );
      const manifest = await buildManifest(db, {
        runId,
        asOf,
        startedAt: now,
        configFile: loaded.file,
        exported,
        checks,
        timings,
        modelTimings: built.timings,
        notes,
      });
      if (dryRun) return { runId, asOf, outputDir: sink.location, catalog: null, manifest, summary };

      await writeStagedManifest(stagedDir, manifest);
      const catalog = await publishRun({
        asOf,
        runId,
        stagedDir,
        folders: stagedFolders(exported),
        sink,
        localRoot,
        lock: run.lock,
        events,
        log,
      });
      return { runId, asOf, outputDir: sink.location, catalog, manifest, summary };
    } finally {
      db.close();
    }
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}
