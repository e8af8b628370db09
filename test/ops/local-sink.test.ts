// The local sink in process: dates published by file links into immutable versions, re-runs swapped in one rename,
// current/ only forward, interrupted publishes finished or cleaned up by recover(), outputs of earlier releases
// (real partition folders, a partition left moved aside by a killed publish, symlinked partition folders) read and
// migrated safely, and the history found by DuckDB's recursive glob.
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Db, sqlString } from '../../pipelines/base/duckdb.js';
import { silentLogger } from '../../pipelines/base/log.js';
import { LocalSink } from '../../pipelines/sinks/local.js';
import type { StagedRun } from '../../pipelines/sinks/sink.js';
import { stopAtStep } from '../support/events.js';
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

/** Stages a run in the sink's staging folder: <folder>/<file> (a file may be in subfolders), _manifest.json. */
function stage(
  sink: LocalSink,
  asOf: string,
  runId: string,
  tables: Record<string, Record<string, string>>,
  top: Record<string, string> = {},
): StagedRun {
  const stagedDir = sink.stagingDir(runId);
  for (const [table, files] of Object.entries(tables)) {
    for (const [file, body] of Object.entries(files)) {
      mkdirSync(dirname(join(stagedDir, table, file)), { recursive: true });
      writeFileSync(join(stagedDir, table, file), body);
    }
  }
  for (const [file, body] of Object.entries(top)) writeFileSync(join(stagedDir, file), body);
  writeFileSync(join(stagedDir, '_manifest.json'), manifest(runId, asOf, tables));
  return { asOf, runId, stagedDir, tables: Object.keys(tables), files: Object.keys(top) };
}

/** Whether <root>/<folder>/as_of=D is a real folder whose file is a link through the switch of date D. */
function linkedThroughDate(root: string, folder: string, asOf: string, file = 'part-0.parquet'): boolean {
  const partition = join(root, folder, `as_of=${asOf}`);
  const depth = file.split('/').length + 1;
  return (
    !lstatSync(partition).isSymbolicLink() &&
    lstatSync(join(partition, file)).isSymbolicLink() &&
    readlinkSync(join(partition, file)) ===
      join(...Array<string>(depth).fill('..'), '.dates', `as_of=${asOf}`, folder, file)
  );
}

const read = (path: string) => readFileSync(path, 'utf8');
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
    expect(linkedThroughDate(root, 'a', '2024-01-01')).toBe(true);
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
    expect(linkedThroughDate(root, 'b', '2024-01-01')).toBe(true);
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
    await expect(sink.publish({ ...early, events: stopAtStep('publish-version') }, log)).rejects.toThrow(
      'stopped',
    );
    expect(localView(root)).toEqual(before);
    await sink.recover(log);
    expect(localView(root)).toEqual(before);
    expect(readdirSync(join(root, '.versions'))).toEqual(['r1']);
    expect(existsSync(join(root, '.staging'))).toBe(false);

    // A new, newest date stopped right after its commit: not visible yet; recover() links it and moves current/.
    const late = stage(sink, '2024-01-05', 'r5', { a: { 'part-0.parquet': 'a5' } });
    await expect(sink.publish({ ...late, events: stopAtStep('publish-commit') }, log)).rejects.toThrow(
      'stopped',
    );
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
    expect(linkedThroughDate(root, 'a', '2024-01-01')).toBe(true);
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

  it('publishes exports below subfolders and top-level files, and swaps a changed file set on a re-run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    const sink = new LocalSink(root);
    const csv = 'exports/reactivation_audience/reactivation_audience_mailchimp.csv';
    await sink.publish(
      stage(
        sink,
        '2024-01-01',
        'r1',
        {
          a: { 'part-0.parquet': 'a1' },
          exports: { 'reactivation_audience/reactivation_audience_mailchimp.csv': 'm1' },
        },
        { 'report.html': '<p>1</p>' },
      ),
      log,
    );
    expect(
      linkedThroughDate(
        root,
        'exports',
        '2024-01-01',
        'reactivation_audience/reactivation_audience_mailchimp.csv',
      ),
    ).toBe(true);
    expect(read(join(root, csv.replace('exports/', 'exports/as_of=2024-01-01/')))).toBe('m1');
    expect(read(join(root, 'current', csv))).toBe('m1');
    expect(read(join(root, 'current', 'report.html'))).toBe('<p>1</p>');
    expect(read(join(root, 'runs', 'as_of=2024-01-01', 'report.html'))).toBe('<p>1</p>');

    // A re-run with another set of exports: the dropped file's link goes, the new one is linked, the folder stays.
    await sink.publish(
      stage(sink, '2024-01-01', 'r1b', {
        a: { 'part-0.parquet': 'a1b' },
        exports: {
          'crm_flags/crm_flags.csv': 'c1',
          'reactivation_audience/reactivation_audience_braze.csv': 'b1',
        },
      }),
      log,
    );
    const partition = join(root, 'exports', 'as_of=2024-01-01');
    expect(readdirSync(join(partition, 'reactivation_audience'))).toEqual([
      'reactivation_audience_braze.csv',
    ]);
    expect(read(join(partition, 'crm_flags', 'crm_flags.csv'))).toBe('c1');
    expect(existsSync(join(root, 'current', 'report.html'))).toBe(false);
    const view = localView(root);
    expect(Object.values(view.files)).not.toContain('dangling');
    expect(currentProblems(view)).toEqual([]);

    // A re-run without exports: the partition of exports goes.
    await sink.publish(stage(sink, '2024-01-01', 'r1c', { a: { 'part-0.parquet': 'a1c' } }), log);
    expect(existsSync(partition)).toBe(false);
    expect(read(join(root, 'a', 'as_of=2024-01-01', 'part-0.parquet'))).toBe('a1c');
  });

  it("makes every partition readable by DuckDB's recursive glob, with the date as a column", async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    const sink = new LocalSink(root);
    const db = await Db.open();
    try {
      for (const [asOf, runId, x] of [
        ['2024-01-01', 'r1', 1],
        ['2024-01-02', 'r2', 2],
        ['2024-01-01', 'r1b', 3],
      ] as const) {
        const run = stage(sink, asOf, runId, { t: { 'part-0.parquet': '' } });
        await db.run(
          `copy (select ${x} as x) to ${sqlString(join(run.stagedDir, 't', 'part-0.parquet'))} (format parquet)`,
        );
        await sink.publish(run, log);
      }
      const rows = await db.all<{ as_of: string; x: number }>(
        `select strftime(as_of, '%Y-%m-%d') as as_of, x from read_parquet(${sqlString(`${root}/t/**/*.parquet`)},
         hive_partitioning = true, hive_types = {'as_of': date}) order by as_of`,
      );
      expect(rows).toEqual([
        { as_of: '2024-01-01', x: 3 },
        { as_of: '2024-01-02', x: 2 },
      ]);
      expect(
        await db.number(`select count(*) from read_parquet(${sqlString(`${root}/current/t/*.parquet`)})`),
      ).toBe(1);
    } finally {
      db.close();
    }
  });

  it('re-shapes the symlinked partition folders of the previous release into folders of file links', async () => {
    const root = mkdtempSync(join(tmpdir(), 'churn-local-sink-'));
    // The previous layout: <table>/as_of=D -> ../.dates/as_of=D/<table>, the marker a link to the date.
    const version = (runId: string, asOf: string, files: Record<string, Record<string, string>>) => {
      for (const [table, tableFiles] of Object.entries(files)) {
        mkdirSync(join(root, '.versions', runId, table), { recursive: true });
        for (const [file, body] of Object.entries(tableFiles))
          writeFileSync(join(root, '.versions', runId, table, file), body);
        mkdirSync(join(root, table), { recursive: true });
        symlinkSync(join('..', '.dates', `as_of=${asOf}`, table), join(root, table, `as_of=${asOf}`), 'dir');
      }
      writeFileSync(join(root, '.versions', runId, '_manifest.json'), manifest(runId, asOf, files));
      writeFileSync(join(root, '.versions', runId, '_SUCCESS'), '');
      mkdirSync(join(root, '.dates'), { recursive: true });
      symlinkSync(join('..', '.versions', runId), join(root, '.dates', `as_of=${asOf}`), 'dir');
      mkdirSync(join(root, 'runs'), { recursive: true });
      symlinkSync(join('..', '.dates', `as_of=${asOf}`), join(root, 'runs', `as_of=${asOf}`), 'dir');
    };
    version('p1', '2024-01-01', {
      a: { 'part-0.parquet': 'a1' },
      reactivation_audience: { 'part-0.parquet': 'r1', 'x.csv': 'c1' },
    });
    version('p2', '2024-01-02', { a: { 'part-0.parquet': 'a2' } });
    symlinkSync(join('.versions', 'p2'), join(root, 'current'), 'dir');
    const before = localView(root);

    const sink = new LocalSink(root);
    await sink.recover(log);
    expect(localView(root)).toEqual(before);
    expect(linkedThroughDate(root, 'a', '2024-01-01')).toBe(true);
    expect(linkedThroughDate(root, 'a', '2024-01-02')).toBe(true);
    expect(linkedThroughDate(root, 'reactivation_audience', '2024-01-01', 'x.csv')).toBe(true);
    expect(successProblems(localView(root))).toEqual([]);

    // A re-run whose audience folder holds Parquet only: the CSV's link goes.
    await sink.publish(
      stage(sink, '2024-01-01', 'n1', {
        a: { 'part-0.parquet': 'a1b' },
        reactivation_audience: { 'part-0.parquet': 'r1b' },
      }),
      log,
    );
    expect(readdirSync(join(root, 'reactivation_audience', 'as_of=2024-01-01'))).toEqual(['part-0.parquet']);
    expect(successProblems(localView(root))).toEqual([]);
    expect(currentVersion(localView(root))?.runId).toBe('p2');
  });
});
