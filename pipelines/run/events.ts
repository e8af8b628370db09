// The events of one run: its stages' (pipelines/base/events.ts) and the run's own: started (holding the output's lock),
// checked (the gates' outcome, also when they fail), succeeded, failed. The run emits them on one stream; this file
// has the subscribers that belong to the run itself (its log lines, the progress bar, the manifest's timings). The
// ledger (ops/state.ts) and the webhook (ops/notify.ts) subscribe with theirs.
import { EventStream, type Listener, logStages, type StageEvent } from '../base/events.js';
import type { Logger, ProgressListener } from '../base/log.js';
import type { Trigger } from '../ops/state.js';
import type { Summary } from '../outcomes/summary.js';

export interface RunStarted {
  type: 'run-started';
  runId: string;
  asOf: string;
  trigger: Trigger;
  configFile: string;
}

/** The quality gates' outcome, in the terms the ledger and the webhook keep. */
export interface RunChecked {
  type: 'checked';
  passed: number;
  warned: number;
  failed: number;
  /** The messages of the gates that did not pass. */
  messages: string[];
  /** Quarantined rows per entity that had rows. */
  quarantined: Record<string, number>;
  /** Quarantined rows of every entity. */
  quarantinedRows: number;
}

export interface RunSucceeded {
  type: 'run-succeeded';
  runId: string;
  asOf: string;
  output: string;
  summary: Summary;
}

export interface RunFailed {
  type: 'run-failed';
  runId: string;
  asOf: string;
  /** The error's message, on one line. */
  error: string;
}

export type RunEvent = StageEvent | RunStarted | RunChecked | RunSucceeded | RunFailed;

export class RunEvents extends EventStream<RunEvent> {}

/** The run's log: `run started`, a line per stage, `run succeeded` with the summary. */
export function logRun(log: Logger): Listener<RunEvent> {
  const stages = logStages(log);
  return (event) => {
    switch (event.type) {
      case 'run-started':
        log.info({ runId: event.runId, asOf: event.asOf, config: event.configFile }, 'run started');
        return;
      case 'run-succeeded':
        log.info(
          { runId: event.runId, asOf: event.asOf, output: event.output, ...event.summary },
          'run succeeded',
        );
        return;
      case 'checked':
      case 'run-failed':
        return;
      default:
        return stages(event);
    }
  };
}

/** Hands the stages' progress to a progress bar. */
export function showProgress(onProgress: ProgressListener): Listener<RunEvent> {
  return (event) => {
    if (event.type !== 'progress') return;
    const { stage, done, total, unit, item } = event;
    onProgress(item === undefined ? { stage, done, total, unit } : { stage, done, total, unit, item });
  };
}

/** Keeps each stage's time (ms) in `timings`, as far as the run got. */
export function recordTimings(timings: Record<string, number>): Listener<RunEvent> {
  return (event) => {
    if (event.type === 'done' || event.type === 'failed') timings[event.stage] = event.ms;
  };
}
