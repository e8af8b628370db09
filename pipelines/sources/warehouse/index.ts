// A SQL warehouse source (PostgreSQL, MySQL/MariaDB): streams a table or a query into local Parquet files.
// One file per dialect (postgres.ts, mysql.ts) behind the WarehouseDialect interface (dialect.ts); the incremental
// state and cursor arithmetic they share in state.ts; compaction in compact.ts; error wording in errors.ts.
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
// In a shard run (`churn run --shard I/N`) the shard's condition is added to the query where that is exact
// (shard.ts): the warehouse hashes customer_id as the pipeline does, and the shard extracts its customers' rows and
// those its checks need, not the whole table.
//
// Landed rows are named by their entity key (`postgres table public.orders where order_id = 'O-17'`) in the
// quarantine, not by a row number of a landing file.
//
// The connection URL holds a password: it is never logged nor put in an error message.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBAppender } from '@duckdb/node-api';
import { type Compilable, type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  type ColumnMapping,
  ENTITY_COLUMNS,
  type Entity,
  type WarehouseSourceConfig,
} from '../../../config/schema.js';
import { Db, sqlIdent, sqlString } from '../../base/duckdb.js';
import type { Logger } from '../../base/log.js';
import { parseExpression, type SqlNode } from '../expression.js';
import { PushdownError, pushdownWhere } from '../pushdown.js';
import { type Landed, type Source, type SourceContext, SourceError } from '../source.js';
import { compact } from './compact.js';
import type { SourceQuery, SourceRow, WarehouseDialect } from './dialect.js';
import { describeProblem, errorCode, errorMessage, redactedLocation, sourceError } from './errors.js';
import { mysqlDialect } from './mysql.js';
import { postgresDialect } from './postgres.js';
import { readAhead } from './read-ahead.js';
import { countQuery, MAX_SHARED_KEYS, planShardPushdown, shardCondition, sharedKeysQuery } from './shard.js';
import {
  type CursorKind,
  compareCursor,
  cursorKind,
  cursorLowerBound,
  DUCKDB_TMP,
  FILE_RE,
  parseInterval,
  readState,
  stateFingerprint,
  writeState,
} from './state.js';
import { toText } from './text.js';

export { readAhead } from './read-ahead.js';
export { compareCursor, cursorLowerBound, parseInterval } from './state.js';
export { isoTimestamp } from './text.js';

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
  /** Rows re-read by an incremental run that no longer match `where:` (or the shard), dropped from the landing. */
  rowsDropped: number;
  /** The shard filter pushed into the query (`1/4 customer`), null when every row was extracted. */
  shardFilter: string | null;
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

export class WarehouseSource implements Source {
  private dialect: WarehouseDialect | undefined;
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
    return sourceError(entity, this.origin, this.config.connection, problem);
  }

  /** A driver error as a SourceError that says what is wrong in the user's terms. */
  private explain(entity: Entity, err: unknown, doing: string): SourceError {
    if (err instanceof SourceError) return err;
    return this.fail(entity, `${doing}: ${this.problem(err)}`);
  }

  /** What a driver error means, in the user's terms. */
  private problem(err: unknown): string {
    const code = errorCode(err);
    const kind = code === undefined ? undefined : this.dialect?.problemKind(code);
    return describeProblem(err, kind, { schema: this.config.schema, table: this.config.table });
  }

  private connect(entity: Entity): WarehouseDialect {
    if (this.dialect) return this.dialect;
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
    this.dialect = config.dialect === 'postgres' ? postgresDialect(url) : mysqlDialect(config.connection);
    return this.dialect;
  }

  private validate(entity: Entity): void {
    const { table, query } = this.config;
    if ((table === undefined) === (query === undefined)) {
      throw this.fail(entity, 'set exactly one of "table" or "query"');
    }
  }

  /** `select * from <table>` (identifiers quoted by kysely) or `select * from (<query>) as src`. */
  private selectAll(dialect: WarehouseDialect): SourceQuery {
    const db = dialect.kysely;
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
    if (!this.dialect) throw new Error('not connected');
    return this.dialect.columnsOf(query.compile());
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
    const exactCursor = this.connect(entity).caseSensitiveIdentifiers;
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

  /** `shard`: the shard filter pushed into the query, if any (a landing of another shard is not reused). */
  private fingerprint(shard?: string): string {
    const { dialect, schema, table, query, cursor_column, key, where: filter } = this.config;
    const where = this.location; // host, port, database and user, never the password
    return stateFingerprint({ dialect, where, schema, table, query, cursor_column, key, filter, shard });
  }

  /**
   * The shard filter of a shard run, pushed into the extraction query when that is exact (warehouse/shard.ts);
   * undefined when every row is extracted (a single-node run, or an entity the shard needs whole). A full extraction
   * also counts the source's rows, so that the merge can check that the shards account for every one of them.
   */
  private async shardFilter(
    ctx: SourceContext,
    base: SourceQuery,
    where: RawBuilder<SqlBool> | undefined,
    columns: string[],
  ): Promise<{ condition: RawBuilder<SqlBool>; tag: string; report: () => void } | undefined> {
    const { shard, entity, log } = ctx;
    if (!shard) return undefined;
    const plan = planShardPushdown(entity, this.config, columns);
    const skip = (reason: string) => {
      log.info(
        { entity, origin: this.origin, shard: `${shard.index}/${shard.count}`, reason },
        'warehouse extraction not filtered by shard: every row is extracted',
      );
      return undefined;
    };
    if (plan.kind === 'none') return skip(plan.reason);
    const { dialect } = this.config;
    const db = this.connect(entity).kysely;
    const rows = where ? base.where(where) : base;
    let sharedKeys: string[] = [];
    let sourceRows: number | null = null;
    try {
      if (plan.kind === 'customer-or-shared-key') {
        const found = await sharedKeysQuery(dialect, plan, shard, rows).execute(db);
        sharedKeys = found.rows.map((r) => String(r.shared_key));
        if (sharedKeys.length > MAX_SHARED_KEYS) {
          return skip(
            `more than ${MAX_SHARED_KEYS} ${plan.keyColumn} values name customers of this shard and of another`,
          );
        }
      }
      if (this.config.cursor_column === undefined) {
        sourceRows = Number((await countQuery(rows).executeTakeFirst())?.row_count ?? 0);
      }
    } catch (err) {
      throw this.explain(entity, err, 'finding the rows of the shard failed');
    }
    const { kind } = plan;
    return {
      condition: shardCondition(dialect, plan, shard, sharedKeys),
      tag: `${shard.index}/${shard.count} ${kind}`,
      report: () => shard.filtered(entity, kind, sourceRows),
    };
  }

  async land(ctx: SourceContext): Promise<Landed> {
    const started = Date.now();
    const { entity, landingDir: dir, log } = ctx;
    this.validate(entity);
    await mkdir(dir, { recursive: true });
    const cursorColumn = this.config.cursor_column;
    const db = this.connect(entity);
    const base = this.selectAll(db);
    const sourceColumns = this.config.where || ctx.shard ? await this.probe(entity, base, 'cannot read') : [];
    const condition = this.config.where ? await this.whereCondition(entity, base, sourceColumns) : undefined;
    const sharding = await this.shardFilter(ctx, base, condition, sourceColumns);
    /** What the extraction keeps: `where:` and the shard's rows. */
    const filter =
      condition && sharding
        ? sql<SqlBool>`(${condition} and ${sharding.condition})`
        : (condition ?? sharding?.condition);
    const fingerprint = this.fingerprint(sharding?.tag);
    const prior = await readState(dir, log);
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

    let query = filter ? base.where(filter) : base;
    /** Re-read rows that no longer match `where:` or the shard (incremental runs): their keys leave the landing. */
    let dropped: SourceQuery | undefined;
    let lowerBound: string | null = null;
    let kind: CursorKind | undefined = incremental ? state?.cursor?.kind : undefined;
    if (incremental && state?.cursor && cursorColumn) {
      try {
        lowerBound = cursorLowerBound(state.cursor.max, state.cursor.kind, this.config.overlap);
      } catch (err) {
        throw this.fail(entity, `cursor_column "${cursorColumn}": ${errorMessage(err)}`);
      }
      const bound = db.bindCursor(lowerBound, state.cursor.kind);
      const since = sql<boolean>`${sql.id(cursorColumn)} >= ${bound}`;
      query = query.where(since);
      if (filter) dropped = base.where(since).where(sql<boolean>`not coalesce(${filter}, false)`);
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
      {
        entity,
        origin: this.origin,
        mode: incremental ? 'incremental' : 'full',
        lowerBound,
        shardFilter: sharding?.tag ?? null,
      },
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

      // Keys of re-read rows that no longer match `where:` (soft-deleted, status changed) or the shard (the customer
      // changed): they leave the landing.
      let rowsDropped = 0;
      let droppedKey: string[] | undefined;
      if (dropped) {
        const key = this.dedupKey(entity, columns, log);
        if (key.length === columns.length) {
          // Keyed on every column, a row that changed is another row: the shard filter alone drops nothing.
          if (condition) {
            log.warn(
              { entity },
              'no key column: rows that stop matching `where:` stay landed until the next full extraction; set `key`',
            );
          }
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
        rowsLanded = await compact(duck, {
          dir,
          inputs,
          output: merged,
          cursorColumn,
          kind: kind ?? 'text',
          keyFor: (landed) => this.dedupKey(entity, landed, log),
          dropped: rowsDropped > 0 ? droppedKey : undefined,
          entity,
          log,
        });
        files = [merged];
      }
      await writeState(dir, {
        fingerprint,
        run,
        files,
        cursor:
          cursorColumn && cursorMax !== null
            ? { column: cursorColumn, kind: kind ?? 'text', max: cursorMax }
            : null,
        rows: rowsLanded,
      });
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
        shardFilter: sharding?.tag ?? null,
        ms: Date.now() - started,
        appendMs: Math.round(appendMs),
        writeMs: Math.round(writeMs),
      };
      log.info({ entity, origin: this.origin, ...this.lastLand }, 'warehouse extraction done');
      sharding?.report();
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

  async close(): Promise<void> {
    const dialect = this.dialect;
    this.dialect = undefined;
    if (dialect) await dialect.destroy();
  }
}
