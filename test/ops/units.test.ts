// In-process tests of the operations pieces: the state store, catch-up dates, the quality gates, the webhook.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import cron from 'node-cron';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.js';
import type { Db } from '../../pipelines/base/duckdb.js';
import { silentLogger } from '../../pipelines/base/log.js';
import { acquireRunLock } from '../../pipelines/ops/lock.js';
import { notify } from '../../pipelines/ops/notify.js';
import { missedAsOfDates, type ScheduleSettings } from '../../pipelines/ops/schedule.js';
import {
  currentRuns,
  LocalStateStore,
  lastSuccess,
  markAbandoned,
  startedEntry,
} from '../../pipelines/ops/state.js';
import { assertChecks, runChecks } from '../../transforms/checks.js';
import { buildFixture } from '../support/models.js';
import { fixtureData } from './support.js';

describe('LocalStateStore and the ledger', () => {
  it('appends entries, folds them per run, skips a torn last line, marks dead runs abandoned', async () => {
    const store = new LocalStateStore(mkdtempSync(join(tmpdir(), 'churn-state-')));
    const a = startedEntry('run-a', '2024-06-01', 'run', new Date('2024-06-02T03:00:00Z'));
    await store.appendLedger(a);
    await store.appendLedger({ ...a, status: 'success', finished_at: '2024-06-02T03:01:00Z' });
    const b = startedEntry('run-b', '2024-06-02', 'schedule', new Date('2024-06-03T03:00:00Z'));
    await store.appendLedger(b);
    appendFileSync(join(store.dir, 'ledger.jsonl'), '{"run_id":"run-c","as_of":"2024-06-0'); // a crash mid-write

    const runs = currentRuns(await store.readLedger());
    expect(runs.map((r) => [r.run_id, r.status])).toEqual([
      ['run-a', 'success'],
      ['run-b', 'running'],
    ]);
    expect(lastSuccess(runs)?.run_id).toBe('run-a');
    expect(lastSuccess(runs, '2024-06-02')).toBeUndefined();

    const abandoned = await markAbandoned(store);
    expect(abandoned.map((r) => r.run_id)).toEqual(['run-b']);
    const after = currentRuns(await store.readLedger());
    expect(after.find((r) => r.run_id === 'run-b')?.status).toBe('abandoned');
    expect(after.find((r) => r.run_id === 'run-b')?.error).toMatch(/ended before the run finished/);

    await store.writeJson('thing', { n: 1 });
    expect(await store.readJson<{ n: number }>('thing')).toEqual({ n: 1 });
    expect(await store.readJson('missing')).toBeUndefined();
  });
});

describe('the run lock', () => {
  const capture = () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    return { log, text: () => lines.join('') };
  };
  const holder = (pid: number) => ({
    pid,
    host: hostname(),
    run_id: 'holder-run',
    as_of: '2024-06-30',
    trigger: 'run',
    acquired_at: new Date().toISOString(),
  });
  const options = (log: pino.Logger) => ({
    runId: 'me',
    asOf: '2024-06-30',
    trigger: 'run' as const,
    staleMs: 2000,
    log,
  });

  it('refuses while a live holder has it, naming it and --wait; gives up after --wait seconds', async () => {
    const store = new LocalStateStore(mkdtempSync(join(tmpdir(), 'churn-lock-')));
    mkdirSync(join(store.dir, 'run.lock')); // what proper-lockfile creates, with a fresh mtime
    await store.writeJson('lock', holder(process.pid));
    const { log } = capture();
    await expect(acquireRunLock(store, options(log))).rejects.toThrow(
      new RegExp(
        `another run holds the lock of this output .*run holder-run \\(pid ${process.pid} on .*--wait`,
      ),
    );
    await expect(acquireRunLock(store, { ...options(log), wait: 0.5 })).rejects.toThrow(
      /gave up after waiting 0.5 s for the lock/,
    );
  });

  it('takes over the lock of a dead process once it is stale', async () => {
    const store = new LocalStateStore(mkdtempSync(join(tmpdir(), 'churn-lock-')));
    mkdirSync(join(store.dir, 'run.lock'));
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid ?? 0; // a process that has ended
    await store.writeJson('lock', holder(dead));
    const { log, text } = capture();
    const started = Date.now();
    const lock = await acquireRunLock(store, options(log));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(text()).toContain(
      'the run lock was left by a process that is gone; taking it over once it is stale',
    );
    expect((await store.readJson<{ run_id: string }>('lock'))?.run_id).toBe('me');
    await lock.release();
    expect(await store.readJson('lock')).toBeUndefined();
  });
});

describe('catch-up dates of the scheduler', () => {
  const settings = (over: Partial<ScheduleSettings>): ScheduleSettings => ({
    cron: '0 3 * * *',
    timeZone: 'Europe/Berlin',
    catchUp: 'all',
    asOfMode: 'yesterday',
    maxCatchUpDays: 31,
    ...over,
  });
  const matcher = (s: ScheduleSettings) => {
    const task = cron.createTask(s.cron, () => undefined, { timezone: s.timeZone });
    return (d: Date) => task.match(d);
  };

  it('lists the as-of dates of the fire times after the last success, up to now', () => {
    const s = settings({});
    // 07:00 in Berlin on June 10: today's 03:00 run is due (as of June 9).
    expect(missedAsOfDates(s, new Date('2024-06-10T05:00:00Z'), '2024-06-06', matcher(s))).toEqual([
      '2024-06-07',
      '2024-06-08',
      '2024-06-09',
    ]);
    // 02:30 in Berlin: today's run has not fired yet.
    expect(missedAsOfDates(s, new Date('2024-06-10T00:30:00Z'), '2024-06-06', matcher(s))).toEqual([
      '2024-06-07',
      '2024-06-08',
    ]);
    // Nothing missed; no success at all: only the newest.
    expect(missedAsOfDates(s, new Date('2024-06-10T05:00:00Z'), '2024-06-09', matcher(s))).toEqual([]);
    expect(missedAsOfDates(s, new Date('2024-06-10T05:00:00Z'), undefined, matcher(s))).toEqual([
      '2024-06-09',
    ]);
  });

  it('follows the cron days, the as-of mode and the look-back bound', () => {
    const weekly = settings({ cron: '0 3 * * 1' }); // Mondays: June 3 and June 10, 2024
    expect(missedAsOfDates(weekly, new Date('2024-06-12T12:00:00Z'), '2024-05-20', matcher(weekly))).toEqual([
      '2024-05-26',
      '2024-06-02',
      '2024-06-09',
    ]);
    const today = settings({ asOfMode: 'today', maxCatchUpDays: 2 });
    expect(missedAsOfDates(today, new Date('2024-06-10T05:00:00Z'), '2024-05-01', matcher(today))).toEqual([
      '2024-06-08',
      '2024-06-09',
      '2024-06-10',
    ]);
  });
});

describe('data-quality gates', () => {
  let db: Db;
  const data = fixtureData();
  const config = configSchema.parse({ business_time_zone: 'UTC' });
  const ctx = () => ({
    db,
    config,
    asOf: '2024-06-30',
    configured: ['customers', 'orders', 'surveys', 'email_events'] as const,
  });
  beforeAll(async () => {
    db = await buildFixture({ asOf: '2024-06-30', csv: { ...data } });
  });
  afterAll(() => db.close());

  it('pass on good data', async () => {
    const outcome = await runChecks({ ...ctx(), configured: [...ctx().configured] });
    expect(outcome.results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(outcome.passed).toBeGreaterThan(30);
    expect(() => assertChecks(outcome)).not.toThrow();
  });

  it('name what broke and where: duplicates, nulls, unknown values, orphans, volume, freshness', async () => {
    await db.run(`insert into customer_health select * from customer_health where customer_id = 'C002'`);
    await db.run(`update fct_customer_period set lifecycle = 'zombie' where customer_id = 'C003'`);
    await db.run(
      `update survey_trends set period_start = null where survey_type = 'nps' and segment_by = 'all'`,
    );
    await db.run(`delete from stg_customers where customer_id = 'C004'`);
    const outcome = await runChecks({
      ...ctx(),
      configured: [...ctx().configured],
      asOf: '2024-07-31',
      previous: { runId: 'prev', asOf: '2024-06-29', landedRows: { orders: 5000 } },
    });
    const failed = outcome.results.filter((r) => r.status === 'fail').map((r) => r.message);
    expect(failed).toContainEqual(
      expect.stringMatching(
        /^unique: customer_health has 1 duplicate customer_id value\(s\), e\.g\. C002 \(2x\)/,
      ),
    );
    expect(failed).toContainEqual(
      expect.stringMatching(
        /^accepted_values: fct_customer_period\.lifecycle has \d+ row\(s\) outside .*'zombie'/,
      ),
    );
    expect(failed).toContainEqual(
      expect.stringMatching(/^not_null: survey_trends\.period_start is null in \d+ row\(s\)/),
    );
    expect(failed).toContainEqual(
      expect.stringMatching(
        /^relationships: 1 customer_id value\(s\) of fct_customer_period are not in stg_customers, e\.g\. C004/,
      ),
    );
    expect(failed).toContainEqual(
      expect.stringMatching(
        /^volume: orders has \d+ raw rows, \d+% fewer than the 5000 of the previous successful run prev/,
      ),
    );
    // The customer deleted from staging is a row the reconciliation cannot account for.
    expect(failed).toContainEqual(
      'reconciliation: customers rows do not add up: 40 landed <> 39 staged + 0 quarantined + 0 after the as-of date 2024-07-31 (1 row(s) unaccounted for)',
    );
    // Freshness warns by default: the newest order is from June 28, 33 days before July 31.
    const warned = outcome.results.filter((r) => r.status === 'warn').map((r) => r.message);
    expect(warned).toEqual([
      expect.stringMatching(/^freshness: the newest orders row \(ordered_at\) is from 2024-06-28, 33 days/),
    ]);
    expect(() => assertChecks(outcome)).toThrow(
      /data-quality gate\(s\) failed, nothing was published: .*unique: customer_health/,
    );

    const relaxed = configSchema.parse({
      business_time_zone: 'UTC',
      checks: {
        unique: 'warn',
        not_null: 'off',
        accepted_values: 'warn',
        relationships: 'warn',
        volume: { severity: 'warn' },
        reconciliation: 'warn',
      },
    });
    const soft = await runChecks({
      ...ctx(),
      config: relaxed,
      configured: [...ctx().configured],
      previous: { runId: 'prev', asOf: '2024-06-29', landedRows: { orders: 5000 } },
    });
    expect(soft.failed).toBe(0);
    expect(soft.results.some((r) => r.check === 'not_null')).toBe(false);
    expect(soft.warned).toBeGreaterThanOrEqual(4);
    expect(() => assertChecks(soft)).not.toThrow();
  });
});

describe('webhook notifications', () => {
  let server: Server;
  let base = '';
  const bodies: string[] = [];
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        bodies.push(body);
        if (req.url === '/hang') return; // never answers
        res.statusCode = req.url === '/fail' ? 500 : 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const notice = {
    runId: 'r1',
    asOf: '2024-06-30',
    trigger: 'run' as const,
    status: 'failed' as const,
    output: '/out',
    reason: 'volume: orders has 10 raw rows',
    counts: { orders_rows: 10 },
  };

  it('posts a Slack-style text, and gives up quietly on errors and timeouts', async () => {
    const log = silentLogger();
    expect(await notify({ webhook_url: `${base}/ok`, on_success: false }, notice, log)).toBe(true);
    const sent = JSON.parse(bodies.at(-1) ?? '{}') as { text: string };
    expect(sent.text).toContain('run r1 as of 2024-06-30 FAILED');
    expect(sent.text).toContain('Reason: volume: orders has 10 raw rows');
    expect(sent.text).toContain('orders_rows 10');

    expect(await notify({ webhook_url: `${base}/fail`, on_success: false }, notice, log)).toBe(false);
    const started = Date.now();
    expect(await notify({ webhook_url: `${base}/hang`, on_success: false }, notice, log, 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await notify({ webhook_url: 'http://127.0.0.1:1/none', on_success: false }, notice, log)).toBe(
      false,
    );

    const count = bodies.length;
    await notify({ webhook_url: `${base}/ok`, on_success: false }, { ...notice, status: 'success' }, log);
    expect(bodies.length).toBe(count); // success is only sent with on_success
  });
});
