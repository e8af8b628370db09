// What the warehouse source needs from a SQL dialect: a kysely instance over the driver's pool (kysely compiles
// every query, quoting identifiers its own way), the columns of a query, how a cursor bound is bound, and what the
// driver's error codes mean. One file per dialect implements it (postgres.ts, mysql.ts).
import type { CompiledQuery, Kysely, SelectQueryBuilder } from 'kysely';
import type { CursorKind } from './state.js';

export type SourceRow = Record<string, unknown>;
/** Kysely's view of a warehouse whose tables are only known at run time. */
export type AnyDb = Record<string, SourceRow>;
export type SourceQuery = SelectQueryBuilder<AnyDb, string, SourceRow>;

/** What a driver error is about, in the user's terms (warehouse/errors.ts words it). */
export type ProblemKind =
  | 'credentials'
  | 'database'
  | 'schema'
  | 'table'
  | 'column'
  | 'permission'
  | 'syntax';

export interface WarehouseDialect {
  readonly name: 'postgres' | 'mysql';
  readonly kysely: Kysely<AnyDb>;
  /** Whether a quoted identifier must match the column's case (the cursor column goes into the SQL quoted). */
  readonly caseSensitiveIdentifiers: boolean;
  /** Column names and order of a query's result, from its execution (give it a `limit 0` query). */
  columnsOf(query: CompiledQuery): Promise<string[]>;
  /** A cursor bound (landed text) as this driver binds it against the column. */
  bindCursor(bound: string, kind: CursorKind): string | bigint;
  /** What a driver error code means, when it is one of this dialect's. */
  problemKind(code: string): ProblemKind | undefined;
  /** Closes the pool. */
  destroy(): Promise<void>;
}
