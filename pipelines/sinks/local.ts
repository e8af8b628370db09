// Publishing to a local folder. Every file a reader opens is a symlink into an immutable version folder, through
// the one link of its date, so that a whole as-of date (all its tables, exports and its run marker) is swapped in one
// atomic rename.
//
// Layout under the output root (a folder is a published table, or `exports/`):
//   .versions/<runId>/<folder>/<file>..., <file>..., _manifest.json, _SUCCESS   one complete run: written once
//   .dates/as_of=D  -> ../.versions/<runId>          the published version of date D: the one switch of a date
//   <folder>/as_of=D/                                a real folder (and real subfolders), made once per date
//   <folder>/as_of=D/<file> -> ../../.dates/as_of=D/<folder>/<file>   one file link per file (one `../` more per
//                                                    subfolder), through the switch of the date
//   runs/as_of=D    -> ../.dates/as_of=D             its _manifest.json and _SUCCESS (and the run's top-level files)
//   current         -> .versions/<runId>             the version of the newest published date
// The partitions are real folders so that a reader's recursive glob finds them: DuckDB's `**` does not descend into
// a symlinked folder, but it reads a symlinked file (`read_parquet('out/<table>/**/*.parquet')`). A file link never
// changes once made (its target names the date, not the version): a re-run changes only .dates/as_of=D.
//
// A publish of date D:
//   1. builds .versions/<runId> completely (the staged folders and files moved in, the manifest, fsync, then
//      _SUCCESS); nothing a reader sees has changed (step `publish-version`);
//   2. commits: renames a new symlink over .dates/as_of=D. One atomic step: a re-run swaps every file and the run
//      marker of D at once, the old version stays whole until then (`publish-commit`);
//   3. links the files of D that are not linked yet (a new date, or a file the earlier version of D did not have)
//      and removes the links of files it no longer has, then links runs/as_of=D last (`publish-current`);
//   4. points current at the version of the newest published date (an atomic rename of a symlink): a backfill or a
//      re-run of an older date leaves current/ alone, a re-run of the newest date replaces it;
//   5. removes the version folders that no link points to any more.
// A kill before step 2 leaves every published file as it was; after step 2 the new version is published, and the
// next run's recovery completes steps 3-5. Between steps 2 and 3 a re-run that adds or drops a file (a table, an
// export) shows the files of the earlier version's set, as a table added or dropped always did.
//
// What recovery (under the run lock) may delete: .staging/ (runs never published), temporary links, and version
// folders that no link points to (never committed, or replaced by a complete newer version of their date). It
// never deletes a version behind a link: the last good copy of a date is always linked. It repairs the links of
// every committed date and moves current/ forward to the newest date. Partitions of earlier releases are read as
// they are: real folders of real files, and symlinked folders (`<folder>/as_of=D -> ../.dates/as_of=D/<folder>`);
// publishing or recovering such a date re-shapes it into a folder of file links, its marker first (so that no
// _SUCCESS stands beside a partition being re-shaped) and last.
import { existsSync } from 'node:fs';
import {
  copyFile,
  cp,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../base/log.js';
import { publishStep, type Sink, SinkError, type StagedRun } from './sink.js';

const VERSIONS = '.versions';
const DATES = '.dates';
const STAGING = '.staging';
const RUNS = 'runs';
const CURRENT = 'current';
const MANIFEST = '_manifest.json';
const SUCCESS = '_SUCCESS';
const AS_OF = /^\d{4}-\d{2}-\d{2}$/;
const PARTITION = /^as_of=\d{4}-\d{2}-\d{2}$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Temporary links of a swap (`.<name>.link-<pid>`) and of earlier releases (`.current-<runId>`). */
const TEMP_LINK = /^\..+\.link-\d+$|^\.current-/;

export class LocalSink implements Sink {
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  /** Where runs are built before publishing: on the same file system, so that their folders move by rename. */
  stagingDir(runId: string): string {
    return join(this.root, STAGING, runId);
  }

  async publish(run: StagedRun, log: Logger): Promise<void> {
    if (!AS_OF.test(run.asOf)) throw new SinkError(`publish: as_of "${run.asOf}" is not a YYYY-MM-DD date`);
    if (!SAFE_NAME.test(run.runId))
      throw new SinkError(`publish: run id "${run.runId}" cannot name a folder`);
    for (const table of run.tables) {
      if (!SAFE_NAME.test(table) || table === RUNS || table === CURRENT) {
        throw new SinkError(`publish: "${table}" cannot be a table name in ${this.root}`);
      }
      for (const file of await filesBelow(join(run.stagedDir, table))) {
        if (!file.split('/').every((part) => SAFE_NAME.test(part)))
          throw new SinkError(`publish: staged file ${table}/${file} cannot be published: rename it`);
      }
    }
    const topFiles = run.files ?? [];
    for (const file of topFiles) {
      if (!SAFE_NAME.test(file) || file === MANIFEST || file === SUCCESS || run.tables.includes(file)) {
        throw new SinkError(`publish: "${file}" cannot be a top-level file of a run in ${this.root}`);
      }
    }
    await this.assertCurrentIsOurs();
    // 1. The complete version, beside everything published.
    const version = join(this.root, VERSIONS, run.runId);
    await rm(version, { recursive: true, force: true });
    await mkdir(version, { recursive: true });
    for (const table of run.tables) await moveDir(join(run.stagedDir, table), join(version, table));
    for (const file of topFiles) await copyFile(join(run.stagedDir, file), join(version, file));
    await copyFile(join(run.stagedDir, MANIFEST), join(version, MANIFEST));
    await syncTree(version);
    await writeFile(join(version, SUCCESS), '');
    await syncPath(join(version, SUCCESS));
    await syncPath(version);
    await publishStep(run, 'publish-version');
    // 2. Commit: date D is this version from now on.
    await mkdir(join(this.root, DATES), { recursive: true });
    await this.swapLink(join(this.root, DATES, `as_of=${run.asOf}`), join('..', VERSIONS, run.runId), 'dir');
    await publishStep(run, 'publish-commit');
    // 3. The history links (a no-op when D was published before with the same files).
    await this.linkDate(run.asOf, run.runId);
    await publishStep(run, 'publish-current');
    // 4. current/ forward only.
    const moved = await this.syncCurrent();
    await rm(run.stagedDir, { recursive: true, force: true });
    // 5.
    const removed = await this.pruneVersions();
    log.debug(
      { location: this.root, asOf: run.asOf, current: moved ? 'moved' : 'unchanged', removed },
      'published',
    );
  }

  async history(table: string, from: string, to: string): Promise<{ asOf: string; path: string }[]> {
    const dir = join(this.root, table);
    if (!existsSync(dir)) return [];
    const found: { asOf: string; path: string }[] = [];
    for (const entry of (await readdir(dir)).sort()) {
      const asOf = /^as_of=(\d{4}-\d{2}-\d{2})$/.exec(entry)?.[1];
      if (!asOf || asOf < from || asOf >= to) continue;
      if (!existsSync(join(this.root, RUNS, entry, SUCCESS))) continue;
      for (const file of (await readdir(join(dir, entry))).sort()) {
        if (file.endsWith('.parquet')) found.push({ asOf, path: join(dir, entry, file) });
      }
    }
    return found;
  }

  async isPublished(asOf: string): Promise<boolean> {
    return existsSync(join(this.root, RUNS, `as_of=${asOf}`, SUCCESS));
  }

  async recover(log: Logger): Promise<void> {
    if (!existsSync(this.root)) return;
    const staging = join(this.root, STAGING);
    if (existsSync(staging)) {
      const leftovers = await readdir(staging);
      if (leftovers.length)
        log.warn({ leftovers: leftovers.length }, 'removing what an interrupted run left in staging');
      await rm(staging, { recursive: true, force: true });
    }
    for (const entry of await readdir(this.root)) {
      // A catalog, a dbt sources file or a probe file that a killed process did not get to rename or remove.
      if (/^\.catalog-\d+\.duckdb(\.wal)?$|^\.sources-\d+\.yml$|^\.probe-\d+$/.test(entry))
        await rm(join(this.root, entry));
    }
    const dirs = [this.root, join(this.root, DATES), join(this.root, RUNS), ...(await this.tableDirs())];
    for (const dir of dirs) {
      for (const entry of existsSync(dir) ? await readdir(dir) : []) {
        if (TEMP_LINK.test(entry)) await rm(join(dir, entry), { force: true });
      }
    }
    // Temporary links inside partition folders (a file link being made when the process was killed).
    for (const partition of await this.partitionFolders()) await removeTempLinks(partition);
    await this.recoverAsideFolders(log);
    // Complete what a publish killed after its commit left undone: links of new dates, current/.
    for (const [asOf, runId] of await this.committedDates()) {
      if (!existsSync(join(this.root, VERSIONS, runId, SUCCESS))) {
        log.warn({ asOf, runId }, 'the published version of this date is incomplete; left as it is');
        continue;
      }
      await this.linkDate(asOf, runId);
    }
    await this.assertCurrentIsOurs();
    if (await this.syncCurrent()) {
      log.warn(
        { location: this.root },
        'moved current/ to the newest published date (its publish was interrupted)',
      );
    }
    const removed = await this.pruneVersions();
    if (removed > 0) log.info({ removed }, 'removed version folders that no published date links to');
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      const probe = join(this.root, `.probe-${process.pid}`);
      await writeFile(probe, '');
      await rm(probe);
    } catch (err) {
      throw new SinkError(
        `output folder ${this.root} is not writable (${(err as NodeJS.ErrnoException).code}); set output.path to a writable folder`,
      );
    }
  }

  /** Replaces (or creates) the symlink `path` atomically: a new link renamed over it. */
  private async swapLink(path: string, target: string, type: 'dir' | 'file'): Promise<void> {
    const tmp = join(dirname(path), `.${basename(path)}.link-${process.pid}`);
    await rm(tmp, { force: true });
    await symlink(target, tmp, type);
    await rename(tmp, path);
    await syncPath(dirname(path));
  }

  /**
   * Makes `path` the folder symlink `target` (the run marker). A real folder there (a marker of an earlier release,
   * already replaced by the committed version) is moved into `retired` first.
   */
  private async ensureLink(path: string, target: string, retired: string): Promise<void> {
    const stat = await lstat(path).catch(() => null);
    if (stat?.isSymbolicLink() && (await readlink(path)) === target) return;
    if (stat && !stat.isSymbolicLink()) {
      if (!stat.isDirectory())
        throw new SinkError(`${path} is a file, not a published partition; move it away`);
      await retire(path, retired);
    }
    await mkdir(dirname(path), { recursive: true });
    await this.swapLink(path, target, 'dir');
  }

  /**
   * Links <folder>/as_of=D/<file> for every file of D's version, then runs/as_of=D; removes the links of files and
   * folders it lacks. A partition of an earlier release is re-shaped, with its marker taken away meanwhile.
   */
  private async linkDate(asOf: string, runId: string): Promise<void> {
    const date = `as_of=${asOf}`;
    const version = join(this.root, VERSIONS, runId);
    const folders = (await readdir(version, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    const retired = join(this.root, VERSIONS, `retired-${asOf}-${process.pid}`);
    const marker = join(this.root, RUNS, date);
    const target = join('..', DATES, date);
    const partitions = [...new Set([...folders.map((f) => join(this.root, f)), ...(await this.tableDirs())])];
    const shapes = await Promise.all(partitions.map((dir) => partitionShape(join(dir, date))));
    const markerStat = await lstat(marker).catch(() => null);
    // The marker first: no _SUCCESS beside partitions being re-shaped (or an earlier release's own marker).
    if (markerStat?.isDirectory()) await retire(marker, retired);
    else if (markerStat && shapes.some((s) => s === 'folder-link' || s === 'real-files')) {
      await rm(marker);
      await syncPath(dirname(marker));
    }
    for (const folder of folders) {
      await this.linkPartition(folder, date, await filesBelow(join(version, folder)), retired);
    }
    for (const dir of await this.tableDirs()) {
      if (folders.includes(basename(dir))) continue;
      await removePartition(join(dir, date), retired);
    }
    await this.ensureLink(marker, target, retired);
  }

  /** Makes <folder>/as_of=D a real folder holding exactly a link per file (paths relative to the folder). */
  private async linkPartition(folder: string, date: string, files: string[], retired: string): Promise<void> {
    const dir = join(this.root, folder, date);
    const shape = await partitionShape(dir);
    if (shape === 'folder-link') await rm(dir);
    else if (shape === 'real-files') await retire(dir, retired);
    else if (shape === 'file')
      throw new SinkError(`${dir} is a file, not a published partition; move it away`);
    for (const file of files) {
      const path = join(dir, file);
      const depth = file.split('/').length + 1;
      const target = join(...Array<string>(depth).fill('..'), DATES, date, folder, file);
      const stat = await lstat(path).catch(() => null);
      if (stat?.isSymbolicLink() && (await readlink(path)) === target) continue;
      if (stat?.isDirectory()) throw new SinkError(`${path} is a folder, not a published file; move it away`);
      await mkdir(dirname(path), { recursive: true });
      await this.swapLink(path, target, 'file');
    }
    await pruneLinks(dir, new Set(files));
  }

  /** Points current at the version of the newest published date; whether it moved. */
  private async syncCurrent(): Promise<boolean> {
    const runs = join(this.root, RUNS);
    const published = (existsSync(runs) ? await readdir(runs) : [])
      .filter((e) => PARTITION.test(e) && existsSync(join(runs, e, SUCCESS)))
      .sort();
    const newest = published.at(-1);
    if (newest === undefined) return false;
    const target = await readlink(join(this.root, DATES, newest)).catch(() => null);
    // The newest date is a partition of an earlier release: current/ is the copy that release made of it.
    if (target === null) return false;
    const version = join(VERSIONS, basename(target));
    const current = join(this.root, CURRENT);
    if ((await readlink(current).catch(() => null)) === version) return false;
    await this.swapLink(current, version, 'dir');
    return true;
  }

  private async assertCurrentIsOurs(): Promise<void> {
    const current = join(this.root, CURRENT);
    const stat = await lstat(current).catch(() => null);
    if (stat && !stat.isSymbolicLink()) {
      throw new SinkError(`${current} exists and is not a symlink made by churn; move it away and run again`);
    }
  }

  /** Every committed date and the run id of its version. */
  private async committedDates(): Promise<[string, string][]> {
    const dates = join(this.root, DATES);
    const found: [string, string][] = [];
    for (const entry of existsSync(dates) ? (await readdir(dates)).sort() : []) {
      const asOf = /^as_of=(\d{4}-\d{2}-\d{2})$/.exec(entry)?.[1];
      const target = asOf && (await readlink(join(dates, entry)).catch(() => null));
      if (asOf && target) found.push([asOf, basename(target)]);
    }
    return found;
  }

  /** The top-level published folders (everything that is not runs/, current, hidden or internal). */
  private async tableDirs(): Promise<string[]> {
    if (!existsSync(this.root)) return [];
    return (await readdir(this.root, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && !/^[._]/.test(e.name) && e.name !== RUNS)
      .map((e) => join(this.root, e.name));
  }

  /** The real partition folders `<folder>/as_of=D` of every published folder. */
  private async partitionFolders(): Promise<string[]> {
    const found: string[] = [];
    for (const dir of await this.tableDirs()) {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (entry.isDirectory() && PARTITION.test(entry.name)) found.push(join(dir, entry.name));
      }
    }
    return found;
  }

  /**
   * Partitions that a publish of an earlier release moved aside (`as_of=D.old-<pid>`) and was killed before it
   * removed: put back when the partition is missing (then it is the last copy), removed when it was replaced.
   */
  private async recoverAsideFolders(log: Logger): Promise<void> {
    for (const dir of await this.tableDirs()) {
      for (const entry of await readdir(dir)) {
        const original = /^(as_of=\d{4}-\d{2}-\d{2})\.old-\d+$/.exec(entry)?.[1];
        if (!original) continue;
        const aside = join(dir, entry);
        if (await lstat(join(dir, original)).catch(() => null)) {
          await rm(aside, { recursive: true, force: true });
        } else {
          await rename(aside, join(dir, original));
          log.warn(
            { partition: join(dir, original) },
            'put back a partition that an interrupted publish had moved aside',
          );
        }
      }
    }
  }

  /** Removes version folders that no link points to; how many. */
  private async pruneVersions(): Promise<number> {
    const versions = join(this.root, VERSIONS);
    if (!existsSync(versions)) return 0;
    const linked = new Set((await this.committedDates()).map(([, runId]) => runId));
    const current = await readlink(join(this.root, CURRENT)).catch(() => null);
    if (current !== null) linked.add(basename(current));
    let removed = 0;
    for (const entry of await readdir(versions)) {
      if (linked.has(entry)) continue;
      await rm(join(versions, entry), { recursive: true, force: true });
      removed += 1;
    }
    return removed;
  }
}

/**
 * What stands at a partition path: nothing, a folder of file links (this layout), a symlinked folder or a folder
 * holding real files (earlier releases), or a file (not ours).
 */
async function partitionShape(
  path: string,
): Promise<'none' | 'links' | 'folder-link' | 'real-files' | 'file'> {
  const stat = await lstat(path).catch(() => null);
  if (!stat) return 'none';
  if (stat.isSymbolicLink()) return 'folder-link';
  if (!stat.isDirectory()) return 'file';
  const hasRealFile = async (dir: string): Promise<boolean> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory() ? await hasRealFile(join(dir, entry.name)) : !entry.isSymbolicLink())
        return true;
    }
    return false;
  };
  return (await hasRealFile(path)) ? 'real-files' : 'links';
}

/** Removes a partition of a folder a date no longer has: links and their folders, or a real one into `retired`. */
async function removePartition(path: string, retired: string): Promise<void> {
  const shape = await partitionShape(path);
  if (shape === 'folder-link') await rm(path);
  else if (shape === 'links') await rm(path, { recursive: true });
  else if (shape === 'real-files') await retire(path, retired);
}

/** Removes the links below `dir` that are not among `keep` (relative paths), then the folders left empty. */
async function pruneLinks(dir: string, keep: ReadonlySet<string>, rel = ''): Promise<boolean> {
  let empty = true;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (await pruneLinks(path, keep, relPath)) await rmdir(path);
      else empty = false;
    } else if (entry.isSymbolicLink() && !keep.has(relPath) && !TEMP_LINK.test(entry.name)) {
      await rm(path);
    } else {
      empty = false;
    }
  }
  return empty;
}

async function removeTempLinks(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await removeTempLinks(path);
    else if (TEMP_LINK.test(entry.name)) await rm(path, { force: true });
  }
}

/** The files below a folder, as relative paths with `/`, sorted. */
async function filesBelow(dir: string, rel = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await filesBelow(join(dir, entry.name), relPath)));
    else found.push(relPath);
  }
  return found.sort();
}

/** Moves a folder (a rename; a copy when the staging folder is on another file system). */
async function moveDir(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await cp(from, to, { recursive: true });
  }
}

/** Moves a replaced real folder into the retired version folder (removed with the next prune). */
async function retire(path: string, retired: string): Promise<void> {
  await mkdir(retired, { recursive: true });
  await rename(path, join(retired, `${basename(dirname(path))}-${basename(path)}-${Date.now()}`));
}

/** fsync of a file or folder, so that a committed version survives a power cut, not only a kill. */
async function syncPath(path: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems refuse to fsync a folder; the data files are what matter most.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    await handle?.close();
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else await syncPath(path);
  }
  await syncPath(dir);
}
