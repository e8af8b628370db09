// What a reader of an output sees, and the checks of the crash tests on it: every published file stays
// byte-identical or is replaced by a complete new version, no _SUCCESS stands beside partial files, and current/
// only moves forward to the newest published as-of date.
//
// A view is the same for a local folder (read through its symlinks, as a reader does) and an S3 prefix: the
// published paths (`<table>/as_of=D/<file>`, `runs/as_of=D/_manifest.json|_SUCCESS`, `current/...`) with the
// sha256 of their bytes, plus the manifests' text. Internal folders (`.versions`, `.dates`, `.staging`, `_state`)
// are not part of it; an S3 output's `_staging/` (a run's upload before its swap) is kept apart.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listObjects } from '../../pipelines/base/s3client.js';

export interface View {
  /** Published path (relative to the output root) → sha256, or `dangling` for a link that leads nowhere. */
  files: Record<string, string>;
  /** The text of every `_manifest.json` of `files`. */
  manifests: Record<string, string>;
  /** S3 only: `_staging/<runId>/...` → sha256. */
  staging: Record<string, string>;
  /**
   * Versions committed but maybe not yet visible, run id → as-of date: what the next recovery may finish
   * (local: the `.dates/as_of=D` links; S3: the `_staging/<runId>/_COMMITTED` records).
   */
  committed: Record<string, string>;
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The reader's view of a local output folder. */
export function localView(root: string): View {
  const view: View = { files: {}, manifests: {}, staging: {}, committed: {} };
  const walk = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      const relPath = rel ? `${rel}/${entry}` : entry;
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
      } catch {
        view.files[relPath] = 'dangling';
        continue;
      }
      if (isDir) walk(path, relPath);
      else {
        const bytes = readFileSync(path);
        view.files[relPath] = sha(bytes);
        if (entry === '_manifest.json') view.manifests[relPath] = bytes.toString('utf8');
      }
    }
  };
  if (!existsSync(root)) return view;
  const dates = join(root, '.dates');
  for (const entry of existsSync(dates) ? readdirSync(dates) : []) {
    const asOf = /^as_of=(\d{4}-\d{2}-\d{2})$/.exec(entry)?.[1];
    if (asOf) view.committed[basename(readlinkSync(join(dates, entry)))] = asOf;
  }
  for (const entry of readdirSync(root).sort()) {
    if (entry.startsWith('.') || entry.startsWith('_')) continue;
    const path = join(root, entry);
    if (existsSync(path) && statSync(path).isDirectory()) walk(path, entry);
  }
  return view;
}

/** Bytes already read, by ETag and size (the same object content is hashed once). */
const seen = new Map<string, { sha256: string; text: string }>();

/** The reader's view of an S3 output prefix (`prefix` ends with a slash). */
export async function s3View(client: S3Client, bucket: string, prefix: string): Promise<View> {
  const view: View = { files: {}, manifests: {}, staging: {}, committed: {} };
  const objects: { key: string; tag: string }[] = [];
  for await (const object of listObjects(client, bucket, prefix)) {
    objects.push({ key: object.Key!, tag: `${object.ETag}:${object.Size}` });
  }
  const read = async ({ key, tag }: { key: string; tag: string }) => {
    const rel = key.slice(prefix.length);
    if (rel.startsWith('_state/')) return;
    let content = seen.get(tag);
    if (!content) {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await response.Body!.transformToByteArray());
      content = { sha256: sha(bytes), text: bytes.length < 1_000_000 ? bytes.toString('utf8') : '' };
      seen.set(tag, content);
    }
    if (rel.startsWith('_staging/')) {
      view.staging[rel] = content.sha256;
      const runId = /^_staging\/([^/]+)\/_COMMITTED$/.exec(rel)?.[1];
      if (runId) view.committed[runId] = (JSON.parse(content.text) as { as_of: string }).as_of;
      return;
    }
    view.files[rel] = content.sha256;
    if (rel.endsWith('/_manifest.json')) view.manifests[rel] = content.text;
  };
  // A few requests at a time.
  const queue = [...objects];
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) await read(next);
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return view;
}

interface ManifestShape {
  run_id: string;
  as_of: string;
  tables: Record<string, { files: { path: string; sha256: string }[] }>;
  /** The import files under exports/ (absent in manifests of earlier releases). */
  exports?: Record<string, { files: { path: string; sha256: string }[] }>;
}

/** Every file a manifest lists (`<folder>/<path below it>`: tables and exports), with its sha256. */
function manifestFiles(m: ManifestShape): { path: string; sha256: string }[] {
  return [...Object.values(m.tables), ...Object.values(m.exports ?? {})].flatMap((t) => t.files);
}

function manifest(view: View, path: string): ManifestShape | undefined {
  const text = view.manifests[path];
  return text === undefined ? undefined : (JSON.parse(text) as ManifestShape);
}

/** As-of dates with runs/as_of=D/_SUCCESS, oldest first. */
export function publishedDates(view: View): string[] {
  return Object.keys(view.files)
    .map((p) => /^runs\/as_of=(\d{4}-\d{2}-\d{2})\/_SUCCESS$/.exec(p)?.[1])
    .filter((d): d is string => d !== undefined)
    .sort();
}

/** The files of date D: `<table>/as_of=D/<file>` of every table, and runs/as_of=D/*. */
export function partition(view: View, asOf: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [path, hash] of Object.entries(view.files)) {
    if (path.startsWith(`runs/as_of=${asOf}/`) || new RegExp(`^[^/]+/as_of=${asOf}/`).test(path)) {
      if (!path.startsWith('current/')) files[path] = hash;
    }
  }
  return files;
}

/** The files under current/, by path below current/. */
export function currentFiles(view: View): Record<string, string> {
  return Object.fromEntries(
    Object.entries(view.files)
      .filter(([p]) => p.startsWith('current/'))
      .map(([p, h]) => [p.slice('current/'.length), h]),
  );
}

/** run_id and as_of of a complete current/ (with _SUCCESS), else undefined. */
export function currentVersion(view: View): { runId: string; asOf: string } | undefined {
  if (!view.files['current/_SUCCESS']) return undefined;
  const m = manifest(view, 'current/_manifest.json');
  return m && { runId: m.run_id, asOf: m.as_of };
}

export function runIdOf(view: View, asOf: string): string | undefined {
  return manifest(view, `runs/as_of=${asOf}/_manifest.json`)?.run_id;
}

/**
 * Every `_SUCCESS` stands beside complete files: the partition (all tables) of a run marker, and current/, hold
 * exactly the files of their manifest with its checksums. The problems found.
 */
export function successProblems(view: View): string[] {
  const problems: string[] = [];
  const check = (where: string, expected: Record<string, string>, actual: Record<string, string>) => {
    for (const [path, hash] of Object.entries(expected)) {
      if (actual[path] === undefined) problems.push(`${where}: ${path} is missing`);
      else if (actual[path] !== hash) problems.push(`${where}: ${path} differs from its manifest`);
    }
    for (const path of Object.keys(actual)) {
      if (expected[path] === undefined) problems.push(`${where}: ${path} is not in its manifest`);
    }
  };
  for (const asOf of publishedDates(view)) {
    const m = manifest(view, `runs/as_of=${asOf}/_manifest.json`);
    if (!m) {
      problems.push(`runs/as_of=${asOf}: _SUCCESS without _manifest.json`);
      continue;
    }
    if (m.as_of !== asOf) problems.push(`runs/as_of=${asOf}: its manifest is of ${m.as_of}`);
    const expected: Record<string, string> = {};
    for (const f of manifestFiles(m)) {
      const slash = f.path.indexOf('/');
      expected[`${f.path.slice(0, slash)}/as_of=${asOf}/${f.path.slice(slash + 1)}`] = f.sha256;
    }
    const actual = Object.fromEntries(
      Object.entries(partition(view, asOf)).filter(([p]) => !p.startsWith('runs/')),
    );
    check(`as_of=${asOf}`, expected, actual);
  }
  if (view.files['current/_SUCCESS']) {
    const m = manifest(view, 'current/_manifest.json');
    if (!m) problems.push('current: _SUCCESS without _manifest.json');
    else {
      const expected: Record<string, string> = {};
      for (const f of manifestFiles(m)) expected[f.path] = f.sha256;
      const actual = currentFiles(view);
      // _SUCCESS, _manifest.json and the run's top-level files (report.html) are not files of a table.
      for (const path of Object.keys(actual)) if (!path.includes('/')) delete actual[path];
      check('current', expected, actual);
    }
  }
  return problems;
}

/** current/ holds the version of the newest published date, file for file. The problems found. */
export function currentProblems(view: View): string[] {
  const dates = publishedDates(view);
  const newest = dates.at(-1);
  const current = currentVersion(view);
  if (newest === undefined) return current ? ['current/ exists but no date is published'] : [];
  if (!current) return [`current/ has no _SUCCESS though ${newest} is published`];
  if (current.asOf !== newest)
    return [`current/ is at ${current.asOf}, the newest published date is ${newest}`];
  if (current.runId !== runIdOf(view, newest)) {
    return [`current/ is run ${current.runId}, as_of=${newest} is run ${runIdOf(view, newest)}`];
  }
  return [];
}

function equal(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export interface KilledRun {
  /** The as-of dates the killed command may have published. */
  dates: string[];
  /**
   * S3 only: a date may be without _SUCCESS while its keys are being replaced (the swap window), if every file is
   * byte-identical to the old or a committed new version.
   */
  swapWindow?: boolean;
}

/**
 * What a killed run did to the published outputs, compared with before it started: every published date is
 * byte-identical or replaced by a complete new version, no _SUCCESS stands beside partial files, current/ is
 * unchanged or moved forward to a complete new version of the newest date. A new version is one the killed run
 * published (of one of its dates) or one committed before it started (which its recovery finishes). The problems
 * found.
 */
export function damage(before: View, after: View, run: KilledRun): string[] {
  const problems = successProblems(after);
  const beforeDates = publishedDates(before);
  const afterDates = new Set(publishedDates(after));
  const newestBefore = beforeDates.at(-1) ?? '';
  // A version that may appear: of a date of the run, or committed before it started.
  const mayAppear = (asOf: string, runId: string | undefined) =>
    run.dates.includes(asOf) || (runId !== undefined && before.committed[runId] === asOf);
  const swapping = (asOf: string) =>
    run.dates.includes(asOf) || Object.values(before.committed).includes(asOf);
  for (const asOf of beforeDates) {
    const old = partition(before, asOf);
    const now = partition(after, asOf);
    if (equal(old, now)) continue;
    if (afterDates.has(asOf)) {
      // Complete (successProblems), and a new version that may appear.
      const runId = runIdOf(after, asOf);
      if (runId === runIdOf(before, asOf)) problems.push(`as_of=${asOf} changed in place`);
      else if (!mayAppear(asOf, runId)) problems.push(`as_of=${asOf} changed to run ${runId}`);
    } else if (!run.swapWindow || !swapping(asOf)) {
      problems.push(`as_of=${asOf} lost its _SUCCESS`);
    } else {
      problems.push(...swapWindowProblems(before, after, asOf));
    }
  }
  for (const asOf of afterDates) {
    if (!beforeDates.includes(asOf) && !mayAppear(asOf, runIdOf(after, asOf)))
      problems.push(`as_of=${asOf} appeared though the run did not publish it`);
  }
  const oldCurrent = currentVersion(before);
  const newCurrent = currentVersion(after);
  if (oldCurrent && !newCurrent) problems.push('current/ lost its _SUCCESS');
  if (newCurrent && !equal(currentFiles(before), currentFiles(after))) {
    // current/ may move: forward, to the newest date, to a version of it that was published (or committed) before
    // the kill, or that the killed run published.
    const { asOf, runId } = newCurrent;
    const known =
      runIdOf(before, asOf) === runId ||
      before.committed[runId] === asOf ||
      (run.dates.includes(asOf) && runIdOf(after, asOf) === runId);
    if (oldCurrent && runId === oldCurrent.runId) problems.push('current/ changed in place');
    if (asOf < newestBefore || (oldCurrent && asOf < oldCurrent.asOf)) {
      problems.push(`current/ moved back to ${asOf}; ${newestBefore} is published`);
    }
    if (!known)
      problems.push(`current/ moved to run ${runId} of ${asOf}, which is not a published version of it`);
  }
  return problems;
}

/** In the S3 swap window: every file of as_of=D is the old one or one of a committed new version, byte for byte. */
function swapWindowProblems(before: View, after: View, asOf: string): string[] {
  const versions = [...Object.entries(before.committed), ...Object.entries(after.committed)]
    .filter(([, date]) => date === asOf)
    .map(([runId]) => runId);
  // Without a committed swap, nothing would ever put the marker back.
  if (versions.length === 0)
    return [`as_of=${asOf} lost its _SUCCESS, and no committed swap will restore it`];
  const staged = (file: string) =>
    versions.map(
      (runId) => after.staging[`_staging/${runId}/${file}`] ?? before.staging[`_staging/${runId}/${file}`],
    );
  const problems: string[] = [];
  const old = partition(before, asOf);
  for (const [path, hash] of Object.entries(partition(after, asOf))) {
    const match = new RegExp(`^([^/]+)/as_of=${asOf}/(.+)$`).exec(path);
    const file = match?.[1] === 'runs' ? match[2]! : `${match?.[1]}/${match?.[2]}`;
    if (hash !== old[path] && !staged(file).includes(hash)) {
      problems.push(`as_of=${asOf}: ${path} is neither the old version nor a committed new one`);
    }
  }
  return problems;
}
