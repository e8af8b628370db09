// One run per output: real `churn run` processes racing for the lock, a lock left by a killed process, and the
// ledger they leave behind as `churn status` shows it.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { churn, killAt, makeProject, pauseAt, reason, runs, startChurn, waitFor } from './support.js';

describe('the run lock and the ledger', () => {
  const project = makeProject();
  const cfg = ['--config', project.config];

  it('refuses a second run for the same output; with --wait it runs after the first', async () => {
    const pause = pauseAt('transform');
    const first = startChurn(['run', ...cfg, '--as-of', '2024-06-29'], pause.env);
    await waitFor(() => existsSync(pause.marker), 'the first run to reach the transform stage');
    const firstId = runs(project)[0]?.run_id;
    expect(firstId).toBeDefined();

    const refused = await churn(['run', ...cfg, '--as-of', '2024-06-30']);
    expect(refused.code).toBe(1);
    const line = reason(refused);
    expect(line).toMatch(/^churn: another run holds the lock of this output/);
    expect(line).toContain(`run ${firstId}`);
    expect(line).toContain(`pid ${first.proc.pid}`);
    expect(line).toContain('--wait');
    expect(
      refused.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('churn:')),
    ).toHaveLength(1);

    const waiting = startChurn(['run', ...cfg, '--as-of', '2024-06-30', '--wait']);
    await waitFor(() => waiting.output().stderr.includes('to finish'), 'the second run to wait for the lock');
    expect(runs(project)).toHaveLength(1); // the waiting run has not started
    rmSync(pause.marker);

    const [a, b] = await Promise.all([first.exited, waiting.exited]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [r1, r2] = runs(project);
    expect(r1?.status).toBe('success');
    expect(r2?.status).toBe('success');
    expect(r2?.as_of).toBe('2024-06-30');
    expect(Date.parse(r2?.started_at ?? '')).toBeGreaterThanOrEqual(Date.parse(r1?.finished_at ?? ''));
  });

  it('takes over the lock of a killed run once it is stale, and marks that run abandoned', async () => {
    const stop = killAt('land');
    const killed = await churn(['run', ...cfg, '--as-of', '2024-06-30'], stop.env);
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(stop.marker)).toBe(true);
    const killedId = runs(project).at(-1)?.run_id;
    expect(existsSync(join(project.state, 'run.lock'))).toBe(true);

    const next = await churn(['run', ...cfg, '--as-of', '2024-06-30']);
    expect(next.code, next.stderr).toBe(0);
    // Depending on how long the new process took to start, the lock was already stale or it waited for that.
    expect(next.stderr).toContain('marked an unfinished run as abandoned');
    const all = runs(project);
    expect(all.find((r) => r.run_id === killedId)?.status).toBe('abandoned');
    expect(all.at(-1)?.status).toBe('success');
    // The killed run's scratch folder was cleaned up.
    expect(existsSync(join(project.dir, '.churn', 'tmp', killedId ?? 'x'))).toBe(false);
  });

  it('churn status lists the runs, newest first, as a table or JSON', async () => {
    const table = await churn(['status', ...cfg]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toBe(`runs of ${project.out} (newest first)`);
    expect(lines[1]).toMatch(
      /^RUN ID\s+AS OF\s+TRIGGER\s+STATUS\s+STARTED\s+DURATION\s+ROWS IN\s+QUARANTINED\s+CHECKS\s+ERROR$/,
    );
    const all = runs(project);
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 4))).toEqual(
      [...all].reverse().map((r) => [r.run_id, r.as_of, 'run', r.status]),
    );
    expect(lines[2]).toMatch(/success\s+\S+ \S+\s+\d+s\s+1149\s+0\s+ok$/);
    expect(lines.find((l) => l.includes('abandoned'))).toMatch(/ended before the run finished/);

    const json = await churn(['status', ...cfg, '--json', '--limit', '2']);
    const report = JSON.parse(json.stdout) as {
      lock: unknown;
      runs: {
        run_id: string;
        status: string;
        table_rows: Record<string, number>;
        timings_ms: Record<string, number>;
      }[];
    };
    expect(report.lock).toBeNull();
    expect(report.runs.map((r) => r.status)).toEqual(['success', 'abandoned']);
    expect(report.runs[0]?.table_rows.customer_health).toBe(40);
    expect(Object.keys(report.runs[0]?.timings_ms ?? {})).toEqual(
      expect.arrayContaining(['land', 'transform', 'quality', 'export', 'publish', 'catalog']),
    );
  });
});
