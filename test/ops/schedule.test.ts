// `churn schedule` as a real process with a two-second cron: catch-up of missed dates in order, ticks that never
// overlap a slow run, a graceful SIGTERM that lets the current run finish, and a second signal that aborts.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addDays, localDate } from '../../pipelines/ops/dates.js';
import { startedEntry } from '../../pipelines/ops/state.js';
import { makeProject, pauseAt, runs, startChurn, waitFor } from './support.js';

// The fixture's orders are from 2024 while the runs are as of today: stale inputs publish without an audience.
const FAST = [
  'checks:',
  '  freshness:',
  '    audience: warn',
  'schedule:',
  "  cron: '*/2 * * * * *'",
  '  as_of: today',
  '  time_zone: UTC',
];

describe('churn schedule', () => {
  it('catches up missed dates in order, never overlaps a slow run, and stops gracefully on SIGTERM', async () => {
    const project = makeProject([...FAST, '  catch_up: all'].join('\n'));
    const today = localDate(new Date(), 'UTC');
    // The last successful run was three days ago: the two days since and today are due.
    const seeded = startedEntry(
      'seeded',
      addDays(today, -3),
      'schedule',
      new Date(Date.now() - 3 * 86_400_000),
    );
    mkdirSync(project.state, { recursive: true });
    writeFileSync(
      join(project.state, 'ledger.jsonl'),
      `${JSON.stringify({ ...seeded, status: 'success', finished_at: seeded.started_at })}\n`,
    );

    // Each run waits 2.5 s at the transform stage: longer than the tick interval.
    const slow = pauseAt('transform', 2500);
    const scheduler = startChurn(['schedule', '--config', project.config], slow.env);
    const scheduled = () => runs(project).filter((r) => r.trigger === 'schedule' && r.run_id !== 'seeded');
    await waitFor(
      () => scheduled().filter((r) => r.status === 'success').length >= 4,
      'four scheduled runs',
      90_000,
    );
    // Stop in the middle of a run: it finishes, then the process exits 0.
    await waitFor(() => existsSync(slow.marker), 'a run in progress', 30_000);
    scheduler.proc.kill('SIGTERM');
    const exit = await scheduler.exited;
    expect(exit.code, exit.stderr.slice(-2000)).toBe(0);

    const done = scheduled();
    expect(
      done.every((r) => r.status === 'success'),
      JSON.stringify(done.map((r) => r.status)),
    ).toBe(true);
    expect(done.length).toBeGreaterThanOrEqual(5);
    expect(done.slice(0, 3).map((r) => r.as_of)).toEqual([addDays(today, -2), addDays(today, -1), today]);
    expect(done.slice(3).every((r) => r.as_of === today)).toBe(true);
    for (let i = 1; i < done.length; i++) {
      const prev = done[i - 1];
      const cur = done[i];
      expect(Date.parse(cur?.started_at ?? ''), 'runs never overlap').toBeGreaterThanOrEqual(
        Date.parse(prev?.finished_at ?? ''),
      );
    }
    expect(exit.stderr).toContain('catching up on runs missed while the scheduler was down');
    expect(exit.stderr).toContain('tick skipped: the previous run is still going');
    expect(exit.stderr).toContain('the current run finishes first');
    expect(exit.stderr).toContain('scheduler stopped');
  });

  it('aborts on a second signal, leaving nothing half-published', async () => {
    const project = makeProject(FAST.join('\n'));
    const pause = pauseAt('publish-current');
    const scheduler = startChurn(['schedule', '--config', project.config], pause.env);
    await waitFor(() => existsSync(pause.marker), 'a run in the middle of publishing');
    scheduler.proc.kill('SIGTERM');
    await waitFor(
      () => scheduler.output().stderr.includes('the current run finishes first'),
      'the first signal',
    );
    scheduler.proc.kill('SIGTERM');
    const exit = await scheduler.exited;
    expect(exit.code).toBe(143);
    expect(exit.stderr).toContain('second signal: aborting the current run');
    // current/ was never swapped in; the ledger still says running (the next run marks it abandoned).
    expect(existsSync(join(project.out, 'current'))).toBe(false);
    expect(runs(project).map((r) => r.status)).toEqual(['running']);
  });
});
