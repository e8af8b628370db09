// The crash scenarios of crash.test.ts (a local output) and crash-s3.test.ts (an S3 output, with its local copy).
//
// `churn run` and `churn backfill` are killed with SIGKILL at the start of stages and at the steps of a publish
// (the run's events: pause-entry.mjs kills the process when it reaches one), and at the first moment a re-run's date would not be whole, re-running published dates
// with changed inputs. After every kill: every published file is byte-identical or replaced by a complete new
// version, no _SUCCESS stands beside partial files, current/ is unchanged or moved forward to a complete version
// of the newest date (published.ts checks all of it). Each kill's state is recovered by the next process of the
// chain, and the last run of a chain succeeds without losing any published date or leaving anything behind. A
// backfill of older dates leaves current/ and the catalog alone.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, expect, it } from 'vitest';
import { S3RVER_ENV } from '../support/s3rver.js';
import {
  currentProblems,
  damage,
  localView,
  publishedDates,
  runIdOf,
  s3View,
  type View,
} from './published.js';
import {
  addOrder,
  type Child,
  churn,
  killAt,
  makeProject,
  type Project,
  runs,
  type Stop,
  startChurn,
} from './support.js';

/** The stages (each is killed at its start), in the order a run reaches them. */
const STAGES = ['recover', 'land', 'transform', 'quality', 'export', 'publish'];
/**
 * The steps of a publish (sinks/sink.ts). An S3 output publishes to S3, then to its local copy, whose steps are
 * the local output's: mirror-publish-version (S3 done, the local copy not begun) is the one its composition adds.
 */
const STEPS = {
  local: ['publish-version', 'publish-commit', 'publish-current'],
  s3: ['publish-version', 'publish-commit', 'publish-swap', 'publish-current', 'mirror-publish-version'],
};
/**
 * Where each command is killed. A re-run: every stage and every step. A backfill: its first stage (its recovery
 * of the previous kill not done yet), the first after it, the start of publishing, every step and the catalog;
 * between land and publish a backfill's date is the run's own code (runPipeline), writing only its staging folder.
 */
export function killPoints(kind: 'local' | 's3'): { rerun: string[]; backfill: string[] } {
  return {
    rerun: [...STAGES, ...STEPS[kind], 'catalog'],
    backfill: ['recover', 'land', 'publish', ...STEPS[kind], 'catalog'],
  };
}

const NEWEST = '2024-06-30';
// Freshness is not what these tests are about: the as-of dates run a few days past the fixture's last order.
const EXTRA = ['checks:', '  freshness:', "    severity: 'off'"].join('\n');

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** One output under test: its project, how to see what it published, and the environment of its runs. */
export interface Output {
  project: Project;
  cfg: string[];
  env: Record<string, string>;
  /** The published view of the output (S3), or of the local folder. */
  view(): Promise<View>;
  /** The local copy of an S3 output (the catalog reads it); the same as view() for a local output. */
  localCopy(): View;
  /** Whether date D is whole as a reader sees it (its _SUCCESS; locally also a partition), checked quickly. */
  whole(asOf: string): Promise<boolean>;
}

export function localOutput(): Output {
  const project = makeProject(EXTRA);
  return {
    project,
    cfg: ['--config', project.config],
    env: {},
    view: async () => localView(project.out),
    localCopy: () => localView(project.out),
    whole: async (asOf) => {
      await sleep(1);
      return (
        existsSync(join(project.out, 'runs', `as_of=${asOf}`, '_SUCCESS')) &&
        existsSync(join(project.out, 'fct_customer_period', `as_of=${asOf}`, 'part-0.parquet'))
      );
    },
  };
}

/** An S3 output (bucket `lake`, prefix `churn/`) at `endpoint`, read back with `client`. */
export function s3Output(endpoint: string, client: S3Client): Output {
  const project = makeProject(EXTRA, undefined, [
    'output:',
    '  type: s3',
    '  bucket: lake',
    '  prefix: churn',
    `  endpoint: ${endpoint}`,
    '  force_path_style: true',
    '  local_path: out',
  ]);
  return {
    project,
    cfg: ['--config', project.config],
    env: S3RVER_ENV,
    view: () => s3View(client, 'lake', 'churn/'),
    whole: async (asOf) => {
      await sleep(2);
      try {
        await client.send(
          new HeadObjectCommand({ Bucket: 'lake', Key: `churn/runs/as_of=${asOf}/_SUCCESS` }),
        );
        return true;
      } catch {
        return false;
      }
    },
    localCopy: () => localView(project.out),
  };
}

/** Waits for the child to end: killed at `point` (its marker written), failing with its log if it ended otherwise. */
async function killedAt(child: Child, stop: Stop, point: string): Promise<void> {
  const exit = await child.exited;
  if (exit.signal !== 'SIGKILL' || !existsSync(stop.marker)) {
    throw new Error(
      `the run ended (code ${exit.code}, signal ${exit.signal}) before it was killed at ${point}: ${exit.stderr.slice(-2000)}`,
    );
  }
}

/** Runs a command to its end; it must succeed. */
async function succeed(output: Output, args: string[]): Promise<void> {
  const exit = await churn([...args, ...output.cfg], output.env);
  expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
}

/**
 * Kills `args` at each point in turn (inputs changed before each, so that a re-run publishes a different version),
 * checking after each kill what it did to the outputs; then runs it to its end, and checks that nothing was lost.
 */
async function killAtEveryPoint(
  output: Output,
  args: string[],
  dates: string[],
  points: string[],
  counter: { n: number },
): Promise<void> {
  for (const point of points) {
    addOrder(output.project, counter.n++);
    const before = await output.view();
    const beforeLocal = output.localCopy();
    const stop = killAt(point);
    await killedAt(startChurn([...args, ...output.cfg], { ...output.env, ...stop.env }), stop, point);
    const after = await output.view();
    expect(
      damage(before, after, { dates, swapWindow: point === 'publish-swap' }),
      `a kill at ${point}`,
    ).toEqual([]);
    expect(
      damage(beforeLocal, output.localCopy(), { dates }),
      `the local copy after a kill at ${point}`,
    ).toEqual([]);
    expect(runs(output.project).at(-1)?.status).toBe('running');
  }
  addOrder(output.project, counter.n++);
  const before = await output.view();
  await succeed(output, args);
  const after = await output.view();
  expect(damage(before, after, { dates })).toEqual([]);
  for (const view of [after, output.localCopy()]) {
    expect(currentProblems(view)).toEqual([]);
    // Every date published before is still published.
    expect(publishedDates(view)).toEqual(expect.arrayContaining(publishedDates(before)));
    for (const asOf of dates) expect(publishedDates(view)).toContain(asOf);
  }
}

/** What killed runs left behind is gone: staging, versions nothing links to, temporary links, S3 staging. */
async function expectNoLeftovers(output: Output): Promise<void> {
  const out = output.project.out;
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  expect(list(join(out, '.staging'))).toEqual([]);
  const linked = new Set(
    [...list(join(out, '.dates')).map((d) => join(out, '.dates', d)), join(out, 'current')].map((l) =>
      basename(readlinkSync(l)),
    ),
  );
  expect(new Set(list(join(out, '.versions')))).toEqual(linked);
  const temporary = [out, join(out, '.dates'), join(out, 'runs'), join(out, 'fct_customer_period')].flatMap(
    (dir) => list(dir).filter((f) => /\.(link|tmp)-|^\.current-|\.old-\d+$/.test(f)),
  );
  expect(temporary).toEqual([]);
  expect(list(join(output.project.dir, '.churn', 'tmp'))).toEqual([]);
  expect(Object.keys((await output.view()).staging)).toEqual([]);
}

/** The scenarios, in order, on one output (the tests of a file run one after the other). */
export function crashScenarios(name: 'local' | 's3', make: () => Output): void {
  const points = killPoints(name);
  let output: Output;
  const counter = { n: 0 };
  beforeAll(() => {
    output = make();
  });

  it('a backfill of older dates leaves current/ and the catalog alone', async () => {
    await succeed(output, ['run', '--as-of', NEWEST]);
    const before = await output.view();
    const catalog = sha(join(output.project.out, 'catalog.duckdb'));
    addOrder(output.project, counter.n++);
    await succeed(output, ['backfill', '--from', '2024-06-29', '--to', '2024-06-29']);
    const after = await output.view();
    expect(publishedDates(after)).toEqual(['2024-06-29', NEWEST]);
    expect(damage(before, after, { dates: ['2024-06-29'] })).toEqual([]);
    expect(currentProblems(after)).toEqual([]);
    expect(currentProblems(output.localCopy())).toEqual([]);
    expect(sha(join(output.project.out, 'catalog.duckdb'))).toBe(catalog);
  }, 300_000);

  it('a re-run killed the moment its date would lose its _SUCCESS or a partition', async () => {
    // Inputs changed since the date was published: the re-run replaces files. From its log line `stage export
    // done` on, it is killed at the first moment the date is not whole as a reader sees it (checked every
    // millisecond or so), if that moment comes.
    const before = await output.view();
    const child = startChurn(['run', '--as-of', NEWEST, ...output.cfg], output.env);
    let ended = false;
    void child.exited.then(() => {
      ended = true;
    });
    while (!ended && !child.output().stderr.includes('"msg":"stage export done"')) await sleep(5);
    let killed = false;
    while (!ended) {
      if (!(await output.whole(NEWEST))) {
        child.proc.kill('SIGKILL');
        killed = true;
        break;
      }
    }
    const exit = await child.exited;
    const after = await output.view();
    // A local output swaps a date in one rename: that moment never comes. An S3 output replaces keys one by one,
    // with _SUCCESS off in between: what the kill leaves is finished by the next run's recovery (the next test).
    expect(damage(before, after, { dates: [NEWEST], swapWindow: name === 's3' })).toEqual([]);
    if (name === 'local') {
      expect(killed).toBe(false);
      expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    }
  }, 300_000);

  it('a re-run of the newest date killed at every stage and publish step', async () => {
    await killAtEveryPoint(output, ['run', '--as-of', NEWEST], [NEWEST], points.rerun, counter);
    await expectNoLeftovers(output);
  }, 900_000);

  it('a backfill (a new older date, then a published one) killed at each stage and every publish step', async () => {
    // Every kill stops at the first date, 2024-06-28: new until a kill after the commit publishes it, a re-run
    // of a published older date after that. The last backfill re-runs it and skips 2024-06-29 (published).
    const catalog = sha(join(output.project.out, 'catalog.duckdb'));
    const newest = runIdOf(await output.view(), NEWEST);
    await killAtEveryPoint(
      output,
      ['backfill', '--from', '2024-06-28', '--to', '2024-06-29'],
      ['2024-06-28'],
      points.backfill,
      counter,
    );
    const view = await output.view();
    expect(publishedDates(view)).toEqual(['2024-06-28', '2024-06-29', NEWEST]);
    expect(runIdOf(view, NEWEST)).toBe(newest);
    expect(sha(join(output.project.out, 'catalog.duckdb'))).toBe(catalog);
    await expectNoLeftovers(output);
  }, 900_000);
}
