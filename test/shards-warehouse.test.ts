// Customer-hash shards over warehouse sources (docs/shards.md, "Inputs"): the shard filter pushed into the extraction
// query. Against the machine's PostgreSQL (or the embedded one when none is reachable) and MariaDB/MySQL: the
// warehouse hashes customer ids exactly as the pipeline's shard_of does (non-ASCII ids, ids padded with Unicode
// spaces, integer columns), each shard extracts only the rows its checks need, and the sample served from the two
// servers as 4 shards in separate processes publishes what one node publishes. Nothing is mocked.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Entity, sourceSchema, type WarehouseSourceConfig } from '../config/schema.js';
import { Db, type Row, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { generateSample } from '../pipelines/sample/generate.js';
import { checkShardFiltered, createShardMacro, DEDUPLICATION_KEYS } from '../pipelines/shard/filter.js';
import type { ShardFilterKind, ShardSpec } from '../pipelines/shard/spec.js';
import type { ShardManifest } from '../pipelines/shard/store.js';
import type { ShardLanding } from '../pipelines/sources/source.js';
import type { WarehouseDialect } from '../pipelines/sources/warehouse/dialect.js';
import { WarehouseSource } from '../pipelines/sources/warehouse/index.js';
import { mysqlDialect } from '../pipelines/sources/warehouse/mysql.js';
import { postgresDialect } from '../pipelines/sources/warehouse/postgres.js';
import { planShardPushdown, SPACE_SEPARATORS, shardOf } from '../pipelines/sources/warehouse/shard.js';
import { landEntity } from '../pipelines/stages/land.js';
import { runMacros } from '../transforms/runner.js';
import { churn, type Exit, reason } from './ops/support.js';
import { differences, exportFiles, PLANTED_QUARANTINE, publishedQuarantine } from './support/compare.js';
import { startMysql } from './support/mysql.js';
import { startPostgres, type TestPostgres } from './support/pg.js';
import { mulberry32 } from './support/random.js';

const log = silentLogger();
const pgServer: TestPostgres = await startPostgres();
const mysql = await startMysql();
if (!mysql.available) console.warn(`MySQL parts use PostgreSQL instead: ${mysql.reason}`);
const temp: string[] = [];
afterAll(async () => {
  await pgServer.stop();
  if (mysql.available) await mysql.stop();
  for (const dir of temp) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

/** SHA-256 of the id's UTF-8 bytes, first 8 hex digits, modulo n: the definition, without SQL. */
function shardOfText(id: string, count: number): number {
  return Number.parseInt(createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 8), 16) % count;
}

async function pgExec(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: pgServer.url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

async function mysqlExec(text: string, values: unknown[] = []): Promise<void> {
  if (!mysql.available) throw new Error('no MySQL');
  const conn = await mysql.connect();
  try {
    await conn.query(text, values);
  } finally {
    await conn.end();
  }
}

/** A DuckDB database with the pipeline's macros (clean_text) and shard_of. */
async function pipelineDb(): Promise<Db> {
  const db = await Db.open();
  await runMacros(db);
  await createShardMacro(db);
  return db;
}

/** Ids a hash could get wrong: non-ASCII (2-, 3- and 4-byte UTF-8), combining marks, padded with Unicode spaces. */
function trickyIds(): string[] {
  const u = mulberry32(15);
  const pools = ['abcXYZ019-_.', 'äöüßéèñÅØ', 'Ωλπж', '日本語中文한국어', '😀🎉𝄞', '\u0301\u0308', '\'"\\%'];
  const spaces = [...SPACE_SEPARATORS, '\t', '\n', '\u200b', '\u00ad'];
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) ids.push(`C${String(i).padStart(6, '0')}`);
  for (let i = 0; i < 200; i++) {
    let id = '';
    const length = 1 + Math.floor(u() * 12);
    for (let k = 0; k < length; k++) {
      const pool = [...(pools[Math.floor(u() * pools.length)] ?? 'a')];
      id += pool[Math.floor(u() * pool.length)] ?? 'a';
    }
    const pad = () =>
      u() < 0.4 ? (spaces[Math.floor(u() * spaces.length)] ?? ' ').repeat(1 + Math.floor(u() * 2)) : '';
    ids.push(`${pad()}${id}${pad()}`);
  }
  ids.push('', ' ', '\u3000\u00a0', '\t', ' C000001 ', 'C000001\u00a0', 'Ümlaut-42', 'Kundé-Ω1');
  return ids;
}

/** The pipeline's shard of each id for each count, computed by DuckDB (shard_of(clean_text(id), n)). */
async function duckShards(ids: readonly string[], counts: readonly number[]): Promise<Map<string, number[]>> {
  const db = await pipelineDb();
  try {
    const list = `[${ids.map(sqlString).join(', ')}]`;
    const columns = counts.map((n) => `shard_of(clean_text(id), ${n}) as s${n}`).join(', ');
    const rows = await db.all(`select id, ${columns} from unnest(${list}) as t(id)`);
    return new Map(rows.map((r) => [String(r.id), counts.map((n) => Number(r[`s${n}`]))]));
  } finally {
    db.close();
  }
}

/** The warehouse's shard of every id in `table.id`, through the source's kysely and shardOf. */
async function warehouseShards(
  dialect: WarehouseDialect,
  table: string,
  counts: readonly number[],
): Promise<Map<string, number[]>> {
  const kind = dialect.name;
  const query = dialect.kysely
    .selectFrom(table)
    .select([
      sql<string>`cast(${sql.id('id')} as ${sql.raw(kind === 'postgres' ? 'text' : 'char')})`.as('id'),
      ...counts.map((n) => shardOf(kind, 'id', n).as(`s${n}`)),
    ]);
  const rows = (await query.execute()) as Record<string, unknown>[];
  return new Map(rows.map((r) => [String(r.id), counts.map((n) => Number(r[`s${n}`]))]));
}

const COUNTS = [1, 2, 3, 4, 7, 1024];

describe('the shard hash on the warehouse', () => {
  const ids = trickyIds();

  it('is what the pipeline computes in DuckDB, and SHA-256 of the trimmed UTF-8 id', async () => {
    const duck = await duckShards(ids, COUNTS);
    const zs = new RegExp(`^[${SPACE_SEPARATORS}]+|[${SPACE_SEPARATORS}]+$`, 'gu');
    for (const id of ids) {
      const clean = id.replace(zs, '');
      const expected = COUNTS.map((n) => (clean === '' ? 0 : shardOfText(clean, n)));
      expect(duck.get(id), JSON.stringify(id)).toEqual(expected);
    }
    // Padding with Unicode spaces does not move a customer; a tab is not a space separator.
    expect(duck.get(' C000001 ')).toEqual(duck.get('C000001'));
    expect(duck.get('C000001\u00a0')).toEqual(duck.get('C000001'));
    expect(duck.get('\u3000\u00a0')).toEqual(COUNTS.map(() => 0));
    expect(duck.get('\t')).not.toEqual(COUNTS.map(() => 0));
  });

  it(`is the pipeline's on PostgreSQL${pgServer.embedded ? ' (embedded)' : ''}: text and integer ids`, async () => {
    await pgExec('create table hash_ids (id text)');
    await pgExec('insert into hash_ids select unnest($1::text[])', [ids]);
    await pgExec('create table hash_int_ids (id int8)');
    await pgExec('insert into hash_int_ids select g * 7919 - 3 from generate_series(-20, 180) as g');
    const dialect = postgresDialect(new URL(pgServer.url));
    try {
      const [text, ints] = [
        await warehouseShards(dialect, 'hash_ids', COUNTS),
        await warehouseShards(dialect, 'hash_int_ids', COUNTS),
      ];
      expect(text.size).toBe(new Set(ids).size);
      expect(Object.fromEntries(text)).toEqual(
        Object.fromEntries(await duckShards([...text.keys()], COUNTS)),
      );
      expect(ints.size).toBe(201);
      expect(Object.fromEntries(ints)).toEqual(
        Object.fromEntries(await duckShards([...ints.keys()], COUNTS)),
      );
    } finally {
      await dialect.destroy();
    }
  });

  it.skipIf(!mysql.available)(
    `is the pipeline's on MySQL/MariaDB: utf8mb4, latin1 and integer ids${mysql.available ? '' : ` (skipped: ${mysql.reason})`}`,
    async () => {
      if (!mysql.available) return;
      await mysqlExec(
        'create table hash_ids (id varchar(200) character set utf8mb4 collate utf8mb4_general_ci)',
      );
      await mysqlExec('insert into hash_ids values ?', [ids.map((id) => [id])]);
      const latin = [...new Set(ids.filter((id) => [...id].every((c) => (c.codePointAt(0) ?? 0) < 256)))];
      await mysqlExec('create table hash_latin_ids (id varchar(200) character set latin1)');
      await mysqlExec('insert into hash_latin_ids values ?', [latin.map((id) => [id])]);
      await mysqlExec('create table hash_int_ids (id bigint)');
      await mysqlExec('insert into hash_int_ids values ?', [
        Array.from({ length: 201 }, (_, g) => [(g - 20) * 7919 - 3]),
      ]);
      const dialect = mysqlDialect(mysql.url);
      try {
        const text = await warehouseShards(dialect, 'hash_ids', COUNTS);
        // The table holds every id (a case-insensitive collation does not merge rows).
        expect(text.size).toBe(new Set(ids).size);
        expect(Object.fromEntries(text)).toEqual(
          Object.fromEntries(await duckShards([...text.keys()], COUNTS)),
        );
        const latin1 = await warehouseShards(dialect, 'hash_latin_ids', COUNTS);
        expect(latin1.size).toBe(latin.length);
        expect(latin.some((id) => [...id].some((c) => (c.codePointAt(0) ?? 0) > 127))).toBe(true);
        expect(Object.fromEntries(latin1)).toEqual(
          Object.fromEntries(await duckShards([...latin1.keys()], COUNTS)),
        );
        const ints = await warehouseShards(dialect, 'hash_int_ids', COUNTS);
        expect(ints.size).toBe(201);
        expect(Object.fromEntries(ints)).toEqual(
          Object.fromEntries(await duckShards([...ints.keys()], COUNTS)),
        );
      } finally {
        await dialect.destroy();
      }
    },
  );
});

function warehouse(fields: Record<string, unknown>): WarehouseSourceConfig {
  const parsed = sourceSchema.parse({
    type: 'warehouse',
    dialect: 'postgres',
    connection: 'postgres://x/y',
    ...fields,
  });
  if (parsed.type !== 'warehouse') throw new Error('not a warehouse source');
  return parsed;
}

describe('which extractions a shard filters in the warehouse query', () => {
  const columns = ['order_id', 'customer_id', 'Account', 'email', 'updated_at'];
  it('filters where the shard then lands exactly what its checks need, and says why not elsewhere', () => {
    const plain = warehouse({ table: 't' });
    expect(planShardPushdown('customers', plain, columns)).toMatchObject({ kind: 'none' });
    expect(planShardPushdown('activity', plain, columns)).toEqual({
      kind: 'customer',
      customerColumn: 'customer_id',
    });
    expect(planShardPushdown('email_events', plain, columns)).toMatchObject({
      kind: 'customer-or-no-customer',
    });
    expect(planShardPushdown('orders', plain, columns)).toEqual({
      kind: 'customer-or-shared-key',
      customerColumn: 'customer_id',
      keyColumn: 'order_id',
    });
    // A renamed column is found as the warehouse names it (case-insensitively, as landing does).
    const renamed = warehouse({ table: 't', columns: { customer_id: 'account' } });
    expect(planShardPushdown('activity', renamed, columns)).toEqual({
      kind: 'customer',
      customerColumn: 'Account',
    });
    const computed = warehouse({ table: 't', columns: { customer_id: { expr: "'C' || account" } } });
    expect(planShardPushdown('activity', computed, columns)).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('customer_id is computed at landing'),
    });
    // An incremental landing keeps rows the warehouse no longer has: shared keys cannot be found by a query.
    const incremental = warehouse({ table: 't', cursor_column: 'updated_at' });
    expect(planShardPushdown('orders', incremental, columns)).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('incremental'),
    });
    expect(planShardPushdown('activity', incremental, columns)).toMatchObject({ kind: 'customer' });
    const keyed = warehouse({ table: 't', cursor_column: 'updated_at', key: ['email', 'updated_at'] });
    expect(planShardPushdown('activity', keyed, columns)).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('does not hold customer_id'),
    });
    expect(
      planShardPushdown('email_events', warehouse({ table: 't' }), ['email', 'occurred_at']),
    ).toMatchObject({
      kind: 'none',
      reason: 'the source has no column "customer_id" for customer_id',
    });
  });
});

describe('a warehouse whose text of customer_id is not the landed text', () => {
  it('is refused by the shard instead of silently losing rows', async () => {
    // A timestamp "id": PostgreSQL casts it to '2024-01-01 10:00:00', the landing writes ISO-8601 with a T.
    await pgExec('create table ts_activity (customer_id timestamp, occurred_at text)');
    await pgExec(
      `insert into ts_activity select timestamp '2024-01-01 10:00:00' + g * interval '1 day', '2024-02-01 10:00:00'
       from generate_series(1, 60) as g`,
    );
    const spec: ShardSpec = { index: 1, count: 2 };
    const filtered: ShardFilterKind[] = [];
    const shard: ShardLanding = { ...spec, filtered: (_e, how) => filtered.push(how) };
    const config = warehouse({ connection: pgServer.url, schema: pgServer.schema, table: 'ts_activity' });
    const source = new WarehouseSource(config);
    const dir = tempDir('churn-shard-wh-');
    const db = await pipelineDb();
    try {
      const landed = await source.land({ entity: 'activity', landingDir: dir, baseDir: dir, log, shard });
      expect(filtered).toEqual(['customer']);
      expect(source.lastLand?.shardFilter).toBe('1/2 customer');
      expect(source.lastLand?.rowsExtracted).toBeGreaterThan(0);
      expect(source.lastLand?.rowsExtracted).toBeLessThan(60);
      await landEntity(db, 'activity', config, landed, log);
      await expect(checkShardFiltered(db, 'activity', spec, 'customer')).rejects.toThrow(
        /^shard 1\/2: the activity source sent \d+ row\(s\) of other shards' customers \(customer_id "2024-.*" is in shard 0 here\), so it hashes customer_id otherwise than the pipeline and rows of this shard may be missing: make customer_id a text or integer column/,
      );
    } finally {
      db.close();
      await source.close();
    }
  });
});

/** The landed rows of a source, as sorted text lines. */
async function landedLines(files: readonly string[]): Promise<string[]> {
  if (files.length === 0) return [];
  const db = await Db.open();
  try {
    const rows = await db.all<{ line: string }>(
      `select concat_ws('|', event_id, coalesce(customer_id, '<null>'), occurred_at, updated_at) as line
       from read_parquet([${files.map(sqlString).join(', ')}]) order by all`,
    );
    return rows.map((r) => r.line);
  } finally {
    db.close();
  }
}

/**
 * An incremental extraction filtered by shard: after new rows, and rows whose customer changed or went missing, the
 * shards' landings together hold what one node's landing holds.
 */
async function incrementalShards(dialect: 'postgres' | 'mysql', exec: (text: string) => Promise<unknown>) {
  await exec(
    'create table inc_activity (event_id varchar(20), customer_id varchar(20), occurred_at varchar(30), updated_at bigint)',
  );
  const rows = (from: number, to: number, stamp: number) =>
    Array.from({ length: to - from }, (_, k) => {
      const i = from + k;
      const customer = i % 23 === 0 ? 'null' : `'${i % 7 === 0 ? ' ' : ''}C${i % 37}'`;
      return `('E${i}', ${customer}, '2026-05-${String(1 + (i % 28)).padStart(2, '0')} 10:00:00', ${stamp + i})`;
    }).join(', ');
  await exec(`insert into inc_activity values ${rows(0, 200, 0)}`);
  const connection = dialect === 'postgres' ? pgServer.url : mysql.available ? mysql.url : '';
  const config = warehouse({
    dialect,
    connection,
    ...(dialect === 'postgres' ? { schema: pgServer.schema } : {}),
    table: 'inc_activity',
    cursor_column: 'updated_at',
    key: ['event_id', 'customer_id'],
    batch_size: 100,
  });
  const count = 3;
  const dirs = [
    tempDir('churn-inc-one-'),
    ...Array.from({ length: count }, () => tempDir('churn-inc-shard-')),
  ];
  const landAll = async () => {
    const lines: string[][] = [];
    const modes: string[] = [];
    for (const [k, dir] of dirs.entries()) {
      const shard: ShardLanding | undefined =
        k === 0 ? undefined : { index: k - 1, count, filtered: () => {} };
      const source = new WarehouseSource(config);
      try {
        const landed = await source.land({ entity: 'activity', landingDir: dir, baseDir: dir, log, shard });
        lines.push(await landedLines(landed.files.map((f) => f.path)));
        modes.push(`${source.lastLand?.mode} ${source.lastLand?.shardFilter ?? 'whole'}`);
      } finally {
        await source.close();
      }
    }
    return { lines, modes };
  };
  const first = await landAll();
  expect(first.modes).toEqual(['full whole', 'full 0/3 customer', 'full 1/3 customer', 'full 2/3 customer']);
  const [one, ...shards] = first.lines;
  expect(shards.flat().sort()).toEqual(one);
  expect(Math.max(...shards.map((l) => l.length))).toBeLessThan((one?.length ?? 0) * 0.6);

  // New rows; rows moved to another customer or to none (their cursor moves too).
  await exec(`insert into inc_activity values ${rows(200, 260, 1000)}`);
  await exec(
    `update inc_activity set customer_id = 'C5', updated_at = 2000 where event_id in ('E1', 'E2', 'E3', 'E40')`,
  );
  await exec(`update inc_activity set customer_id = null, updated_at = 2001 where event_id in ('E4', 'E50')`);
  const second = await landAll();
  expect(second.modes).toEqual([
    'incremental whole',
    'incremental 0/3 customer',
    'incremental 1/3 customer',
    'incremental 2/3 customer',
  ]);
  const [oneAfter, ...shardsAfter] = second.lines;
  expect(oneAfter?.length).toBeGreaterThan(one?.length ?? 0);
  expect(shardsAfter.flat().sort()).toEqual(oneAfter);
  // Each shard holds its own customers' rows only (E4 and E50 without a customer in shard 0).
  const duck = await duckShards(
    shardsAfter.flat().map((l) => (l.split('|')[1] === '<null>' ? '' : (l.split('|')[1] ?? ''))),
    [count],
  );
  for (const [index, lines] of shardsAfter.entries()) {
    for (const line of lines) {
      const id = line.split('|')[1] ?? '';
      expect(duck.get(id === '<null>' ? '' : id)?.[0], line).toBe(index);
    }
  }
}

describe('an incremental extraction filtered by shard', () => {
  it('lands in its shards together what one node lands, as rows arrive and change customer (PostgreSQL)', async () => {
    await incrementalShards('postgres', (text) => pgExec(text));
  });

  it.skipIf(!mysql.available)(
    `lands in its shards together what one node lands (MySQL/MariaDB)${mysql.available ? '' : ` (skipped: ${mysql.reason})`}`,
    async () => {
      await incrementalShards('mysql', (text) => mysqlExec(text));
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The sample from the two servers, on one node and as 4 shards.

/** Where each entity of the sample is served from (the MySQL ones from PostgreSQL when no MySQL is reachable). */
const SERVED: Record<Entity, 'postgres' | 'mysql'> = {
  customers: 'postgres',
  orders: 'postgres',
  subscriptions: 'postgres',
  invoices: 'postgres',
  tickets: 'postgres',
  activity: 'mysql',
  email_events: 'mysql',
  surveys: 'mysql',
};

const FILES: Record<Entity, string> = {
  customers: "read_csv('customers.csv', all_varchar = true)",
  orders: "read_csv('orders.csv.gz', all_varchar = true)",
  subscriptions: "read_csv('subscriptions.csv', all_varchar = true)",
  activity: "read_parquet('activity.parquet')",
  email_events: "read_json('email_events.ndjson', format = 'newline_delimited')",
  surveys: "read_csv('surveys.csv', all_varchar = true)",
  tickets: "read_csv('tickets.csv', all_varchar = true)",
  invoices: "read_csv('invoices.csv', all_varchar = true)",
};

type Table = { columns: string[]; rows: (string | null)[][] };

/** Rows whose checks need rows of other shards, ids padded with Unicode spaces, and a non-ASCII customer. */
function plant(tables: Record<Entity, Table>, a: string, emailA: string, b: string): void {
  const add = (entity: Entity, rows: Record<string, string | null>[]) => {
    const table = tables[entity];
    for (const row of rows) table.rows.push(table.columns.map((c) => row[c] ?? null));
  };
  const omega = 'Kundé-Ω1';
  add('customers', [
    {
      customer_id: omega,
      email: 'kunde.omega@example.org',
      first_name: 'Zoë',
      last_name: 'Ωmega',
      country: 'DE',
      segment: 'smb',
      signup_at: '2025-01-10 10:00:00',
      marketing_consent: 'true',
      consent_at: '2025-01-10 10:01:00',
    },
  ]);
  const order = (
    order_id: string,
    customer_id: string | null,
    ordered_at: string,
    amount: string,
    status = 'completed',
  ) => ({
    order_id,
    customer_id,
    ordered_at,
    amount,
    status,
    currency: 'EUR',
  });
  add('orders', [
    // the same order_id for customers of two shards: b's row, the later one, is the duplicate
    order('O90000001', a, '2026-05-10 10:00:00', '50.00'),
    order('O90000001', b, '2026-05-11 10:00:00', '60.00'),
    // a's row is rejected (no such day), so b's is the first good one
    order('O90000002', a, '2026-02-30 10:00:00', '20.00'),
    order('O90000002', b, '2026-05-13 10:00:00', '30.00'),
    // a's row is left out by `where:` in the warehouse: the key is b's alone
    order('O90000003', a, '2026-05-14 10:00:00', '10.00', 'test'),
    order('O90000003', b, '2026-05-14 11:00:00', '11.00'),
    // no customer, a blank one, and a's id padded with Unicode spaces (a's order)
    order('O90000004', null, '2026-05-15 10:00:00', '10.00'),
    order('O90000005', '   ', '2026-05-15 10:00:00', '10.00'),
    order('O90000006', `\u00a0${a}\u3000`, '2026-06-01 10:00:00', '70.00'),
    order('O90000007', omega, '2026-06-02 10:00:00', '80.00'),
    order('O90000008', omega, '2026-06-20 10:00:00', '90.00'),
  ]);
  add('surveys', [
    {
      response_id: 'R9000001',
      customer_id: a,
      responded_at: '2026-05-11 12:00:00',
      survey_type: 'nps',
      score: '9',
    },
    {
      response_id: 'R9000001',
      customer_id: b,
      responded_at: '2026-05-12 12:00:00',
      survey_type: 'nps',
      score: '3',
    },
    {
      response_id: 'R9000002',
      customer_id: `\u2003${b}`,
      responded_at: '2026-05-13 12:00:00',
      survey_type: 'nps',
      score: '7',
    },
  ]);
  add('activity', [
    { customer_id: omega, occurred_at: '2026-06-10 08:00:00', event_type: 'login', quantity: '1' },
    { customer_id: ` ${a}\u00a0`, occurred_at: '2026-06-11 08:00:00', event_type: 'login', quantity: '1' },
  ]);
  const event = (customer_id: string | null, email: string | null, event_type: string) => ({
    customer_id,
    email,
    occurred_at: '2026-06-01 10:00:00',
    event_type,
    campaign_id: 'planted',
  });
  add('email_events', [
    event(null, ` ${emailA.toUpperCase()} `, 'open'), // by address only: a's, in a's shard
    event(null, 'nobody-known@example.com', 'open'),
    event(null, null, 'sent'),
    event(omega, 'kunde.omega@example.org', 'open'),
  ]);
}

async function loadSample(dir: string): Promise<Record<Entity, Table>> {
  const db = await Db.open({ fileSearchPath: dir });
  try {
    const tables = {} as Record<Entity, Table>;
    for (const [entity, from] of Object.entries(FILES) as [Entity, string][]) {
      const described = await db.all<{ column_name: string }>(`describe select * from ${from}`);
      const columns = described.map((d) => d.column_name);
      const rows = await db.all(
        `select ${columns.map((c) => `cast(${sqlIdent(c)} as varchar) as ${sqlIdent(c)}`).join(', ')} from ${from}`,
      );
      tables[entity] = {
        columns,
        rows: rows.map((r: Row) => columns.map((c) => (r[c] === null ? null : String(r[c])))),
      };
    }
    return tables;
  } finally {
    db.close();
  }
}

/** Serves the tables: PostgreSQL through unnest of text arrays, MySQL through multi-row inserts. */
async function serve(tables: Record<Entity, Table>): Promise<void> {
  for (const [entity, table] of Object.entries(tables) as [Entity, Table][]) {
    // subscriptions name their customer `account_id` in the warehouse (mapped in the config).
    const columns = table.columns.map((c) =>
      entity === 'subscriptions' && c === 'customer_id' ? 'account_id' : c,
    );
    if (SERVED[entity] === 'mysql' && mysql.available) {
      const ddl = columns.map((c) => `\`${c}\` text`).join(', ');
      await mysqlExec(`create table \`${entity}\` (${ddl}) character set utf8mb4`);
      for (let i = 0; i < table.rows.length; i += 2000) {
        await mysqlExec(`insert into \`${entity}\` values ?`, [table.rows.slice(i, i + 2000)]);
      }
      continue;
    }
    await pgExec(`create table "${entity}" (${columns.map((c) => `"${c}" text`).join(', ')})`);
    const arrays = columns.map((_, i) => table.rows.map((r) => r[i] ?? null));
    await pgExec(
      `insert into "${entity}" select * from unnest(${columns.map((_, i) => `$${i + 1}::text[]`).join(', ')})`,
      arrays,
    );
  }
}

function sourceYaml(entity: Entity): string {
  const onMysql = SERVED[entity] === 'mysql' && mysql.available;
  const fields: Record<string, unknown> = onMysql
    ? { type: 'warehouse', dialect: 'mysql', connection: mysql.url, table: entity, batch_size: 1000 }
    : {
        type: 'warehouse',
        dialect: 'postgres',
        connection: pgServer.url,
        schema: pgServer.schema,
        table: entity,
        batch_size: 1000,
      };
  if (entity === 'orders') fields.where = "status <> 'test'";
  if (entity === 'subscriptions') fields.columns = { customer_id: 'account_id' };
  return `  ${entity}: ${JSON.stringify(fields)}`;
}

describe('the sample served by PostgreSQL and MariaDB, on one node and as 4 shards', () => {
  const dir = tempDir('churn-shards-wh-');
  const config = (name: string) => join(dir, `${name}.yaml`);
  const out = (name: string) => join(dir, `out-${name}`);
  const asOf = '2026-06-30';
  let tables: Record<Entity, Table>;
  let db: Db;
  const planted_ = { a: '', b: '' };
  const ok = (exit: Exit, what: string) =>
    expect(exit.code, `${what}: ${reason(exit) || exit.stderr.slice(-2000)}`).toBe(0);

  beforeAll(async () => {
    const sample = join(dir, 'sample');
    expect((await generateSample({ dir: sample, customers: 300, seed: 7 })).asOf).toBe(asOf);
    tables = await loadSample(sample);
    const customers = tables.customers.rows;
    const a = customers.find((r) => r[0] && r[1] && shardOfText(r[0], 4) % 2 === 1);
    const b = customers.find((r) => r[0] && shardOfText(r[0], 4) % 2 === 0);
    if (!a?.[0] || !a[1] || !b?.[0]) throw new Error('the sample has no customers to plant rows for');
    plant(tables, a[0], a[1], b[0]);
    planted_.a = a[0];
    planted_.b = b[0];
    await serve(tables);
    const sources = (Object.keys(FILES) as Entity[]).map(sourceYaml).join('\n');
    for (const name of ['single', 's4']) {
      writeFileSync(
        config(name),
        [
          'business_time_zone: Europe/Berlin',
          'period_grain: month',
          'sources:',
          sources,
          'segment_by: [segment, country]',
          'outcomes:',
          '  campaign_id_pattern: "^winback-"',
          `output: { type: local, path: out-${name} }`,
          `state_dir: .churn-${name}`,
          'duckdb: { threads: 1, memory_limit: 1GB }',
          '',
        ].join('\n'),
      );
    }
    ok(await churn(['-c', config('single'), 'run', '--as-of', asOf]), 'single-node run');
    db = await pipelineDb();
  }, 300_000);
  afterAll(() => db?.close());

  it('has the planted rows in the single-node quarantine, so the shards are judged on them', async () => {
    const found = await publishedQuarantine(db, out('single'));
    expect(found).toEqual(expect.arrayContaining(PLANTED_QUARANTINE));
    expect(found.filter((f) => /O9000000[3678]/.test(f))).toEqual([]);
    const facts = sqlString(join(out('single'), 'current', 'fct_customer_period', 'part-0.parquet'));
    expect(
      await db.number(`select count(*) from read_parquet(${facts}) where customer_id = 'Kundé-Ω1'`),
    ).toBeGreaterThan(0);
  });

  it('extracts in each shard only the rows its checks need, and publishes what one node publishes', async () => {
    const runs = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        churn(['-c', config('s4'), 'run', '--as-of', asOf, '--shards', '4'], {
          JOB_COMPLETION_INDEX: String(i),
        }),
      ),
    );
    for (const [i, exit] of runs.entries()) ok(exit, `shard ${i}/4`);
    const manifests = [0, 1, 2, 3].map(
      (i) =>
        JSON.parse(
          readFileSync(join(out('s4'), '_shards', `as_of=${asOf}`, `shard=${i}`, '_shard.json'), 'utf8'),
        ) as ShardManifest,
    );

    // What each shard should have extracted, computed by DuckDB over every row the warehouse holds.
    for (const [entity, table] of Object.entries(tables) as [Entity, Table][]) {
      const values = table.rows.map(
        (r) => `(${r.map((v) => (v === null ? 'null' : sqlString(v))).join(', ')})`,
      );
      await db.run(
        `create or replace table ${sqlIdent(`w_${entity}`)} (${table.columns.map((c) => `${sqlIdent(c)} varchar`).join(', ')})`,
      );
      for (let i = 0; i < values.length; i += 5000) {
        await db.run(`insert into ${sqlIdent(`w_${entity}`)} values ${values.slice(i, i + 5000).join(', ')}`);
      }
    }
    const expectedRows = async (entity: Entity, index: number): Promise<number> => {
      const table = sqlIdent(`w_${entity}`);
      const where = entity === 'orders' ? "where coalesce(status <> 'test', false)" : '';
      const key = DEDUPLICATION_KEYS[entity];
      const kept =
        entity === 'customers'
          ? 'true'
          : entity === 'email_events'
            ? `_shard = ${index} or _id is null`
            : key
              ? `_shard = ${index} or _key in (select _key from rows where _key is not null group by _key
                   having min(_shard) <> max(_shard) and bool_or(_shard = ${index}))`
              : `_shard = ${index}`;
      return db.number(`
        with rows as (
            select clean_text(customer_id) as _id, shard_of(clean_text(customer_id), 4) as _shard
                ${key ? `, clean_text(${sqlIdent(key)}) as _key` : ''}
            from ${table} ${where})
        select count(*) from rows where ${kept}`);
    };
    const filters: Record<Entity, ShardFilterKind | undefined> = {
      customers: undefined,
      orders: 'customer-or-shared-key',
      subscriptions: 'customer-or-shared-key',
      invoices: 'customer-or-shared-key',
      tickets: 'customer-or-shared-key',
      surveys: 'customer-or-shared-key',
      activity: 'customer',
      email_events: 'customer-or-no-customer',
    };
    for (const entity of Object.keys(FILES) as Entity[]) {
      const total = await db.number(
        `select count(*) from ${sqlIdent(`w_${entity}`)} ${entity === 'orders' ? "where coalesce(status <> 'test', false)" : ''}`,
      );
      const landed = manifests.map((m) => m.landing[entity]);
      expect(
        landed.map((l) => l?.shard_filter),
        entity,
      ).toEqual([0, 1, 2, 3].map(() => filters[entity]));
      const expected = await Promise.all([0, 1, 2, 3].map((i) => expectedRows(entity, i)));
      expect(
        landed.map((l) => l?.rows),
        entity,
      ).toEqual(expected);
      if (filters[entity]) {
        // Every row is one shard's: the shards account for the whole table once, as the warehouse counted it.
        expect(
          landed.reduce((n, l) => n + (l?.owned ?? 0), 0),
          entity,
        ).toBe(total);
        expect(
          landed.map((l) => l?.source_rows),
          entity,
        ).toEqual([total, total, total, total]);
      } else {
        expect(landed.map((l) => l?.owned)).toEqual([undefined, undefined, undefined, undefined]);
      }
      if (entity !== 'customers') {
        expect(Math.max(...expected), entity).toBeLessThan(total * 0.5);
      }
    }
    // What left the warehouse for each shard: a shared key in the shards of both its customers, a key that `where:`
    // leaves to one customer in that customer's shard only, a's padded id in a's shard, no customer in shard 0.
    const planted = (i: number) =>
      db.all<{ order_id: string; customer_id: string | null }>(
        `select order_id, customer_id from read_parquet(${sqlString(
          join(dir, '.churn-s4', 'shards', `${i}-of-4`, 'landing', 'orders', '*.parquet'),
        )}) where order_id like 'O9%' order by all`,
      );
    const [shardA, shardB] = [shardOfText(planted_.a, 4), shardOfText(planted_.b, 4)];
    for (const i of [0, 1, 2, 3]) {
      const ids = (await planted(i)).map(
        (r) =>
          `${r.order_id} ${r.customer_id?.trim() === planted_.a ? 'a' : r.customer_id === planted_.b ? 'b' : (r.customer_id ?? 'null')}`,
      );
      const expected = [
        ...(i === shardA || i === shardB ? ['O90000001 a', 'O90000001 b', 'O90000002 a', 'O90000002 b'] : []),
        ...(i === shardB ? ['O90000003 b'] : []),
        ...(i === 0 ? ['O90000004 null', 'O90000005    '] : []),
        ...(i === shardA ? ['O90000006 a'] : []),
        ...(i === shardOfText('Kundé-Ω1', 4) ? ['O90000007 Kundé-Ω1', 'O90000008 Kundé-Ω1'] : []),
      ];
      expect(ids.sort(), `shard ${i}`).toEqual(expected.sort());
    }

    ok(await churn(['-c', config('s4'), 'merge', '--as-of', asOf, '--shards', '4']), 'merge of 4 shards');
    expect(await differences(db, out('single'), out('s4'))).toEqual({});
    expect(exportFiles(out('s4'))).toEqual(exportFiles(out('single')));
    type Published = {
      quarantine: unknown;
      reconciliation: unknown;
      checks: { check: string; target: string; status: string }[];
    };
    const published = (name: string) =>
      JSON.parse(readFileSync(join(out(name), 'current', '_manifest.json'), 'utf8')) as Published;
    const [single, merged] = [published('single'), published('s4')];
    expect(merged.quarantine).toEqual(single.quarantine);
    expect(merged.reconciliation).toEqual(single.reconciliation);
    expect(merged.checks.map((c) => `${c.check} ${c.target} ${c.status}`)).toEqual(
      single.checks.map((c) => `${c.check} ${c.target} ${c.status}`),
    );

    // A merge refuses shards that do not account for the source's rows, or saw another number of them.
    const file = join(out('s4'), '_shards', `as_of=${asOf}`, 'shard=2', '_shard.json');
    const original = readFileSync(file, 'utf8');
    const refused = async (change: (m: ShardManifest) => void): Promise<string> => {
      const m = JSON.parse(original) as ShardManifest;
      change(m);
      writeFileSync(file, JSON.stringify(m));
      try {
        const exit = await churn(['-c', config('s4'), 'merge', '--as-of', asOf, '--shards', '4']);
        expect(exit.code).toBe(1);
        return reason(exit);
      } finally {
        writeFileSync(file, original);
      }
    };
    expect(
      await refused((m) => {
        const activity = m.landing.activity;
        if (activity?.owned !== undefined) activity.owned -= 1;
      }),
    ).toMatch(
      /^churn: the shards account for \d+ of the \d+ activity rows of the source, so the warehouse put rows in other shards than the pipeline does .*: make customer_id a text or integer column/,
    );
    expect(
      await refused((m) => {
        const orders = m.landing.orders;
        if (orders?.source_rows != null) orders.source_rows += 1;
      }),
    ).toMatch(/^churn: the orders source had \d+ rows when shard 0 ran and \d+ when shard 2 ran: it changed/);
  }, 400_000);
});
