// MySQL and MariaDB: a mysql2 pool whose sessions run in UTC, a type cast that keeps every value as the server's exact
// text (TINYINT(1) and BIT(1) as booleans, TIMESTAMP as a UTC instant), and mysql2's row stream.
import { Kysely, MysqlDialect } from 'kysely';
import { createPool, type FieldPacket, type TypeCast } from 'mysql2';
import type { AnyDb, ProblemKind, WarehouseDialect } from './dialect.js';
import { isoTimestamp } from './text.js';

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

const PROBLEMS: Record<string, ProblemKind> = {
  ER_ACCESS_DENIED_ERROR: 'credentials',
  ER_DBACCESS_DENIED_ERROR: 'credentials',
  ER_BAD_DB_ERROR: 'database',
  ER_NO_SUCH_TABLE: 'table',
  ER_BAD_FIELD_ERROR: 'column',
  ER_TABLEACCESS_DENIED_ERROR: 'permission',
  ER_COLUMNACCESS_DENIED_ERROR: 'permission',
  ER_PARSE_ERROR: 'syntax',
};

export function mysqlDialect(connection: string): WarehouseDialect {
  const pool = createPool({
    uri: connection,
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
  const kysely = new Kysely<AnyDb>({ dialect: new MysqlDialect({ pool }) });
  return {
    name: 'mysql',
    kysely,
    // MySQL matches column names case-insensitively.
    caseSensitiveIdentifiers: false,
    columnsOf(query) {
      return new Promise<string[]>((resolve, reject) => {
        pool.query(query.sql, [...query.parameters], (err, _rows, fields: FieldPacket[] | undefined) => {
          if (err) reject(err);
          else resolve((fields ?? []).map((f) => f.name));
        });
      });
    },
    // A BIGINT cursor is bound as a number (not a string compared as text); a timestamp in MySQL's own form.
    bindCursor: (bound, kind) =>
      kind === 'integer'
        ? BigInt(bound)
        : kind === 'timestamp'
          ? bound.replace('T', ' ').replace(/Z$/, '')
          : bound,
    problemKind: (code) => PROBLEMS[code],
    destroy: () => kysely.destroy(),
  };
}
