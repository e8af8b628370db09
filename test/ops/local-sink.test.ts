// The local sink in process: dates published by links into immutable versions, re-runs swapped in one rename,
// current/ only forward, interrupted publishes finished or cleaned up by recover(), and outputs of the earlier
// release (real partition folders, a partition left moved aside by a killed publish) read and migrated safely.
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../pipelines/log.js';
import { LocalSink } from '../../pipelines/sinks/local.js';
import type { StagedRun } from '../../pipelines/sinks/sink.js';
import { currentProblems, currentVersion, localView, runIdOf, successProblems } from './published.js';

const log = silentLogger();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A manifest of the real shape for these tables' files. */
function manifest(runId: string, asOf: string, tables: Record<string, Record<string, string>>): string {
  const entries = Object.entries(tables).map(([table, files]) => [
    table,
    { files: Object.entries(files).map(([file, body]) => ({ path: `${table}/${file}`, sha256: sha(body) })) },
  ]);
  return JSON.stringify({ run_id: runId, as_of: asOf, tables: Object.fromEntries(entries) });
}

/** Stages a run in the sink's staging folder: <table>/<file> and _manifest.json. */
function stage(
  sink: LocalSink,
  asOf: string,
  runId: string,
  tables: Record<string, Record<string, string>>,
): StagedRun {
  const stagedDir = sink.stagingDir(runId);
  for (const [table, files] of Object.entries(tables)) {
    mkdirSync(join(stagedDir, table), { recursive: true });
    for (const [file, body] of Object.entries(files)) writeFileSync(join(stagedDir, table, file), body);
  }
  writeFileSync(join(stagedDir, '_manifest.json'), manifest(runId, asOf, tables));
  return { asOf, runId, stagedDir, tables: Object.keys(tables) };
}

const read = (path: string) => readFileSync(path, 'utf8');
const stopAt = (wanted: string) => async (point: string) => {
  if (point === wanted) throw new Error(`stopped at ${point}`);
};

describe('LocalSink', () => {
  it('publishes dates by links, swaps a re-run in whole, and moves current/ only forward', async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    const sink = new LocalSink(root);
    await sink.publish(
      stage(sink, '2024-01-01', 'r1', { a: { 'part-0.parquet': 'a1' }, b: { 'part-0.parquet': 'b1' } }),
      log,
    );
    await sink.publish(
      stage(sink, '2024-01-02', 'r2', { a: { 'part-0.parquet': 'a2' }, b: { 'part-0.parquet': 'b2' } }),
      log,
    );
    expect(lstatSync(join(root, 'a', 'as_of=2024-01-01')).isSymbolicLink()).toBe(true);
    expect(read(join(root, 'a', 'as_of=2024-01-01', 'part-0.parquet'))).toBe('a1');
    expect(currentVersion(localView(root))).toEqual({ runId: 'r2', asOf: '2024-01-02' });

    // A re-run of the older date: its partition is replaced, current/ stays at the newest date.
    await sink.publish(
      stage(sink, '2024-01-01', 'r1b', { a: { 'part-0.parquet': 'a1b' }, b: { 'part-0.parquet': 'b1b' } }),
      log,
    );
    let view = localView(root);
    expect(runIdOf(view, '2024-01-01')).toBe('r1b');
    expect(read(join(root, 'b', 'as_of=2024-01-01', 'part-0.parquet'))).toBe('b1b');
    expect(currentVersion(view)?.runId).toBe('r2');
    expect(readdirSync(join(root, '.versions')).sort()).toEqual(['r1b', 'r2']);

    // A re-run of the newest date that drops table b and adds c: current/ is replaced, b's link goes.
    await sink.publish(
      stage(sink, '2024-01-02', 'r2b', { a: { 'part-0.parquet': 'a2b' }, c: { 'part-0.parquet': 'c2' } }),
      log,
    );
    view = localView(root);
    expect(currentVersion(view)?.runId).toBe('r2b');
    expect(existsSync(join(root, 'b', 'as_of=2024-01-02'))).toBe(false);
    expect(lstatSync(join(root, 'b', 'as_of=2024-01-01')).isSymbolicLink()).toBe(true);
    expect(read(join(root, 'current', 'c', 'part-0.parquet'))).toBe('c2');
    expect(successProblems(view)).toEqual([]);
    expect(currentProblems(view)).toEqual([]);
    expect((await sink.history('a', '2024-01-01', '2024-01-03')).map((h) => read(h.path))).toEqual([
      'a1b',
      'a2b',
    ]);
    expect(await sink.isPublished('2024-01-02')).toBe(true);
    expect(existsSync(join(root, '.staging', 'r2b'))).toBe(false);
  });

  it('a publish stopped before its commit changes nothing; one stopped after it is finished by recover()', async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    const sink = new LocalSink(root);
    await sink.publish(stage(sink, '2024-01-01', 'r1', { a: { 'part-0.parquet': 'a1' } }), log);
    const before = localView(root);

    const early = stage(sink, '2024-01-01', 'r1x', { a: { 'part-0.parquet': 'a1x' } });
    await expect(sink.publish({ ...early, pause: stopAt('publish-version') }, log)).rejects.toThrow(
      'stopped',
    );
    expect(localView(root)).toEqual(before);
    await sink.recover(log);
    expect(localView(root)).toEqual(before);
    expect(readdirSync(join(root, '.versions'))).toEqual(['r1']);
    expect(existsSync(join(root, '.staging'))).toBe(false);

    // A new, newest date stopped right after its commit: not visible yet; recover() links it and moves current/.
    const late = stage(sink, '2024-01-05', 'r5', { a: { 'part-0.parquet': 'a5' } });
    await expect(sink.publish({ ...late, pause: stopAt('publish-commit') }, log)).rejects.toThrow('stopped');
    expect(localView(root).files).toEqual(before.files);
    expect(localView(root).committed).toEqual({ r1: '2024-01-01', r5: '2024-01-05' });
    await sink.recover(log);
    const view = localView(root);
    expect(runIdOf(view, '2024-01-05')).toBe('r5');
    expect(currentVersion(view)?.runId).toBe('r5');
    expect(runIdOf(view, '2024-01-01')).toBe('r1');
    expect(successProblems(view)).toEqual([]);
    expect(currentProblems(view)).toEqual([]);
  });

  it('reads an output of the earlier release, puts back a partition its killed publish moved aside, migrates a re-run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    // The earlier layout: real partition folders, a real runs/ marker, current -> a copy in .versions/.
    const legacy = (asOf: string, runId: string, body: string, partition = `as_of=${asOf}`) => {
      mkdirSync(join(root, 'a', partition), { recursive: true });
      writeFileSync(join(root, 'a', partition, 'part-0.parquet'), body);
      mkdirSync(join(root, 'runs', `as_of=${asOf}`), { recursive: true });
      writeFileSync(
        join(root, 'runs', `as_of=${asOf}`, '_manifest.json'),
        manifest(runId, asOf, { a: { 'part-0.parquet': body } }),
      );
      writeFileSync(join(root, 'runs', `as_of=${asOf}`, '_SUCCESS'), '');
    };
    legacy('2024-01-01', 'old1', 'a1');
    // 2024-01-02: its re-run was killed between the two renames: the partition is only in as_of=D.old-<pid>.
    legacy('2024-01-02', 'old2', 'a2', 'as_of=2024-01-02.old-4242');
    mkdirSync(join(root, '.versions', 'old2', 'a'), { recursive: true });
    writeFileSync(join(root, '.versions', 'old2', 'a', 'part-0.parquet'), 'a2');
    writeFileSync(
      join(root, '.versions', 'old2', '_manifest.json'),
      manifest('old2', '2024-01-02', { a: { 'part-0.parquet': 'a2' } }),
    );
    writeFileSync(join(root, '.versions', 'old2', '_SUCCESS'), '');
    symlinkSync(join('.versions', 'old2'), join(root, 'current'), 'dir');
    symlinkSync(join('.versions', 'old2'), join(root, '.current-old3'), 'dir');

    const sink = new LocalSink(root);
    await sink.recover(log);
    let view = localView(root);
    expect(read(join(root, 'a', 'as_of=2024-01-02', 'part-0.parquet'))).toBe('a2');
    expect(existsSync(join(root, 'a', 'as_of=2024-01-02.old-4242'))).toBe(false);
    expect(existsSync(join(root, '.current-old3'))).toBe(false);
    expect(successProblems(view)).toEqual([]);
    expect(currentProblems(view)).toEqual([]);

    // A re-run of the older legacy date: migrated to links; the newest (legacy) date and current/ stay.
    const newest = JSON.stringify(
      Object.entries(view.files).filter(([p]) => p.includes('2024-01-02') || p.startsWith('current/')),
    );
    await sink.publish(stage(sink, '2024-01-01', 'new1', { a: { 'part-0.parquet': 'a1b' } }), log);
    view = localView(root);
    expect(lstatSync(join(root, 'a', 'as_of=2024-01-01')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(root, 'runs', 'as_of=2024-01-01')).isSymbolicLink()).toBe(true);
    expect(runIdOf(view, '2024-01-01')).toBe('new1');
    expect(
      JSON.stringify(
        Object.entries(view.files).filter(([p]) => p.includes('2024-01-02') || p.startsWith('current/')),
      ),
    ).toBe(newest);
    expect(successProblems(view)).toEqual([]);
    expect(readdirSync(join(root, '.versions')).sort()).toEqual(['new1', 'old2']);

    // A run of a newer date moves current/ forward.
    await sink.publish(stage(sink, '2024-01-03', 'new3', { a: { 'part-0.parquet': 'a3' } }), log);
    expect(currentVersion(localView(root))?.runId).toBe('new3');
    expect(currentProblems(localView(root))).toEqual([]);
  });
});
