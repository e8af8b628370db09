// Taking the output for a run: its lock (refusing, or waiting with `wait`, while another run holds it), and
// cleaning up after runs that were killed: a run the ledger still calls running is marked abandoned and its
// scratch folder removed (the sink's recover stage then deals with what it left in the output).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../base/log.js';
import { acquireRunLock, type RunLock } from '../ops/lock.js';
import {
  currentRuns,
  type LedgerEntry,
  type LocalStateStore,
  lastSuccess,
  markAbandoned,
  type Trigger,
} from '../ops/state.js';

export interface TakeOutputOptions {
  runId: string;
  asOf: string;
  trigger: Trigger;
  wait?: boolean | number;
  staleMs: number;
  /** The state folder whose `tmp/<run id>` holds a run's scratch files. */
  stateDir: string;
  log: Logger;
}

/** The previous successful run of the output, by its ledger (the volume gate compares against it). */
export async function previousSuccess(store: LocalStateStore): Promise<LedgerEntry | undefined> {
  return lastSuccess(currentRuns(await store.readLedger()));
}

/** Takes the output's lock and cleans up after killed runs; release the lock when the run ends. */
export async function takeOutput(store: LocalStateStore, options: TakeOutputOptions): Promise<RunLock> {
  const { log } = options;
  const lock = await acquireRunLock(store, options);
  try {
    // Holding the lock, no other run of this output is going: whatever the ledger says is running was killed.
    for (const run of await markAbandoned(store)) {
      log.warn({ runId: run.run_id, asOf: run.as_of, pid: run.pid }, 'marked an unfinished run as abandoned');
      await rm(join(options.stateDir, 'tmp', run.run_id), { recursive: true, force: true });
    }
    return lock;
  } catch (err) {
    await lock.release();
    throw err;
  }
}
