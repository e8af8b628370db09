// `churn backfill --from D1 --to D2`: one run per as-of date, oldest first. Resumable: a date whose run succeeded
// (per the ledger) and whose runs/as_of=D/_SUCCESS exists is skipped unless `force`. Stops at the first failure.
// Dates older than the newest published one leave current/ and the catalog alone: the sinks move current/ only
// forward (sinks/sink.ts), and each date's run is killed-safe like any run (test/ops/crash.ts).
import type { LoadedConfig } from '../../config/load.js';
import type { Logger } from '../base/log.js';
import { runPipeline } from '../run/index.js';
import { createSink } from '../sinks/index.js';
import { dateRange } from './dates.js';
import { currentRuns, lastSuccess, localStateStore } from './state.js';

export const MAX_BACKFILL_DAYS = 3660;

export class BackfillError extends Error {
  override readonly name = 'BackfillError';
}

export interface BackfillOptions {
  from: string;
  to: string;
  force?: boolean;
  wait?: boolean | number;
  log: Logger;
  /** Called after each date (the CLI prints a line). */
  onDate?: (date: string, outcome: 'skipped' | 'success', runId?: string) => void;
}

export interface BackfillResult {
  done: string[];
  skipped: string[];
}

export async function backfill(loaded: LoadedConfig, options: BackfillOptions): Promise<BackfillResult> {
  const { from, to, log } = options;
  if (from > to) throw new BackfillError(`--from ${from} is after --to ${to}; give the range oldest first`);
  const dates = dateRange(from, to);
  if (dates.length > MAX_BACKFILL_DAYS) {
    throw new BackfillError(
      `${dates.length} dates from ${from} to ${to}: split the backfill into ranges of at most ${MAX_BACKFILL_DAYS} days`,
    );
  }
  const { sink, localRoot, close } = await createSink(loaded);
  const store = localStateStore(localRoot);
  const result: BackfillResult = { done: [], skipped: [] };
  log.info({ from, to, dates: dates.length, force: options.force === true }, 'backfill started');
  try {
    for (const date of dates) {
      if (!options.force) {
        const succeeded = lastSuccess(currentRuns(await store.readLedger()), date);
        // A sink that cannot tell cheaply is trusted to hold what the ledger says succeeded.
        if (succeeded && (sink.isPublished ? await sink.isPublished(date) : true)) {
          log.info({ asOf: date, runId: succeeded.run_id }, 'backfill: already published, skipped');
          result.skipped.push(date);
          options.onDate?.(date, 'skipped', succeeded.run_id);
          continue;
        }
      }
      try {
        const run = await runPipeline(loaded, { asOf: date, log, trigger: 'backfill', wait: options.wait });
        result.done.push(date);
        options.onDate?.(date, 'success', run.runId);
      } catch (err) {
        const e = err as Error;
        const left = dates.length - result.done.length - result.skipped.length;
        const stopped = new BackfillError(
          `backfill stopped at ${date} (${result.done.length} run, ${result.skipped.length} skipped, ${left} left): ` +
            `${e.message.replace(/\s*\n\s*/g, ' ')}. ` +
            'Fix it and run the same command again: dates already published are skipped',
        );
        stopped.cause = e;
        throw stopped;
      }
    }
  } finally {
    await close();
  }
  log.info({ from, to, done: result.done.length, skipped: result.skipped.length }, 'backfill finished');
  return result;
}
