// `churn backfill`: dates in order, stops at the first failure with its reason, resumes skipping what was
// published, re-runs a date whose _SUCCESS is missing, and --force re-runs published dates.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { churn, fixtureData, makeProject, reason, runs } from './support.js';

describe('churn backfill', () => {
  // Orders end on June 20; freshness is an error gate at 3 days: June 24 onwards fails until it is relaxed.
  const project = makeProject(
    ['checks:', '  freshness:', '    severity: error', '    max_age_days:', '      orders: 3'].join('\n'),
    fixtureData('2024-06-20'),
  );
  const cfg = ['--config', project.config];
  const range = ['--from', '2024-06-22', '--to', '2024-06-25'];

  it('runs each date in order and stops at the first failure with its reason', async () => {
    const exit = await churn(['backfill', ...cfg, ...range]);
    expect(exit.code).toBe(1);
    expect(reason(exit)).toMatch(
      /^churn: backfill stopped at 2024-06-24 \(2 run, 0 skipped, 2 left\): 1 data-quality gate\(s\) failed, nothing was published: freshness: the newest orders row \(ordered_at\) is from 2024-06-20, 4 days before the as-of date 2024-06-24/,
    );
    expect(exit.stdout).toContain('2024-06-22  success');
    expect(exit.stdout).toContain('2024-06-23  success');
    expect(runs(project).map((r) => [r.as_of, r.trigger, r.status])).toEqual([
      ['2024-06-22', 'backfill', 'success'],
      ['2024-06-23', 'backfill', 'success'],
      ['2024-06-24', 'backfill', 'failed'],
    ]);
  });

  it('resumes: skips dates already published and runs the rest', async () => {
    writeFileSync(project.config, readFileSync(project.config, 'utf8').replace('orders: 3', 'orders: 10'));

    const exit = await churn(['backfill', ...cfg, ...range]);
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout.split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(
      expect.arrayContaining([
        '2024-06-22 skipped',
        '2024-06-23 skipped',
        '2024-06-24 success',
        '2024-06-25 success',
      ]),
    );
    expect(exit.stdout).toContain('backfill 2024-06-22 .. 2024-06-25: 2 run, 2 already published');
    expect(
      runs(project)
        .filter((r) => r.status === 'success')
        .map((r) => r.as_of),
    ).toEqual(['2024-06-22', '2024-06-23', '2024-06-24', '2024-06-25']);
  });

  it('runs a date again when its _SUCCESS is gone, and every date with --force', async () => {
    rmSync(join(project.out, 'runs', 'as_of=2024-06-23', '_SUCCESS'));
    const again = await churn(['backfill', ...cfg, ...range]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('2024-06-23  success');
    expect(again.stdout).toContain('1 run, 3 already published');

    const forced = await churn(['backfill', ...cfg, '--from', '2024-06-24', '--to', '2024-06-25', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('2 run, 0 already published');
    const dates = runs(project)
      .filter((r) => r.status === 'success')
      .map((r) => r.as_of);
    expect(dates).toEqual([
      '2024-06-22',
      '2024-06-23',
      '2024-06-24',
      '2024-06-25',
      '2024-06-23',
      '2024-06-24',
      '2024-06-25',
    ]);

    const backwards = await churn(['backfill', ...cfg, '--from', '2024-06-25', '--to', '2024-06-22']);
    expect(backwards.code).toBe(1);
    expect(reason(backwards)).toBe(
      'churn: --from 2024-06-25 is after --to 2024-06-22; give the range oldest first',
    );
  });
});
