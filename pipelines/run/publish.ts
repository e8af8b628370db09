// The last stages of a run, from its complete staging folder: the report beside the manifest, the publish through
// the sink (only while the run still holds the output's lock), and the catalog over what was published.
import { runStage, type StageEvents } from '../base/events.js';
import type { Logger } from '../base/log.js';
import { LockError, type RunLock } from '../ops/lock.js';
import { writeStagedReport } from '../report/index.js';
import type { Sink } from '../sinks/sink.js';
import { writeCatalog } from '../stages/catalog.js';

export interface PublishInput {
  asOf: string;
  runId: string;
  stagedDir: string;
  /** The staged folders (tables, exports). */
  folders: string[];
  sink: Sink;
  localRoot: string;
  lock: RunLock | null;
  events: StageEvents;
  log: Logger;
}

/** Publishes the staged run; returns the catalog's path. */
export async function publishRun(input: PublishInput): Promise<string> {
  const { asOf, runId, stagedDir, sink, lock, events, log } = input;
  // report.html from the staged tables and manifest; published beside the manifest.
  const files = await runStage(events, 'report', () => writeStagedReport(stagedDir, asOf, log));
  if (lock?.compromised) {
    throw new LockError(
      `the run lock ${lock.path} was lost during the run (${lock.compromised.message}); nothing was published, run again`,
    );
  }
  const staged = { asOf, runId, stagedDir, tables: input.folders, files, events };
  await runStage(events, 'publish', () => sink.publish(staged, log));
  return runStage(events, 'catalog', () => writeCatalog(input.localRoot, { location: sink.location }));
}
