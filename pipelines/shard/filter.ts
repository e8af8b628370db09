// The rows of one customer-hash shard. A customer belongs to shard `shard_of(customer_id, N)`: the first 8 hex digits
// of SHA-256(customer_id) as an integer, modulo N (the hash of the audience holdout, without its salt, so the two are
// independent); a row without a customer_id belongs to shard 0.
//
// Landing reads every input row in every shard (a hash cannot be pushed into a Parquet or CSV scan: no min/max
// statistics prune it). Before the checked models (chk_*) run, each raw table keeps its shard's rows and the few
// others that decide how those are checked, so the checks see what a single-node run sees:
//   - rows whose key (order_id, subscription_id, response_id, ticket_id, invoice_id) also names rows of another shard:
//     which of them is the duplicate depends on all of them;
//   - e-mail events without a customer_id: they belong to the customer their address names, in any shard;
//   - raw_customers whole: the checks look customers up by id and by address.
// After the checked models, every checked table keeps the rows of the shard's customers only; the other local models
// then build on them. A local table with rows of another shard's customer is an error (the model is not per customer).
import type { Entity } from '../../config/schema.js';
import { ModelError } from '../../transforms/runner.js';
import { type Db, sqlIdent } from '../base/duckdb.js';
import type { ShardFilterKind, ShardSpec } from './spec.js';

/** The key each checked table deduplicates on (`partition by <key>` in sql/staging/chk_<entity>.sql). */
import { DEDUPLICATION_KEYS } from './spec.js';

export { DEDUPLICATION_KEYS };

export const SHARD_MACRO = `create or replace temp macro shard_of(id, n) as
    case when id is null then 0 else (('0x' || left(sha256(id), 8))::ubigint % n)::integer end`;

export async function createShardMacro(db: Db): Promise<void> {
  await db.run(SHARD_MACRO);
}

/** The raw rows of an entity that shard `spec` checks (every raw row of customers: see above). */
export async function keepShardRows(db: Db, entity: Entity, spec: ShardSpec): Promise<void> {
  if (entity === 'customers') return;
  const table = sqlIdent(`raw_${entity}`);
  const { index, count } = spec;
  if (entity === 'email_events') {
    await db.run(`
      create or replace table ${table} as
      with
      known as (
          select email, shard_of(customer_id, ${count}) = ${index} as in_shard
          from chk_customers
          where rejection is null and email is not null
      ),
      rows as (
          select *, clean_text(customer_id) as _id, normalise_email(email) as _email from ${table}
      )
      select * exclude (_id, _email) from rows
      where (_id is not null and shard_of(_id, ${count}) = ${index})
         or (_id is null and _email in (select email from known where in_shard))
         or (_id is null and ${index} = 0 and (_email is null or _email not in (select email from known)))`);
    return;
  }
  const key = DEDUPLICATION_KEYS[entity];
  const shared = key
    ? `or clean_text(${sqlIdent(key)}) in (
          select clean_text(${sqlIdent(key)}) from rows
          where clean_text(${sqlIdent(key)}) is not null
          group by 1 having min(_shard) <> max(_shard))`
    : '';
  await db.run(`
    create or replace table ${table} as
    with rows as (select *, shard_of(clean_text(customer_id), ${count}) as _shard from ${table})
    select * exclude (_shard) from rows
    where _shard = ${spec.index} ${shared}`);
}

/** Keeps the rows of the shard's customers in a checked table (one built from raw rows that decide others). */
export async function keepShardCustomers(db: Db, table: string, spec: ShardSpec): Promise<void> {
  await db.run(`delete from ${sqlIdent(table)} where shard_of(customer_id, ${spec.count}) <> ${spec.index}`);
}

/** Throws when a local table has no customer_id or rows of another shard's customers. */
export async function assertShardRows(db: Db, table: string, file: string, spec: ShardSpec): Promise<void> {
  const columns = await db.all<{ column_name: string }>(`describe ${sqlIdent(table)}`);
  if (!columns.some((c) => c.column_name === 'customer_id')) {
    throw new ModelError(
      `model ${table} (${file}) is shard: local but has no customer_id column: a shard's rows are its customers'; make it global`,
    );
  }
  const foreign = await db.number(
    `select count(*) from ${sqlIdent(table)} where shard_of(customer_id, ${spec.count}) <> ${spec.index}`,
  );
  if (foreign > 0) {
    throw new ModelError(
      `model ${table} (${file}) is shard: local but built ${foreign} row(s) of customers of other shards: it reads across customers; make it global`,
    );
  }
}

/**
 * The raw rows of an entity this shard accounts for: its customers' rows, and in shard 0 those without a
 * customer_id. Every row is accounted for by exactly one shard, so the shards' counts add up to the whole input
 * even when a source extracted only each shard's part of it (sources/warehouse/shard.ts).
 */
export async function ownedRows(db: Db, entity: Entity, spec: ShardSpec): Promise<number> {
  return db.number(
    `select count(*) from ${sqlIdent(`raw_${entity}`)} where shard_of(clean_text(customer_id), ${spec.count}) = ${spec.index}`,
  );
}

/**
 * After a source filtered an entity by shard itself: every landed row of another shard's customer must be one the
 * filter keeps on purpose (a row without a customer_id, or of a key shared with this shard's customers). Another one
 * means the source hashed its customer_id otherwise than this pipeline does (its text differs from the landed text),
 * and rows of this shard may be missing: throws, saying what to do.
 */
export async function checkShardFiltered(
  db: Db,
  entity: Entity,
  spec: ShardSpec,
  filter: ShardFilterKind,
): Promise<void> {
  const table = sqlIdent(`raw_${entity}`);
  const { index, count } = spec;
  const key = DEDUPLICATION_KEYS[entity];
  const expected =
    filter === 'customer'
      ? 'false'
      : filter === 'customer-or-no-customer'
        ? '_id is null'
        : key
          ? `_key in (select _key from rows where _key is not null group by _key
               having min(_shard) <> max(_shard) and bool_or(_shard = ${index}))`
          : 'false';
  const foreign = await db.one<{ rows: number | string; id: string | null; shard: number | null }>(`
    with rows as (
        select clean_text(customer_id) as _id, shard_of(clean_text(customer_id), ${count}) as _shard
            ${key ? `, clean_text(${sqlIdent(key)}) as _key` : ''}
        from ${table}
    )
    select count(*) as rows, min(_id) as id, min(_shard) as shard from rows
    where _shard <> ${index} and not (${expected})`);
  const rows = Number(foreign?.rows ?? 0);
  if (rows === 0) return;
  throw new ModelError(
    `shard ${index}/${count}: the ${entity} source sent ${rows} row(s) of other shards' customers (customer_id ` +
      `${JSON.stringify(foreign?.id ?? null)} is in shard ${foreign?.shard} here), so it hashes customer_id otherwise than ` +
      `the pipeline and rows of this shard may be missing: make customer_id a text or integer column (cast it in a ` +
      `query: source), or give sources.${entity} to a single-node run (churn run without --shard)`,
  );
}

/** Rows and a content checksum of a raw table: every shard must have landed the same inputs. */
export async function rawChecksum(db: Db, entity: Entity): Promise<{ rows: number; checksum: string }> {
  const row = await db.one<{ rows: string | number; checksum: string | null }>(
    `select count(*) as rows, bit_xor(hash(*columns(*)))::varchar as checksum from ${sqlIdent(`raw_${entity}`)}`,
  );
  return { rows: Number(row?.rows ?? 0), checksum: row?.checksum ?? '0' };
}
