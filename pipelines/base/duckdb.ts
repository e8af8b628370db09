// A thin wrapper around @duckdb/node-api: one in-process database per run, rows read back as JSON values.
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Row = Record<string, JsonValue>;

export interface DbOptions {
  /** Database file; in memory when absent. */
  path?: string;
  memoryLimit?: string;
  threads?: number;
  tempDirectory?: string;
  timeZone?: string;
  /** Folder that relative file paths in queries resolve against. */
  fileSearchPath?: string;
}

export class Db {
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    /** The session settings every connection of this database runs first (time zone, file search path). */
    private readonly session: string[],
    /** Whether close() also closes the database (false for a connection made by connect()). */
    private readonly owner: boolean,
  ) {}

  static async open(options: DbOptions = {}): Promise<Db> {
    const settings: Record<string, string> = { preserve_insertion_order: 'true' };
    if (options.memoryLimit) settings.memory_limit = options.memoryLimit;
    if (options.threads) settings.threads = String(options.threads);
    if (options.tempDirectory) settings.temp_directory = options.tempDirectory;
    const instance = await DuckDBInstance.create(options.path ?? ':memory:', settings);
    // Extensions are never downloaded at run time: parquet, json and icu are built in.
    const session = [
      'set autoinstall_known_extensions = false; set autoload_known_extensions = true',
      `set TimeZone = ${sqlString(options.timeZone ?? 'UTC')}`,
    ];
    if (options.fileSearchPath) session.push(`set file_search_path = ${sqlString(options.fileSearchPath)}`);
    const db = new Db(instance, await instance.connect(), session, true);
    for (const sql of session) await db.run(sql);
    return db;
  }

  /**
   * Another connection to the same database, with the same session settings: its queries run beside this one's
   * (each on the threads DuckDB gives it). close() closes only the connection.
   */
  async connect(): Promise<Db> {
    const db = new Db(this.instance, await this.instance.connect(), this.session, false);
    for (const sql of this.session) await db.run(sql);
    return db;
  }

  async run(sql: string): Promise<void> {
    await this.conn.run(sql);
  }

  /** Rows as JSON-safe objects: BIGINT and DECIMAL arrive as strings, DATE/TIMESTAMP as ISO text. */
  async all<T extends Row = Row>(sql: string): Promise<T[]> {
    const reader = await this.conn.runAndReadAll(sql);
    return reader.getRowObjectsJson() as T[];
  }

  async one<T extends Row = Row>(sql: string): Promise<T | undefined> {
    return (await this.all<T>(sql))[0];
  }

  /** A single number (counts, sums); BIGINT/HUGEINT/DECIMAL converted with Number(). */
  async number(sql: string): Promise<number> {
    const row = await this.one(sql);
    const value = row ? Object.values(row)[0] : null;
    return value === null || value === undefined ? 0 : Number(value);
  }

  async tableExists(name: string): Promise<boolean> {
    return (
      (await this.number(
        `select count(*) from information_schema.tables where table_name = ${sqlString(name)} and table_schema = 'main'`,
      )) > 0
    );
  }

  close(): void {
    this.conn.closeSync();
    if (this.owner) this.instance.closeSync();
  }
}

/** A SQL string literal. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A quoted SQL identifier. */
export function sqlIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
