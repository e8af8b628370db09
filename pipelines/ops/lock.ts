// One run per output location at a time: a lock directory `<output>/_state/run.lock` (proper-lockfile), whose
// mtime the holder refreshes while it runs. A lock whose mtime is older than the stale threshold belongs to a
// dead process and is taken over; `lock.json` beside it names the holder for the message of a refused run.
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import type { Logger } from '../base/log.js';
import type { LocalStateStore, Trigger } from './state.js';

export class LockError extends Error {
  override readonly name = 'LockError';
}

export interface LockHolder {
  pid: number;
  host: string;
  run_id: string;
  as_of: string;
  trigger: Trigger;
  acquired_at: string;
}

export interface RunLock {
  readonly path: string;
  /** Set when the lock was lost while held (its mtime could not be refreshed in time): do not publish. */
  readonly compromised: Error | null;
  release(): Promise<void>;
}

export interface LockOptions {
  runId: string;
  asOf: string;
  trigger: Trigger;
  /** Wait for the holder to finish instead of refusing: true = as long as it takes, a number = seconds. */
  wait?: boolean | number;
  /** A lock not refreshed for this long is stale (its holder died) and is taken over. */
  staleMs: number;
  log: Logger;
}

const HOLDER = 'lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'a run (holder unknown)';
  return `run ${holder.run_id} (pid ${holder.pid} on ${holder.host}, ${holder.trigger}, as of ${holder.as_of}, since ${holder.acquired_at})`;
}

export async function acquireRunLock(store: LocalStateStore, options: LockOptions): Promise<RunLock> {
  const { log } = options;
  await mkdir(store.dir, { recursive: true });
  const lockPath = join(store.dir, 'run.lock');
  const deadline =
    options.wait === true
      ? Number.POSITIVE_INFINITY
      : typeof options.wait === 'number'
        ? Date.now() + options.wait * 1000
        : undefined;
  let said = '';
  const sayOnce = (key: string, fields: Record<string, unknown>, message: string) => {
    if (said === key) return;
    said = key;
    log.warn(fields, message);
  };
  for (;;) {
    let compromised: Error | null = null;
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockfile.lock(store.dir, {
        lockfilePath: lockPath,
        realpath: false,
        stale: options.staleMs,
        retries: 0,
        onCompromised: (err) => {
          compromised = err;
          log.error({ lock: lockPath, err: err.message }, 'the run lock was lost; this run will not publish');
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new LockError(`cannot take the run lock ${lockPath}: ${(err as Error).message}`);
      }
    }
    if (release) {
      const holder: LockHolder = {
        pid: process.pid,
        host: hostname(),
        run_id: options.runId,
        as_of: options.asOf,
        trigger: options.trigger,
        acquired_at: new Date().toISOString(),
      };
      await store.writeJson(HOLDER, holder);
      const releaseLock = release;
      return {
        path: lockPath,
        get compromised() {
          return compromised;
        },
        async release() {
          const current = await store.readJson<LockHolder>(HOLDER);
          if (current?.run_id === holder.run_id) await store.removeJson(HOLDER);
          await releaseLock().catch((err: Error) =>
            log.warn({ err: err.message }, 'releasing the run lock failed'),
          );
        },
      };
    }

    const holder = await store.readJson<LockHolder>(HOLDER);
    if (holder && holder.host === hostname() && !isAlive(holder.pid)) {
      // Its process is gone: the lock goes stale within staleMs (no refresh), then it is ours.
      sayOnce(
        `dead-${holder.run_id}`,
        { holder: holder.run_id, pid: holder.pid, staleMs: options.staleMs },
        'the run lock was left by a process that is gone; taking it over once it is stale',
      );
      await sleep(250);
      continue;
    }
    if (deadline === undefined) {
      throw new LockError(
        `another run holds the lock of this output (${lockPath}): ${describeHolder(holder)}; ` +
          'wait for it to finish or pass --wait to queue behind it',
      );
    }
    if (Date.now() > deadline) {
      throw new LockError(
        `gave up after waiting ${options.wait} s for the lock of this output (${lockPath}), held by ${describeHolder(holder)}`,
      );
    }
    sayOnce(
      `wait-${holder?.run_id}`,
      { holder: holder?.run_id, pid: holder?.pid },
      `waiting for ${describeHolder(holder)} to finish`,
    );
    await sleep(500);
  }
}
