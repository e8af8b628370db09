// The command line a person meets: --version, --config in every subcommand's help, and the terminal output
// (a short human log with progress bars on a terminal, JSON lines elsewhere), down to a real pseudo-terminal.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger, defaultLogFormat, progressListener, type Terminal } from '../pipelines/base/log.js';
import { buildProgram, packageVersion } from '../pipelines/cli.js';
import { generateSample } from '../pipelines/sample/generate.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'churn.mjs');

/** Runs the program in-process; what commander prints (help, version) is returned instead of written. */
async function runCli(args: string[]): Promise<string> {
  const program = buildProgram();
  let out = '';
  const capture = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    for (const sub of cmd.commands) capture(sub);
  };
  capture(program);
  try {
    await program.parseAsync(['node', 'churn', ...args]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'commander.helpDisplayed' && code !== 'commander.version') throw err;
  }
  return out;
}

/** A stand-in terminal that records what is written to it. */
function fakeTerminal(isTTY: boolean): Terminal & { text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 120,
    write(text: string) {
      chunks.push(text);
      return true;
    },
    text: () => chunks.join(''),
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

describe('churn --version and help', () => {
  it('prints the package version (and DuckDB and Node.js versions)', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(packageVersion()).toBe(pkg.version);
    const out = await runCli(['--version']);
    expect(out).toMatch(new RegExp(`^churn-pipeline ${pkg.version.replaceAll('.', '\\.')} \\(DuckDB v\\d`));
    expect(out).toContain(process.version);
  });

  it('shows --config, --log-level and --log-format in the help of every subcommand', async () => {
    const names = buildProgram().commands.map((c) => c.name());
    expect(names).toEqual(
      expect.arrayContaining(['run', 'validate', 'status', 'backfill', 'schedule', 'init', 'schema']),
    );
    for (const name of names) {
      const help = await runCli([name, '--help']);
      expect(help, name).toContain('-c, --config <file>');
      expect(help, name).toContain('--log-level <level>');
      expect(help, name).toContain('--log-format <format>');
    }
  });

  it('runs through bin/churn.mjs (the TypeScript sources through tsx)', () => {
    const result = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`churn-pipeline ${packageVersion()}`);
  });
});

describe('log format', () => {
  it('is human on a terminal and JSON lines elsewhere, in CI or when asked', () => {
    expect(defaultLogFormat({ write: () => true, isTTY: true }, {})).toBe('human');
    expect(defaultLogFormat({ write: () => true, isTTY: false }, {})).toBe('json');
    expect(defaultLogFormat({ write: () => true }, {})).toBe('json');
    expect(defaultLogFormat({ write: () => true, isTTY: true }, { CI: 'true' })).toBe('json');
    expect(defaultLogFormat({ write: () => true, isTTY: true }, { CHURN_LOG_FORMAT: 'json' })).toBe('json');
    expect(defaultLogFormat({ write: () => true, isTTY: false }, { CHURN_LOG_FORMAT: 'human' })).toBe(
      'human',
    );
  });

  it('writes one short line per stage, warnings and errors, and leaves the per-model details out', () => {
    const terminal = fakeTerminal(false);
    const log = createLogger({ format: 'human', terminal, secrets: ['s3cr3t-token'] });
    log.info({ runId: 'r1', asOf: '2026-06-30', config: '/x/churn.yaml' }, 'run started');
    log.info({ stage: 'land', ms: 1665, rows: { customers: 2000, orders: 20940 } }, 'stage land done');
    log.info({ model: 'bgnbd', r: 0.85, alpha: 6.8 }, 'BG/NBD model fitted');
    log.debug({ model: 'stg_orders', rows: 20940, ms: 12 }, 'model built');
    log.warn({ check: 'freshness', target: 'orders' }, 'orders: newest row is 5 days old');
    log.info({ stage: 'transform', ms: 8878, models: 36 }, 'stage transform done');
    log.info(
      { stage: 'quality', ms: 710, quarantined: 8, checks: { passed: 49, warned: 1, failed: 0 } },
      'stage quality done',
    );
    log.info({ runId: 'r1', customers: 2000 }, 'run succeeded');
    log.info({ dates: 2 }, 'catching up on runs missed while the scheduler was down');
    log.error({ err: 'token s3cr3t-token refused' }, 'scheduled run failed');
    const lines = terminal.text().trimEnd().split('\n');
    expect(lines).toEqual([
      'churn run r1 as of 2026-06-30',
      '  ✓ land           1.7 s   22,940 rows from 2 entities',
      '  ! orders: newest row is 5 days old  (check=freshness target=orders)',
      '  ✓ transform      8.9 s   36 models',
      '  ✓ quality       710 ms   8 quarantined, checks: passed 49, warned 1, failed 0',
      '  ✓ run succeeded',
      '  catching up on runs missed while the scheduler was down  (dates=2)',
      '  ✗ scheduled run failed  (err=token *** refused)',
    ]);
    expect(terminal.text()).not.toMatch(ANSI);
  });

  it('shows the details, one line each, at --log-level debug', () => {
    const terminal = fakeTerminal(false);
    const log = createLogger({ format: 'human', terminal, level: 'debug' });
    log.info({ runId: 'r1', asOf: '2026-06-30' }, 'run started');
    log.debug({ model: 'stg_orders', rows: 20940, ms: 12 }, 'model built');
    expect(terminal.text()).toContain('debug model built  (model=stg_orders rows=20,940 ms=12)');
  });

  it('draws a progress bar on a terminal (done of total, elapsed) and clears it when the stage ends', async () => {
    const terminal = fakeTerminal(true);
    const log = createLogger({ format: 'human', terminal });
    const progress = progressListener(log);
    expect(progress).toBeDefined();
    progress?.({ stage: 'transform', done: 0, total: 36, unit: 'models' });
    progress?.({ stage: 'transform', done: 12, total: 36, unit: 'models', item: 'fct_customer_period' });
    log.warn('a warning while the bar is drawn');
    await new Promise((r) => setTimeout(r, 450));
    const drawn = terminal.text().replace(ANSI, '');
    expect(drawn).toMatch(/transform\s+\S+ 12\/36 models \| +\d+s \| fct_customer_period/);
    log.info({ stage: 'transform', ms: 8878, models: 36 }, 'stage transform done');
    const text = terminal.text().replace(ANSI, '');
    expect(text).toContain('! a warning while the bar is drawn');
    expect(text.trimEnd().endsWith('✓ transform      8.9 s   36 models')).toBe(true);
    // No bar off a terminal, and none for JSON lines.
    expect(progressListener(createLogger({ format: 'json' }))).toBeUndefined();
    const plain = fakeTerminal(false);
    const plainLog = createLogger({ format: 'human', terminal: plain });
    progressListener(plainLog)?.({ stage: 'land', done: 1, total: 8, unit: 'sources' });
    await new Promise((r) => setTimeout(r, 250));
    expect(plain.text()).toBe('');
  });
});

describe('a run as a person sees it', () => {
  let dir: string;
  let config: string;
  let asOf: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'churn-cli-'));
    const sample = await generateSample({ dir: join(dir, 'data'), customers: 150, seed: 7 });
    asOf = sample.asOf;
    const defaults = readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8');
    config = join(dir, 'churn.yaml');
    writeFileSync(config, defaults.replaceAll('data/sample/', 'data/'));
  });

  const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
  it.skipIf(script.status !== 0)('gets a short human log on a terminal (a real pseudo-terminal)', () => {
    const command = `${process.execPath} ${BIN} run --config ${config} --as-of ${asOf}`;
    const result = spawnSync('script', ['-qec', command, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, CI: undefined, CHURN_LOG_FORMAT: undefined, COLUMNS: '120' },
      timeout: 110_000,
    });
    expect(result.status, result.stdout).toBe(0);
    // What stays on the screen: a redrawn bar returns to column 1 (CR or ESC[1G) and is overwritten.
    const screen = result.stdout
      .replaceAll('\u001b[1G', '\r')
      .replace(ANSI, '')
      .split('\n')
      .map(
        (line) =>
          line
            .split('\r')
            .filter((part) => part.trim() !== '')
            .pop() ?? '',
      )
      .join('\n');
    for (const stage of ['land', 'transform', 'quality', 'export', 'report', 'publish', 'catalog']) {
      expect(screen).toMatch(new RegExp(`✓ ${stage} +\\d`));
    }
    expect(screen).toMatch(/✓ transform .* \d+ models/);
    expect(screen).toContain(`churn-pipeline: run ${asOf}_`);
    expect(screen).not.toContain('"level":');
    // The log part (before the summary): the run, one line per stage, warnings; no bar left over, not ~70 lines.
    const logLines =
      screen
        .split('churn-pipeline: run')[0]
        ?.split('\n')
        .filter((l) => l.trim() !== '') ?? [];
    for (const line of logLines) expect(line).toMatch(/^(churn run | {2}✓ | {2}! )/);
    expect(logLines.filter((l) => !l.startsWith('  ! ')).length).toBe(10);
  });

  it('writes JSON lines off a terminal', () => {
    const result = spawnSync(process.execPath, [BIN, 'validate', '--config', config, '--as-of', asOf], {
      encoding: 'utf8',
      env: { ...process.env, CHURN_LOG_FORMAT: undefined },
      timeout: 110_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('stage transform done');
  });
});
