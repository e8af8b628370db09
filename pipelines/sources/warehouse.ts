// A SQL warehouse source (PostgreSQL, MySQL/MariaDB): streams a table or a query into local Parquet files.
//
// Rows are read in chunks of `batch_size` (a pg-cursor portal on Postgres, mysql2's row stream on MySQL),
// appended to an in-memory DuckDB table and written every `rowsPerFile` rows to a numbered Parquet file, so a
// table larger than memory lands with bounded RSS. Every landed column is VARCHAR, named as in the source, holding
// the value's exact text: int8 and numeric as written by the server (money stays exact), timestamps with an offset
// as ISO-8601 in UTC (`2024-03-30T23:30:00.123456Z`), timestamps without one as naive ISO-8601 (the staging reads
// them in the business time zone), booleans as `true`/`false`, NULL as null.
//
// With `cursor_column` the extraction is incremental: a JSON state file in the landing folder remembers the highest
// cursor value landed; the next run reads `cursor >= last - overlap`, writes the new chunk files, then compacts
// the landed files into one, deduplicated on the entity key keeping the row with the highest cursor (the newest
// extraction on ties). Re-read overlap rows are not duplicated, late-committed rows are not lost. Deleted source
// rows are not seen by an incremental extraction: delete the landing folder to force a full one.
// Without `cursor_column` every run is a full extract that replaces the landed files.
//
// `where:` is parsed with DuckDB's parser and rebuilt with kysely (pushdown.ts) into the extraction query: rows it
// leaves out are never extracted. An incremental run also asks for the keys of re-read rows that no longer match it
// (a soft delete, a status change) and drops them from the landing, so the landing is always the rows that match.
//
// Landed rows are named by their entity key (`postgres table public.orders where order_id = 'O-17'`) in the
// quarantine, not by a row number of a landing file.
//
// The connection URL holds a password: it is never logged nor put in an error message.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBAppender } from '@duckdb/node-api';
import {
  type Compilable,
  Kysely,
  MysqlDialect,
  PostgresDialect,
  type RawBuilder,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import { createPool, type FieldPacket, type Pool as MysqlPool, type TypeCast } from 'mysql2';
import pg from 'pg';
import Cursor from 'pg-cursor';
import {
  type ColumnMapping,
  ENTITY_COLUMNS,
  type Entity,
  type WarehouseSourceConfig,
} from '../../config/schema.js';
import { Db, sqlIdent, sqlString } from '../duckdb.js';
import type { Logger } from '../log.js';
import { parseExpression, type SqlNode } from './expression.js';
import { PushdownError, pushdownWhere } from './pushdown.js';
import { type Landed, type Source, type SourceContext, SourceError } from './source.js';

type SourceRow = Record<string, unknown>;
/** Kysely's view of a warehouse whose tables are only known at run time. */
type AnyDb = Record<string, SourceRow>;
type SourceQuery = SelectQueryBuilder<AnyDb, string, SourceRow>;

export interface WarehouseSourceOptions {
  /** Rows per landed Parquet file before compaction (default: max(batch_size, 250 000)). */
  rowsPerFile?: number;
  /** DuckDB memory limit of the landing buffer and the compaction (default 1GB; it spills to disk beyond). */
  memoryLimit?: string;
}

/** What the last `land()` did: for logs, tests and the bench. */
export interface WarehouseLandStats {
  mode: 'full' | 'incremental';
  /** The `cursor >= lowerBound` filter of an incremental run. */
  lowerBound: string | null;
  rowsExtracted: number;
  filesWritten: number;
  /** Rows in the landed files after compaction (incremental mode only). */
  rowsLanded: number | null;
  /** Highest cursor value landed. */
  cursorMax: string | null;
  /** Rows re-read by an incremental run that no longer match `where:`, dropped from the landing. */
  rowsDropped: number;
  /** Wall time of land(), and the parts spent appending rows to DuckDB and writing Parquet files (the rest: reading). */
  ms: number;
  appendMs: number;
  writeMs: number;
}

/** The entity's own id column: the default deduplication key of an incremental extraction. */
const ENTITY_ID: Partial<Record<Entity, string>> = {
  customers: 'customer_id',
  orders: 'order_id',
  subscriptions: 'subscription_id',
  tickets: 'ticket_id',
  invoices: 'invoice_id',
  surveys: 'response_id',
};

const STATE_FILE = '_warehouse_state.json';
const STATE_VERSION = 1;
const FILE_RE = /^run-\d{6}-(?:part-\d{6}|all)\.parquet(?:\.tmp)?$/;
const DUCKDB_TMP = '.duckdb-tmp';

type CursorKind = 'integer' | 'decimal' | 'timestamp' | 'text';

interface LandingState {
  version: number;
  fingerprint: string;
  run: number;
  /** File names (relative to the landing folder), oldest first. */
  files: string[];
  cursor: { column: string; kind: CursorKind; max: string } | null;
  rows: number | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Value conversion: everything lands as exact text.

const PG_BOOL = 16;
const PG_TIMESTAMP = 1114;
const PG_TIMESTAMPTZ = 1184;

const identity = (value: string): string => value;
const pgBool = (value: string): string => (value === 't' ? 'true' : value === 'f' ? 'false' : value);

const TS_RE =
  /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|(Z))?$/;

/**
 * A server's timestamp text as ISO-8601: with an offset it is converted to UTC (`...Z`, microseconds kept), without
 * one it stays naive (`2024-01-02T03:04:05`). Values it does not recognise (infinity, BC, years > 9999) are kept.
 */
export function isoTimestamp(text: string): string {
  // Fast path: the server's UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]+00` (session TimeZone is UTC).
  if (text.length >= 22 && text.charCodeAt(10) === 32 && text.endsWith('+00') && text.charCodeAt(4) === 45) {
    return `${text.slice(0, 10)}T${text.slice(11, -3)}Z`;
  }
  const m = TS_RE.exec(text);
  if (!m) return text;
  const [, date, time, frac = '', sign, hh, mm, ss, zulu] = m;
  if (!sign && !zulu) return `${date}T${time}${frac}`;
  const offsetSeconds = sign
    ? (sign === '-' ? -1 : 1) * (Number(hh) * 3600 + Number(mm ?? 0) * 60 + Number(ss ?? 0))
    : 0;
  if (offsetSeconds === 0) return `${date}T${time}${frac}Z`;
  const utc = Date.parse(`${date}T${time}Z`) - offsetSeconds * 1000;
  if (Number.isNaN(utc)) return text;
  return `${new Date(utc).toISOString().slice(0, 19)}${frac}Z`;
}

/** pg type parsers that keep the server's text (no Date, no float): int8/numeric stay exact. */
const PG_TEXT_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number) => {
    if (oid === PG_BOOL) return pgBool;
    if (oid === PG_TIMESTAMP || oid === PG_TIMESTAMPTZ) return isoTimestamp;
    return identity;
  }) as unknown as typeof pg.types.getTypeParser,
};

/** pg-cursor with the text type parsers (kysely constructs the cursor with (sql, parameters) only). */
class TextCursor<T> extends Cursor<T> {
  constructor(text: string, values: unknown[]) {
    super(text, values, { types: PG_TEXT_TYPES });
  }
}

/** mysql2 type cast: every value as the server's exact text; TINYINT(1)/BIT(1) as booleans, TIMESTAMP in UTC. */
const mysqlTypeCast: TypeCast = (field, next) => {
  switch (field.type) {
    case 'TINY': {
      const text = field.string();
      // TINYINT(1) is MySQL's BOOLEAN; a value other than 0/1 in one is kept as the number it is.
      if (text === null || field.length !== 1) return text;
      return text === '0' ? 'false' : text === '1' ? 'true' : text;
    }
    case 'BIT': {
      const bytes = field.buffer();
      if (bytes === null) return null;
      const value = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
      return field.length === 1 ? String(value === 1n) : value.toString();
    }
    case 'TIMESTAMP':
    case 'TIMESTAMP2': {
      // The session time zone is UTC (set on every connection): the text is a UTC instant.
      const text = field.string();
      return text === null ? null : isoTimestamp(`${text}Z`);
    }
    case 'DATETIME':
    case 'DATETIME2': {
      const text = field.string();
      return text === null ? null : isoTimestamp(text);
    }
    case 'TINY_BLOB':
    case 'MEDIUM_BLOB':
    case 'LONG_BLOB':
    case 'BLOB':
    case 'STRING':
    case 'VAR_STRING':
    case 'VARCHAR':
    case 'GEOMETRY':
      // Text columns come back as strings, binary ones as Buffers (landed as \x hex).
      return next();
    default:
      return field.string();
  }
};

/** A driver value as landed text. */
function toText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------------------------
// Cursor values and overlap.

function cursorKind(value: string): CursorKind {
  if (/^-?\d+$/.test(value)) return 'integer';
  if (/^-?\d+\.\d+$/.test(value)) return 'decimal';
  if (TS_RE.test(value) || /^\d{4}-\d\d-\d\d$/.test(value)) return 'timestamp';
  return 'text';
}

function decimalParts(value: string, scale: number): bigint {
  const negative = value.startsWith('-');
  const [int = '0', frac = ''] = (negative ? value.slice(1) : value).split('.');
  const scaled = BigInt(int + frac.padEnd(scale, '0').slice(0, scale));
  return negative ? -scaled : scaled;
}

function fracDigits(value: string): number {
  const dot = value.indexOf('.');
  return dot < 0 ? 0 : value.length - dot - 1;
}

/** A fixed-width, lexicographically ordered form of a landed timestamp. */
function timestampKey(value: string): string {
  const m = TS_RE.exec(value);
  if (!m) return value.length === 10 ? `${value}T00:00:00.000000` : value;
  return `${m[1]}T${m[2]}${(m[3] ?? '.').padEnd(7, '0')}`;
}

/** Compares two cursor values of the same kind; values that do not fit the kind compare as text. */
export function compareCursor(a: string, b: string, kind: CursorKind): number {
  if (a === b) return 0;
  if (kind === 'integer' || kind === 'decimal') {
    if (/^-?\d+(\.\d+)?$/.test(a) && /^-?\d+(\.\d+)?$/.test(b)) {
      const scale = Math.max(fracDigits(a), fracDigits(b));
      const x = decimalParts(a, scale);
      const y = decimalParts(b, scale);
      return x < y ? -1 : x > y ? 1 : 0;
    }
  } else if (kind === 'timestamp') {
    const x = timestampKey(a);
    const y = timestampKey(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : 1;
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** An interval string ('2 hours', '1 day 6 hours', '90m') in milliseconds; undefined when it is not one. */
export function parseInterval(text: string): number | undefined {
  const parts = text
    .trim()
    .toLowerCase()
    .match(/(\d+(?:\.\d+)?)\s*([a-z]+)/g);
  if (!parts || parts.join('').replace(/\s+/g, '') !== text.trim().toLowerCase().replace(/\s+/g, '')) {
    return undefined;
  }
  let total = 0;
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(part);
    const unit = m ? UNIT_MS[m[2] ?? ''] : undefined;
    if (!m || unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return total;
}

/**
 * The lower bound of an incremental read: `last - overlap`, computed here so that one parameter works on every
 * dialect. Timestamps keep their shape (UTC `...Z`, naive, or date-only); a bound below the exact value is safe
 * (a few more rows are re-read and deduplicated).
 */
export function cursorLowerBound(
  last: string,
  kind: CursorKind,
  overlap: string | number | undefined,
): string {
  if (overlap === undefined || overlap === 0 || overlap === '') return last;
  if (kind === 'integer' || kind === 'decimal') {
    const text = String(overlap).trim();
    if (!/^\d+(\.\d+)?$/.test(text)) {
      throw new Error(
        `overlap ${JSON.stringify(overlap)} is not a number, but the cursor column holds numbers`,
      );
    }
    const scale = Math.max(fracDigits(last), fracDigits(text));
    const value = decimalParts(last, scale) - decimalParts(text, scale);
    if (scale === 0) return value.toString();
    const negative = value < 0n;
    const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
    return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  if (kind === 'timestamp') {
    const ms = typeof overlap === 'number' ? undefined : parseInterval(overlap);
    if (ms === undefined) {
      throw new Error(
        `overlap ${JSON.stringify(overlap)} is not an interval such as "2 hours", but the cursor column holds timestamps`,
      );
    }
    const m = TS_RE.exec(last);
    const dateOnly = /^\d{4}-\d\d-\d\d$/.test(last);
    if (!m && !dateOnly) return last;
    const base = dateOnly
      ? Date.parse(`${last}T00:00:00Z`)
      : Date.parse(`${m?.[1]}T${m?.[2]}${(m?.[3] ?? '').slice(0, 4)}Z`);
    if (Number.isNaN(base)) return last;
    const iso = new Date(Math.floor(base - ms)).toISOString();
    if (dateOnly) return iso.slice(0, 10);
    return m?.[8] || m?.[4] ? iso : iso.slice(0, -1);
  }
  throw new Error(
    `overlap is only supported for numeric and timestamp cursor columns, not for text values like "${last}"`,
  );
}

/**
 * Batches of rows pulled from `source` ahead of the consumer (at most about `ahead` rows buffered): while the
 * consumer appends one batch, the driver already fetches the next (kysely's stream only asks the cursor for more
 * once the current batch is consumed). Stopping early (break, throw) closes `source`.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, ahead: number): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]();
  let buffer: T[] = [];
  let finished = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let space: (() => void) | undefined;
  const pump = (async () => {
    try {
      while (!stopped) {
        const next = await it.next();
        if (next.done) break;
        buffer.push(next.value);
        wake?.();
        while (buffer.length >= ahead && !stopped) await new Promise<void>((resolve) => (space = resolve));
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      wake?.();
    }
  })();
  try {
    for (;;) {
      if (buffer.length === 0 && !finished) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      // Let the pump move the rest of the driver's current batch (microtasks) before taking the buffer.
      if (!finished) await new Promise<void>((resolve) => setImmediate(resolve));
      if (failure) throw failure.error;
      if (buffer.length === 0 && finished) return;
      const batch = buffer;
      buffer = [];
      space?.();
      space = undefined;
      yield batch;
    }
  } finally {
    stopped = true;
    space?.();
    await pump;
    await it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** The connection URL without its password, for messages: `postgres://user@host:5432/db`. */
function redactedLocation(connection: string): string {
  try {
    const url = new URL(connection);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${url.protocol}//${user}${url.host}${url.pathname}`;
  } catch {
    return '(connection URL not parseable)';
  }
}

function mappedSourceColumn(mapping: ColumnMapping | undefined, canonical: string): string | undefined {
  if (mapping === undefined) return canonical;
  if (typeof mapping === 'string') return mapping;
  if ('column' in mapping) return mapping.column;
  return undefined;
}

function closeQuietly(appender: { closeSync(): void }): void {
  try {
    appender.closeSync();
  } catch {
    // already closed
  }
}

function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorMessage(err.errors[0]);
  if (err instanceof Error) return err.message || errorCode(err) || err.name;
  return String(err);
}

export class WarehouseSource implements Source {
  private kysely: Kysely<AnyDb> | undefined;
  private pgPool: pg.Pool | undefined;
  private mysqlPool: MysqlPool | undefined;
  private readonly rowsPerFile: number;
  private readonly memoryLimit: string;
  /** What the last land() did. */
  lastLand: WarehouseLandStats | undefined;

  constructor(
    private readonly config: WarehouseSourceConfig,
    options: WarehouseSourceOptions = {},
  ) {
    this.rowsPerFile = Math.max(1, options.rowsPerFile ?? Math.max(config.batch_size, 250_000));
    this.memoryLimit = options.memoryLimit ?? '1GB';
  }

  /** How a user names where the rows come from: `postgres table public.orders`, `mysql query`. */
  get origin(): string {
    const { dialect, schema, table } = this.config;
    if (table === undefined) return `${dialect} query`;
    return `${dialect} table ${schema ? `${schema}.` : ''}${table}`;
  }

  private get location(): string {
    return redactedLocation(this.config.connection);
  }

  private fail(entity: Entity, problem: string): SourceError {
    let message = `${entity} source (${this.origin} at ${this.location}): ${problem}`;
    // A driver message never contains the password, but make sure.
    try {
      const password = decodeURIComponent(new URL(this.config.connection).password);
      if (password.length >= 3) message = message.split(password).join('***');
    } catch {
      // not a URL: already reported by connect()
    }
    return new SourceError(message);
  }

  /** A driver error as a SourceError that says what is wrong in the user's terms. */
  private explain(entity: Entity, err: unknown, doing: string): SourceError {
    if (err instanceof SourceError) return err;
    return this.fail(entity, `${doing}: ${this.problem(err)}`);
  }

  /** What a driver error means, in the user's terms. */
  private problem(err: unknown): string {
    const code = errorCode(err);
    const message = errorMessage(err);
    const { schema, table } = this.config;
    const what = table === undefined ? 'the query' : `table ${schema ? `${schema}.` : ''}${table}`;
    let problem: string;
    switch (code) {
      case '28P01':
      case '28000':
      case 'ER_ACCESS_DENIED_ERROR':
      case 'ER_DBACCESS_DENIED_ERROR':
        problem = `bad credentials: ${message}; check the user and password of the connection`;
        break;
      case '3D000':
      case 'ER_BAD_DB_ERROR':
        problem = `unknown database: ${message}`;
        break;
      case '3F000':
        problem = `unknown schema "${this.config.schema ?? ''}": ${message}`;
        break;
      case '42P01':
      case 'ER_NO_SUCH_TABLE':
        problem = `unknown table: ${what} does not exist (${message})`;
        break;
      case '42703':
      case 'ER_BAD_FIELD_ERROR':
        problem = `unknown column: ${message}`;
        break;
      case '42501':
      case 'ER_TABLEACCESS_DENIED_ERROR':
      case 'ER_COLUMNACCESS_DENIED_ERROR':
        problem = `permission denied on ${what}: ${message}`;
        break;
      case '42601':
      case 'ER_PARSE_ERROR':
        problem = `SQL syntax error in ${what}: ${message}`;
        break;
      case 'ECONNREFUSED':
        problem = 'cannot connect: connection refused (is the server running and the host/port right?)';
        break;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        problem = 'cannot connect: unknown host';
        break;
      case 'ETIMEDOUT':
        problem = 'cannot connect: connection timed out';
        break;
      default:
        problem = `${message}${code ? ` (${code})` : ''}`;
    }
    return problem;
  }

  private connect(entity: Entity): Kysely<AnyDb> {
    if (this.kysely) return this.kysely;
    const { config } = this;
    let url: URL;
    try {
      url = new URL(config.connection);
    } catch {
      throw this.fail(
        entity,
        `connection is not a valid URL (expected ${config.dialect}://user:password@host:port/database)`,
      );
    }
    if (config.dialect === 'postgres') {
      // Our session settings are merged with the URL's own `options` (the URL's would otherwise replace them):
      // timestamps come back in UTC and ISO style whatever the server's defaults.
      const userOptions = url.searchParams.get('options');
      url.searchParams.delete('options');
      const pool = new pg.Pool({
        connectionString: url.toString(),
        options: [userOptions, '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601']
          .filter(Boolean)
          .join(' '),
        types: PG_TEXT_TYPES,
        max: 2,
        connectionTimeoutMillis: 30_000,
        application_name: 'churn-pipeline',
      });
      // An idle client's error (server restart) must not crash the process; the next query reports it.
      pool.on('error', () => {});
      this.pgPool = pool;
      this.kysely = new Kysely<AnyDb>({ dialect: new PostgresDialect({ pool, cursor: TextCursor }) });
    } else {
      const pool = createPool({
        uri: config.connection,
        typeCast: mysqlTypeCast,
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        connectionLimit: 2,
        connectTimeout: 30_000,
      });
      // TIMESTAMP columns are read in UTC (and the cursor bound is compared in UTC).
      pool.on('connection', (conn) => {
        conn.query("SET time_zone = '+00:00'", () => {});
      });
      this.mysqlPool = pool;
      this.kysely = new Kysely<AnyDb>({ dialect: new MysqlDialect({ pool }) });
    }
    return this.kysely;
  }

  private validate(entity: Entity): void {
    const { table, query } = this.config;
    if ((table === undefined) === (query === undefined)) {
      throw this.fail(entity, 'set exactly one of "table" or "query"');
    }
  }

  /** `select * from <table>` (identifiers quoted by kysely) or `select * from (<query>) as src`. */
  private selectAll(db: Kysely<AnyDb>): SourceQuery {
    const { schema, table, query } = this.config;
    if (query !== undefined) {
      const text = query.trim().replace(/;\s*$/, '');
      return db.selectFrom(sql<SourceRow>`(${sql.raw(text)})`.as('src')).selectAll();
    }
    const name = table ?? '';
    const scoped = schema ? db.withSchema(schema) : db;
    // kysely reads `a.b` as schema.table and `x as y` as an alias: such names go through sql.id instead.
    if (name.includes('.') || /\s+as\s+/i.test(name)) {
      const id = schema ? sql.id(schema, name) : sql.id(name);
      return db.selectFrom(sql<SourceRow>`${id}`.as('src')).selectAll();
    }
    return scoped.selectFrom(name).selectAll() as SourceQuery;
  }

  /** Column names and order of a query's result, from a `limit 0` execution. */
  private async columnsOf(query: Compilable): Promise<string[]> {
    const compiled = query.compile();
    if (this.pgPool) {
      // The extended protocol (as the cursor uses) runs exactly one statement, even without parameters.
      const config: pg.QueryConfig & { queryMode: 'extended' } = {
        text: compiled.sql,
        values: [...compiled.parameters],
        types: PG_TEXT_TYPES,
        queryMode: 'extended',
      };
      const result = await this.pgPool.query(config);
      return result.fields.map((f) => f.name);
    }
    const pool = this.mysqlPool;
    if (!pool) throw new Error('not connected');
    return await new Promise<string[]>((resolve, reject) => {
      pool.query(compiled.sql, [...compiled.parameters], (err, _rows, fields: FieldPacket[] | undefined) => {
        if (err) reject(err);
        else resolve((fields ?? []).map((f) => f.name));
      });
    });
  }

  /** The source's columns; fails when two of them would collide in DuckDB (which ignores case). */
  private async probe(entity: Entity, query: SourceQuery, doing: string): Promise<string[]> {
    let columns: string[];
    try {
      columns = await this.columnsOf(query.limit(0));
    } catch (err) {
      throw this.explain(entity, err, doing);
    }
    const seen = new Map<string, string>();
    for (const column of columns) {
      const prior = seen.get(column.toLowerCase());
      if (prior !== undefined) {
        throw this.fail(
          entity,
          `the result has two columns named "${prior}" and "${column}" (names are case-insensitive when landed); alias one of them in a query`,
        );
      }
      seen.set(column.toLowerCase(), column);
    }
    return columns;
  }

  /** Columns the config needs from the source: mapped (or canonical) columns, the cursor and the key. */
  private requiredColumns(entity: Entity): { name: string; why: string; exact: boolean; or?: string }[] {
    const { columns, cursor_column, key } = this.config;
    const needed: { name: string; why: string; exact: boolean; or?: string }[] = [];
    const spec = ENTITY_COLUMNS[entity];
    for (const canonical of spec.required) {
      const mapping = columns[canonical];
      const source = mappedSourceColumn(mapping, canonical);
      if (source !== undefined) {
        needed.push({
          name: source,
          why: mapping === undefined ? `required ${canonical}` : `mapped to ${canonical}`,
          exact: false,
        });
      }
    }
    for (const [canonical, mapping] of Object.entries(columns)) {
      if (spec.required.includes(canonical)) continue;
      const source = mappedSourceColumn(mapping, canonical);
      if (source !== undefined) needed.push({ name: source, why: `mapped to ${canonical}`, exact: false });
    }
    // Postgres identifiers are case-sensitive once quoted (the cursor goes into the source SQL); MySQL's are not.
    const exactCursor = this.config.dialect === 'postgres';
    if (cursor_column) needed.push({ name: cursor_column, why: 'cursor_column', exact: exactCursor });
    // A key names a source column, or a canonical column mapped to one.
    for (const k of key ?? []) {
      const mapped = mappedSourceColumn(columns[k], k);
      needed.push({ name: k, why: 'key', exact: false, ...(mapped !== k && mapped ? { or: mapped } : {}) });
    }
    return needed;
  }

  async check(ctx: SourceContext): Promise<void> {
    const { entity } = ctx;
    this.validate(entity);
    const db = this.connect(entity);
    const columns = await this.probe(entity, this.selectAll(db), 'cannot read');
    const exact = new Set(columns);
    const folded = new Map(columns.map((c) => [c.toLowerCase(), c]));
    const problems: string[] = [];
    for (const need of this.requiredColumns(entity)) {
      if (exact.has(need.name) || (need.or !== undefined && folded.has(need.or.toLowerCase()))) continue;
      const other = folded.get(need.name.toLowerCase());
      if (other !== undefined && !need.exact) continue;
      problems.push(
        `missing column "${need.name}" (${need.why})${other !== undefined ? `; did you mean "${other}"?` : ''}`,
      );
    }
    if (problems.length > 0) {
      throw this.fail(
        entity,
        `${problems.join('; ')}. The source has: ${columns.map((c) => `"${c}"`).join(', ')}`,
      );
    }
    if (this.config.cursor_column && this.config.overlap !== undefined) {
      const { overlap } = this.config;
      if (
        typeof overlap === 'string' &&
        parseInterval(overlap) === undefined &&
        !/^\d+(\.\d+)?$/.test(overlap)
      ) {
        throw this.fail(
          entity,
          `overlap ${JSON.stringify(overlap)} is neither an interval ("2 hours") nor a number`,
        );
      }
    }
    await this.whereCondition(entity, this.selectAll(db), columns);
    ctx.log.debug({ entity, origin: this.origin, columns: columns.length }, 'warehouse source reachable');
  }

  /**
   * `where:` as a kysely condition over the source's columns, checked by the warehouse on a `limit 0` query; none
   * when there is no `where:`.
   */
  private async whereCondition(
    entity: Entity,
    base: SourceQuery,
    columns: string[],
  ): Promise<RawBuilder<SqlBool> | undefined> {
    const text = this.config.where;
    if (text === undefined) return undefined;
    const key = `sources.${entity}.where`;
    const parsed: SqlNode = (await parseExpression(undefined, text, key)).ast;
    let condition: RawBuilder<SqlBool>;
    try {
      condition = pushdownWhere(parsed, this.config.dialect, columns);
    } catch (err) {
      if (!(err instanceof PushdownError)) throw err;
      throw this.fail(entity, `${key} ${JSON.stringify(text)}: ${err.message}`);
    }
    try {
      await this.columnsOf(base.where(condition).limit(0));
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw this.fail(
        entity,
        `${key} ${JSON.stringify(text)} does not work on the warehouse: ${this.problem(err)}`,
      );
    }
    return condition;
  }

  /** The source columns that name a landed row for a user: the entity key, else what identifies an event. */
  private rowKeyColumns(entity: Entity, columns: string[]): string[] {
    const find = (name: string): string | undefined =>
      columns.includes(name) ? name : columns.find((c) => c.toLowerCase() === name.toLowerCase());
    const resolve = (name: string): string | undefined =>
      find(name) ?? find(mappedSourceColumn(this.config.columns[name], name) ?? '');
    const pick = (names: readonly string[]) => [
      ...new Set(names.map(resolve).filter((c): c is string => c !== undefined)),
    ];
    if (this.config.key && this.config.key.length > 0) {
      const key = pick(this.config.key);
      if (key.length > 0) return key;
    }
    const id = ENTITY_ID[entity];
    if (id !== undefined && resolve(id) !== undefined) return pick([id]);
    // Events have no id: the customer and the entity's required columns (its timestamp, its type) find them.
    return pick(['customer_id', 'email', ...ENTITY_COLUMNS[entity].required]);
  }

  private fingerprint(): string {
    const { dialect, schema, table, query, cursor_column, key, where: filter } = this.config;
    const where = this.location; // host, port, database and user, never the password
    return createHash('sha256')
      .update(
        JSON.stringify({
          v: STATE_VERSION,
          dialect,
          where,
          schema,
          table,
          query,
          cursor_column,
          key,
          filter,
        }),
      )
      .digest('hex')
      .slice(0, 16);
  }

  private async readState(dir: string, log: Logger): Promise<LandingState | undefined> {
    let text: string;
    try {
      text = await readFile(join(dir, STATE_FILE), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const state = JSON.parse(text) as LandingState;
      if (state.version !== STATE_VERSION || !Array.isArray(state.files)) return undefined;
      return state;
    } catch {
      log.warn(
        { file: join(dir, STATE_FILE) },
        'unreadable warehouse landing state: extracting everything again',
      );
      return undefined;
    }
  }

  async land(ctx: SourceContext): Promise<Landed> {
    const started = Date.now();
    const { entity, landingDir: dir, log } = ctx;
    this.validate(entity);
    await mkdir(dir, { recursive: true });
    const cursorColumn = this.config.cursor_column;
    const fingerprint = this.fingerprint();
    const prior = await this.readState(dir, log);
    if (prior && prior.fingerprint !== fingerprint) {
      log.info({ entity }, 'warehouse source config changed since the last run: extracting everything again');
    }
    const state = prior?.fingerprint === fingerprint ? prior : undefined;
    // Leftovers of a killed run: files the state does not list (the listed ones stay until this run succeeds).
    const keep = new Set(prior?.files ?? []);
    for (const name of await readdir(dir)) {
      if ((FILE_RE.test(name) && !keep.has(name)) || name === DUCKDB_TMP) {
        await rm(join(dir, name), { recursive: true, force: true });
      }
    }
    const incremental =
      cursorColumn !== undefined && state?.cursor != null && state.cursor.column === cursorColumn;
    const run = (prior?.run ?? 0) + 1;
    const runTag = `run-${String(run).padStart(6, '0')}`;

    const db = this.connect(entity);
    const base = this.selectAll(db);
    const condition = this.config.where
      ? await this.whereCondition(entity, base, await this.probe(entity, base, 'cannot read'))
      : undefined;
    let query = condition ? base.where(condition) : base;
    /** Re-read rows that no longer match `where:` (incremental runs): their keys leave the landing. */
    let dropped: SourceQuery | undefined;
    let lowerBound: string | null = null;
    let kind: CursorKind | undefined = incremental ? state?.cursor?.kind : undefined;
    if (incremental && state?.cursor && cursorColumn) {
      try {
        lowerBound = cursorLowerBound(state.cursor.max, state.cursor.kind, this.config.overlap);
      } catch (err) {
        throw this.fail(entity, `cursor_column "${cursorColumn}": ${errorMessage(err)}`);
      }
      const bound: string | bigint =
        this.config.dialect === 'mysql' && state.cursor.kind === 'integer'
          ? BigInt(lowerBound)
          : this.config.dialect === 'mysql' && state.cursor.kind === 'timestamp'
            ? lowerBound.replace('T', ' ').replace(/Z$/, '')
            : lowerBound;
      const since = sql<boolean>`${sql.id(cursorColumn)} >= ${bound}`;
      query = query.where(since);
      if (condition) dropped = base.where(since).where(sql<boolean>`not coalesce(${condition}, false)`);
    }
    const columns = await this.probe(entity, query, 'cannot read');
    // MySQL matches column names case-insensitively (Postgres has already failed on a mismatch).
    const cursorIndex = cursorColumn
      ? Math.max(
          columns.indexOf(cursorColumn),
          columns.findIndex((c) => c.toLowerCase() === cursorColumn.toLowerCase()),
        )
      : -1;
    if (cursorColumn && cursorIndex < 0) {
      throw this.fail(entity, `missing column "${cursorColumn}" (cursor_column)`);
    }
    log.info(
      { entity, origin: this.origin, mode: incremental ? 'incremental' : 'full', lowerBound },
      'warehouse extraction started',
    );

    const duck = await Db.open({ memoryLimit: this.memoryLimit, tempDirectory: join(dir, DUCKDB_TMP) });
    const newFiles: string[] = [];
    let rowsExtracted = 0;
    let cursorMax: string | null = incremental ? (state?.cursor?.max ?? null) : null;
    let rowsLanded: number | null = null;
    try {
      const tableDdl = `create table landing (${columns.map((c) => `${sqlIdent(c)} varchar`).join(', ')})`;
      await duck.run(tableDdl);
      let appendMs = 0;
      let writeMs = 0;
      // The buffer table is written to a numbered Parquet file and recreated every rowsPerFile rows.
      const writeBuffer = async (): Promise<void> => {
        const t0 = performance.now();
        const name = `${runTag}-part-${String(newFiles.length + 1).padStart(6, '0')}.parquet`;
        const path = join(dir, name);
        await duck.run(`copy landing to ${sqlString(`${path}.tmp`)} (format parquet, compression snappy)`);
        await rename(`${path}.tmp`, path);
        newFiles.push(name);
        await duck.run('drop table landing');
        await duck.run(tableDdl);
        writeMs += performance.now() - t0;
        log.debug({ entity, file: name, rows: rowsExtracted }, 'warehouse chunk file written');
      };
      let appender: DuckDBAppender | undefined;
      let buffered = 0;
      try {
        const batchSize = this.config.batch_size;
        for await (const rows of readAhead(query.stream(batchSize), batchSize)) {
          const t0 = performance.now();
          const w0 = writeMs;
          for (const row of rows) {
            appender ??= await duck.conn.createAppender('landing');
            for (let i = 0; i < columns.length; i++) {
              const value = toText(row[columns[i] as string]);
              if (value === null) appender.appendNull();
              else appender.appendVarchar(value);
              if (i === cursorIndex && value !== null) {
                kind ??= cursorKind(value);
                if (cursorMax === null || compareCursor(value, cursorMax, kind) > 0) cursorMax = value;
              }
            }
            appender.endRow();
            rowsExtracted++;
            if (++buffered >= this.rowsPerFile) {
              appender.closeSync(); // flushes the appended rows into the table
              appender = undefined;
              await writeBuffer();
              buffered = 0;
            }
          }
          appendMs += performance.now() - t0 - (writeMs - w0);
        }
        appender?.closeSync();
        appender = undefined;
      } catch (err) {
        throw this.explain(entity, err, `extraction failed after ${rowsExtracted} rows`);
      } finally {
        if (appender) closeQuietly(appender);
      }
      // The last partial file; an empty first extract still lands one (empty) file that carries the columns.
      if (buffered > 0 || (newFiles.length === 0 && !incremental)) await writeBuffer();

      // Keys of re-read rows that no longer match `where:` (soft-deleted, status changed): they leave the landing.
      let rowsDropped = 0;
      let droppedKey: string[] | undefined;
      if (dropped) {
        const key = this.dedupKey(entity, columns, log);
        if (key.length === columns.length) {
          log.warn(
            { entity },
            'no key column: rows that stop matching `where:` stay landed until the next full extraction; set `key`',
          );
        } else {
          droppedKey = key;
          await duck.run(`create table gone (${key.map((_, i) => `k${i} varchar`).join(', ')})`);
          let gone: DuckDBAppender | undefined;
          try {
            // Only the key columns travel.
            const keys = dropped
              .clearSelect()
              .select(key.map((k, i) => sql<unknown>`${sql.id(k)}`.as(`k${i}`)));
            for await (const rows of readAhead(keys.stream(this.config.batch_size), this.config.batch_size)) {
              for (const row of rows as SourceRow[]) {
                gone ??= await duck.conn.createAppender('gone');
                for (let i = 0; i < key.length; i++) {
                  const value = toText(row[`k${i}`]);
                  if (value === null) gone.appendNull();
                  else gone.appendVarchar(value);
                }
                gone.endRow();
                rowsDropped++;
              }
            }
            gone?.closeSync();
            gone = undefined;
          } catch (err) {
            throw this.explain(entity, err, 'reading the rows that no longer match `where:` failed');
          } finally {
            if (gone) closeQuietly(gone);
          }
        }
      }

      if (cursorColumn && cursorMax === null && rowsExtracted > 0) {
        log.warn(
          { entity, cursorColumn },
          'the cursor column is null in every row: the next run extracts everything again',
        );
      }
      let files: string[];
      if (!cursorColumn) {
        files = newFiles;
      } else if (newFiles.length === 0 && rowsDropped === 0) {
        files = state?.files ?? [];
        rowsLanded = state?.rows ?? null;
      } else {
        const merged = `${runTag}-all.parquet`;
        const inputs = [...(incremental ? (state?.files ?? []) : []), ...newFiles];
        rowsLanded = await this.compact(
          duck,
          dir,
          inputs,
          merged,
          cursorColumn,
          kind ?? 'text',
          entity,
          log,
          {
            dropped: rowsDropped > 0 ? droppedKey : undefined,
          },
        );
        files = [merged];
      }
      const next: LandingState = {
        version: STATE_VERSION,
        fingerprint,
        run,
        files,
        cursor:
          cursorColumn && cursorMax !== null
            ? { column: cursorColumn, kind: kind ?? 'text', max: cursorMax }
            : null,
        rows: rowsLanded,
      };
      await writeFile(join(dir, `${STATE_FILE}.tmp`), `${JSON.stringify(next, null, 2)}\n`);
      await rename(join(dir, `${STATE_FILE}.tmp`), join(dir, STATE_FILE));
      const current = new Set(files);
      for (const name of await readdir(dir)) {
        if (FILE_RE.test(name) && !current.has(name)) await rm(join(dir, name), { force: true });
      }
      this.lastLand = {
        mode: incremental ? 'incremental' : 'full',
        lowerBound,
        rowsExtracted,
        filesWritten: newFiles.length,
        rowsLanded,
        cursorMax,
        rowsDropped,
        ms: Date.now() - started,
        appendMs: Math.round(appendMs),
        writeMs: Math.round(writeMs),
      };
      log.info({ entity, origin: this.origin, ...this.lastLand }, 'warehouse extraction done');
      return {
        files: files.map((name) => ({ path: join(dir, name), origin: this.origin })),
        format: 'parquet',
        whereApplied: condition !== undefined,
        rowKey: { columns: this.rowKeyColumns(entity, columns), quoting: this.config.dialect },
      };
    } catch (err) {
      // This run's files are not listed in the state: remove them now (the next run would otherwise).
      for (const name of newFiles) await rm(join(dir, name), { force: true });
      throw err;
    } finally {
      duck.close();
      await rm(join(dir, DUCKDB_TMP), { recursive: true, force: true });
    }
  }

  /** The deduplication key among the landed columns: `key`, else the entity's id column, else every column. */
  private dedupKey(entity: Entity, landed: string[], log: Logger): string[] {
    const find = (name: string): string | undefined =>
      landed.includes(name) ? name : landed.find((c) => c.toLowerCase() === name.toLowerCase());
    const resolve = (name: string): string | undefined => {
      const direct = find(name);
      if (direct !== undefined) return direct;
      const mapped = mappedSourceColumn(this.config.columns[name], name);
      return mapped === undefined ? undefined : find(mapped);
    };
    if (this.config.key && this.config.key.length > 0) {
      const key = this.config.key.map((k) => {
        const column = resolve(k);
        if (column === undefined) throw this.fail(entity, `missing column "${k}" (key)`);
        return column;
      });
      return key;
    }
    const id = ENTITY_ID[entity];
    const column = id === undefined ? undefined : resolve(id);
    if (column !== undefined) return [column];
    log.debug({ entity }, 'no id column: incremental landing deduplicates on all columns');
    return landed;
  }

  /** Merges the landed files into one, one row per key: the highest cursor, then the newest file. */
  private async compact(
    duck: Db,
    dir: string,
    inputs: string[],
    output: string,
    cursorColumn: string,
    kind: CursorKind,
    entity: Entity,
    log: Logger,
    options: { dropped?: string[] } = {},
  ): Promise<number> {
    const seq = '__churn_seq';
    const parts = inputs.map(
      (name, i) => `select *, ${i} as ${seq} from read_parquet(${sqlString(join(dir, name))})`,
    );
    await duck.run(`create or replace temp view landed as ${parts.join(' union all by name ')}`);
    const landed = (await duck.all<{ column_name: string }>('describe landed'))
      .map((r) => r.column_name)
      .filter((c) => c !== seq);
    const key = this.dedupKey(entity, landed, log);
    const c = sqlIdent(cursorColumn);
    const typed =
      kind === 'integer'
        ? `try_cast(${c} as hugeint)`
        : kind === 'decimal'
          ? `try_cast(${c} as double)`
          : kind === 'timestamp'
            ? `try_cast(${c} as timestamptz)`
            : c;
    const keyCols = key.map(sqlIdent);
    // Rows with a null key part are not one entity: they are deduplicated on the whole row instead.
    const partition =
      key.length === landed.length
        ? keyCols
        : [
            ...keyCols,
            `case when ${keyCols.map((k) => `${k} is null`).join(' or ')} then row(${landed.map(sqlIdent).join(', ')}) end`,
          ];
    const order = [
      `${typed} desc nulls last`,
      `${seq} desc`,
      ...landed.map((col) => `${sqlIdent(col)} desc nulls last`),
    ];
    // Every version of a key that no longer matches `where:` leaves (the `gone` table of land()).
    const dropped = options.dropped;
    const gone =
      dropped && dropped.length > 0 && dropped.every((k) => landed.includes(k))
        ? `where not exists (select 1 from gone where ${dropped.map((k, i) => `gone.k${i} = landed.${sqlIdent(k)}`).join(' and ')})`
        : '';
    const path = join(dir, output);
    await duck.run(
      `copy (select * exclude (${seq}) from landed ${gone} qualify row_number() over (partition by ${partition.join(', ')} order by ${order.join(', ')}) = 1) to ${sqlString(`${path}.tmp`)} (format parquet, compression zstd)`,
    );
    await rename(`${path}.tmp`, path);
    const before = await duck.number('select count(*) from landed');
    const after = await duck.number(`select count(*) from read_parquet(${sqlString(path)})`);
    log.debug({ entity, key, rowsBefore: before, rowsAfter: after }, 'warehouse landing compacted');
    return after;
  }

  async close(): Promise<void> {
    const db = this.kysely;
    this.kysely = undefined;
    this.pgPool = undefined;
    this.mysqlPool = undefined;
    if (db) await db.destroy();
  }
}
