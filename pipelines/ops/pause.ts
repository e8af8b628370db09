// A test-only hook: with `CHURN_PAUSE_AT=<point>` a run writes `<state>/paused-<point>` when it reaches that point
// and waits there, so that a test can kill it at a known moment. The wait ends when the file is removed, or
// after `CHURN_PAUSE_MS` milliseconds when that is set (a slow run, without a test releasing it).
//
// Points: the start of each stage (recover, land, transform, quality, export, publish, catalog) and the steps of a
// sink's publish (sinks/sink.ts): publish-version, publish-commit, publish-swap (S3 only), publish-current; an S3
// output's local copy reaches them as mirror-publish-version, mirror-publish-commit, mirror-publish-current.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type Pause = (point: string) => Promise<void>;

export function createPause(stateDir: string, env: NodeJS.ProcessEnv = process.env): Pause {
  const wanted = new Set((env.CHURN_PAUSE_AT ?? '').split(',').filter(Boolean));
  const ms = env.CHURN_PAUSE_MS === undefined ? undefined : Number(env.CHURN_PAUSE_MS);
  return async (point: string) => {
    if (!wanted.has(point)) return;
    await mkdir(stateDir, { recursive: true });
    const marker = join(stateDir, `paused-${point}`);
    await writeFile(marker, `${process.pid}\n`);
    const until = ms === undefined ? Number.POSITIVE_INFINITY : Date.now() + ms;
    while (existsSync(marker) && Date.now() < until) await sleep(25);
    await rm(marker, { force: true });
  };
}

/** Removes the markers of paused runs that were killed (call while holding the output's lock). */
export async function clearPauseMarkers(stateDir: string): Promise<void> {
  for (const entry of existsSync(stateDir) ? await readdir(stateDir) : []) {
    if (entry.startsWith('paused-')) await rm(join(stateDir, entry), { force: true });
  }
}
