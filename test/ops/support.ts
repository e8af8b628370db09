// Helpers of the operations tests: a small deterministic project (CSV exports + churn.yaml) in a temp folder,
// the real CLI as a child process, and the run ledger (published.ts reads what an output published).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { LedgerEntry } from '../../pipelines/ops/state.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'churn.mjs');
/** Loaded into every child: stops it at a named event when the environment asks (pause-entry.mjs). */
const PAUSE_ENTRY = new URL('./pause-entry.mjs', import.meta.url).href;

/** A tiny deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const day = (d: string, plus: number) =>
  new Date(Date.parse(`${d}T00:00:00Z`) + plus * 86_400_000).toISOString().slice(0, 10);

export interface FixtureData {
  customers: string;
  orders: string;
  surveys: string;
  email_events: string;
}

/**
 * 40 customers with orders from 2024-01-01 to `lastOrder` (default 2024-06-28): steady buyers, some who stop
 * buying in spring (silent churners), a few cancelled; NPS answers and e-mail events.
 */
export function fixtureData(lastOrder = '2024-06-28'): FixtureData {
  const rnd = random(7);
  const customers = [
    'customer_id,email,first_name,last_name,country,segment,signup_at,marketing_consent,cancelled_at',
  ];
  const orders = ['order_id,customer_id,ordered_at,amount,status'];
  const surveys = ['response_id,customer_id,responded_at,survey_type,score'];
  const emails = ['customer_id,occurred_at,event_type,campaign_id'];
  let orderNo = 0;
  for (let i = 1; i <= 40; i++) {
    const id = `C${String(i).padStart(3, '0')}`;
    const segment = i % 3 === 0 ? 'smb' : 'enterprise';
    const cancelled = i % 13 === 0 ? '2024-04-15 10:00:00' : '';
    customers.push(
      `${id},user${i}@example.com,First${i},Last${i},${i % 2 ? 'DE' : 'AT'},${segment},2023-12-${String((i % 28) + 1).padStart(2, '0')} 09:00:00,${i % 5 === 0 ? 'false' : 'true'},${cancelled}`,
    );
    const stopsAt = i % 4 === 0 ? '2024-03-20' : cancelled ? '2024-04-15' : lastOrder;
    const gap = 5 + Math.floor(rnd() * 10);
    for (let d = day('2024-01-01', i % 7); d <= stopsAt; d = day(d, gap + Math.floor(rnd() * 4))) {
      orderNo += 1;
      const amount = (20 + rnd() * 80).toFixed(2);
      orders.push(
        `O${String(orderNo).padStart(5, '0')},${id},${d} ${String(8 + (orderNo % 10)).padStart(2, '0')}:15:00,${amount},completed`,
      );
    }
    for (const [k, month] of ['02', '04', '06'].entries()) {
      surveys.push(`R${id}-${k},${id},2024-${month}-10 12:00:00,nps,${Math.floor(rnd() * 11)}`);
    }
    for (const month of ['01', '02', '03', '04', '05', '06']) {
      emails.push(`${id},2024-${month}-05 07:00:00,sent,M${month}`);
      if (rnd() < 0.6) emails.push(`${id},2024-${month}-05 09:00:00,open,M${month}`);
    }
  }
  // The last day has an order from everyone still buying, so that freshness holds for as-of dates near it.
  orders.push(`O99999,C001,${lastOrder} 18:00:00,42.00,completed`);
  return {
    customers: `${customers.join('\n')}\n`,
    orders: `${orders.join('\n')}\n`,
    surveys: `${surveys.join('\n')}\n`,
    email_events: `${emails.join('\n')}\n`,
  };
}

export interface Project {
  dir: string;
  config: string;
  out: string;
  state: string;
  data: FixtureData;
}

/**
 * A temp folder with the fixture exports in data/ and churn.yaml (extra YAML appended). `output` replaces the
 * default `output:` section (a local folder `out`), e.g. with an S3 output whose local copy is `out`.
 */
export function makeProject(
  extraYaml = '',
  data: FixtureData = fixtureData(),
  output: string[] = ['output:', '  type: local', '  path: out'],
): Project {
  const dir = mkdtempSync(join(tmpdir(), 'churn-ops-'));
  const config = join(dir, 'churn.yaml');
  writeData(dir, data);
  writeFileSync(
    config,
    [
      'business_time_zone: UTC',
      'period_grain: month',
      'sources:',
      ...Object.keys(data).flatMap((entity) => [
        `  ${entity}:`,
        '    type: local',
        `    path: data/${entity}.csv`,
      ]),
      ...output,
      'state_dir: .churn',
      'lock:',
      '  stale_seconds: 4',
      'duckdb:',
      '  threads: 1',
      '  memory_limit: 512MB',
      extraYaml,
      '',
    ].join('\n'),
  );
  return { dir, config, out: join(dir, 'out'), state: join(dir, 'out', '_state'), data };
}

export function writeData(dir: string, data: Partial<FixtureData>): void {
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  for (const [entity, text] of Object.entries(data)) {
    writeFileSync(join(dir, 'data', `${entity}.csv`), text, { flag: 'w' });
  }
}

/**
 * Appends one order (number n, by C002 on 2024-06-20) to the project's orders export: a changed input, so that a
 * re-run of an as-of date after it publishes different files.
 */
export function addOrder(project: Project, n: number): void {
  const file = join(project.dir, 'data', 'orders.csv');
  const line = `O8${String(n).padStart(4, '0')},C002,2024-06-20 11:00:00,${(10 + n).toFixed(2)},completed\n`;
  writeFileSync(file, readFileSync(file, 'utf8') + line);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Child {
  proc: ChildProcess;
  output: () => { stdout: string; stderr: string };
  exited: Promise<Exit>;
}

/** Starts `node bin/churn.mjs <args>` (JSON logs on stderr). */
export function startChurn(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', PAUSE_ENTRY, BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', CHURN_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  proc.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { proc, output: () => ({ stdout, stderr }), exited };
}

export function churn(args: string[], env: Record<string, string> = {}): Promise<Exit> {
  return startChurn(args, env).exited;
}

/** The one-line reason the CLI printed (the `churn: ...` line of stderr). */
export function reason(exit: Exit): string {
  return (
    exit.stderr
      .split('\n')
      .filter((l) => l.startsWith('churn: '))
      .at(-1) ?? ''
  );
}

/** Where a child stops (pauseAt, killAt): its environment, and the marker file it writes when it gets there. */
export interface Stop {
  env: Record<string, string>;
  marker: string;
}

/**
 * A child started with `env` waits at `point` (a stage's start or a publish step) until `marker` is removed, or for
 * `ms` milliseconds; the marker exists while it waits.
 */
export function pauseAt(point: string, ms?: number): Stop {
  const markers = mkdtempSync(join(tmpdir(), 'churn-markers-'));
  const env: Record<string, string> = { CHURN_TEST_PAUSE_AT: point, CHURN_TEST_MARKERS: markers };
  if (ms !== undefined) env.CHURN_TEST_PAUSE_MS = String(ms);
  return { env, marker: join(markers, `paused-${point}`) };
}

/** A child started with `env` ends itself with SIGKILL at `point`, having written `marker`. */
export function killAt(point: string): Stop {
  const markers = mkdtempSync(join(tmpdir(), 'churn-markers-'));
  return {
    env: { CHURN_TEST_KILL_AT: point, CHURN_TEST_MARKERS: markers },
    marker: join(markers, `killed-${point}`),
  };
}

export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function ledger(project: Project): LedgerEntry[] {
  const file = join(project.state, 'ledger.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LedgerEntry);
}

/** The newest state of each run, in order of first appearance. */
export function runs(project: Project): LedgerEntry[] {
  const byId = new Map<string, LedgerEntry>();
  for (const e of ledger(project)) byId.set(e.run_id, e);
  return [...byId.values()];
}

export function currentRunId(out: string): string {
  return (JSON.parse(readFileSync(join(out, 'current', '_manifest.json'), 'utf8')) as { run_id: string })
    .run_id;
}
