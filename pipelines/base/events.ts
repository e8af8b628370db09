// One stream of a run's events: each stage started, progressing, done or failed (with its rows and time), and the
// named steps inside a stage (a sink's publish: publish-version, publish-commit...). The stages emit; the logs,
// the progress bar, the ledger and the webhook subscribe (pipelines/run/events.ts wires them).
//
// A listener may be async: emit() awaits each listener in turn, so that the ledger's line is on disk before the run
// goes on, and a listener's error fails the step that emitted it. Every stream is announced on the diagnostics
// channel `churn-pipeline:events` when it is created, so that a tool loaded into the process with `node --import`
// (a tracer, the operations tests' test/ops/pause-entry.mjs) can subscribe to runs it did not start.
import { channel } from 'node:diagnostics_channel';
import type { Logger } from './log.js';

export const EVENTS_CHANNEL = 'churn-pipeline:events';

export interface StageStarted {
  type: 'started';
  stage: string;
}

/** Items done of the total (sources landed, models built); `rows` of the item just finished. */
export interface StageProgressed {
  type: 'progress';
  stage: string;
  done: number;
  total: number;
  /** What is counted: sources, models. */
  unit: string;
  item?: string;
  rows?: number;
}

export interface StageDone {
  type: 'done';
  stage: string;
  ms: number;
  /** Rows per item (entity landed, model built, table exported). */
  rows?: Record<string, number>;
  /** The stage's counts for its log line. */
  fields: Record<string, unknown>;
}

export interface StageFailed {
  type: 'failed';
  stage: string;
  ms: number;
  error: string;
}

/** A named point inside a stage: the new version written, committed, current/ moved. */
export interface StageStep {
  type: 'step';
  stage: string;
  step: string;
  fields?: Record<string, unknown>;
}

export type StageEvent = StageStarted | StageProgressed | StageDone | StageFailed | StageStep;

export type Listener<E> = (event: E) => void | Promise<void>;

/** What a stage needs of a stream: somewhere to emit. */
export interface StageEvents {
  emit(event: StageEvent): Promise<void>;
}

const announced = channel(EVENTS_CHANNEL);

export class EventStream<E extends { type: string }> {
  private readonly listeners: Listener<E>[] = [];

  constructor() {
    if (announced.hasSubscribers) announced.publish(this);
  }

  /** Subscribes; returns the unsubscribe. */
  on(listener: Listener<E>): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  /** Calls every listener in the order they subscribed, awaiting each one that returns a promise. */
  async emit(event: E): Promise<void> {
    for (const listener of [...this.listeners]) {
      const pending = listener(event);
      if (pending) await pending;
    }
  }
}

/** What a stage reports when it is done: its rows per item and the counts of its log line. */
export interface StageReport {
  rows?: Record<string, number>;
  fields?: Record<string, unknown>;
}

/** Tells the stream how a stage advances (in order, also from a callback that cannot wait). */
export type ProgressReporter = (progress: Omit<StageProgressed, 'type' | 'stage'>) => void;

/** An error's message on one line (the ledger, the webhook and the log keep it so). */
export function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}

/**
 * Runs one stage: `started`, then fn (which may report progress), then `done` with its time and report, or
 * `failed` with its time and error (rethrown).
 */
export async function runStage<T>(
  events: StageEvents,
  stage: string,
  fn: (progress: ProgressReporter) => Promise<T>,
  report?: (result: T) => StageReport,
): Promise<T> {
  await events.emit({ type: 'started', stage });
  const started = performance.now();
  // Progress events are emitted one after the other, and all of them before the stage's end.
  let told: Promise<void> = Promise.resolve();
  const progress: ProgressReporter = (p) => {
    told = told.then(() => events.emit({ type: 'progress', stage, ...p }));
  };
  let result: T;
  try {
    result = await fn(progress);
    await told;
  } catch (err) {
    await told.catch(() => {});
    await events.emit({
      type: 'failed',
      stage,
      ms: Math.round(performance.now() - started),
      error: oneLine(err),
    });
    throw err;
  }
  const { rows, fields = {} } = report?.(result) ?? {};
  await events.emit({ type: 'done', stage, ms: Math.round(performance.now() - started), rows, fields });
  return result;
}

/**
 * The log lines of the stage events: `stage <name> done` with its time and counts (info; the human log draws it
 * as one line), `stage <name> failed` (info, the error itself is the command's last line), steps at debug.
 */
export function logStages(log: Logger, extra: Record<string, unknown> = {}): Listener<StageEvent> {
  return (event) => {
    switch (event.type) {
      case 'done':
        log.info(
          { stage: event.stage, ms: event.ms, ...extra, ...event.fields },
          `stage ${event.stage} done`,
        );
        break;
      case 'failed':
        log.info(
          { stage: event.stage, failedAfterMs: event.ms, ...extra, error: event.error },
          `stage ${event.stage} failed`,
        );
        break;
      case 'step':
        log.debug(
          { stage: event.stage, step: event.step, ...extra, ...event.fields },
          `${event.step} reached`,
        );
        break;
    }
  };
}
