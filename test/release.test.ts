// A run drops each intermediate table after its last reader (transforms/runner.ts ReleaseOptions): the gates read
// what they need of the raw, checked and staging tables while those exist, and find the same answers as a database
// that keeps every table; the tables the stages after the models read stay.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../config/schema.js';
import type { Db } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { openRunDatabase, RUN_DATABASE_FILE, type RunDatabase } from '../pipelines/run/database.js';
import { qualityReaders } from '../pipelines/run/quality.js';
import { residentTables } from '../pipelines/run/resident.js';
import { type ChecksOutcome, GateReads, runChecks } from '../transforms/checks.js';
import { fixtureConfig } from './support/models.js';

const csv = {
  customers: `customer_id,email,segment,signup_at
A,a@example.com,smb,2024-01-02
B,b@example.com,smb,2024-01-03
C,c@example.com,enterprise,2024-01-04
D,not-an-email,smb,2024-13-01
`,
  orders: `order_id,customer_id,ordered_at,amount,status
a1,A,2024-01-15 10:00:00,100.00,completed
a2,A,2024-02-10 10:00:00,-30.00,refunded
b1,B,2024-02-20 10:00:00,40.00,cancelled
c1,C,2024-03-05 10:00:00,200.00,completed
c2,C,2024-04-02 10:00:00,70.00,completed
x1,C,2024-02-01 10:00:00,abc,completed
`,
  invoices: `invoice_id,customer_id,issued_at,due_at,paid_at,amount
i1,A,2024-02-01,2024-02-15,2024-02-10,100.00
i2,C,2024-03-20,2024-04-19,,80.00
i3,C,2024-03-01,soon,,10.00
`,
  activity: `customer_id,occurred_at,event_type
A,2024-03-30 09:00:00,login
C,2024-03-29 09:00:00,login
`,
};

async function tables(db: Db): Promise<Set<string>> {
  const rows = await db.all<{ table_name: string }>(
    `select table_name from information_schema.tables where table_schema = 'main'`,
  );
  return new Set(rows.map((r) => r.table_name));
}

describe('dropping tables after their last reader', () => {
  let config: Config;
  let kept: RunDatabase;
  let dropped: RunDatabase;
  let reads: GateReads;
  let scratch: string;
  const asOf = '2024-03-31';
  const check = (run: RunDatabase, with_?: GateReads): Promise<ChecksOutcome> =>
    runChecks({ db: run.db, config, asOf, configured: run.configured, landing: run.landing, reads: with_ });

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'churn-release-'));
    scratch = join(dir, 'scratch');
    const sources: Record<string, unknown> = {};
    for (const [entity, text] of Object.entries(csv)) {
      writeFileSync(join(dir, `${entity}.csv`), text);
      sources[entity] = { type: 'local', path: `${entity}.csv` };
    }
    // Quarantined rows above the share and stale inputs: failing gates with messages to compare.
    config = fixtureConfig({ sources, checks: { freshness: { severity: 'warn', audience: 'warn' } } });
    const open = (options: Partial<Parameters<typeof openRunDatabase>[0]> = {}) =>
      openRunDatabase({
        config,
        baseDir: dir,
        asOf,
        landingRoot: join(dir, '.landing'),
        log: silentLogger(),
        ...options,
      });
    kept = await open();
    reads = new GateReads();
    // The run with drops also keeps its tables in a database file (duckdb.storage: file) in its scratch folder.
    mkdirSync(scratch);
    dropped = await open({
      config: { ...config, duckdb: { ...config.duckdb, storage: 'file' } },
      scratchDir: scratch,
      release: {
        keep: residentTables(),
        readers: (landed) => qualityReaders({ ...landed, config, asOf, reads }),
      },
    });
  });
  afterAll(() => {
    kept.db.close();
    dropped.db.close();
  });

  it('drops the raw, checked and staging tables and keeps what the export, manifest and summary read', async () => {
    const before = await tables(kept.db);
    const after = await tables(dropped.db);
    for (const table of ['raw_orders', 'chk_orders', 'stg_orders', 'chk_customers', 'int_health_features']) {
      expect(before.has(table)).toBe(true);
      expect(after.has(table)).toBe(false);
    }
    for (const table of residentTables()) expect(after.has(table), table).toBe(true);
    // The sources of the run that are not raw input stay (the outcomes and the suppression window read them).
    expect(after.has('run_params')).toBe(true);
    expect(existsSync(join(scratch, RUN_DATABASE_FILE))).toBe(true);
  });

  it('gives the gates the answers of a database that keeps every table', async () => {
    const all = await check(kept);
    const early = await check(dropped, reads);
    expect(all.failed + all.warned).toBeGreaterThan(0);
    expect(early).toEqual(all);
  });

  it('builds the same published tables', async () => {
    for (const table of ['fct_customer_period', 'customer_health', 'quarantine', 'churn_summary']) {
      const rows = async (db: Db) => JSON.stringify(await db.all(`select * from ${table} order by all`));
      expect(await rows(dropped.db)).toEqual(await rows(kept.db));
    }
  });

  it('without the early reads, a gate on a dropped table fails loudly rather than passing', async () => {
    await expect(check(dropped)).rejects.toThrow(/raw_customers|does not exist/);
  });
});
