// Compaction of an incremental landing: the landed files merged into one, one row per key, keeping the row with the
// highest cursor (the newest extraction on ties), without the keys of rows that stopped matching `where:`.
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entity } from '../../../config/schema.js';
import { type Db, sqlIdent, sqlString } from '../../base/duckdb.js';
import type { Logger } from '../../base/log.js';
import type { CursorKind } from './state.js';

export interface Compaction {
  /** The landing folder, the files to merge (oldest first) and the merged file's name. */
  dir: string;
  inputs: string[];
  output: string;
  cursorColumn: string;
  kind: CursorKind;
  /** The deduplication key among the landed columns. */
  keyFor(landed: string[]): string[];
  /** Key columns of the `gone` table (rows that no longer match `where:`), when there is one. */
  dropped?: string[];
  entity: Entity;
  log: Logger;
}

/** Writes the merged file; returns its row count. */
export async function compact(duck: Db, c: Compaction): Promise<number> {
  const seq = '__churn_seq';
  const parts = c.inputs.map(
    (name, i) => `select *, ${i} as ${seq} from read_parquet(${sqlString(join(c.dir, name))})`,
  );
  await duck.run(`create or replace temp view landed as ${parts.join(' union all by name ')}`);
  const landed = (await duck.all<{ column_name: string }>('describe landed'))
    .map((r) => r.column_name)
    .filter((name) => name !== seq);
  const key = c.keyFor(landed);
  const cursor = sqlIdent(c.cursorColumn);
  const typed =
    c.kind === 'integer'
      ? `try_cast(${cursor} as hugeint)`
      : c.kind === 'decimal'
        ? `try_cast(${cursor} as double)`
        : c.kind === 'timestamp'
          ? `try_cast(${cursor} as timestamptz)`
          : cursor;
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
  // Every version of a key that no longer matches `where:` leaves (the `gone` table of the extraction).
  const dropped = c.dropped;
  const gone =
    dropped && dropped.length > 0 && dropped.every((k) => landed.includes(k))
      ? `where not exists (select 1 from gone where ${dropped.map((k, i) => `gone.k${i} = landed.${sqlIdent(k)}`).join(' and ')})`
      : '';
  const path = join(c.dir, c.output);
  await duck.run(
    `copy (select * exclude (${seq}) from landed ${gone} qualify row_number() over (partition by ${partition.join(', ')} order by ${order.join(', ')}) = 1) to ${sqlString(`${path}.tmp`)} (format parquet, compression zstd)`,
  );
  await rename(`${path}.tmp`, path);
  const before = await duck.number('select count(*) from landed');
  const after = await duck.number(`select count(*) from read_parquet(${sqlString(path)})`);
  c.log.debug({ entity: c.entity, key, rowsBefore: before, rowsAfter: after }, 'warehouse landing compacted');
  return after;
}
