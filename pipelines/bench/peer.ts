// `npm run bench -- --peer`: the pipeline beside the two yardsticks a user would hold it against, on the same CSV
// files: a pandas script of its core metrics (pipelines/bench/peer.py; Debian's python3-pandas) and the floor, one
// typed DuckDB read of every input column. Each runs in its own process, in turn (round after round), and reports
// its own CPU time and peak RSS; the wall time is taken here, process start to exit.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from '../../config/load.js';
import { type Config, ENTITIES, ENTITY_COLUMNS, type Entity } from '../../config/schema.js';
import { Db, sqlIdent, sqlString } from '../base/duckdb.js';
import { runToExit } from './process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PANDAS_SCRIPT = fileURLToPath(new URL('./peer.py', import.meta.url));

/** What one process reports about itself (its last line of output, JSON). */
export interface ProcessUsage {
  cpu_ms: number;
  max_rss_kb: number;
}

export interface Measured extends ProcessUsage {
  wall_ms: number;
}

export function ownUsage(): ProcessUsage {
  const usage = process.resourceUsage();
  return { cpu_ms: Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000), max_rss_kb: usage.maxRSS };
}

/** Writes every configured entity of the generated sample as `<entity>.csv` (header, canonical names) into csvDir. */
export async function writeCsvPopulation(
  loaded: LoadedConfig,
  csvDir: string,
): Promise<{ files: Partial<Record<Entity, string>>; rows: number; bytes: number }> {
  await mkdir(csvDir, { recursive: true });
  const db = await Db.open({ fileSearchPath: loaded.baseDir });
  const files: Partial<Record<Entity, string>> = {};
  let rows = 0;
  let bytes = 0;
  try {
    for (const entity of ENTITIES) {
      const spec = loaded.config.sources[entity];
      if (spec?.type !== 'local') continue;
      const path = sqlString(resolve(loaded.baseDir, spec.path));
      const from =
        spec.format === 'parquet'
          ? `read_parquet(${path})`
          : spec.format === 'ndjson'
            ? `read_json(${path}, format = 'newline_delimited')`
            : `read_csv(${path}, all_varchar = true)`;
      const target = join(csvDir, `${entity}.csv`);
      rows += await db.number(`copy (select * from ${from}) to ${sqlString(target)} (header)`);
      bytes += readFileSync(target).length;
      files[entity] = target;
    }
  } finally {
    db.close();
  }
  return { files, rows, bytes };
}

/** The config of the pipeline run on the CSV files: the sample's, every source a local CSV file. */
export function csvConfigYaml(
  config: Config,
  files: Partial<Record<Entity, string>>,
  outDir: string,
): string {
  const lines = [
    `business_time_zone: ${config.business_time_zone}`,
    `period_grain: ${config.period_grain}`,
    `segment_by: [${config.segment_by.join(', ')}]`,
    'sources:',
  ];
  for (const [entity, file] of Object.entries(files)) {
    lines.push(`  ${entity}:`, '    type: local', `    path: ${JSON.stringify(file)}`);
  }
  lines.push('output:', '  type: local', `  path: ${JSON.stringify(join(outDir, 'out'))}`);
  lines.push(`state_dir: ${JSON.stringify(join(outDir, '.churn'))}`);
  return `${lines.join('\n')}\n`;
}

/** The contract's type of a canonical column, for the floor's typed read. */
function floorType(column: string): string {
  if (column.endsWith('_at')) return 'timestamp';
  if (column === 'amount' || column === 'mrr') return 'decimal(18, 2)';
  if (column === 'score' || column === 'quantity') return 'double';
  if (column === 'marketing_consent' || column === 'is_complaint') return 'boolean';
  return 'varchar';
}

/** The floor: each CSV file read once by DuckDB with every column typed (bad values to its reject tables). */
export async function floorRead(
  files: Partial<Record<Entity, string>>,
  options: { memoryLimit: string; threads?: number },
): Promise<number> {
  const db = await Db.open({ memoryLimit: options.memoryLimit, threads: options.threads });
  let rows = 0;
  try {
    for (const [entity, file] of Object.entries(files) as [Entity, string][]) {
      const header = readFileSync(file, 'utf8').slice(0, 4096).split('\n')[0]!.split(',');
      const known = new Set([...ENTITY_COLUMNS[entity].required, ...ENTITY_COLUMNS[entity].optional]);
      const columns = header.map(
        (c) => `${sqlString(c)}: ${sqlString(known.has(c) ? floorType(c) : 'varchar')}`,
      );
      const counts = header.map((c) => `count(${sqlIdent(c)})`).join(', ');
      const row = await db.one(
        `select count(*) as n, ${counts} from read_csv(${sqlString(file)}, header = true, auto_detect = false,
           columns = {${columns.join(', ')}}, store_rejects = true)`,
      );
      rows += Number(row?.n ?? 0);
    }
  } finally {
    db.close();
  }
  return rows;
}

/** Runs a command to its exit; its usage is the JSON on the last line it prints (or none). */
async function measure(
  command: string,
  args: string[],
): Promise<{ measured: Measured | undefined; output: string }> {
  const { code, output, wall_ms } = await runToExit(command, args);
  if (code !== 0) return { measured: undefined, output };
  const last = output
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  const usage = last ? (JSON.parse(last) as Partial<ProcessUsage>) : {};
  return {
    measured: {
      wall_ms,
      cpu_ms: usage.cpu_ms ?? Number.NaN,
      max_rss_kb: usage.max_rss_kb ?? Number.NaN,
    },
    output,
  };
}

/** The first Python 3 that imports pandas, or why there is none. */
export async function findPandas(): Promise<{ python: string } | { missing: string }> {
  for (const python of ['python3', '/usr/bin/python3']) {
    const { measured } = await measure(python, ['-c', 'import pandas']).catch(() => ({
      measured: undefined,
    }));
    if (measured) return { python };
  }
  return {
    missing:
      'no Python 3 with pandas on this machine (Debian: apt-get install python3-pandas); the pandas script was skipped',
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export interface PeerOptions {
  dir: string;
  loaded: LoadedConfig;
  asOf: string;
  rounds: number;
  /** Rows in the generated population (for the header line). */
  customers: number;
}

/** Runs the three contenders in turn and prints wall, CPU, peak RSS (medians over the rounds) and the ratios. */
export async function benchPeer(opts: PeerOptions): Promise<void> {
  const csvDir = join(opts.dir, 'csv');
  const population = await writeCsvPopulation(opts.loaded, csvDir);
  const configFile = join(opts.dir, 'peer.yaml');
  writeFileSync(configFile, csvConfigYaml(opts.loaded.config, population.files, opts.dir));
  const filesArg = JSON.stringify(population.files);
  const pandas = await findPandas();
  const bench = join(ROOT, 'bin', 'bench.mjs');
  const node = process.execPath;
  const contenders: { name: string; command: string; args: string[] }[] = [
    {
      name: 'churn pipeline',
      command: node,
      args: [bench, '--child', 'pipeline', '--config', configFile, '--as-of', opts.asOf],
    },
  ];
  if ('python' in pandas) {
    contenders.push({
      name: 'pandas script',
      command: pandas.python,
      args: [PANDAS_SCRIPT, csvDir, opts.asOf, join(opts.dir, 'pandas-out')],
    });
  }
  contenders.push({
    name: 'DuckDB floor',
    command: node,
    args: [bench, '--child', 'floor', '--files', filesArg],
  });

  const runs = new Map<string, Measured[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < opts.rounds; round++) {
    for (const contender of contenders) {
      const { measured, output } = await measure(contender.command, contender.args);
      if (!measured) {
        throw new Error(`${contender.name} failed:\n${output.trim().split('\n').slice(-20).join('\n')}`);
      }
      runs.get(contender.name)!.push(measured);
    }
  }
  const summary = contenders.map((c) => {
    const list = runs.get(c.name)!;
    return {
      name: c.name,
      wall: median(list.map((m) => m.wall_ms)) / 1000,
      cpu: median(list.map((m) => m.cpu_ms)) / 1000,
      rss: median(list.map((m) => m.max_rss_kb)) / 1024,
    };
  });
  const churn = summary[0]!;
  const lines = [
    `churn-pipeline bench --peer: ${opts.customers} customers, ${population.rows} input rows in ${Object.keys(population.files).length} CSV files (${(population.bytes / 1e6).toFixed(0)} MB), ${opts.rounds} round(s) in turn, medians; ${cpus().length} cores`,
    'contender            wall s     CPU s   peak RSS MB   churn wall vs it',
    '-'.repeat(72),
  ];
  for (const s of summary) {
    const ratio = s === churn ? '' : ratioText(churn.wall, s.wall);
    lines.push(
      `${s.name.padEnd(18)} ${s.wall.toFixed(1).padStart(8)} ${s.cpu.toFixed(1).padStart(9)} ${s.rss.toFixed(0).padStart(13)}   ${ratio}`,
    );
  }
  lines.push('-'.repeat(72));
  if ('missing' in pandas) lines.push(`note: ${pandas.missing}`);
  lines.push(
    'wall: process start to exit; CPU: user + system of the process; the pandas script computes facts, lifecycle,',
    'cohort retention, churn and NPS/CSAT trends only (no early warning, audience or publishing).',
  );
  const manifest = join(opts.dir, 'out', 'current', '_manifest.json');
  if (existsSync(manifest)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as {
      timings_ms: Record<string, number>;
      model_timings: { model: string; ms: number }[];
    };
    lines.push(
      `churn stages (last round): ${Object.entries(m.timings_ms)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
        .join(', ')}`,
      `slowest models: ${[...m.model_timings]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 8)
        .map((t) => `${t.model} ${(t.ms / 1000).toFixed(1)} s`)
        .join(', ')}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function ratioText(churnWall: number, otherWall: number): string {
  if (!Number.isFinite(otherWall) || otherWall <= 0) return '';
  const r = churnWall / otherWall;
  return r <= 1 ? `${(1 / r).toFixed(1)}x faster` : `${r.toFixed(1)}x slower`;
}
