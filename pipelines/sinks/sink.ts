// The Sink interface: where a run's tables are published (a local folder, an S3 prefix).
//
// A run is first built in a local staging folder:
//   <stagedDir>/<table>/part-0.parquet   one folder per published table (Parquet only, so that a reader's glob over
//                                        a table reads nothing else)
//   <stagedDir>/exports/<export>/<file>  the files import tools read (the audience CSV per tool, the CRM flags)
//   <stagedDir>/<file>                   top-level files of the run (StagedRun.files, e.g. a report), optional
//   <stagedDir>/_manifest.json
// and a sink publishes it as the spec lays out (a "folder" is a table or `exports`):
//   <root>/<folder>/as_of=YYYY-MM-DD/<file>...   history, one partition per date (files below subfolders kept)
//   <root>/runs/as_of=YYYY-MM-DD/_manifest.json and _SUCCESS (and the top-level files)
//   <root>/current/<folder>/<file>..., current/<file>, current/_manifest.json and current/_SUCCESS
// Every sink keeps these promises (how, and what its recovery may delete, is at the top of local.ts and s3.ts):
// - A _SUCCESS stands only beside the complete files of its manifest: a reader that sees it sees a complete run.
// - A publish builds the new version beside the published one and swaps it in one atomic step (local), or keeps
//   the old one whole until the new one is complete and committed (S3); a killed publish leaves every published
//   file byte-identical or replaced by a complete new version, and the next run's recovery finishes a committed one.
// - current/ only moves forward, to the newest published as-of date: a backfill or a re-run of an older date leaves
//   it alone; a re-run of the newest date replaces it.
// - recover() never deletes the last good copy of anything.
// - A recursive glob over a folder's history finds every partition (`<root>/<table>/**/*.parquet`): no partition
//   is reachable only through a symlinked folder.
import type { StageEvents } from '../base/events.js';
import type { Logger } from '../base/log.js';

export interface StagedRun {
  asOf: string;
  runId: string;
  stagedDir: string;
  /** The staged folders to publish: one per table, and `exports` when the run has exports. */
  tables: string[];
  /** Top-level files of the staged run besides the manifest (published in runs/as_of=D/ and current/). */
  files?: string[];
  /**
   * The run's events, where a publish tells its steps: `publish-version` (the new version is complete, nothing
   * published has changed), `publish-commit` (committed, not yet all visible), `publish-swap` (S3: inside the
   * replacement of the partition's keys), `publish-current` (history published, current/ not yet moved).
   */
  events?: StageEvents;
}

/** Tells the run's events that a publish reached a step (publishes without events tell nobody). */
export async function publishStep(run: StagedRun, step: string): Promise<void> {
  await run.events?.emit({ type: 'step', stage: 'publish', step });
}

export interface Sink {
  /** A human-readable location (`/abs/out`, `s3://bucket/prefix`). */
  readonly location: string;
  /** Publishes a staged run: its history partition, then `current/` when its date is the newest published one. */
  publish(run: StagedRun, log: Logger): Promise<void>;
  /**
   * Local paths of a table's published Parquet history files with as_of in [from, to) (YYYY-MM-DD), downloading them
   * into scratchDir when the sink is remote. Used by the audience's suppression window.
   */
  history(
    table: string,
    from: string,
    to: string,
    scratchDir: string,
  ): Promise<{ asOf: string; path: string }[]>;
  /** Whether runs/as_of=D/_SUCCESS exists (a complete published run of that date); absent when not cheap to tell. */
  isPublished?(asOf: string): Promise<boolean>;
  /**
   * Finishes or cleans up what a killed publish left behind (call holding the run lock): completes a committed
   * version, deletes what was never published; never deletes the last good copy of a published date.
   */
  recover(log: Logger): Promise<void>;
  /** Checks the location is reachable and writable, writing nothing that a reader could see. */
  check(): Promise<void>;
}

export class SinkError extends Error {
  override readonly name = 'SinkError';
}

export const PARTITION_FILE = 'part-0.parquet';
