// WarehouseSource against real servers: the machine's PostgreSQL (or the embedded PGlite server when none is
// reachable), the embedded PGlite server in any case, and MariaDB/MySQL when reachable. No client is mocked.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Entity, sourceSchema, type WarehouseSourceConfig } from '../config/schema.js';
import { Db, type Row, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import type { Landed, SourceContext } from '../pipelines/sources/source.js';
import {
  cursorLowerBound,
  isoTimestamp,
  parseInterval,
  readAhead,
  WarehouseSource,
  type WarehouseSourceOptions,
} from '../pipelines/sources/warehouse/index.js';
import { buildModels } from './support/models.js';
import { startMysql } from './support/mysql.js';
import { startPostgres, type TestPostgres } from './support/pg.js';

const log = silentLogger();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function landingDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'churn-wh-'));
  dirs.push(dir);
  return dir;
}

function ctx(entity: Entity, dir: string): SourceContext {
  return { entity, landingDir: dir, baseDir: dir, log };
}

function warehouse(fields: Record<string, unknown>): WarehouseSourceConfig {
  const parsed = sourceSchema.parse({ type: 'warehouse', ...fields });
  if (parsed.type !== 'warehouse') throw new Error('not a warehouse source');
  return parsed;
}

/** Lands once with a fresh source (closed afterwards). */
async function landOnce(
  config: WarehouseSourceConfig,
  dir: string,
  entity: Entity = 'orders',
  options: WarehouseSourceOptions = {},
): Promise<{ landed: Landed; source: WarehouseSource }> {
  const source = new WarehouseSource(config, options);
  try {
    return { landed: await source.land(ctx(entity, dir)), source };
  } finally {
    await source.close();
  }
}

async function readLanded(
  landed: Landed,
  orderBy?: string,
): Promise<{ rows: Row[]; types: Record<string, string> }> {
  const db = await Db.open();
  try {
    const files = `[${landed.files.map((f) => sqlString(f.path)).join(', ')}]`;
    const from = `read_parquet(${files}, union_by_name = true)`;
    const rows = await db.all(`select * from ${from}${orderBy ? ` order by ${orderBy}` : ''}`);
    const described = await db.all<{ column_name: string; column_type: string }>(
      `describe select * from ${from}`,
    );
    return { rows, types: Object.fromEntries(described.map((d) => [d.column_name, d.column_type])) };
  } finally {
    db.close();
  }
}

/**
 * Lands table typed_values once into a fresh directory and reads it back ordered by id: the files name `origin`,
 * and every column lands as text.
 */
async function landTypedValues(
  config: WarehouseSourceConfig,
  origin: string,
): Promise<{ landed: Landed; rows: Row[]; types: Record<string, string> }> {
  const { landed } = await landOnce(config, await landingDir());
  expect(landed.files.map((f) => f.origin)).toEqual([origin]);
  const { rows, types } = await readLanded(landed, 'id::hugeint');
  expect(Object.values(types).every((t) => t === 'VARCHAR')).toBe(true);
  return { landed, rows, types };
}

/** The row of typed_values with this id and nothing but NULL in `columns`. */
function nullRow(id: string, columns: string[]): Row {
  return { id, ...Object.fromEntries(columns.map((column) => [column, null])) };
}

async function pgExec(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared Postgres cases (run against the machine's server and against the embedded one).

async function pgExactValues(env: TestPostgres): Promise<void> {
  await pgExec(
    env.url,
    `create table typed_values (
       id int8, amount numeric(18,2), ts timestamptz, naive timestamp, day date, note text, flag boolean,
       ratio float8, small int4)`,
  );
  await pgExec(
    env.url,
    `insert into typed_values values
       (9007199254740993, 12345678901234.56, '2024-03-31 01:30:00.123456+02', '2024-01-02 03:04:05.5', '2024-02-29',
        'Grüße, "quoted"' || chr(10) || 'line', true, 0.1, 7),
       (2, -0.01, '1999-12-31 23:59:59+00', '2024-01-02 03:04:05', '1970-01-01', '', false, -1.5e-7, -3),
       (3, null, null, null, null, null, null, null, null)`,
  );
  const { landed, rows, types } = await landTypedValues(
    warehouse({ dialect: 'postgres', connection: env.url, schema: env.schema, table: 'typed_values' }),
    `postgres table ${env.schema}.typed_values`,
  );
  expect(landed.format).toBe('parquet');
  const columns = ['amount', 'ts', 'naive', 'day', 'note', 'flag', 'ratio', 'small'];
  expect(Object.keys(types)).toEqual(['id', ...columns]);
  expect(rows).toEqual([
    {
      id: '2',
      amount: '-0.01',
      ts: '1999-12-31T23:59:59Z',
      naive: '2024-01-02T03:04:05',
      day: '1970-01-01',
      note: '',
      flag: 'false',
      ratio: '-1.5e-07',
      small: '-3',
    },
    nullRow('3', columns),
    {
      id: '9007199254740993',
      amount: '12345678901234.56',
      ts: '2024-03-30T23:30:00.123456Z',
      naive: '2024-01-02T03:04:05.5',
      day: '2024-02-29',
      note: 'Grüße, "quoted"\nline',
      flag: 'true',
      ratio: '0.1',
      small: '7',
    },
  ]);
}

async function pgChunks(env: TestPostgres): Promise<void> {
  await pgExec(
    env.url,
    `create table big as
       select g::int8 as order_id, (g % 97)::int8 as customer_id, (g * 1.01)::numeric(18,2) as amount,
              timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' as ordered_at
       from generate_series(1, 1050) g`,
  );
  const dir = await landingDir();
  const config = warehouse({ dialect: 'postgres', connection: env.url, table: 'big', batch_size: 100 });
  const first = await landOnce(config, dir, 'orders', { rowsPerFile: 300 });
  expect(first.landed.files).toHaveLength(4);
  expect(first.source.lastLand).toMatchObject({ mode: 'full', rowsExtracted: 1050, filesWritten: 4 });
  const { rows } = await readLanded(first.landed, 'order_id::int');
  expect(rows).toHaveLength(1050);
  expect(new Set(rows.map((r) => r.order_id)).size).toBe(1050);
  expect(rows[1049]).toEqual({
    order_id: '1050',
    customer_id: String(1050 % 97),
    amount: '1060.50',
    ordered_at: '2024-01-01T17:30:00Z',
  });
  // Without a cursor every run is a full extract that replaces the landed files.
  const second = await landOnce(config, dir, 'orders', { rowsPerFile: 300 });
  expect(second.landed.files).toHaveLength(4);
  expect(second.landed.files.map((f) => f.path)).not.toEqual(first.landed.files.map((f) => f.path));
  const parquet = (await readdir(dir)).filter((n) => n.endsWith('.parquet'));
  expect(parquet.sort()).toEqual(second.landed.files.map((f) => f.path.slice(dir.length + 1)).sort());
  expect((await readLanded(second.landed)).rows).toHaveLength(1050);
}

// ---------------------------------------------------------------------------------------------------------------
// `where:` pushed into the warehouse query, and quarantined rows named by their key (both dialects).

type Exec = (text: string) => Promise<unknown>;

/** w_orders: ids 1..10, amount = id * 1.5, status 'test' for ids 3, 6 and 9, updated 1 minute apart. */
async function createWhereTable(exec: Exec, ts: (minute: number) => string): Promise<void> {
  await exec(
    `create table w_orders (order_id bigint primary key, customer_id varchar(20), amount decimal(10,2),
       status varchar(20), updated_at timestamp not null)`,
  );
  const rows = Array.from(
    { length: 10 },
    (_, i) =>
      `(${i + 1}, 'C${i % 3}', ${((i + 1) * 1.5).toFixed(2)}, '${(i + 1) % 3 === 0 ? 'test' : 'completed'}', ${ts(i)})`,
  );
  await exec(`insert into w_orders values ${rows.join(', ')}`);
}

async function wherePushdown(
  dialect: 'postgres' | 'mysql',
  url: string,
  exec: Exec,
  count: (table: string) => Promise<number>,
  ts: (minute: number) => string,
): Promise<void> {
  await createWhereTable(exec, ts);
  const base = { dialect, connection: url, table: 'w_orders' };
  // Only the matching rows leave the warehouse.
  const { landed, source } = await landOnce(
    warehouse({ ...base, where: "status <> 'test' and amount > 3 and lower(customer_id) like 'c%'" }),
    await landingDir(),
  );
  expect(landed.whereApplied).toBe(true);
  expect(source.lastLand).toMatchObject({ mode: 'full', rowsExtracted: 5 });
  const { rows } = await readLanded(landed, 'order_id::int');
  expect(rows.map((r) => r.order_id)).toEqual(['4', '5', '7', '8', '10']);

  // A second statement is never sent: the text is parsed by DuckDB and rebuilt by kysely.
  const fail = async (where: string): Promise<string> => {
    const error = await landOnce(warehouse({ ...base, where }), await landingDir()).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error?.message).not.toContain('\n');
    return error?.message ?? '';
  };
  expect(await fail('true); drop table w_orders; select (1')).toMatch(
    /sources\.orders\.where is not a valid SQL expression/,
  );
  expect(await fail('true; drop table w_orders')).toMatch(
    /sources\.orders\.where must be one SQL expression/,
  );
  expect(await count('w_orders')).toBe(10);
  // String constants are bound parameters, not SQL.
  const quoted = await landOnce(
    warehouse({ ...base, where: "status = 'x''; drop table w_orders; --'" }),
    await landingDir(),
  );
  expect(quoted.source.lastLand?.rowsExtracted).toBe(0);
  expect(await count('w_orders')).toBe(10);
  // What cannot be translated, and a wrong column, say so.
  expect(await fail("regexp_matches(status, 'x')")).toMatch(
    /sources\.orders\.where "regexp_matches\(status, 'x'\)": function regexp_matches\(\) cannot be sent to the warehouse \(supported: /,
  );
  expect(await fail("statsu = 'x'")).toMatch(
    /column "statsu" is not in the source; its columns are "order_id", /,
  );
  expect(await fail('amount + 1')).toMatch(/is not a true\/false condition/);

  // Incremental: a re-read row that no longer matches (a soft delete) leaves the landing; a new one arrives.
  const dir = await landingDir();
  const config = warehouse({ ...base, where: "status <> 'test'", cursor_column: 'updated_at' });
  const first = await landOnce(config, dir);
  expect(first.source.lastLand).toMatchObject({ rowsExtracted: 7, rowsLanded: 7 });
  await exec(`update w_orders set status = 'test', updated_at = ${ts(30)} where order_id = 4`);
  await exec(`insert into w_orders values (11, 'C1', 16.50, 'completed', ${ts(31)})`);
  const second = await landOnce(config, dir);
  expect(second.source.lastLand).toMatchObject({ mode: 'incremental', rowsDropped: 1, rowsLanded: 7 });
  const after = await readLanded(second.landed, 'order_id::int');
  expect(after.rows.map((r) => r.order_id)).toEqual(['1', '2', '5', '7', '8', '10', '11']);
  // A changed where is a changed extraction: everything is read again.
  const third = await landOnce(
    warehouse({ ...base, where: "status = 'test'", cursor_column: 'updated_at' }),
    dir,
  );
  expect(third.source.lastLand).toMatchObject({ mode: 'full', rowsExtracted: 4 });
}

/** Quarantined warehouse rows name the entity key (the same in full and incremental runs), not a file row. */
async function quarantineKeys(dialect: 'postgres' | 'mysql', url: string, exec: Exec): Promise<void> {
  await exec(
    `create table k_orders (order_id varchar(20) primary key, customer_id varchar(20), ordered_at varchar(30),
       amount varchar(20), updated_at bigint)`,
  );
  await exec(
    `insert into k_orders values ('O1', 'C1', '2024-01-05 10:00:00', '10.00', 1), ('O''2', 'C1', 'yesterday', '5', 2),
       ('O3', 'C2', '2024-01-06 10:00:00', 'ten', 3)`,
  );
  const dir = await landingDir();
  const config = configSchema.parse({
    sources: {
      orders: { type: 'warehouse', dialect, connection: url, table: 'k_orders', cursor_column: 'updated_at' },
    },
  });
  const quarantine = async (): Promise<Row[]> => {
    const db = await buildModels(config, dir, '2024-01-31', { only: ['quarantine'] });
    try {
      return await db.all(
        'select source_file, source_row, column_name, value from quarantine order by value',
      );
    } finally {
      db.close();
    }
  };
  const expected = [
    {
      source_file: `${dialect} table k_orders where order_id = 'O3'`,
      source_row: '1', // the first (only) row with that key
      column_name: 'amount',
      value: 'ten',
    },
    {
      source_file: `${dialect} table k_orders where order_id = 'O''2'`,
      source_row: '1',
      column_name: 'ordered_at',
      value: 'yesterday',
    },
  ];
  expect(await quarantine()).toEqual(expected);
  // The next night extracts incrementally (one new row): the quarantine still names the same rows.
  await exec(`insert into k_orders values ('O4', 'C1', '2024-01-07 10:00:00', '1', 4)`);
  expect(await quarantine()).toEqual(expected);
}

// ---------------------------------------------------------------------------------------------------------------

describe('warehouse helpers', () => {
  it('converts server timestamps to ISO-8601, UTC when an offset is given', () => {
    expect(isoTimestamp('2024-03-31 01:30:00.123456+02')).toBe('2024-03-30T23:30:00.123456Z');
    expect(isoTimestamp('2024-03-31 01:30:00+05:30')).toBe('2024-03-30T20:00:00Z');
    expect(isoTimestamp('2024-01-01 00:00:00-01')).toBe('2024-01-01T01:00:00Z');
    expect(isoTimestamp('2024-03-31 01:30:00+00')).toBe('2024-03-31T01:30:00Z');
    expect(isoTimestamp('2024-03-31 01:30:00')).toBe('2024-03-31T01:30:00');
    expect(isoTimestamp('infinity')).toBe('infinity');
  });

  it('computes the incremental lower bound in JS', () => {
    expect(parseInterval('2 hours')).toBe(7_200_000);
    expect(parseInterval('1 day 30 minutes')).toBe(88_200_000);
    expect(parseInterval('soon')).toBeUndefined();
    expect(cursorLowerBound('2024-01-02T01:00:00.123456Z', 'timestamp', '2 hours')).toBe(
      '2024-01-01T23:00:00.123Z',
    );
    expect(cursorLowerBound('2024-01-02T01:00:00', 'timestamp', '90 minutes')).toBe(
      '2024-01-01T23:30:00.000',
    );
    expect(cursorLowerBound('2024-01-02', 'timestamp', '1 day')).toBe('2024-01-01');
    expect(cursorLowerBound('9007199254740993', 'integer', 1000)).toBe('9007199254739993');
    expect(cursorLowerBound('10.5', 'decimal', 0.75)).toBe('9.75');
    expect(cursorLowerBound('2024-01-02T01:00:00Z', 'timestamp', undefined)).toBe('2024-01-02T01:00:00Z');
    expect(() => cursorLowerBound('42', 'integer', '2 hours')).toThrow(/not a number/);
    expect(() => cursorLowerBound('2024-01-02T01:00:00Z', 'timestamp', 5)).toThrow(/not an interval/);
  });
});

describe('readAhead', () => {
  let closed = false;
  async function* rows(n: number, failAt = -1): AsyncGenerator<number> {
    closed = false;
    try {
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw new Error('boom');
        yield i;
        if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    } finally {
      closed = true;
    }
  }

  it('yields every row once, in order, in batches', async () => {
    const batches: number[][] = [];
    for await (const batch of readAhead(rows(95), 20)) batches.push(batch);
    expect(batches.flat()).toEqual(Array.from({ length: 95 }, (_, i) => i));
    expect(batches.length).toBeLessThan(95);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(20);
    expect(closed).toBe(true);
  });

  it('propagates a source error and closes the source when the consumer stops early', async () => {
    const consume = async (): Promise<void> => {
      for await (const _ of readAhead(rows(100, 42), 20)) {
        // drain
      }
    };
    await expect(consume()).rejects.toThrow('boom');
    for await (const _ of readAhead(rows(1000), 20)) break;
    expect(closed).toBe(true);
  });
});

describe('WarehouseSource on PostgreSQL', { timeout: 60_000 }, () => {
  let env: TestPostgres;
  beforeAll(async () => {
    env = await startPostgres();
    if (env.embedded) console.warn(`PostgreSQL tests run on the embedded PGlite server: ${env.reason}`);
  }, 120_000);
  afterAll(async () => {
    await env?.stop();
  });
  /** A source on this server (`fields` may name another connection). */
  const postgres = (fields: Record<string, unknown>) =>
    warehouse({ dialect: 'postgres', connection: env.url, ...fields });

  it('lands int8, numeric, timestamptz, text, boolean and nulls as exact VARCHAR text', async () => {
    await pgExactValues(env);
  });

  it('streams in batch_size chunks into several numbered Parquet files; full extracts replace them', async () => {
    await pgChunks(env);
  });

  it('pushes where: into the query through kysely; incremental runs drop rows that stop matching', async () => {
    await wherePushdown(
      'postgres',
      env.url,
      (text) => pgExec(env.url, text),
      async (table) => Number((await pgExec(env.url, `select count(*) as n from ${table}`)).rows[0]?.n),
      (minute) => `timestamp '2024-01-01 00:00:00' + interval '${minute} minutes'`,
    );
  });

  it('names quarantined rows by their key', async () => {
    await quarantineKeys('postgres', env.url, (text) => pgExec(env.url, text));
  });

  it('runs a query: as one statement, never a second one after it', async () => {
    const error = await landOnce(
      postgres({
        query: 'select 1 as order_id) as src; create table smuggled (a int); select * from (select 1',
      }),
      await landingDir(),
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/^orders source \(postgres query at .*\): cannot read: /);
    const exists = await pgExec(env.url, "select to_regclass('smuggled') is not null as found");
    expect(exists.rows[0]?.found).toBe(false);
  });

  it('lands a query (wrapped as a subquery, trailing semicolon allowed)', async () => {
    await pgExec(
      env.url,
      `create table q_orders as select g::int8 as order_id, (g * 2.5)::numeric(10,2) as amount
       from generate_series(1, 40) g`,
    );
    const dir = await landingDir();
    const { landed } = await landOnce(
      postgres({
        query: 'select order_id, amount, amount > 50 as big from q_orders where order_id % 2 = 0;',
        batch_size: 100,
      }),
      dir,
    );
    expect(landed.files.map((f) => f.origin)).toEqual(['postgres query']);
    const { rows } = await readLanded(landed, 'order_id::int');
    expect(rows).toHaveLength(20);
    expect(rows[0]).toEqual({ order_id: '2', amount: '5.00', big: 'false' });
    expect(rows[19]).toEqual({ order_id: '40', amount: '100.00', big: 'true' });
  });

  it('extracts incrementally: only rows >= cursor - overlap are read, compacted with the latest values', async () => {
    await pgExec(
      env.url,
      `create table inc_orders (order_id int8 primary key, customer_id int8, amount numeric(18,2),
         status text, updated_at timestamptz not null)`,
    );
    // 100 rows, one every 5 minutes from 2024-01-01 00:00 UTC: the last at 08:15.
    await pgExec(
      env.url,
      `insert into inc_orders select g, g % 10, g * 10.01, 'completed',
         timestamptz '2024-01-01 00:00:00+00' + (g - 1) * interval '5 minutes' from generate_series(1, 100) g`,
    );
    const dir = await landingDir();
    const config = postgres({
      table: 'inc_orders',
      cursor_column: 'updated_at',
      overlap: '2 hours',
      batch_size: 100,
    });
    const first = await landOnce(config, dir, 'orders', { rowsPerFile: 30 });
    expect(first.source.lastLand).toMatchObject({
      mode: 'full',
      rowsExtracted: 100,
      filesWritten: 4,
      rowsLanded: 100,
      cursorMax: '2024-01-01T08:15:00Z',
    });
    expect(first.landed.files).toHaveLength(1);
    const state = JSON.parse(await readFile(join(dir, '_warehouse_state.json'), 'utf8')) as {
      cursor: { max: string };
    };
    expect(state.cursor.max).toBe('2024-01-01T08:15:00Z');

    // 10 new rows, an update of an old row, and a row committed late: its updated_at is before the last max.
    await pgExec(
      env.url,
      `insert into inc_orders select g, g % 10, g * 10.01, 'completed',
         timestamptz '2024-01-01 09:00:00+00' + (g - 101) * interval '1 minute' from generate_series(101, 110) g`,
    );
    await pgExec(
      env.url,
      `update inc_orders set amount = 999.99, status = 'refunded', updated_at = '2024-01-01 10:00:00+00'
       where order_id = 1`,
    );
    await pgExec(
      env.url,
      `insert into inc_orders values (111, 1, 5.55, 'completed', '2024-01-01 07:45:00.5+00')`,
    );
    // Leftovers of a killed run (not listed in the state) are removed.
    await writeFile(join(dir, 'run-000099-part-000001.parquet.tmp'), 'partial');
    const second = await landOnce(config, dir, 'orders', { rowsPerFile: 30 });
    // Rows >= 06:15: 25 old ones (06:15 .. 08:15), 10 new, the updated one and the late one.
    expect(second.source.lastLand).toMatchObject({
      mode: 'incremental',
      lowerBound: '2024-01-01T06:15:00.000Z',
      rowsExtracted: 37,
      rowsLanded: 111,
      cursorMax: '2024-01-01T10:00:00Z',
    });
    expect(second.landed.files).toHaveLength(1);
    const { rows } = await readLanded(second.landed, 'order_id::int');
    expect(rows).toHaveLength(111);
    expect(new Set(rows.map((r) => r.order_id)).size).toBe(111);
    expect(rows[0]).toMatchObject({ order_id: '1', amount: '999.99', status: 'refunded' });
    expect(rows[110]).toMatchObject({
      order_id: '111',
      amount: '5.55',
      updated_at: '2024-01-01T07:45:00.5Z',
    });
    expect(rows[105]).toMatchObject({ order_id: '106', updated_at: '2024-01-01T09:05:00Z' });
    // Only the compacted file is left in the landing folder.
    expect((await readdir(dir)).filter((n) => n.startsWith('run-'))).toEqual([
      second.landed.files[0]?.path.slice(dir.length + 1),
    ]);

    // A run with nothing new re-reads the overlap only (>= 08:00: 4 old rows, 10 new, the updated one).
    const third = await landOnce(config, dir, 'orders');
    expect(third.source.lastLand).toMatchObject({ mode: 'incremental', rowsExtracted: 15, rowsLanded: 111 });
  });

  it('extracts a query incrementally by an integer id cursor with a numeric overlap', async () => {
    await pgExec(
      env.url,
      `create table events as select g::int8 as event_id, (g % 5)::int8 as customer_id, 'visit' as event_type,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' as occurred_at from generate_series(1, 50) g`,
    );
    const dir = await landingDir();
    const config = postgres({
      query: 'select event_id, customer_id, event_type, occurred_at from events',
      cursor_column: 'event_id',
      overlap: 5,
    });
    const first = await landOnce(config, dir, 'activity');
    expect(first.source.lastLand).toMatchObject({ rowsExtracted: 50, rowsLanded: 50, cursorMax: '50' });
    await pgExec(
      env.url,
      `insert into events select g, 1, 'visit', timestamptz '2024-03-01 00:00:00+00' from generate_series(51, 60) g`,
    );
    const second = await landOnce(config, dir, 'activity');
    // activity has no id column: deduplicated on all columns, so the 6 re-read rows are not doubled.
    expect(second.source.lastLand).toMatchObject({
      mode: 'incremental',
      lowerBound: '45',
      rowsExtracted: 16,
      rowsLanded: 60,
      cursorMax: '60',
    });
    expect(second.landed.files.map((f) => f.origin)).toEqual(['postgres query']);
  });

  it('quotes odd identifiers through kysely: table "Orders-2024", columns "order id" and "Updated At"', async () => {
    await pgExec(
      env.url,
      `create table "Orders-2024" ("order id" int8, "Customer" int8, "Amount €" numeric(12,2), "Updated At" timestamptz);
       insert into "Orders-2024" select g, g % 3, g + 0.25, timestamptz '2024-05-01 00:00:00+00' + g * interval '1 day'
       from generate_series(1, 12) g;
       create table "odd.name" ("x y" text); insert into "odd.name" values ('it''s');`,
    );
    const dir = await landingDir();
    const config = postgres({
      schema: env.schema,
      table: 'Orders-2024',
      cursor_column: 'Updated At',
      key: ['order id'],
      overlap: '1 day',
      columns: {
        order_id: 'order id',
        customer_id: 'Customer',
        amount: 'Amount €',
        ordered_at: 'Updated At',
      },
    });
    const source = new WarehouseSource(config);
    try {
      await source.check(ctx('orders', dir));
    } finally {
      await source.close();
    }
    await landOnce(config, dir);
    await pgExec(
      env.url,
      `update "Orders-2024" set "Amount €" = 0.01, "Updated At" = now() where "order id" = 3`,
    );
    const second = await landOnce(config, dir);
    expect(second.source.lastLand).toMatchObject({ mode: 'incremental', rowsExtracted: 3, rowsLanded: 12 });
    const { rows } = await readLanded(second.landed, '"order id"::int');
    expect(Object.keys(rows[0] ?? {})).toEqual(['order id', 'Customer', 'Amount €', 'Updated At']);
    expect(rows[2]).toMatchObject({ 'order id': '3', 'Amount €': '0.01' });
    expect(rows).toHaveLength(12);

    const dotted = await landOnce(
      postgres({ schema: env.schema, table: 'odd.name' }),
      await landingDir(),
      'customers',
    );
    expect((await readLanded(dotted.landed)).rows).toEqual([{ 'x y': "it's" }]);
  });

  it('check() names the entity, the table and the problem', async () => {
    await pgExec(
      env.url,
      'create table chk_orders (order_id int8, customer_id int8, ordered_at timestamptz, amount numeric)',
    );
    const dir = await landingDir();
    const check = async (fields: Record<string, unknown>, entity: Entity = 'orders'): Promise<void> => {
      const source = new WarehouseSource(postgres(fields));
      try {
        await source.check(ctx(entity, dir));
      } finally {
        await source.close();
      }
    };
    await expect(check({ table: 'chk_orders', cursor_column: 'ordered_at' })).resolves.toBeUndefined();
    await expect(check({ table: 'no_such_table' })).rejects.toThrow(
      /^orders source \(postgres table no_such_table at postgres:\/\/.*\): cannot read: unknown table: table no_such_table does not exist/,
    );
    await expect(check({ table: 'chk_orders', columns: { amount: 'total_amount' } })).rejects.toThrow(
      /orders source \(postgres table chk_orders .*missing column "total_amount" \(mapped to amount\)/,
    );
    await expect(check({ table: 'chk_orders', cursor_column: 'updated_at' })).rejects.toThrow(
      /missing column "updated_at" \(cursor_column\)/,
    );
    await expect(check({ table: 'chk_orders' }, 'tickets')).rejects.toThrow(
      /tickets source .*missing column "ticket_id" \(required ticket_id\).*missing column "opened_at"/,
    );
    await expect(check({ query: 'select order_id from chk_orders' })).rejects.toThrow(
      /orders source \(postgres query .*missing column "customer_id"/,
    );
    const refused = new URL(env.url);
    refused.port = '1';
    await expect(check({ table: 'chk_orders', connection: refused.toString() })).rejects.toThrow(
      /orders source \(postgres table chk_orders .*cannot connect: connection refused/,
    );
  });

  it('check() reports bad credentials and an unknown database without leaking the password', async (t) => {
    if (env.embedded) t.skip('the embedded server accepts any user and database');
    const dir = await landingDir();
    const badUser = new URL(env.url);
    badUser.username = 'churn_no_such_user';
    badUser.password = 'S3cret-pw';
    const source = new WarehouseSource(postgres({ connection: badUser.toString(), table: 'chk_orders' }));
    const error = await source.check(ctx('orders', dir)).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    await source.close();
    expect(error?.name).toBe('SourceError');
    expect(error?.message).toMatch(
      /^orders source \(postgres table chk_orders at postgres:\/\/churn_no_such_user@/,
    );
    expect(error?.message).toMatch(/bad credentials/);
    expect(error?.message).not.toContain('S3cret-pw');
    const badDb = new URL(env.url);
    badDb.pathname = '/churn_no_such_db';
    const other = new WarehouseSource(postgres({ connection: badDb.toString(), table: 'x' }));
    await expect(other.check(ctx('orders', dir))).rejects.toThrow(/unknown database.*churn_no_such_db/);
    await other.close();
  });
});

describe('WarehouseSource on the embedded PostgreSQL (PGlite over the wire protocol)', {
  timeout: 60_000,
}, () => {
  let env: TestPostgres;
  beforeAll(async () => {
    env = await startPostgres({ forceEmbedded: true });
  }, 120_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('is the embedded server', () => {
    expect(env.embedded).toBe(true);
  });

  it('lands exact values', async () => {
    await pgExactValues(env);
  });

  it('streams several chunk files', async () => {
    await pgChunks(env);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const mysql = await startMysql();
if (!mysql.available) console.warn(`MySQL tests skipped: ${mysql.reason}`);

describe.skipIf(!mysql.available)(
  `WarehouseSource on MySQL/MariaDB${mysql.available ? '' : ` (skipped: ${mysql.reason})`}`,
  { timeout: 60_000 },
  () => {
    let conn: Connection;
    beforeAll(async () => {
      if (!mysql.available) return;
      conn = await mysql.connect();
    });
    afterAll(async () => {
      await conn?.end();
      if (mysql.available) await mysql.stop();
    });
    const url = mysql.available ? mysql.url : '';

    it('lands BIGINT, DECIMAL, TIMESTAMP, DATETIME, TEXT, BOOLEAN and NULL as exact text, in chunks', async () => {
      await conn.query(
        `create table typed_values (id bigint, amount decimal(18,2), ts timestamp(6) null, naive datetime, day date,
           note text, flag boolean, ratio double, raw varbinary(4))`,
      );
      await conn.query(
        `insert into typed_values values
           (9007199254740993, 12345678901234.56, '2024-03-30 23:30:00.123456', '2024-01-02 03:04:05', '2024-02-29',
            'Grüße, "quoted"\nline', true, 0.1, x'00ff'),
           (3, null, null, null, null, null, null, null, null)`,
      );
      const { rows } = await landTypedValues(
        warehouse({ dialect: 'mysql', connection: url, table: 'typed_values' }),
        'mysql table typed_values',
      );
      expect(rows).toEqual([
        nullRow('3', ['amount', 'ts', 'naive', 'day', 'note', 'flag', 'ratio', 'raw']),
        {
          id: '9007199254740993',
          amount: '12345678901234.56',
          ts: '2024-03-30T23:30:00.123456Z',
          naive: '2024-01-02T03:04:05',
          day: '2024-02-29',
          note: 'Grüße, "quoted"\nline',
          flag: 'true',
          ratio: '0.1',
          raw: '\\x00ff',
        },
      ]);

      await conn.query(
        `create table big (order_id bigint primary key, customer_id bigint, amount decimal(18,2))`,
      );
      const bigRows = Array.from({ length: 1050 }, (_, i) => [
        i + 1,
        (i + 1) % 97,
        ((i + 1) * 1.01).toFixed(2),
      ]);
      await conn.query('insert into big values ?', [bigRows]);
      const chunked = await landOnce(
        warehouse({ dialect: 'mysql', connection: url, table: 'big', batch_size: 100 }),
        await landingDir(),
        'orders',
        { rowsPerFile: 300 },
      );
      expect(chunked.landed.files).toHaveLength(4);
      const big = await readLanded(chunked.landed, 'order_id::int');
      expect(big.rows).toHaveLength(1050);
      expect(big.rows[1049]).toEqual({ order_id: '1050', customer_id: String(1050 % 97), amount: '1060.50' });

      const queried = await landOnce(
        warehouse({
          dialect: 'mysql',
          connection: url,
          query: 'select order_id, amount from big where order_id <= 10',
        }),
        await landingDir(),
      );
      expect(queried.landed.files.map((f) => f.origin)).toEqual(['mysql query']);
      expect((await readLanded(queried.landed)).rows).toHaveLength(10);
    });

    it('extracts incrementally by a TIMESTAMP cursor with overlap', async () => {
      await conn.query(
        `create table \`inc-orders\` (\`order id\` bigint primary key, customer_id bigint, amount decimal(18,2),
           updated_at timestamp(6) not null)`,
      );
      await conn.query(
        `insert into \`inc-orders\` with recursive g(n) as (select 1 union all select n + 1 from g where n < 100)
         select n, n % 10, n * 10.01, timestamp '2024-01-01 00:00:00' + interval (n - 1) * 5 minute from g`,
      );
      const dir = await landingDir();
      const config = warehouse({
        dialect: 'mysql',
        connection: url,
        schema: mysql.available ? mysql.database : undefined,
        table: 'inc-orders',
        cursor_column: 'updated_at',
        overlap: '2 hours',
        columns: { order_id: 'order id' },
      });
      const first = await landOnce(config, dir);
      // TIMESTAMP(6) text always has six fraction digits.
      expect(first.source.lastLand).toMatchObject({
        rowsExtracted: 100,
        cursorMax: '2024-01-01T08:15:00.000000Z',
      });
      expect(first.landed.files.map((f) => f.origin)).toEqual([
        `mysql table ${mysql.available && mysql.database}.inc-orders`,
      ]);
      await conn.query(
        `insert into \`inc-orders\` with recursive g(n) as (select 101 union all select n + 1 from g where n < 110)
         select n, 1, 1.00, timestamp '2024-01-01 09:00:00' from g`,
      );
      await conn.query(
        "update `inc-orders` set amount = 999.99, updated_at = '2024-01-01 10:00:00' where `order id` = 1",
      );
      await conn.query("insert into `inc-orders` values (111, 1, 5.55, '2024-01-01 07:45:00.5')");
      const second = await landOnce(config, dir);
      expect(second.source.lastLand).toMatchObject({
        mode: 'incremental',
        lowerBound: '2024-01-01T06:15:00.000Z',
        rowsExtracted: 37,
        rowsLanded: 111,
        cursorMax: '2024-01-01T10:00:00.000000Z',
      });
      const { rows } = await readLanded(second.landed, '"order id"::int');
      expect(rows).toHaveLength(111);
      expect(rows[0]).toMatchObject({
        'order id': '1',
        amount: '999.99',
        updated_at: '2024-01-01T10:00:00.000000Z',
      });
      expect(rows[110]).toMatchObject({ 'order id': '111', updated_at: '2024-01-01T07:45:00.500000Z' });
    });

    it('pushes where: into the query through kysely; incremental runs drop rows that stop matching', async () => {
      await wherePushdown(
        'mysql',
        url,
        (text) => conn.query(text),
        async (table) => {
          const [rows] = await conn.query(`select count(*) as n from ${table}`);
          return Number((rows as { n: number }[])[0]?.n);
        },
        (minute) => `timestamp '2024-01-01 00:00:00' + interval ${minute} minute`,
      );
    });

    it('names quarantined rows by their key', async () => {
      await quarantineKeys('mysql', url, (text) => conn.query(text));
    });

    it('check() names unknown tables, missing columns and bad credentials', async () => {
      const dir = await landingDir();
      const check = async (fields: Record<string, unknown>): Promise<void> => {
        const source = new WarehouseSource(warehouse({ dialect: 'mysql', connection: url, ...fields }));
        try {
          await source.check(ctx('orders', dir));
        } finally {
          await source.close();
        }
      };
      await expect(check({ table: 'no_such_table' })).rejects.toThrow(
        /^orders source \(mysql table no_such_table at mysql:\/\/.*\): cannot read: unknown table/,
      );
      await expect(check({ table: 'big' })).rejects.toThrow(
        /missing column "ordered_at" \(required ordered_at\)/,
      );
      const bad = new URL(url);
      bad.password = 'S3cret-pw';
      const error = await check({ table: 'big', connection: bad.toString() }).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(error?.message).toMatch(
        /^orders source \(mysql table big at mysql:\/\/root@.*\): cannot read: bad credentials/,
      );
      expect(error?.message).not.toContain('S3cret-pw');
    });
  },
);
