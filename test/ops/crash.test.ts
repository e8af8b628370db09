// Crash safety: `churn run` killed with SIGKILL at landing, transform, export and in the middle of publishing
// leaves the published outputs exactly as they were (sha256 of every file) and no _SUCCESS beside partial
// files; the next run cleans up and succeeds.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  churn,
  currentRunId,
  hashTree,
  makeProject,
  runs,
  startChurn,
  successProblems,
  waitFor,
} from './support.js';

describe('a run killed with SIGKILL', () => {
  const project = makeProject();
  const cfg = ['--config', project.config];

  it('never changes what was published, and the next run recovers', async () => {
    const base = await churn(['run', ...cfg, '--as-of', '2024-06-29']);
    expect(base.code, base.stderr).toBe(0);
    const before = hashTree(join(project.out, 'current'));
    const beforeRun = currentRunId(project.out);
    expect(Object.keys(before).length).toBeGreaterThan(8);

    for (const point of ['land', 'transform', 'export', 'publish-current']) {
      const child = startChurn(['run', ...cfg, '--as-of', '2024-06-30'], { CHURN_PAUSE_AT: point });
      await waitFor(() => existsSync(join(project.state, `paused-${point}`)), `the run to pause at ${point}`);
      child.proc.kill('SIGKILL');
      const exit = await child.exited;
      expect(exit.signal).toBe('SIGKILL');

      expect(hashTree(join(project.out, 'current')), `current/ after a kill at ${point}`).toEqual(before);
      expect(currentRunId(project.out)).toBe(beforeRun);
      expect(successProblems(project.out), `_SUCCESS markers after a kill at ${point}`).toEqual([]);
      // Only a kill after the history partitions were complete may leave the new date's run marker.
      expect(existsSync(join(project.out, 'runs', 'as_of=2024-06-30', '_SUCCESS'))).toBe(
        point === 'publish-current',
      );
      expect(runs(project).at(-1)?.status).toBe('running');
    }

    const next = await churn(['run', ...cfg, '--as-of', '2024-06-30']);
    expect(next.code, next.stderr).toBe(0);
    expect(currentRunId(project.out)).not.toBe(beforeRun);
    expect(successProblems(project.out)).toEqual([]);
    const all = runs(project);
    expect(all.map((r) => r.status)).toEqual([
      'success',
      'abandoned',
      'abandoned',
      'abandoned',
      'abandoned',
      'success',
    ]);
    // What the killed runs left is gone: staging, version folders not behind current/, scratch space.
    const leftovers = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
    expect(leftovers(join(project.out, '.staging'))).toEqual([]);
    expect(leftovers(join(project.out, '.versions'))).toEqual([all.at(-1)?.run_id]);
    expect(leftovers(project.out).filter((f) => f.startsWith('.current-'))).toEqual([]);
    expect(leftovers(join(project.dir, '.churn', 'tmp'))).toEqual([]);
    // The history partition of the first date was never touched.
    expect(existsSync(join(project.out, 'runs', 'as_of=2024-06-29', '_SUCCESS'))).toBe(true);
  });
});
