// The operations commands of the `churn` CLI: status, backfill, schedule (cli.ts registers them).
import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseDateArg, parseIntArg, setup } from '../command.js';
import { createSink } from '../sinks/index.js';
import { backfill } from './backfill.js';
import { type AsOfMode, type CatchUp, Scheduler, scheduleSettings } from './schedule.js';
import { localStateStore } from './state.js';
import { formatStatus, readStatus } from './status.js';

/** `--wait [seconds]`: true (no limit) or a number of seconds. */
export function parseWait(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a number of seconds to wait at most');
  return n;
}

export const WAIT_OPTION_HELP =
  "when another run holds this output's lock, wait for it to finish (at most <seconds>) instead of refusing";

export function addOpsCommands(program: Command): void {
  program
    .command('status')
    .description('recent runs of the configured output, from its run ledger')
    .option('--limit <n>', 'how many runs', parseIntArg, 20)
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { limit: number; json?: boolean }, cmd: Command) => {
      const { loaded } = setup(cmd);
      const { localRoot, close } = await createSink(loaded);
      await close();
      const report = await readStatus(
        localStateStore(localRoot),
        opts.limit,
        loaded.config.lock.stale_seconds * 1000,
      );
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    });

  program
    .command('backfill')
    .description('run every as-of date of a range in order; resumable: skips dates already published')
    .requiredOption('--from <date>', 'first as-of date YYYY-MM-DD', parseDateArg)
    .requiredOption('--to <date>', 'last as-of date YYYY-MM-DD (included)', parseDateArg)
    .option('--force', 'run dates that were already published again')
    .option('--wait [seconds]', WAIT_OPTION_HELP, parseWait)
    .action(
      async (opts: { from: string; to: string; force?: boolean; wait?: true | number }, cmd: Command) => {
        const { loaded, log } = setup(cmd);
        const result = await backfill(loaded, {
          from: opts.from,
          to: opts.to,
          force: opts.force,
          wait: opts.wait,
          log,
          onDate: (date, outcome, runId) =>
            process.stdout.write(`${date}  ${outcome.padEnd(7)}  ${runId ?? ''}\n`),
        });
        process.stdout.write(
          `backfill ${opts.from} .. ${opts.to}: ${result.done.length} run, ${result.skipped.length} already published\n`,
        );
      },
    );

  program
    .command('schedule')
    .description(
      'keep running: run the pipeline on the cron schedule, catching up missed runs; stop with SIGTERM',
    )
    .option('--cron <expression>', 'cron expression (default: schedule.cron)')
    .option('--time-zone <zone>', 'IANA time zone of the cron expression (default: schedule.time_zone)')
    .addOption(
      new Option(
        '--catch-up <mode>',
        'after downtime, run only the latest missed date or all of them',
      ).choices(['latest', 'all']),
    )
    .addOption(
      new Option(
        '--as-of <day>',
        'as-of date of a scheduled run: the day before the tick, or its own day',
      ).choices(['yesterday', 'today']),
    )
    .action(
      async (
        opts: { cron?: string; timeZone?: string; catchUp?: CatchUp; asOf?: AsOfMode },
        cmd: Command,
      ) => {
        const { loaded, log } = setup(cmd);
        const settings = scheduleSettings(loaded, {
          cron: opts.cron,
          timeZone: opts.timeZone,
          catchUp: opts.catchUp,
          asOfMode: opts.asOf,
        });
        const scheduler = new Scheduler({ loaded, log, settings });
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals += 1;
          if (signals === 1) {
            log.info(
              { signal, running: scheduler.busy },
              scheduler.busy
                ? 'stopping: no new runs; the current run finishes first (send the signal again to abort it)'
                : 'stopping',
            );
            void scheduler.stop();
            return;
          }
          log.error(
            { signal },
            'second signal: aborting the current run; published outputs stay as they were',
          );
          process.exit(signal === 'SIGINT' ? 130 : 143);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        await scheduler.start();
        await scheduler.stopped;
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        log.info('scheduler stopped');
      },
    );
}
