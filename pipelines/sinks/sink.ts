// The Sink interface: where a run's tables are published (a local folder, an S3 prefix).
//
// A run is first built in a local staging folder:
//   <stagedDir>/<table>/<file>...      one folder per published table (part-0.parquet, CSVs for the audience)
//   <stagedDir>/_manifest.json
// and a sink publishes it as the spec lays out:
//   <root>/<table>/as_of=YYYY-MM-DD/<file>     history
//   <root>/runs/as_of=YYYY-MM-DD/_manifest.json, then _SUCCESS
//   <root>/current/<table>/<file>, current/_manifest.json, then current/_SUCCESS
// A reader that sees _SUCCESS sees a complete run; a failed or killed publish leaves the previous outputs as they were.
import type { Logger } from '../log.js';

export interface StagedRun {
  asOf: string;
  runId: string;
  stagedDir: string;
  tables: string[];
  /** Test hook (CHURN_PAUSE_AT): called at `publish-current`, after the history partitions, before current/ changes. */
  pause?: (point: string) => Promise<void>;
}

export interface Sink {
  /** A human-readable location (`/abs/out`, `s3://bucket/prefix`). */
  readonly location: string;
  /** Publishes a staged run; history partitions first, `current/` swapped last. */
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
  /** Cleans up what a killed publish left behind (staging leftovers); never touches complete published runs. */
  recover(log: Logger): Promise<void>;
  /** Checks the location is reachable and writable, writing nothing that a reader could see. */
  check(): Promise<void>;
}

export class SinkError extends Error {
  override readonly name = 'SinkError';
}

export const PARTITION_FILE = 'part-0.parquet';
