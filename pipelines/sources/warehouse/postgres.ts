// PostgreSQL: a pg pool whose sessions run in UTC and ISO style, type parsers that keep the server's text (no Date,
// no float: int8 and numeric stay exact), and pg-cursor portals so a table larger than memory streams in chunks.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { AnyDb, ProblemKind, WarehouseDialect } from './dialect.js';
import { isoTimestamp } from './text.js';

const PG_BOOL = 16;
const PG_TIMESTAMP = 1114;
const PG_TIMESTAMPTZ = 1184;

const identity = (value: string): string => value;
const pgBool = (value: string): string => (value === 't' ? 'true' : value === 'f' ? 'false' : value);

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

const PROBLEMS: Record<string, ProblemKind> = {
  '28P01': 'credentials',
  '28000': 'credentials',
  '3D000': 'database',
  '3F000': 'schema',
  '42P01': 'table',
  '42703': 'column',
  '42501': 'permission',
  '42601': 'syntax',
};

export function postgresDialect(url: URL): WarehouseDialect {
  // Our session settings are merged with the URL's own `options` (the URL's would otherwise replace them):
  // timestamps come back in UTC and ISO style whatever the server's defaults.
  const connection = new URL(url);
  const userOptions = connection.searchParams.get('options');
  connection.searchParams.delete('options');
  const pool = new pg.Pool({
    connectionString: connection.toString(),
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
  const kysely = new Kysely<AnyDb>({ dialect: new PostgresDialect({ pool, cursor: TextCursor }) });
  return {
    name: 'postgres',
    kysely,
    caseSensitiveIdentifiers: true,
    async columnsOf(query) {
      // The extended protocol (as the cursor uses) runs exactly one statement, even without parameters.
      const config: pg.QueryConfig & { queryMode: 'extended' } = {
        text: query.sql,
        values: [...query.parameters],
        types: PG_TEXT_TYPES,
        queryMode: 'extended',
      };
      const result = await pool.query(config);
      return result.fields.map((f) => f.name);
    },
    bindCursor: (bound) => bound,
    problemKind: (code) => PROBLEMS[code],
    destroy: () => kysely.destroy(),
  };
}
