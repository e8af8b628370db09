// The catalog: a DuckDB file with one view per published table, reading current/, so a BI tool or an
// analyst opens everything with one connection (`duckdb out/catalog.duckdb`, then `from churn_summary`).
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Db, sqlString } from '../duckdb.js';
import { PARTITION_FILE } from '../sinks/sink.js';
import { PUBLISHED_TABLES } from './export.js';

export async function writeCatalog(root: string): Promise<string> {
  const target = join(root, 'catalog.duckdb');
  const tmp = join(root, `.catalog-${process.pid}.duckdb`);
  await rm(tmp, { force: true });
  const db = await Db.open({ path: tmp });
  try {
    for (const table of PUBLISHED_TABLES) {
      const file = resolve(root, 'current', table.name, PARTITION_FILE);
      await db.run(`create or replace view ${table.name} as select * from read_parquet(${sqlString(file)})`);
    }
  } finally {
    db.close();
  }
  await rename(tmp, target);
  await rm(`${tmp}.wal`, { force: true });
  return target;
}
