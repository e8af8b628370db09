// `npm run bench -- --customers N [--warehouse-rows M]`: generates N customers' sample data, runs the whole
// pipeline on it and prints per stage the wall time, rows per second and the process's peak RSS.
// `--peer`: the same population as CSV files, and in turn the pipeline, a pandas script of its core metrics and a
// DuckDB floor (one typed read of every input column), each in its own process (pipelines/bench/peer.ts).
// Speed and memory are measured here, never in tests.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger, type Logger } from './base/log.js';
import { runPipeline } from './run/index.js';

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

interface BenchLine {
  stage: string;
  ms: number;
  rows: number;
}

/** `generated`: the sample was written by this process, whose peak then includes the generator's. */
function print(lines: BenchLine[], generated = false): void {
  const out = ['stage                         wall ms        rows     rows/s', '-'.repeat(62)];
  for (const l of lines) {
    const rate = l.ms > 0 ? Math.round((l.rows / l.ms) * 1000) : 0;
    out.push(
      `${l.stage.padEnd(28)} ${String(l.ms).padStart(9)} ${String(l.rows).padStart(11)} ${String(rate).padStart(10)}`,
    );
  }
  out.push(
    '-'.repeat(62),
    `peak RSS of the process: ${peakRssMb()} MB` +
      (generated ? ' (with the sample generator: run again with the same --data for the run alone)' : ''),
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * The generated sample in `dir`: written now, or the one a previous bench wrote there for the same customers and
 * seed (its meta.json says which), so that a large population is generated once.
 */
async function benchSample(
  dir: string,
  customers: number,
  seed: number,
  log: Logger,
): Promise<{ asOf: string; rows: Record<string, number>; ms: number }> {
  const metaFile = join(dir, 'meta.json');
  if (existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as {
      seed: number;
      customers: number;
      as_of: string;
      rows: Record<string, number>;
    };
    if (meta.customers !== customers || meta.seed !== seed) {
      throw new Error(
        `bench: ${dir} holds a sample of ${meta.customers} customers (seed ${meta.seed}); give another --data folder ` +
          `for ${customers} customers (seed ${seed}), or delete it`,
      );
    }
    return { asOf: meta.as_of, rows: meta.rows, ms: 0 };
  }
  const { generateSample } = await import('./sample/generate.js');
  return generateSample({ dir, customers, seed }, log);
}

export async function main(argv: string[]): Promise<void> {
  const opts = new Command('bench')
    .option('--customers <n>', 'customers in the generated sample', (v) => Number(v), 100_000)
    .option('--seed <n>', 'seed', (v) => Number(v), 42)
    .option(
      '--warehouse-rows <n>',
      'also extract this many rows from PostgreSQL (0 = skip)',
      (v) => Number(v),
      0,
    )
    .option('--keep', 'keep the generated data and outputs')
    .option(
      '--detection',
      'score the early warning on CDNOW and the sample instead of timing (default 2,000 customers)',
    )
    .option(
      '--peer',
      'write the population as CSV and time, in turn, the pipeline, a pandas script (python3-pandas) and a DuckDB floor',
    )
    .option('--rounds <n>', 'with --peer: rounds of the three, in turn (medians)', (v) => Number(v), 1)
    .option('--shards <n>', 'time one node, then n shards in turn, then their merge', Number)
    .option('--no-single', 'with --shards: time the shards and the merge only (no single-node run)')
    .option(
      '--data <dir>',
      'the bench folder: its data/sample/ is generated once and reused by later benches with the same --data (kept)',
    )
    .addOption(new Option('--child <kind>').choices(['pipeline', 'floor']).hideHelp())
    .addOption(new Option('--config <file>').hideHelp())
    .addOption(new Option('--as-of <date>').hideHelp())
    .addOption(new Option('--files <json>').hideHelp())
    .parse(argv)
    .opts<{
      customers: number;
      seed: number;
      warehouseRows: number;
      keep?: boolean;
      detection?: boolean;
      peer?: boolean;
      rounds: number;
      shards?: number;
      single: boolean;
      data?: string;
      child?: 'pipeline' | 'floor';
      config?: string;
      asOf?: string;
      files?: string;
    }>();
  process.env.UV_THREADPOOL_SIZE ??= '16';
  const log = createLogger({ level: 'warn' });
  if (opts.child) {
    // one contender of --peer in its own process: it reports its own CPU time and peak RSS on its last line
    const { floorRead, ownUsage } = await import('./bench/peer.js');
    if (opts.child === 'pipeline') {
      await runPipeline(loadConfig(opts.config), { asOf: opts.asOf, log });
    } else {
      const { duckdb } = loadConfig().config;
      await floorRead(JSON.parse(opts.files ?? '{}') as Record<string, string>, {
        memoryLimit: duckdb.memory_limit,
        threads: duckdb.threads,
      });
    }
    process.stdout.write(`${JSON.stringify(ownUsage())}\n`);
    return;
  }
  if (opts.detection) {
    const { benchDetection } = await import('./bench/detection.js');
    const explicit = argv.includes('--customers');
    await benchDetection({ customers: explicit ? opts.customers : 2000, seed: opts.seed, log });
    return;
  }
  const dir = opts.data ? resolve(opts.data) : mkdtempSync(join(tmpdir(), 'churn-bench-'));
  const keep = opts.keep || opts.data !== undefined;
  const lines: BenchLine[] = [];
  try {
    const sample = await benchSample(join(dir, 'data', 'sample'), opts.customers, opts.seed, log);
    lines.push({
      stage: 'sample-data',
      ms: sample.ms,
      rows: Object.values(sample.rows).reduce((a, b) => a + b, 0),
    });
    // The embedded default config, with its relative paths resolved against the bench folder.
    const defaults = loadConfig();
    const configFile = join(dir, 'churn.yaml');
    writeFileSync(configFile, '');
    const loaded = { ...defaults, file: configFile, baseDir: dir };
    if (opts.shards) {
      const { benchShards } = await import('./bench/shards.js');
      const { asOf, rows } = sample;
      const inputRows = Object.values(rows).reduce((a, b) => a + b, 0);
      await benchShards({
        dir,
        asOf,
        shards: opts.shards,
        customers: opts.customers,
        inputRows,
        single: opts.single,
      });
      return;
    }
    if (opts.peer) {
      const { benchPeer } = await import('./bench/peer.js');
      await benchPeer({ dir, loaded, asOf: sample.asOf, rounds: opts.rounds, customers: opts.customers });
      return;
    }
    const result = await runPipeline(loaded, { asOf: sample.asOf, log });
    const m = result.manifest;
    const landed = Object.values(m.quarantine).reduce((n, q) => n + q.rows, 0);
    const built = m.model_timings.reduce((n, t) => n + t.rows, 0);
    const published = Object.values(m.tables).reduce((n, t) => n + t.rows, 0);
    for (const [stage, ms] of Object.entries(m.timings_ms)) {
      const rows =
        stage === 'land' || stage === 'quality' ? landed : stage === 'transform' ? built : published;
      lines.push({ stage: `run: ${stage}`, ms, rows });
    }
    for (const t of [...m.model_timings].sort((a, b) => b.ms - a.ms).slice(0, 8)) {
      const batches = t.batches ? ` (${t.batches} batches)` : '';
      lines.push({ stage: `  model ${t.model}${batches}`, ms: t.ms, rows: t.rows });
    }
    if (opts.warehouseRows > 0) {
      const { benchWarehouseExtract } = await import('./bench/warehouse.js');
      const wh = await benchWarehouseExtract({ rows: opts.warehouseRows, log });
      lines.push({ stage: 'warehouse extract (postgres)', ms: wh.ms, rows: wh.rows });
    }
    process.stdout.write(`churn-pipeline bench: ${opts.customers} customers, seed ${opts.seed}\n`);
    print(lines, sample.ms > 0);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`kept ${dir}\n`);
  }
}
