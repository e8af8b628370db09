// The state store beside the outputs: the run ledger (every run, append-only JSON lines) and small JSON state
// files (the lock holder, the last checks). The local implementation lives in `<output>/_state/`.
//
// The ledger is never rewritten: a run appends one line when it starts and one when it ends (and a later run
// appends `abandoned` for a run whose process died). The newest line of a run id is its state.
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Listener } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { RunEvent } from '../run/events.js';

export const TRIGGERS = ['run', 'schedule', 'backfill', 'merge'] as const;
export type Trigger = (typeof TRIGGERS)[number];
export type RunStatus = 'running' | 'success' | 'failed' | 'abandoned';

export interface LedgerEntry {
  run_id: string;
  as_of: string;
  trigger: Trigger;
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  /** Process and machine that ran it (to tell a live run from an abandoned one). */
  pid: number;
  host: string;
  /** Milliseconds per stage, as far as the run got. */
  timings_ms: Record<string, number>;
  /** Raw rows landed per entity. */
  landed_rows: Record<string, number>;
  /** Rows per published table. */
  table_rows: Record<string, number>;
  /** Quarantined rows per entity. */
  quarantined: Record<string, number>;
  /** Data-quality gates: how many passed, warned, failed, and the messages of those that did not pass. */
  checks: { passed: number; warned: number; failed: number; messages: string[] } | null;
  /** The one-line reason of a failure. */
  error: string | null;
}

export interface StateStore {
  /** A human-readable location (`/abs/out/_state`). */
  readonly location: string;
  /** Appends one entry to the ledger, durably (fsync'd) before returning. */
  appendLedger(entry: LedgerEntry): Promise<void>;
  /** Every ledger line, oldest first (a torn last line of a crashed write is skipped). */
  readLedger(): Promise<LedgerEntry[]>;
  readJson<T>(name: string): Promise<T | undefined>;
  /** Replaces a small JSON state file atomically. */
  writeJson(name: string, value: unknown): Promise<void>;
  removeJson(name: string): Promise<void>;
}

export const STATE_DIR = '_state';
const LEDGER = 'ledger.jsonl';

export class LocalStateStore implements StateStore {
  constructor(readonly dir: string) {}

  get location(): string {
    return this.dir;
  }

  async appendLedger(entry: LedgerEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const handle = await open(join(this.dir, LEDGER), 'a+');
    try {
      // A line torn by a crash mid-write has no newline: start on a fresh line so this entry stays whole.
      const { size } = await handle.stat();
      const last = Buffer.alloc(1);
      if (size > 0) await handle.read(last, 0, 1, size - 1);
      const lead = size > 0 && last[0] !== 0x0a ? '\n' : '';
      await handle.write(`${lead}${JSON.stringify(entry)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async readLedger(): Promise<LedgerEntry[]> {
    const file = join(this.dir, LEDGER);
    if (!existsSync(file)) return [];
    const entries: LedgerEntry[] = [];
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      try {
        const parsed = JSON.parse(line) as Partial<LedgerEntry>;
        if (typeof parsed.run_id === 'string' && typeof parsed.status === 'string')
          entries.push(normalise(parsed));
      } catch {
        // A line torn by a crash in the middle of a write: the run it belonged to is marked abandoned later.
      }
    }
    return entries;
  }

  async readJson<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${name}.json`), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = join(this.dir, `${name}.json`);
    const tmp = `${target}.tmp-${process.pid}`;
    const handle = await open(tmp, 'w');
    try {
      await handle.write(`${JSON.stringify(value, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  }

  async removeJson(name: string): Promise<void> {
    await rm(join(this.dir, `${name}.json`), { force: true });
  }
}

/** An entry with every field, whatever an older (or hand-written) line left out. */
function normalise(entry: Partial<LedgerEntry>): LedgerEntry {
  return {
    run_id: entry.run_id ?? '',
    as_of: entry.as_of ?? '',
    trigger: entry.trigger ?? 'run',
    status: entry.status ?? 'running',
    started_at: entry.started_at ?? '',
    finished_at: entry.finished_at ?? null,
    pid: entry.pid ?? 0,
    host: entry.host ?? '',
    timings_ms: entry.timings_ms ?? {},
    landed_rows: entry.landed_rows ?? {},
    table_rows: entry.table_rows ?? {},
    quarantined: entry.quarantined ?? {},
    checks: entry.checks ?? null,
    error: entry.error ?? null,
  };
}

/** The state store of an output's local root. */
export function localStateStore(localRoot: string): LocalStateStore {
  return new LocalStateStore(join(localRoot, STATE_DIR));
}

/** The current state of every run (the newest line per run id), oldest start first. */
export function currentRuns(entries: readonly LedgerEntry[]): LedgerEntry[] {
  const byId = new Map<string, LedgerEntry>();
  for (const entry of entries) byId.set(entry.run_id, { ...byId.get(entry.run_id), ...entry });
  return [...byId.values()].sort(
    (a, b) => a.started_at.localeCompare(b.started_at) || a.run_id.localeCompare(b.run_id),
  );
}

/** The most recently finished successful run (optionally for one as-of date). */
export function lastSuccess(runs: readonly LedgerEntry[], asOf?: string): LedgerEntry | undefined {
  return runs
    .filter((r) => r.status === 'success' && (asOf === undefined || r.as_of === asOf))
    .sort((a, b) => (a.finished_at ?? '').localeCompare(b.finished_at ?? ''))
    .at(-1);
}

/** A ledger entry for a run that starts now. */
export function startedEntry(runId: string, asOf: string, trigger: Trigger, startedAt: Date): LedgerEntry {
  return {
    run_id: runId,
    as_of: asOf,
    trigger,
    status: 'running',
    started_at: startedAt.toISOString(),
    finished_at: null,
    pid: process.pid,
    host: hostname(),
    timings_ms: {},
    landed_rows: {},
    table_rows: {},
    quarantined: {},
    checks: null,
    error: null,
  };
}

/**
 * Marks runs left as `running` by a dead process as `abandoned`. Only call it while holding the output's lock:
 * then no run of this output is going, whatever the ledger says.
 */
export async function markAbandoned(store: StateStore, now: Date = new Date()): Promise<LedgerEntry[]> {
  const abandoned = currentRuns(await store.readLedger()).filter((r) => r.status === 'running');
  for (const run of abandoned) {
    await store.appendLedger({
      ...run,
      status: 'abandoned',
      finished_at: now.toISOString(),
      error: run.error ?? `the run's process (pid ${run.pid} on ${run.host}) ended before the run finished`,
    });
  }
  return abandoned;
}

/**
 * The ledger's subscriber to a run's events: a `running` line when the run starts (on disk before the run goes on),
 * then what the stages got to (times, rows landed and published, the gates) in its `success` or `failed` line.
 * A failed line that cannot be written is logged; the run's own error is the one that counts.
 */
export function recordInLedger(store: StateStore, log: Logger): Listener<RunEvent> {
  let entry: LedgerEntry | undefined;
  const finish = (status: 'success' | 'failed', error: string | null): LedgerEntry => ({
    ...(entry as LedgerEntry),
    status,
    finished_at: new Date().toISOString(),
    error,
  });
  return async (event) => {
    if (event.type === 'run-started') {
      entry = startedEntry(event.runId, event.asOf, event.trigger, new Date());
      await store.appendLedger(entry);
      return;
    }
    if (!entry) return;
    switch (event.type) {
      case 'progress':
        if (event.stage === 'land' && event.item !== undefined && event.rows !== undefined) {
          entry.landed_rows[event.item] = event.rows;
        }
        return;
      case 'done':
      case 'failed':
        entry.timings_ms[event.stage] = event.ms;
        if (event.type === 'done' && event.stage === 'export') entry.table_rows = { ...event.rows };
        return;
      case 'checked': {
        const { passed, warned, failed, messages } = event;
        entry.quarantined = event.quarantined;
        entry.checks = { passed, warned, failed, messages };
        return;
      }
      case 'run-succeeded':
        await store.appendLedger(finish('success', null));
        return;
      case 'run-failed':
        await store
          .appendLedger(finish('failed', event.error))
          .catch((e: Error) =>
            log.error({ err: e.message }, 'could not record the failed run in the ledger'),
          );
        return;
    }
  };
}
