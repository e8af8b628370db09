// The quality gates on real runs: broken input stops the run before publishing with a message that says what
// broke; a gate set to `warn` publishes and flags. The webhook hears about failures (with the reason) and, with
// on_success, successes; a failing webhook never fails the run.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { churn, currentRunId, type FixtureData, makeProject, reason, runs, writeData } from './support.js';

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
