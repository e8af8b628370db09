// `churn status`: the recent runs of an output, from its ledger, as a table or JSON.

import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import type { LockHolder } from './lock.js';
import { currentRuns, type LedgerEntry, type LocalStateStore } from './state.js';

export interface StatusReport {
  location: string;
  /** The run holding the output's lock right now, if any. */
  lock: LockHolder | null;
  runs: LedgerEntry[];
}

export async function readStatus(
  store: LocalStateStore,
  limit: number,
  staleMs: number,
): Promise<StatusReport> {
  const held = await lockfile
    .check(store.dir, { lockfilePath: join(store.dir, 'run.lock'), realpath: false, stale: staleMs })
    .catch(() => false);
  const holder = held ? ((await store.readJson<LockHolder>('lock')) ?? null) : null;
  const runs = currentRuns(await store.readLedger()).map((r) =>
    // A run the ledger still calls running while nobody holds the lock was killed; the next run records that.
    r.status === 'running' && holder?.run_id !== r.run_id ? { ...r, status: 'abandoned' as const } : r,
  );
  return { location: store.location, lock: holder, runs: runs.slice(-limit).reverse() };
}

function duration(run: LedgerEntry): string {
  if (!run.finished_at) return '';
  const s = Math.round((Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${s}s`;
}

function sum(values: Record<string, number>): number {
  return Object.values(values).reduce((n, v) => n + v, 0);
}

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [`runs of ${report.location.replace(/\/_state$/, '')} (newest first)`];
  if (report.lock) {
    lines.push(
      `running now: ${report.lock.run_id} (pid ${report.lock.pid} on ${report.lock.host}, since ${report.lock.acquired_at})`,
    );
  }
  if (report.runs.length === 0) {
    lines.push('no runs recorded yet');
    return `${lines.join('\n')}\n`;
  }
  const header = [
    'RUN ID',
    'AS OF',
    'TRIGGER',
    'STATUS',
    'STARTED',
    'DURATION',
    'ROWS IN',
    'QUARANTINED',
    'CHECKS',
    'ERROR',
  ];
  const rows = report.runs.map((r) => [
    r.run_id,
    r.as_of,
    r.trigger,
    r.status,
    r.started_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    duration(r),
    Object.keys(r.landed_rows).length ? String(sum(r.landed_rows)) : '',
    Object.keys(r.quarantined).length ? String(sum(r.quarantined)) : '',
    r.checks
      ? r.checks.failed
        ? `${r.checks.failed} failed`
        : r.checks.warned
          ? `${r.checks.warned} warned`
          : 'ok'
      : '',
    r.error ? (r.error.length > 100 ? `${r.error.slice(0, 97)}...` : r.error) : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  lines.push(format(header), ...rows.map(format));
  return `${lines.join('\n')}\n`;
}
