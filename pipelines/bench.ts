// `npm run bench -- --customers N [--warehouse-rows M]`: generates N customers' sample data, runs the whole
// pipeline on it and prints per stage the wall time, rows per second and the process's peak RSS.
// Speed and memory are measured here, never in tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from './log.js';
import { runPipeline } from './run.js';

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

interface BenchLine {
  stage: string;
  ms: number;
  rows: number;
}

function print(lines: BenchLine[]): void {
  const out = ['stage                         wall ms        rows     rows/s', '-'.repeat(62)];
  for (const l of lines) {
    const rate = l.ms > 0 ? Math.round((l.rows / l.ms) * 1000) : 0;
    out.push(
      `${l.stage.padEnd(28)} ${String(l.ms).padStart(9)} ${String(l.rows).padStart(11)} ${String(rate).padStart(10)}`,
    );
  }
  out.push('-'.repeat(62), `peak RSS of the process: ${peakRssMb()} MB`);
  process.stdout.write(`${out.join('\n')}\n`);
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
    .parse(argv)
    .opts<{ customers: number; seed: number; warehouseRows: number; keep?: boolean; detection?: boolean }>();
  process.env.UV_THREADPOOL_SIZE ??= '16';
  const log = createLogger({ level: 'warn' });
  if (opts.detection) {
    const { benchDetection } = await import('./bench/detection.js');
    const explicit = argv.includes('--customers');
    await benchDetection({ customers: explicit ? opts.customers : 2000, seed: opts.seed, log });
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'churn-bench-'));
  const lines: BenchLine[] = [];
  try {
    const { generateSample } = await import('./sample/generate.js');
    const sample = await generateSample(
      { dir: join(dir, 'data', 'sample'), customers: opts.customers, seed: opts.seed },
      log,
    );
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
      lines.push({ stage: `  model ${t.model}`, ms: t.ms, rows: t.rows });
    }
    if (opts.warehouseRows > 0) {
      const { benchWarehouseExtract } = await import('./bench/warehouse.js');
      const wh = await benchWarehouseExtract({ rows: opts.warehouseRows, log });
      lines.push({ stage: 'warehouse extract (postgres)', ms: wh.ms, rows: wh.rows });
    }
    process.stdout.write(`churn-pipeline bench: ${opts.customers} customers, seed ${opts.seed}\n`);
    print(lines);
  } finally {
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`kept ${dir}\n`);
  }
}
