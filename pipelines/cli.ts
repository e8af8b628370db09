// The `churn` command line. Exit code 0 on success; otherwise one line saying what failed and what to do.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { version as duckdbVersion } from '@duckdb/node-api';
import { Command, Option } from 'commander';
import { ConfigError } from '../config/load.js';
import { LOG_FORMATS, type Logger, routeProcessWarnings, stopProgress } from './base/log.js';
import { commandLogger, parseDateArg, parseIntArg, setup } from './command.js';
import { configJsonSchema, initConfig, writeInit } from './init.js';
import { addOpsCommands, parseWait, WAIT_OPTION_HELP } from './ops/commands.js';
import { validate } from './ops/validate.js';
import { outcomeSummaryLines } from './outcomes/summary.js';
import { addReportCommand } from './report/command.js';
import { runPipeline } from './run/index.js';
import {
  addShardCommands,
  type RunCommandOptions,
  runShardCommand,
  SHARD_OPTION_HELP,
  SHARDS_OPTION_HELP,
} from './shard/command.js';

class ValidationError extends Error {
  override readonly name = 'ValidationError';
}

const SAMPLE_DIR = 'data/sample';
/** `npm start` replays the nights before the as-of date at this step to time the first flag. */
const DAYS_TO_FLAG_STEP = 10;

/** The version of this package (package.json sits one folder above pipelines/, in a clone and in dist/). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function sampleData(dir: string, customers: number, seed: number, log: Logger): Promise<string> {
  const { generateSample } = await import('./sample/generate.js');
  const result = await generateSample({ dir, customers, seed }, log);
  return result.asOf;
}

function printSummary(result: Awaited<ReturnType<typeof runPipeline>>): void {
  const s = result.summary;
  const pct = (v: unknown) =>
    v === null || v === undefined || Number.isNaN(Number(v)) ? 'n/a' : `${Number(v).toFixed(1)}%`;
  const num = (v: unknown, digits: number) =>
    v === null || v === undefined || Number.isNaN(Number(v)) ? 'n/a' : Number(v).toFixed(digits);
  const lines = [
    '',
    `churn-pipeline: run ${result.runId} as of ${result.asOf} succeeded`,
    `  customers:                  ${s.customers}`,
    `  last complete period:       ${s.last_complete_period ?? 'n/a'}`,
    `    churn rate:               ${pct(s.churn_rate_pct)}`,
    `    NPS:                      ${s.nps === null || s.nps === undefined ? 'n/a' : Number(s.nps).toFixed(1)}`,
    `  customers flagged:          ${s.customers_flagged} of ${s.customers_with_activity} (at_risk or silent_churn); p_churn from ${s.risk_model ?? 'n/a'}`,
    s.backtest_as_of
      ? `  early-warning backtest:     as of ${s.backtest_as_of}: AUC ${num(s.backtest_auc, 3)} (recency ${num(s.backtest_auc_recency, 3)}, ` +
        `p_alive ${num(s.backtest_auc_p_alive, 3)}; p_decline for a drop ${num(s.backtest_auc_p_decline, 3)}); flagged ${pct(100 * Number(s.backtest_flagged_share))} ` +
        `of whom ${pct(100 * Number(s.backtest_precision))} left (recall ${num(s.backtest_recall, 2)}) and ` +
        `${pct(100 * Number(s.backtest_drift_precision))} left or fell below half their rate (${pct(100 * Number(s.backtest_churn_rate))} of all customers left)`
      : '  early-warning backtest:     n/a (less than one horizon of history)',
    `  reactivation audience:      ${s.audience_target} to e-mail, ${s.audience_control} held out as control`,
    ...outcomeSummaryLines(s),
    `  quarantined input rows:     ${s.quarantined_rows}`,
  ];
  if (s.recall !== undefined) {
    lines.push(
      `  detection vs ground truth:  recall ${Number(s.recall).toFixed(2)}, precision ${Number(s.precision).toFixed(2)}` +
        (s.median_days_to_flag !== undefined
          ? `,\n                              median ${s.median_days_to_flag} days from decay start to first flag (nights every ${DAYS_TO_FLAG_STEP} days)`
          : ''),
    );
  }
  lines.push(
    `  outputs:                    ${result.outputDir}/current/ (Parquet per table), ${result.outputDir}/current/exports/ (import files)`,
    result.catalog
      ? `  catalog:                    ${result.catalog} (cd ${dirname(result.catalog)} && duckdb catalog.duckdb -c "from churn_summary")`
      : '  catalog:                    n/a',
    '',
  );
  process.stdout.write(lines.join('\n'));
}

export function buildProgram(): Command {
  const program = new Command('churn')
    .description(
      'Nightly churn analytics: customer-period facts, cohorts, churn, NPS/CSAT, early warning, audience',
    )
    .version(
      `churn-pipeline ${packageVersion()} (DuckDB ${duckdbVersion()}, Node.js ${process.version})`,
      '-V, --version',
      'print the version',
    )
    .option('-c, --config <file>', 'config file (YAML); default: the embedded sample config')
    .option('--log-level <level>', 'trace, debug, info, warn, error', undefined)
    .addOption(
      new Option(
        '--log-format <format>',
        'human: one line per stage and progress bars (default on a terminal); json: JSON lines (default elsewhere)',
      ).choices(LOG_FORMATS),
    )
    // Subcommands inherit this: `churn run --help` lists --config and the other global options too.
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError();

  program
    .command('run')
    .description('run the pipeline for one as-of date and publish the tables')
    .option(
      '--as-of <date>',
      'as-of date YYYY-MM-DD (default: yesterday in the business time zone)',
      parseDateArg,
    )
    .option('--wait [seconds]', WAIT_OPTION_HELP, parseWait)
    .option('--shard <i/n>', SHARD_OPTION_HELP)
    .option('--shards <n>', SHARDS_OPTION_HELP)
    .action(async (opts: RunCommandOptions, cmd: Command) => {
      if (await runShardCommand(cmd, opts)) return;
      const { loaded, log, onProgress } = setup(cmd);
      const result = await runPipeline(loaded, { asOf: opts.asOf, log, wait: opts.wait, onProgress });
      printSummary(result);
    });

  program
    .command('validate')
    .description(
      'check the config, every source and the output; local inputs are also modelled in memory; writes nothing',
    )
    .option('--as-of <date>', 'as-of date YYYY-MM-DD', parseDateArg)
    .action(async (opts: { asOf?: string }, cmd: Command) => {
      const { loaded, log } = setup(cmd);
      const report = await validate(loaded, opts.asOf, log);
      const lines = report.checked.map(
        (c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.problem ? `: ${c.problem}` : ''}`,
      );
      if (report.quarantine) {
        lines.push(`  inputs as of ${report.asOf}:`);
        for (const [entity, q] of Object.entries(report.quarantine)) {
          if (q.rows > 0)
            lines.push(
              `    ${entity.padEnd(14)} ${String(q.rows).padStart(10)} rows, ${q.quarantined} quarantined`,
            );
        }
      }
      process.stdout.write(`config ${loaded.file}\n${lines.join('\n')}\n`);
      const failed = report.checked.filter((c) => !c.ok);
      if (failed.length)
        throw new ValidationError(
          `${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
        );
    });

  addOpsCommands(program);
  addReportCommand(program);
  addShardCommands(program, printSummary);

  program
    .command('sample-data')
    .description('write the deterministic synthetic sample dataset')
    .option('--dir <dir>', 'output folder', SAMPLE_DIR)
    .option('--customers <n>', 'number of customers', parseIntArg, 2000)
    .option('--seed <n>', 'random seed', parseIntArg, 42)
    .action(async (opts: { dir: string; customers: number; seed: number }, cmd: Command) => {
      const log = commandLogger(cmd);
      await sampleData(resolve(opts.dir), opts.customers, opts.seed, log);
      process.stdout.write(`sample data written to ${resolve(opts.dir)}\n`);
    });

  program
    .command('demo', { hidden: true })
    .description('`npm start`: generate the sample if missing, run it, print the summary')
    .action(async (_opts: unknown, cmd: Command) => {
      const { loaded, log, onProgress } = setup(cmd);
      const meta = join(SAMPLE_DIR, 'meta.json');
      if (!existsSync(meta)) await sampleData(resolve(SAMPLE_DIR), 2000, 42, log);
      const asOf = (JSON.parse(readFileSync(meta, 'utf8')) as { as_of: string }).as_of;
      const result = await runPipeline(loaded, { asOf, log, onProgress });
      const { detectionQuality, medianDaysToFlag } = await import('./sample/quality.js');
      Object.assign(result.summary, await detectionQuality(resolve(SAMPLE_DIR), result.outputDir, asOf));
      log.info('replaying earlier nights to measure how early silent churners are flagged');
      const replayStarted = performance.now();
      const early = await medianDaysToFlag(
        loaded,
        resolve(SAMPLE_DIR),
        asOf,
        log,
        DAYS_TO_FLAG_STEP,
        (done, total) => onProgress?.({ stage: 'replay', done, total, unit: 'nights' }),
      );
      log.info(
        {
          stage: 'replay',
          ms: Math.round(performance.now() - replayStarted),
          nights: early.nights_evaluated,
        },
        'stage replay done',
      );
      if (early.median_days_to_flag !== null) result.summary.median_days_to_flag = early.median_days_to_flag;
      printSummary(result);
    });

  addConfigHelpCommands(program);

  return program;
}

/** `churn init` and `churn schema`: a first config for the user's exports, and the JSON schema for editors. */
function addConfigHelpCommands(program: Command): void {
  program
    .command('init')
    .description(
      'write a commented churn.yaml for a folder of exports (CSV, Parquet, NDJSON): DuckDB reads their columns and the ones it recognises are mapped onto the canonical entities',
    )
    .argument('[folder]', 'the folder that holds the exports', '.')
    .option('-o, --output <file>', 'the config to write ("-": print it)', 'churn.yaml')
    .option('--no-schema', 'do not write churn.schema.json (the JSON schema editors check the config with)')
    .option('--force', 'overwrite the files if they exist')
    .action(async (folder: string, opts: { output: string; schema: boolean; force?: boolean }) => {
      const toStdout = opts.output === '-';
      const configFile = resolve(toStdout ? 'churn.yaml' : opts.output);
      const schemaFile =
        opts.schema && !toStdout ? join(dirname(configFile), 'churn.schema.json') : undefined;
      const result = await initConfig({ folder, configFile, schemaFile, version: packageVersion() });
      if (toStdout) {
        process.stdout.write(result.text);
        return;
      }
      const schema = schemaFile
        ? { file: schemaFile, text: `${JSON.stringify(configJsonSchema(), null, 2)}\n` }
        : undefined;
      await writeInit(configFile, result.text, opts.force === true, schema);
      const shown = relative(process.cwd(), configFile) || configFile;
      const lines = [
        `wrote ${shown}${schemaFile ? ` and ${relative(process.cwd(), schemaFile)}` : ''} for ${result.datasets.length} export(s) in ${resolve(folder)}:`,
      ];
      for (const m of result.matches) {
        const mapped = Object.keys(m.columns).length;
        const state = m.missing.length
          ? `left out: no column for ${m.missing.join(', ')}`
          : `${mapped} columns mapped`;
        lines.push(`  ${m.entity.padEnd(14)} ${m.dataset.name.padEnd(32)} ${state}`);
      }
      for (const d of result.unused) lines.push(`  ${'(not used)'.padEnd(14)} ${d.name}`);
      const todos = result.text.split('\n').filter((l) => l.includes('# TODO:')).length;
      if (todos) lines.push(`  ${todos} line(s) marked TODO to check`);
      lines.push(`next: churn validate --config ${shown}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('schema')
    .description(
      'print the JSON schema of churn.yaml (for editors: churn schema > churn.schema.json, then "# yaml-language-server: $schema=churn.schema.json" atop the config)',
    )
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}

export async function main(argv: string[]): Promise<void> {
  process.env.UV_THREADPOOL_SIZE ??= '16';
  routeProcessWarnings();
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    stopProgress();
    const e = err as Error;
    const known =
      e instanceof ConfigError ||
      [
        'InputError',
        'QualityError',
        'SourceError',
        'SinkError',
        'ModelError',
        'LockError',
        'ValidationError',
        'BackfillError',
        'ScheduleError',
        'InitError',
        'ReportError',
        'ShardError',
      ].includes(e.name);
    process.stderr.write(`churn: ${known ? '' : 'unexpected error: '}${e.message}\n`);
    if (!known && process.env.CHURN_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = known && e.name === 'ConfigError' ? 2 : 1;
  }
}

/** `node dist/pipelines/cli.js ...` (the compiled CLI run directly) runs the command line too. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main(process.argv);
