// `churn report`: rebuilds report.html of a published as-of date (cli.ts registers it).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDateArg, setup } from '../command.js';
import { createSink } from '../sinks/index.js';

export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'rebuild report.html (the charts of a run) from the published tables and manifest of an as-of date',
    )
    .option(
      '--as-of <date>',
      'a published as-of date YYYY-MM-DD (default: the newest, current/)',
      parseDateArg,
    )
    .option(
      '-o, --out <file>',
      "write the page here instead of into the run's folder (runs/as_of=D/report.html, also current/report.html for the newest date)",
    )
    .action(async (opts: { asOf?: string; out?: string }, cmd: Command) => {
      const { loaded, log } = setup(cmd);
      // An S3 output is read from its local copy (output.local_path), which holds the same layout.
      const { localRoot, close } = await createSink(loaded);
      await close();
      const { rebuildReport } = await import('./index.js');
      const result = await rebuildReport(localRoot, {
        asOf: opts.asOf,
        out: opts.out && resolve(opts.out),
        log,
      });
      const remote = loaded.config.output.type === 's3' ? ' (the local copy of the S3 output)' : '';
      process.stdout.write(
        `report of ${result.asOf} written to ${result.file}${remote}: ${result.charts} charts\n`,
      );
    });
}
