// `churn schedule`: a long-running scheduler (node-cron) with the config's cron expression and time zone.
//
// - Never overlapping: a tick that comes while a run is going is skipped (and logged); the next one catches up.
// - Catch-up after downtime: on start and on each tick, the as-of dates that should have run since the last
//   successful run (per the ledger, looking back at most schedule.max_catch_up_days) are run oldest first
//   (`catch_up: all`) or only the newest of them (`catch_up: latest`). A tick always runs its own as-of date.
// - stop(): takes no more ticks and resolves once the current run has finished (the CLI maps SIGTERM/SIGINT to it).
import cron, { type ScheduledTask } from 'node-cron';
import type { LoadedConfig } from '../../config/load.js';
import type { Logger } from '../base/log.js';
import { runPipeline } from '../run/index.js';
import { createSink } from '../sinks/index.js';
import { addDays, localDate, zonedTime } from './dates.js';
import { currentRuns, type LedgerEntry, localStateStore, type StateStore } from './state.js';

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

export type AsOfMode = 'yesterday' | 'today';
export type CatchUp = 'latest' | 'all';

export interface ScheduleSettings {
  cron: string;
  timeZone: string;
  catchUp: CatchUp;
  asOfMode: AsOfMode;
  maxCatchUpDays: number;
}

/** The as-of date of a run fired at `instant`. */
export function asOfForTick(
  instant: Date,
  settings: Pick<ScheduleSettings, 'timeZone' | 'asOfMode'>,
): string {
  const day = localDate(instant, settings.timeZone);
  return settings.asOfMode === 'today' ? day : addDays(day, -1);
}

/**
 * The as-of dates of the scheduled fire times up to `now` (at most maxCatchUpDays back) that come after the last
 * successful as-of date, oldest first. Without any successful run, only the newest. A day counts when the cron
 * expression fires on it at or before `now`.
 */
export function missedAsOfDates(
  settings: ScheduleSettings,
  now: Date,
  lastSuccessAsOf: string | undefined,
  matches: (instant: Date) => boolean,
): string[] {
  const fields = cron.parse(settings.cron);
  const first = (values: number[]) => Math.min(...values);
  const today = localDate(now, settings.timeZone);
  const due: string[] = [];
  for (let back = settings.maxCatchUpDays; back >= 0; back--) {
    const day = addDays(today, -back);
    const fire = zonedTime(
      day,
      first(fields.hour),
      first(fields.minute),
      first(fields.second),
      settings.timeZone,
    );
    if (fire.getTime() > now.getTime() || !matches(fire)) continue;
    due.push(asOfForTick(fire, settings));
  }
  if (lastSuccessAsOf === undefined) return due.slice(-1);
  return due.filter((d) => d > lastSuccessAsOf);
}

export function scheduleSettings(
  loaded: LoadedConfig,
  overrides: Partial<ScheduleSettings> = {},
): ScheduleSettings {
  const s = loaded.config.schedule;
  const settings: ScheduleSettings = {
    cron: overrides.cron ?? s.cron,
    timeZone: overrides.timeZone ?? s.time_zone ?? loaded.config.business_time_zone,
    catchUp: overrides.catchUp ?? s.catch_up,
    asOfMode: overrides.asOfMode ?? s.as_of,
    maxCatchUpDays: overrides.maxCatchUpDays ?? s.max_catch_up_days,
  };
  if (!cron.validate(settings.cron)) {
    throw new ScheduleError(
      `schedule.cron "${settings.cron}" is not a cron expression; use five fields (minute hour day month weekday) ` +
        'or six with seconds first, e.g. "0 3 * * *"',
    );
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: settings.timeZone });
  } catch {
    throw new ScheduleError(
      `schedule.time_zone "${settings.timeZone}" is not an IANA time zone such as "Europe/Berlin"`,
    );
  }
  return settings;
}

export type RunDate = (asOf: string) => Promise<{ runId: string }>;

export interface SchedulerOptions {
  loaded: LoadedConfig;
  log: Logger;
  settings: ScheduleSettings;
  /** Runs one as-of date (default: runPipeline with trigger `schedule`). */
  runDate?: RunDate;
  /** The ledger to read last successes from (default: the output's state store). */
  store?: StateStore;
}

export class Scheduler {
  private task: ScheduledTask | undefined;
  private current: Promise<void> | null = null;
  private stopping = false;
  private store: StateStore | undefined;
  private readonly runDate: RunDate;
  private resolveStopped: () => void = () => {};
  /** Resolves when stop() was called and the current run (if any) has finished. */
  readonly stopped: Promise<void>;

  constructor(private readonly options: SchedulerOptions) {
    this.store = options.store;
    this.runDate =
      options.runDate ??
      ((asOf) => runPipeline(options.loaded, { asOf, log: options.log, trigger: 'schedule' }).then((r) => r));
    this.stopped = new Promise((resolve) => {
      this.resolveStopped = resolve;
    });
  }

  get busy(): boolean {
    return this.current !== null;
  }

  private async ledger(): Promise<LedgerEntry[]> {
    if (!this.store) {
      const { localRoot, close } = await createSink(this.options.loaded);
      await close();
      this.store = localStateStore(localRoot);
    }
    return currentRuns(await this.store.readLedger());
  }

  private async lastSuccessAsOf(): Promise<string | undefined> {
    const successes = (await this.ledger()).filter((r) => r.status === 'success').map((r) => r.as_of);
    return successes.length ? successes.sort().at(-1) : undefined;
  }

  /** The dates a tick at `instant` (or the start, without a tick) should run, oldest first. */
  async datesFor(instant: Date, tick: boolean): Promise<string[]> {
    const { settings } = this.options;
    const task = this.task;
    const matches = (d: Date) => task?.match(d) ?? false;
    const missed = missedAsOfDates(settings, instant, await this.lastSuccessAsOf(), matches);
    if (!tick) return settings.catchUp === 'all' ? missed : missed.slice(-1);
    const own = asOfForTick(instant, settings);
    return settings.catchUp === 'all' ? [...missed.filter((d) => d < own), own] : [own];
  }

  async start(): Promise<void> {
    const { settings, log } = this.options;
    const logger = {
      info: (m: string) => log.debug({ source: 'node-cron' }, m),
      warn: (m: string) => log.debug({ source: 'node-cron' }, m),
      error: (m: string | Error) => log.warn({ source: 'node-cron' }, String(m)),
      debug: (m: string | Error) => log.trace({ source: 'node-cron' }, String(m)),
    };
    this.task = cron.createTask(settings.cron, (ctx) => this.onTick(ctx.date), {
      timezone: settings.timeZone,
      name: 'churn-schedule',
      logger,
    });
    const next = this.task.getNextRun();
    log.info(
      {
        cron: settings.cron,
        timeZone: settings.timeZone,
        catchUp: settings.catchUp,
        asOf: settings.asOfMode,
        next,
      },
      'scheduler started',
    );
    const dates = await this.datesFor(new Date(), false);
    if (dates.length) {
      log.info({ dates }, 'catching up on runs missed while the scheduler was down');
      this.launch(dates, 'catch-up');
    } else {
      log.info('no missed runs to catch up');
    }
    await this.task.start();
  }

  private onTick(instant: Date): void {
    const { log } = this.options;
    if (this.stopping) return;
    if (this.current) {
      log.warn({ tick: instant.toISOString() }, 'tick skipped: the previous run is still going');
      return;
    }
    // The dates are computed inside the launched sequence so that the ledger is read once the tick owns the slot.
    this.launch(null, 'tick', instant);
  }

  private launch(dates: string[] | null, reason: 'catch-up' | 'tick', instant: Date = new Date()): void {
    const sequence = (async () => {
      const todo = dates ?? (await this.datesFor(instant, true));
      await this.runSequence(todo, reason);
    })()
      .catch((err: Error) => this.options.log.error({ err: err.message }, 'scheduled run sequence failed'))
      .finally(() => {
        this.current = null;
        if (this.stopping) this.resolveStopped();
      });
    this.current = sequence;
  }

  private async runSequence(dates: string[], reason: 'catch-up' | 'tick'): Promise<void> {
    const { log } = this.options;
    for (const [i, asOf] of dates.entries()) {
      if (this.stopping) {
        log.info({ left: dates.slice(i) }, 'stopping: the remaining dates run at the next start');
        return;
      }
      log.info({ asOf, reason, of: `${i + 1}/${dates.length}` }, 'scheduled run starting');
      try {
        const { runId } = await this.runDate(asOf);
        log.info({ asOf, runId }, 'scheduled run succeeded');
      } catch (err) {
        const e = err as Error;
        if (e.name === 'LockError') {
          log.warn(
            { asOf, reason: e.message },
            'scheduled run skipped: another run holds the lock of this output',
          );
        } else {
          log.error(
            { asOf, error: e.name, reason: e.message.replace(/\s*\n\s*/g, ' ') },
            'scheduled run failed',
          );
        }
        if (dates.length > i + 1)
          log.warn({ left: dates.slice(i + 1) }, 'later dates wait for the next tick');
        return;
      }
    }
  }

  /** Takes no more ticks; `stopped` resolves once the current run has finished. */
  async stop(): Promise<void> {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    await this.task?.stop();
    await this.task?.destroy();
    if (!this.current) this.resolveStopped();
    return this.stopped;
  }
}
