// Publishing to a local folder. History partitions are replaced by rename; `current` is a symlink to a complete
// version folder, swapped atomically by renaming a new symlink over it, so a reader never sees a half-written run.
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { type Sink, SinkError, type StagedRun } from './sink.js';

const VERSIONS = '.versions';
const STAGING = '.staging';

export class LocalSink implements Sink {
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  /** Where runs are built before publishing: on the same file system, so renames are atomic. */
  stagingDir(runId: string): string {
    return join(this.root, STAGING, runId);
  }

  private async replaceDir(from: string, to: string): Promise<void> {
    const old = `${to}.old-${process.pid}`;
    await rm(old, { recursive: true, force: true });
    if (existsSync(to)) await rename(to, old);
    await rename(from, to);
    await rm(old, { recursive: true, force: true });
  }

  async publish(run: StagedRun, log: Logger): Promise<void> {
    const runMarker = join(this.root, 'runs', `as_of=${run.asOf}`);
    // 1. History: the run's _SUCCESS goes first, so a crash below never leaves it beside partial partitions.
    await rm(join(runMarker, '_SUCCESS'), { force: true });
    const version = join(this.root, VERSIONS, run.runId);
    await mkdir(version, { recursive: true });
    for (const table of run.tables) {
      const staged = join(run.stagedDir, table);
      // The version folder (behind current/) gets a copy; the staged folder is moved into the history.
      await cp(staged, join(version, table), { recursive: true });
      const partition = join(this.root, table, `as_of=${run.asOf}`);
      await mkdir(join(this.root, table), { recursive: true });
      await this.replaceDir(staged, partition);
    }
    await mkdir(runMarker, { recursive: true });
    await cp(join(run.stagedDir, '_manifest.json'), join(runMarker, '_manifest.json'));
    await writeFile(join(runMarker, '_SUCCESS'), '');
    await run.pause?.('publish-current');
    // 2. current/: complete the version folder, then swap the symlink atomically.
    await cp(join(run.stagedDir, '_manifest.json'), join(version, '_manifest.json'));
    await writeFile(join(version, '_SUCCESS'), '');
    const current = join(this.root, 'current');
    const previous = existsSync(current) ? await readlink(current).catch(() => null) : null;
    if (existsSync(current) && previous === null) {
      throw new SinkError(`${current} exists and is not a symlink made by churn; move it away and run again`);
    }
    const tmpLink = join(this.root, `.current-${run.runId}`);
    await rm(tmpLink, { force: true });
    await symlink(join(VERSIONS, run.runId), tmpLink, 'dir');
    await rename(tmpLink, current);
    await rm(run.stagedDir, { recursive: true, force: true });
    log.debug({ location: this.root, asOf: run.asOf }, 'published');
    await this.pruneVersions();
  }

  /** Removes version folders that current/ no longer points at. */
  private async pruneVersions(): Promise<void> {
    const versions = join(this.root, VERSIONS);
    if (!existsSync(versions)) return;
    const current = await readlink(join(this.root, 'current')).catch(() => '');
    for (const entry of await readdir(versions)) {
      if (join(VERSIONS, entry) !== current)
        await rm(join(versions, entry), { recursive: true, force: true });
    }
  }

  async history(table: string, from: string, to: string): Promise<{ asOf: string; path: string }[]> {
    const dir = join(this.root, table);
    if (!existsSync(dir)) return [];
    const found: { asOf: string; path: string }[] = [];
    for (const entry of (await readdir(dir)).sort()) {
      const asOf = /^as_of=(\d{4}-\d{2}-\d{2})$/.exec(entry)?.[1];
      if (!asOf || asOf < from || asOf >= to) continue;
      if (!existsSync(join(this.root, 'runs', entry, '_SUCCESS'))) continue;
      for (const file of (await readdir(join(dir, entry))).sort()) {
        if (file.endsWith('.parquet')) found.push({ asOf, path: join(dir, entry, file) });
      }
    }
    return found;
  }

  async isPublished(asOf: string): Promise<boolean> {
    return existsSync(join(this.root, 'runs', `as_of=${asOf}`, '_SUCCESS'));
  }

  async recover(log: Logger): Promise<void> {
    const staging = join(this.root, STAGING);
    if (existsSync(staging)) {
      const leftovers = await readdir(staging);
      if (leftovers.length)
        log.warn({ leftovers: leftovers.length }, 'removing what an interrupted run left in staging');
      await rm(staging, { recursive: true, force: true });
    }
    for (const entry of existsSync(this.root) ? await readdir(this.root, { withFileTypes: true }) : []) {
      if (entry.name.startsWith('.current-')) await rm(join(this.root, entry.name), { force: true });
      // A partition a killed replaceDir() had moved aside (history() never reads these).
      if (entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.startsWith('_')) {
        for (const sub of await readdir(join(this.root, entry.name))) {
          const aside = join(this.root, entry.name, sub);
          if (/^as_of=.*\.old-\d+$/.test(sub)) await rm(aside, { recursive: true, force: true });
        }
      }
    }
    await this.pruneVersions();
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
}
