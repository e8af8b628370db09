// `npm run bench -- --shards N [--customers C]`: what customer-hash shards cost (docs/shards.md). On the generated
// population it runs, each as its own `churn` process and one after the other: the single-node run, the N shards
// (`churn run --shard I/N`; a cluster runs them at once, on N machines, so the slowest is the parallel wall) and the
// merge (`churn merge`). Each process reports its own CPU time and peak RSS; the wall time is taken here, process
// start to exit. Prints them with the merge's share of the sharded night, and checks that the merge published the
// tables of the single-node run (row counts per table).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_FILE } from '../../config/load.js';
import type { ShardManifest } from '../shard/store.js';
import { runToExit } from './process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHURN = join(ROOT, 'bin', 'churn.mjs');

/** Loaded first into each measured process (`node --import`): writes its CPU time and peak RSS as it exits. */
const USAGE_AT_EXIT = `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(process.env.CHURN_BENCH_USAGE_FILE, JSON.stringify({
    cpu_ms: Math.round((u.userCPUTime + u.systemCPUTime) / 1000), max_rss_kb: u.maxRSS }));
});`;

export interface StepUsage {
  step: string;
  wall_ms: number;
  cpu_ms: number;
  max_rss_kb: number;
}

export interface ShardBenchOptions {
  /** The bench folder: the generated sample is in data/sample/. */
  dir: string;
  asOf: string;
  shards: number;
  customers: number;
  /** Input rows of the generated sample (for the header line). */
  inputRows: number;
  /** Time the single-node run too, and check that the merge published its tables (false: the shards and merge only). */
  single: boolean;
}

/** Runs `churn <args>` to its exit in its own process and measures it; throws with its last lines when it fails. */
async function measured(step: string, args: string[], dir: string): Promise<StepUsage> {
  const usageFile = join(dir, `usage-${step.replace(/[^a-z0-9]+/gi, '-')}.json`);
  const { code, output, wall_ms } = await runToExit(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(USAGE_AT_EXIT)}`, CHURN, ...args],
    { ...process.env, CI: '1', CHURN_LOG_LEVEL: 'warn', CHURN_BENCH_USAGE_FILE: usageFile },
  );
  if (code !== 0) {
    throw new Error(
      `bench --shards: ${step} (churn ${args.join(' ')}) failed with exit code ${code}:\n${output.trim().split('\n').slice(-20).join('\n')}`,
    );
  }
  const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as { cpu_ms: number; max_rss_kb: number };
  return { step, wall_ms, ...usage };
}

/** The embedded default config (the sample's sources), publishing to out-<name>/ with state in .churn-<name>/. */
function writeConfig(dir: string, name: string): string {
  const text = readFileSync(DEFAULT_CONFIG_FILE, 'utf8')
    .replace(/^ {2}path: out$/m, `  path: out-${name}`)
    .replace(/^state_dir: \.churn$/m, `state_dir: .churn-${name}`);
  if (!text.includes(`out-${name}`) || !text.includes(`.churn-${name}`)) {
    throw new Error(
      `bench --shards: ${DEFAULT_CONFIG_FILE} no longer sets output.path out and state_dir .churn`,
    );
  }
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

interface Published {
  tables: Record<string, { rows: number }>;
  timings_ms: Record<string, number>;
}

function published(dir: string, name: string): Published {
  return JSON.parse(readFileSync(join(dir, `out-${name}`, 'current', '_manifest.json'), 'utf8')) as Published;
}

/** The bytes of the files below `dir`. */
function folderBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);
const mb = (kb: number) => String(Math.round(kb / 1024));
const stages = (timings: Record<string, number>) =>
  Object.entries(timings)
    .map(([stage, ms]) => `${stage} ${seconds(ms)}`)
    .join(', ');

export async function benchShards(opts: ShardBenchOptions): Promise<StepUsage[]> {
  const { dir, asOf, shards } = opts;
  const single = writeConfig(dir, 'single');
  const sharded = writeConfig(dir, 'shards');
  const steps: StepUsage[] = [];
  if (opts.single) steps.push(await measured('single node', ['-c', single, 'run', '--as-of', asOf], dir));
  for (let i = 0; i < shards; i++) {
    steps.push(
      await measured(
        `shard ${i}/${shards}`,
        ['-c', sharded, 'run', '--as-of', asOf, '--shard', `${i}/${shards}`],
        dir,
      ),
    );
  }
  const shardStages = Array.from({ length: shards }, (_, i) => {
    const file = join(dir, 'out-shards', '_shards', `as_of=${asOf}`, `shard=${i}`, '_shard.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as ShardManifest).timings_ms;
  });
  steps.push(
    await measured('merge', ['-c', sharded, 'merge', '--as-of', asOf, '--shards', String(shards)], dir),
  );

  const singleRun = opts.single ? steps[0] : undefined;
  const merge = steps.at(-1)!;
  const shardFiles = folderBytes(join(dir, 'out-shards', '_shards', `as_of=${asOf}`));
  const shardRuns = steps.slice(opts.single ? 1 : 0, -1);
  const slowest = Math.max(...shardRuns.map((s) => s.wall_ms));
  const parallel = slowest + merge.wall_ms;
  const shardCpu = shardRuns.reduce((n, s) => n + s.cpu_ms, 0);
  const b = published(dir, 'shards');
  const a = singleRun ? published(dir, 'single') : undefined;
  const differing = a ? Object.keys(a.tables).filter((t) => a.tables[t]?.rows !== b.tables[t]?.rows) : [];
  const oneNode = (text: (run: StepUsage) => string) => (singleRun ? text(singleRun) : '');

  const lines = [
    `churn-pipeline bench --shards ${shards}: ${opts.customers} customers, ${opts.inputRows} input rows; ` +
      `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GB; each step its own process, in turn`,
    'step                 wall s     CPU s   peak RSS MB',
    '-'.repeat(52),
  ];
  for (const s of steps) {
    lines.push(
      `${s.step.padEnd(18)} ${seconds(s.wall_ms).padStart(8)} ${seconds(s.cpu_ms).padStart(9)} ${mb(s.max_rss_kb).padStart(13)}`,
    );
  }
  lines.push(
    '-'.repeat(52),
    `sharded night, shards in parallel: ${seconds(parallel)} s wall (slowest shard ${seconds(slowest)} s + merge ` +
      `${seconds(merge.wall_ms)} s)` +
      oneNode((r) => ` vs ${seconds(r.wall_ms)} s on one node (${(r.wall_ms / parallel).toFixed(2)}x)`),
    `CPU: shards ${seconds(shardCpu)} s + merge ${seconds(merge.cpu_ms)} s = ${seconds(shardCpu + merge.cpu_ms)} s` +
      oneNode((r) => ` vs ${seconds(r.cpu_ms)} s on one node`),
    `peak RSS: largest shard ${mb(Math.max(...shardRuns.map((s) => s.max_rss_kb)))} MB, merge ${mb(merge.max_rss_kb)} MB` +
      oneNode((r) => `, one node ${mb(r.max_rss_kb)} MB`),
    `shard files written for the merge: ${mb(shardFiles / 1024)} MB`,
    `merge's share of the sharded night: ${Math.round((merge.wall_ms / parallel) * 100)}% of the parallel wall, ` +
      `${Math.round((merge.cpu_ms / (shardCpu + merge.cpu_ms)) * 100)}% of its CPU`,
    ...(a ? [`stages (s): one node ${stages(a.timings_ms)}`] : ['stages (s):']),
    ...shardStages.map((t, i) => `            shard ${i} ${stages(t)}`),
    `            merge ${stages(b.timings_ms)}`,
    !a
      ? `no single-node run (--no-single): the merge published ${Object.keys(b.tables).length} tables; test/shards.test.ts checks them against one node`
      : differing.length === 0
        ? `the merge published the single-node run's ${Object.keys(a.tables).length} tables (row counts equal)`
        : `WARNING: the merge's row counts differ from the single-node run's in ${differing.join(', ')}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  if (differing.length > 0) {
    throw new Error(
      `bench --shards: the merged tables ${differing.join(', ')} differ from the single-node run's; run test/shards.test.ts`,
    );
  }
  return steps;
}
