// What a run is asked to do, what it returns, and what its stages share.
import type { CheckResult } from '../../transforms/checks.js';
import type { AnyModel } from '../../transforms/runner.js';
import type { Logger, ProgressListener } from '../base/log.js';
import type { RunLock } from '../ops/lock.js';
import type { LedgerEntry, Trigger } from '../ops/state.js';
import type { Summary } from '../outcomes/summary.js';
import type { Sink } from '../sinks/sink.js';
import type { Manifest } from '../stages/export.js';
import type { landAll } from '../stages/land.js';
import type { RunEvents } from './events.js';

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
  /** Tables built elsewhere (`churn merge`: the shards' local tables, docs/shards.md) instead of landing them. */
  prebuilt?: PrebuiltTables;
}

/** What `churn merge` puts in place of landing: the raw tables and the local models' tables, loaded. */
export interface PrebuiltTables {
  /** Loads the tables in landing's place (same arguments and callbacks as landAll). */
  land: typeof landAll;
  /** The models still to build, of all of them. */
  models(all: AnyModel[]): AnyModel[];
}

export type RunManifest = Manifest & { checks: CheckResult[] };

export interface RunResult {
  runId: string;
  asOf: string;
  outputDir: string;
  catalog: string | null;
  manifest: RunManifest;
  summary: Summary;
}

export interface RunContext {
  runId: string;
  asOf: string;
  now: Date;
  sink: Sink;
  localRoot: string;
  /** The output's lock (absent for a dry run). */
  lock: RunLock | null;
  /** The previous successful run of this output (the volume gate compares against it). */
  previous: LedgerEntry | undefined;
  /** Where the run and its stages tell what they do. */
  events: RunEvents;
}
