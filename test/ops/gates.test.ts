// The quality gates on real runs: broken input stops the run before publishing with a message that says what
// broke; a gate set to `warn` publishes and flags. The webhook hears about failures (with the reason) and, with
// on_success, successes; a failing webhook never fails the run.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db } from '../../pipelines/base/duckdb.js';
import {
  churn,
  currentRunId,
  type FixtureData,
  fixtureData,
  makeProject,
  reason,
  runs,
  writeData,
} from './support.js';

/** Every other order missing (more than half of them). */
function halfTheOrders(data: FixtureData): string {
  const [header, ...rows] = data.orders.trim().split('\n');
  return `${[header, ...rows.filter((_, i) => i % 2 === 1)].join('\n')}\n`;
}

interface Hook {
  path: string;
  text: string;
}

describe('quality gates and notifications on real runs', () => {
  let server: Server;
  let port = 0;
  const hooks: Hook[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        hooks.push({ path: req.url ?? '', text: (JSON.parse(body) as { text: string }).text });
        res.statusCode = req.url === '/broken' ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  // The URL comes from the environment, as a secret would.
  const project = makeProject(['notifications:', '  webhook_url: ${CHURN_TEST_WEBHOOK}'].join('\n'));
  const cfg = ['--config', project.config];
  const hookEnv = (path: string) => ({ CHURN_TEST_WEBHOOK: `http://127.0.0.1:${port}${path}` });

  it('stops before publishing when half the orders are missing against the previous run', async () => {
    const base = await churn(['run', ...cfg, '--as-of', '2024-06-30'], hookEnv('/hook'));
    expect(base.code, base.stderr).toBe(0);
    expect(hooks).toEqual([]); // success is only notified with on_success
    const published = currentRunId(project.out);
    const manifest = readFileSync(join(project.out, 'current', '_manifest.json'), 'utf8');

    writeData(project.dir, { orders: halfTheOrders(project.data) });
    const exit = await churn(['run', ...cfg, '--as-of', '2024-06-30'], hookEnv('/hook'));
    expect(exit.code).toBe(1);
    const line = reason(exit);
    expect(line).toMatch(
      /^churn: 1 data-quality gate\(s\) failed, nothing was published: volume: orders has 305 raw rows, 50% fewer than the 611 of the previous successful run \S+ \(as of 2024-06-30\)/,
    );
    expect(line).toContain(published);
    expect(currentRunId(project.out)).toBe(published);
    expect(readFileSync(join(project.out, 'current', '_manifest.json'), 'utf8')).toBe(manifest);

    const failed = runs(project).at(-1);
    expect(failed?.status).toBe('failed');
    expect(failed?.checks?.failed).toBe(1);
    expect(failed?.error).toContain('volume: orders has 305 raw rows');

    // The webhook got the failure with its reason and the counts, without the URL or any e-mail in the logs.
    expect(hooks).toHaveLength(1);
    expect(hooks[0]?.path).toBe('/hook');
    expect(hooks[0]?.text).toMatch(/^churn-pipeline: run \S+ as of 2024-06-30 FAILED \(run, output /);
    expect(hooks[0]?.text).toContain(
      'Reason: 1 data-quality gate(s) failed, nothing was published: volume: orders',
    );
    expect(hooks[0]?.text).toContain('orders_rows 305');
    expect(exit.stderr).not.toContain(`${port}/hook`);
    expect(exit.stderr).not.toContain('@example.com');
  });

  it('stops at landing when a required column was renamed, saying which and how to map it', async () => {
    writeData(project.dir, { orders: project.data.orders.replace('ordered_at,amount', 'ordered_at,total') });
    const exit = await churn(['run', ...cfg, '--as-of', '2024-06-30'], hookEnv('/hook'));
    expect(exit.code).toBe(1);
    expect(reason(exit)).toMatch(
      /^churn: orders: column "amount" \(for amount\) is not in data\/orders\.csv; its columns are .*"total".*Map it with sources\.orders\.columns\.amount$/,
    );
    expect(runs(project).at(-1)?.error).toContain('column "amount"');
    expect(hooks.at(-1)?.text).toContain('Reason: orders: column "amount"');
  });

  it('publishes and flags when the gate is a warning; a failing webhook does not fail the run', async () => {
    writeFileSync(
      project.config,
      `${readFileSync(project.config, 'utf8')}  on_success: true\nchecks:\n  volume:\n    severity: warn\n`,
    );
    writeData(project.dir, { orders: halfTheOrders(project.data) });
    const exit = await churn(['run', ...cfg, '--as-of', '2024-06-30'], hookEnv('/broken'));
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain('the notification webhook refused the message');
    expect(hooks.at(-1)?.path).toBe('/broken');
    expect(hooks.at(-1)?.text).toMatch(/succeeded/);
    expect(hooks.at(-1)?.text).toContain('Warnings: volume: orders has 305 raw rows');

    const manifest = JSON.parse(readFileSync(join(project.out, 'current', '_manifest.json'), 'utf8')) as {
      run_id: string;
      checks: { check: string; status: string; message: string }[];
    };
    expect(manifest.run_id).toBe(runs(project).at(-1)?.run_id);
    expect(manifest.checks.filter((c) => c.status !== 'pass').map((c) => [c.check, c.status])).toEqual([
      ['volume', 'warn'],
    ]);
    expect(runs(project).at(-1)?.checks).toMatchObject({ warned: 1, failed: 0 });
    const status = await churn(['status', ...cfg, '--limit', '1'], hookEnv('/hook'));
    expect(status.stdout).toMatch(/success .* 1 warned/);
  });
});

describe('no reactivation audience from stale inputs', () => {
  // The fixture's orders end on 2024-06-28: as of 2024-11-28 they are 153 days old (max_age_days.orders is 3).
  const stale = ['--as-of', '2024-11-28'];
  // The data rows of every audience import file (exports/reactivation_audience/, one per tool), together.
  const audienceRows = (out: string) => {
    const dir = join(out, 'current', 'exports', 'reactivation_audience');
    const files = readdirSync(dir);
    expect(files.length).toBe(6);
    return files
      .map((f) => readFileSync(join(dir, f), 'utf8').trim().split('\r\n').length - 1)
      .reduce((a, b) => a + b, 0);
  };
  const exclusions = async (out: string) => {
    const db = await Db.open();
    try {
      return await db.all<{ reason: string; customers: string }>(
        `select reason, customers::varchar as customers
         from read_parquet('${join(out, 'current', 'audience_exclusions', 'part-0.parquet')}') order by step`,
      );
    } finally {
      db.close();
    }
  };

  it('fails the run by default, before publishing anything, and says why in one line', async () => {
    const project = makeProject();
    const exit = await churn(['run', '--config', project.config, ...stale]);
    expect(exit.code).toBe(1);
    const line = reason(exit);
    expect(line).toMatch(
      /^churn: 1 data-quality gate\(s\) failed, nothing was published: freshness: no reactivation audience from stale inputs: the newest orders row \(ordered_at\) is from 2024-06-28, 153 days before the as-of date 2024-11-28; checks\.freshness\.max_age_days\.orders is 3\. .*checks\.freshness\.audience: warn/,
    );
    expect(existsSync(join(project.out, 'current'))).toBe(false);
    expect(runs(project).at(-1)?.status).toBe('failed');
  });

  it('with audience: warn, publishes the metric tables and an empty audience, with a one-line warning', async () => {
    const project = makeProject(['checks:', '  freshness:', '    audience: warn'].join('\n'));
    const exit = await churn(['run', '--config', project.config, ...stale]);
    expect(exit.code, exit.stderr).toBe(0);
    const warnings = exit.stderr
      .split('\n')
      .filter((l) => l.includes('reactivation audience is withheld'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(warnings).toEqual([
      'freshness: the reactivation audience is withheld (published empty) because its inputs are stale: the newest orders row ' +
        '(ordered_at) is from 2024-06-28, 153 days before the as-of date 2024-11-28; checks.freshness.max_age_days.orders is 3; ' +
        'checks.freshness.audience is warn',
    ]);
    const manifest = JSON.parse(readFileSync(join(project.out, 'current', '_manifest.json'), 'utf8')) as {
      tables: Record<string, { rows: number }>;
      notes: string[];
    };
    expect(manifest.tables.reactivation_audience?.rows).toBe(0);
    expect(manifest.tables.churn_summary?.rows).toBeGreaterThan(0);
    expect(manifest.tables.customer_health?.rows).toBe(40);
    expect(manifest.notes).toContainEqual(expect.stringContaining('reactivation audience is withheld'));
    expect(audienceRows(project.out)).toBe(0);
    // Those who would have been written to are counted, under their own reason.
    const rows = await exclusions(project.out);
    const withheld = Number(rows.find((r) => r.reason === 'withheld_stale_inputs')?.customers);
    expect(withheld).toBeGreaterThan(0);
    expect(rows.filter((r) => r.reason.startsWith('included_')).map((r) => Number(r.customers))).toEqual([
      0, 0,
    ]);
  });

  it('with audience: off, publishes the audience from the same stale inputs (the behaviour the gate prevents)', async () => {
    const project = makeProject(['checks:', '  freshness:', '    audience: off'].join('\n'));
    const exit = await churn(['run', '--config', project.config, ...stale]);
    expect(exit.code, exit.stderr).toBe(0);
    expect(audienceRows(project.out)).toBeGreaterThan(0);
  });
});

describe('a quarantine gate that says what to map', () => {
  it('names a row and its value, gives the format to map day-first dates with, and the mapping works', async () => {
    const data = fixtureData();
    // 2024-01-05 08:15:00 -> 05/01/2024 08:15, as a European export writes it
    const dayFirst = data.orders.replace(
      /(\d{4})-(\d{2})-(\d{2}) (\d{2}:\d{2}):00/g,
      (_, y: string, m: string, d: string, hm: string) => `${d}/${m}/${y} ${hm}`,
    );
    const project = makeProject('', { ...data, orders: dayFirst });
    const cfg = ['--config', project.config];
    const exit = await churn(['run', ...cfg, '--as-of', '2024-06-30']);
    expect(exit.code).toBe(1);
    const firstDate = dayFirst.split('\n')[1]?.split(',')[2];
    expect(firstDate).toMatch(/^\d{2}\/01\/2024 \d{2}:15$/);
    expect(reason(exit)).toContain(
      `most common: ordered_at unparseable timestamp (${dayFirst.trim().split('\n').length - 1}x, e.g. data/orders.csv row 1: "${firstDate}"). ` +
        'If every ordered_at is written this way, give its format: sources.orders.columns.ordered_at: ' +
        `{ column: <the export's column>, format: "%d/%m/%Y %H:%M" } (strptime codes; %m/%d/%Y %H:%M if the month comes first)`,
    );
    expect(existsSync(join(project.out, 'current'))).toBe(false);

    const config = readFileSync(project.config, 'utf8').replace(
      '    path: data/orders.csv\n',
      '    path: data/orders.csv\n    columns:\n      ordered_at: { column: ordered_at, format: "%d/%m/%Y %H:%M" }\n',
    );
    writeFileSync(project.config, config);
    const mapped = await churn(['run', ...cfg, '--as-of', '2024-06-30']);
    expect(mapped.code, mapped.stderr).toBe(0);
    const published = await Db.open();
    try {
      const orders = await published.number(
        `select sum(orders) from read_parquet('${join(project.out, 'current', 'fct_customer_period', 'part-0.parquet')}')`,
      );
      expect(orders).toBe(data.orders.trim().split('\n').length - 1);
    } finally {
      published.close();
    }
  });
});
