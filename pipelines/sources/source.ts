// The Source interface: where an entity's raw export comes from (a local folder, S3, a SQL warehouse).
// A source only makes rows available as local files; DuckDB reads them in the landing stage.
import type { CsvOptions, Entity, FileFormat } from '../../config/schema.js';
import type { Logger } from '../base/log.js';
import type { ShardFilterKind } from '../shard/spec.js';

export interface LandedFile {
  /** Absolute local path DuckDB can read. */
  path: string;
  /** Where the rows came from, as a user would name it (`s3://bucket/key`, `orders.csv`, `postgres table public.orders`). */
  origin: string;
}

export interface Landed {
  files: LandedFile[];
  /** `sql`: the rows are the result of `sql` (a DuckDB query over local files); `files` then names its origin. */
  format: FileFormat | 'sql';
  sql?: string;
  /** CSV reading options (csv format only). */
  csv?: CsvOptions;
  /** The source applied the entity's `where:` itself (pushed into a warehouse query): landing must not again. */
  whereApplied?: boolean;
  /**
   * The rows have no row number a user could look up (a warehouse extraction): each row is named by these
   * source columns instead (`postgres table public.orders where order_id = 'O-17'`), quoted as `quoting` does.
   */
  rowKey?: { columns: string[]; quoting: 'postgres' | 'mysql' };
}

export interface SourceContext {
  entity: Entity;
  /** A persistent folder owned by this entity's source (kept between runs: incremental landing lives here). */
  landingDir: string;
  /** Folder that relative paths of the config resolve against. */
  baseDir: string;
  log: Logger;
  /**
   * Set in a customer-hash shard run (`churn run --shard I/N`): a source that can filter by shard itself (a warehouse
   * query) extracts only the rows the shard needs and calls `filtered`; landing's shard filter runs in any case.
   */
  shard?: ShardLanding;
}

/** The shard a source lands for, and how it reports that it filtered an entity's rows itself. */
export interface ShardLanding {
  index: number;
  count: number;
  /**
   * The source left out rows of other shards: `filter` says which rows it kept (sources/warehouse/shard.ts);
   * `sourceRows`, the rows it had in all (null when it cannot say: an incremental landing holds more).
   */
  filtered(entity: Entity, filter: ShardFilterKind, sourceRows: number | null): void;
}

export interface Source {
  /** Makes the entity's complete current rows available as local files, fetching only what is new where it can. */
  land(ctx: SourceContext): Promise<Landed>;
  /** Checks reachability, permissions and the expected objects/columns; writes nothing. Throws SourceError. */
  check(ctx: SourceContext): Promise<void>;
  close?(): Promise<void>;
}

/** A source problem the user can fix: the message names the entity, the location and what to do. */
export class SourceError extends Error {
  override readonly name = 'SourceError';
}
