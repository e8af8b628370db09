// One config as a real user would write it: orders from PostgreSQL, activity events from S3, everything else
// from local files, published to S3. A second night with one new export file and ten new warehouse rows
// reads only those (plus the warehouse overlap window).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { runPipeline } from '../pipelines/run/index.js';
import { generateSample } from '../pipelines/sample/generate.js';
import { startPostgres, type TestPostgres } from './support/pg.js';
import { s3rverForTests } from './support/s3rver.js';

/** A pino logger that keeps its JSON lines, so the test can read what each source did. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function keys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) found.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return found.sort();
}

describe('Postgres orders + S3 events + local files, published to S3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-integration-'));
  const s3 = s3rverForTests(['exports', 'lake']);
  let postgres: TestPostgres;
  let asOf: string;
  let ordersInWarehouse = 0;
  let distinctOrderIds = 0;

  beforeAll(async () => {
    const sample = await generateSample({ dir: join(dir, 'data'), customers: 300, seed: 11 });
    asOf = sample.asOf;
    postgres = await startPostgres();

    // The warehouse: the sample's orders, as text as an export table would hold them, with a growing updated_at.
    const db = await Db.open();
    const orders = await db.all<Record<string, string | null>>(
      `select * from read_csv(${sqlString(join(dir, 'data/orders.csv.gz'))}, all_varchar = true)`,
    );
    db.close();
    const conn = new pg.Client({ connectionString: postgres.url });
    await conn.connect();
    await conn.query(`create table orders (order_id text, customer_id text, ordered_at text, amount numeric(18, 2),
      status text, currency text, updated_at timestamptz not null)`);
    for (let i = 0; i < orders.length; i += 500) {
      const chunk = orders.slice(i, i + 500);
      const values = chunk.map(
        (_, j) => `($${j * 6 + 1}, $${j * 6 + 2}, $${j * 6 + 3}, $${j * 6 + 4}, $${j * 6 + 5}, $${j * 6 + 6},
          timestamptz '2026-06-30 00:00:00+00' + ${i + j} * interval '1 second')`,
      );
      await conn.query(
        `insert into orders values ${values.join(', ')}`,
        chunk.flatMap((o) => [o.order_id, o.customer_id, o.ordered_at, o.amount, o.status, o.currency]),
      );
    }
    ordersInWarehouse = orders.length;
    distinctOrderIds = new Set(orders.map((o) => o.order_id)).size;
    await conn.end();

    // S3: the activity export as the first file of a folder of nightly exports.
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'exports',
        Key: 'events/2026-06-30/activity.parquet',
        Body: await readFile(join(dir, 'data/activity.parquet')),
      }),
    );

    writeFileSync(
      join(dir, 'churn.yaml'),
      `business_time_zone: Europe/Berlin
sources:
  orders:
    type: warehouse
    dialect: postgres
    connection: \${ORDERS_PG_URL}
    table: orders
    cursor_column: updated_at
    overlap: 1 minute
  activity:
    type: s3
    bucket: exports
    prefix: events/
    glob: "**/*.parquet"
    format: parquet
    endpoint: ${s3.server.endpoint}
    force_path_style: true
  customers: { type: local, path: data/customers.csv }
  subscriptions: { type: local, path: data/subscriptions.csv }
  email_events: { type: local, path: data/email_events.ndjson, format: ndjson }
  surveys: { type: local, path: data/surveys.csv }
  tickets: { type: local, path: data/tickets.csv }
  invoices: { type: local, path: data/invoices.csv }
checks:
  freshness: { severity: 'off' }
output:
  type: s3
  bucket: lake
  prefix: churn
  endpoint: ${s3.server.endpoint}
  force_path_style: true
  local_path: out
`,
    );
  });

  afterAll(async () => {
    await postgres?.stop();
  });

  it('runs the first night and publishes the whole layout to S3, _SUCCESS last', async () => {
    const loaded = loadConfig(join(dir, 'churn.yaml'), { ...process.env, ORDERS_PG_URL: postgres.url });
    const { log, lines } = capturingLogger();
    const result = await runPipeline(loaded, { asOf, log });
    expect(result.summary.customers).toBe(300);
    const published = await keys(s3.client, 'lake', 'churn/');
    for (const table of [
      'fct_customer_period',
      'churn_summary',
      'customer_health',
      'reactivation_audience',
    ]) {
      expect(published).toContain(`churn/current/${table}/part-0.parquet`);
      expect(published).toContain(`churn/${table}/as_of=${asOf}/part-0.parquet`);
    }
    expect(published).toContain('churn/current/_SUCCESS');
    expect(published).toContain(`churn/runs/as_of=${asOf}/_SUCCESS`);
    const warehouse = lines.find((l) => l.msg === 'warehouse extraction done');
    expect(warehouse).toMatchObject({ mode: 'full', rowsExtracted: ordersInWarehouse });
    expect(JSON.stringify(lines)).not.toContain(postgres.url);
  });

  it('reads only the new export file and the new warehouse rows on the second night', async () => {
    // Ten new orders committed in the warehouse, and one new export file in the bucket.
    const conn = new pg.Client({ connectionString: postgres.url });
    await conn.connect();
    for (let i = 0; i < 10; i += 1) {
      await conn.query(
        `insert into orders values ($1, 'C000001', '2026-07-01 10:00:00', 42.00, 'completed', 'EUR', now())`,
        [`night2-${i}`],
      );
    }
    await conn.end();
    const db = await Db.open();
    const extra = join(dir, 'activity-night2.parquet');
    await db.run(
      `copy (select 'C000001' as customer_id, timestamp '2026-07-01 09:00:00' as occurred_at, 'login' as event_type, 1 as quantity)
       to ${sqlString(extra)} (format parquet)`,
    );
    db.close();
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'exports',
        Key: 'events/2026-07-01/activity.parquet',
        Body: await readFile(extra),
      }),
    );

    const loaded = loadConfig(join(dir, 'churn.yaml'), { ...process.env, ORDERS_PG_URL: postgres.url });
    const { log, lines } = capturingLogger();
    await runPipeline(loaded, { asOf: '2026-07-01', log });
    const warehouse = lines.find((l) => l.msg === 'warehouse extraction done') as
      | Record<string, number>
      | undefined;
    // The ten new rows, plus the rows inside the one-minute overlap before the previous maximum (60 at one per second).
    // Incremental landing keeps one row per order_id (the sample plants one duplicate key).
    expect(warehouse).toMatchObject({ mode: 'incremental', rowsLanded: distinctOrderIds + 10 });
    expect(warehouse!.rowsExtracted).toBeGreaterThanOrEqual(10);
    expect(warehouse!.rowsExtracted).toBeLessThanOrEqual(10 + 61);
    const s3Landing = lines.find((l) => l.entity === 'activity' && 'downloaded' in l);
    expect(s3Landing).toMatchObject({ downloaded: 1, reused: 1 });
    const published = await keys(s3.client, 'lake', 'churn/runs/');
    expect(published).toEqual(
      expect.arrayContaining([`churn/runs/as_of=${asOf}/_SUCCESS`, 'churn/runs/as_of=2026-07-01/_SUCCESS']),
    );
  });
});
