// The customer-hash shard of `churn run --shard I/N` inside the warehouse query (docs/shards.md, "Inputs"): a shard
// extracts only the rows its checks need instead of the whole table.
//
// The warehouse computes the shard exactly as pipelines/shard/filter.ts does in DuckDB: shard_of(clean_text(id), N),
// the first 8 hex digits of SHA-256 over the UTF-8 bytes of the trimmed id as an unsigned 32-bit integer, modulo N,
// and 0 for a null or empty id. clean_text is DuckDB's trim, which removes the Unicode space separators (category Zs)
// and nothing else (no tab, no newline), then nullif(..., ''):
//   PostgreSQL  coalesce(('x' || substr(encode(sha256(convert_to(nullif(btrim(id::text, <Zs>), ''), 'UTF8')), 'hex'),
//               1, 8))::bit(32)::bigint % N, 0)
//   MySQL       coalesce(cast(conv(substr(sha2(nullif(regexp_replace(convert(cast(id as char) using utf8mb4),
//               '^[<Zs>]+|[<Zs>]+$', '') collate utf8mb4_bin, ''), 256), 1, 8), 16, 10) as unsigned) % N, 0)
//
// The filter is pushed down only where the shard's landing is then exactly the rows keepShardRows would keep of the
// whole table (rows kept beyond the shard's own are those some check of the shard needs):
//   - customers: never (every shard checks the whole export);
//   - activity: the shard's customers' rows;
//   - email_events: the shard's customers' rows and every row without a customer_id (it belongs to the customer its
//     address names, which only the checks find out);
//   - orders, subscriptions, surveys, tickets, invoices: the shard's customers' rows and every row of a key that
//     names a customer of this shard and one of another (found first by a `group by` on the warehouse over the rows
//     `where:` keeps: a key no customer of the shard has decides none of its rows); not for an incremental
//     extraction, whose landing holds rows the warehouse no longer has, nor beyond MAX_SHARED_KEYS such keys;
//   - not when customer_id (or the key) is computed at landing (a `format` or an `expr` mapping), and not for an
//     incremental extraction that deduplicates on a key without customer_id (its landing then depends on rows of
//     other customers).
import { type RawBuilder, type SqlBool, sql } from 'kysely';
import type { ColumnMapping, Entity, WarehouseSourceConfig } from '../../../config/schema.js';
import { DEDUPLICATION_KEYS, type ShardFilterKind, type ShardSpec } from '../../shard/spec.js';
import type { SourceQuery } from './dialect.js';

/** The Unicode space separators (category Zs): what DuckDB's trim, and so clean_text, removes from both ends. */
export const SPACE_SEPARATORS =
  ' \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000';

export type ShardPushdown =
  | { kind: ShardFilterKind; customerColumn: string; keyColumn?: string }
  | { kind: 'none'; reason: string };

type Dialect = WarehouseSourceConfig['dialect'];

/** The source column a mapping reads as it is (a rename), or undefined when landing computes the value. */
function plainColumn(mapping: ColumnMapping | undefined, canonical: string): string | undefined {
  if (mapping === undefined) return canonical;
  return typeof mapping === 'string' ? mapping : undefined;
}

function resolve(columns: readonly string[], name: string): string | undefined {
  return columns.find((c) => c === name) ?? columns.find((c) => c.toLowerCase() === name.toLowerCase());
}

/** Whether, and how, a shard filters this entity's extraction; `columns` are the source's columns. */
export function planShardPushdown(
  entity: Entity,
  config: WarehouseSourceConfig,
  columns: readonly string[],
): ShardPushdown {
  if (entity === 'customers') {
    return { kind: 'none', reason: 'every shard checks the whole customers export' };
  }
  const customer = plainColumn(config.columns.customer_id, 'customer_id');
  if (customer === undefined) {
    return {
      kind: 'none',
      reason: `customer_id is computed at landing (sources.${entity}.columns.customer_id is a format or an expr), not by the warehouse`,
    };
  }
  const customerColumn = resolve(columns, customer);
  if (customerColumn === undefined) {
    return { kind: 'none', reason: `the source has no column "${customer}" for customer_id` };
  }
  const dedup = DEDUPLICATION_KEYS[entity];
  if (dedup !== undefined) {
    if (config.cursor_column !== undefined) {
      return {
        kind: 'none',
        reason:
          `an incremental extraction keeps ${entity} rows the warehouse no longer has, so the ${dedup} values shared ` +
          'by customers of two shards cannot be found by a query',
      };
    }
    const key = plainColumn(config.columns[dedup], dedup);
    const keyColumn = key === undefined ? undefined : resolve(columns, key);
    if (keyColumn === undefined) {
      return {
        kind: 'none',
        reason: `${dedup} is ${key === undefined ? 'computed at landing' : `not a column of the source ("${key}")`}`,
      };
    }
    return { kind: 'customer-or-shared-key', customerColumn, keyColumn };
  }
  if (config.cursor_column !== undefined && config.key !== undefined && config.key.length > 0) {
    const keyed = config.key.some(
      (k) => k === 'customer_id' || k.toLowerCase() === customerColumn.toLowerCase(),
    );
    if (!keyed) {
      return {
        kind: 'none',
        reason: `the incremental extraction deduplicates on key [${config.key.join(', ')}], which does not hold customer_id, so one key may name rows of two shards`,
      };
    }
  }
  return { kind: entity === 'email_events' ? 'customer-or-no-customer' : 'customer', customerColumn };
}

/** clean_text(column) on the warehouse: the text with the space separators trimmed, null when empty. */
export function cleanText(dialect: Dialect, column: string): RawBuilder<string | null> {
  if (dialect === 'postgres') {
    return sql<string | null>`nullif(btrim(cast(${sql.id(column)} as text), ${SPACE_SEPARATORS}), '')`;
  }
  const ends = `[${SPACE_SEPARATORS}]+`;
  // utf8mb4_bin: '' equals only '' (an accent- or case-insensitive collation would equal ignorable characters).
  return sql<
    string | null
  >`nullif(regexp_replace(convert(cast(${sql.id(column)} as char) using utf8mb4), ${`^${ends}|${ends}$`}, '') collate utf8mb4_bin, '')`;
}

/** shard_of(clean_text(column), count) on the warehouse: 0 to count - 1, and 0 for a null or empty id. */
export function shardOf(dialect: Dialect, column: string, count: number): RawBuilder<number> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`shard count ${count} is not a whole number`);
  const id = cleanText(dialect, column);
  const n = sql.lit(count);
  if (dialect === 'postgres') {
    return sql<number>`coalesce(('x' || substr(encode(sha256(convert_to(${id}, 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint % ${n}, 0)`;
  }
  return sql<number>`coalesce(cast(conv(substr(sha2(${id}, 256), 1, 8), 16, 10) as unsigned) % ${n}, 0)`;
}

/** The most keys shared across shards a shard's query names (bound as parameters); beyond, every row is extracted. */
export const MAX_SHARED_KEYS = 10_000;

/**
 * The keys that name a customer of shard `spec` and a customer of another among `rows` (the source with `where:`
 * applied): a shard extracts every row of them. One grouped query; the shard's extraction then names the keys it
 * found as bound values (an `in (subquery)` runs once per row on MariaDB, whose optimizer does not materialize a
 * subquery with regexp_replace).
 */
export function sharedKeysQuery(
  dialect: Dialect,
  plan: Exclude<ShardPushdown, { kind: 'none' }>,
  spec: ShardSpec,
  rows: SourceQuery,
): RawBuilder<{ shared_key: string }> {
  const key = plan.keyColumn ?? '';
  const keyed = rows
    .clearSelect()
    .select([
      cleanText(dialect, key).as('shared_key'),
      shardOf(dialect, plan.customerColumn, spec.count).as('key_shard'),
    ]);
  const index = sql.lit(spec.index);
  // Each row's shard computed once: PostgreSQL inlines a derived table into the aggregates below unless fenced by
  // `offset 0`; MySQL merges one without a `group by` (the pairs of key and shard are what the keys need anyway).
  const pairs =
    dialect === 'postgres'
      ? sql`(${keyed} offset 0)`
      : sql`(select shared_key, key_shard from (${keyed}) as keyed_rows group by shared_key, key_shard)`;
  return sql<{ shared_key: string }>`select shared_key from ${pairs} as keyed
    where shared_key is not null
    group by shared_key
    having min(key_shard) <> max(key_shard) and max(case when key_shard = ${index} then 1 else 0 end) = 1
    limit ${sql.lit(MAX_SHARED_KEYS + 1)}`;
}

/** The rows of the source (`rows`: with `where:` applied), counted on the warehouse. */
export function countQuery(rows: SourceQuery) {
  return rows.clearSelect().select(sql<string | number>`count(*)`.as('row_count'));
}

/** The condition of shard `spec` for the extraction query; `sharedKeys` from sharedKeysQuery. */
export function shardCondition(
  dialect: Dialect,
  plan: Exclude<ShardPushdown, { kind: 'none' }>,
  spec: ShardSpec,
  sharedKeys: readonly string[] = [],
): RawBuilder<SqlBool> {
  const own = sql<SqlBool>`(${shardOf(dialect, plan.customerColumn, spec.count)} = ${sql.lit(spec.index)})`;
  switch (plan.kind) {
    case 'customer':
      return own;
    case 'customer-or-no-customer':
      return sql<SqlBool>`(${own} or ${cleanText(dialect, plan.customerColumn)} is null)`;
    case 'customer-or-shared-key': {
      if (sharedKeys.length === 0) return own;
      const keys = sql.join(sharedKeys.map((k) => sql`${k}`));
      return sql<SqlBool>`(${own} or ${cleanText(dialect, plan.keyColumn ?? '')} in (${keys}))`;
    }
  }
}
