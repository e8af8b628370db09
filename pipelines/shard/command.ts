// The shard commands of the `churn` CLI (docs/shards.md): `run --shard I/N` (or `--shards N` with the index of a
// Kubernetes Indexed Job or an AWS Batch array job) and `merge --shards N` (cli.ts registers them).
import type { Command } from 'commander';
import { parseDateArg, parseIntArg, setup } from '../command.js';
import { parseWait, WAIT_OPTION_HELP } from '../ops/commands.js';
import type { RunResult } from '../run/index.js';
import { mergeShards } from './merge.js';
import { runShard } from './run.js';
import { resolveShard } from './spec.js';

export const SHARD_OPTION_HELP =
  'build only customer-hash shard I of N (0-based) and leave it for `churn merge` (nothing is published)';
export const SHARDS_OPTION_HELP =
  'the shard count N, the index from JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)';

/** The options of `churn run`, the shard ones among them. */
export interface RunCommandOptions {
  asOf?: string;
  wait?: true | number;
  shard?: string;
  shards?: string;
}

/** `churn run` with --shard or --shards: builds the shard and returns true; false for a single-node run. */
export async function runShardCommand(cmd: Command, opts: RunCommandOptions): Promise<boolean> {
  const shard = resolveShard(opts);
  if (!shard) return false;
  const { loaded, log } = setup(cmd);
  const result = await runShard(loaded, { asOf: opts.asOf, shard, log });
  const rows = Object.values(result.tables).reduce((n, r) => n + r, 0);
  process.stdout.write(
    `churn-pipeline: shard ${shard.index}/${shard.count} as of ${result.asOf} written to ${result.location} ` +
      `(${Object.keys(result.tables).length} tables, ${rows} rows, ${(result.ms / 1000).toFixed(1)} s); ` +
      `publish with churn merge --as-of ${result.asOf} --shards ${shard.count} once every shard has finished\n`,
  );
  return true;
}

export function addShardCommands(program: Command, printSummary: (result: RunResult) => void): void {
  program
    .command('merge')
    .description(
      'combine the customer-hash shards of `churn run --shard I/N` into the tables a single-node run publishes, check the gates and publish them',
    )
    .requiredOption('--shards <n>', 'the shard count N the shards were run with', parseIntArg)
    .option(
      '--as-of <date>',
      'as-of date YYYY-MM-DD (default: yesterday in the business time zone)',
      parseDateArg,
    )
    .option(
      '--wait-for-shards <seconds>',
      'when a shard has not finished, wait up to <seconds> for its _SUCCESS instead of refusing',
      parseWait,
    )
    .option('--wait [seconds]', WAIT_OPTION_HELP, parseWait)
    .option('--remove-shards', "delete the date's shards once they are published")
    .action(
      async (
        opts: {
          shards: number;
          asOf?: string;
          waitForShards?: number;
          wait?: true | number;
          removeShards?: boolean;
        },
        cmd: Command,
      ) => {
        const { loaded, log, onProgress } = setup(cmd);
        const result = await mergeShards(loaded, {
          asOf: opts.asOf,
          shards: opts.shards,
          log,
          onProgress,
          wait: opts.wait,
          waitForShards: opts.waitForShards,
          removeShards: opts.removeShards,
        });
        printSummary(result);
      },
    );
}
