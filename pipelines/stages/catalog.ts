// The catalog: a DuckDB file with one view per published table, reading current/, so a BI tool or an
// analyst opens everything with one connection (`duckdb out/catalog.duckdb`, then `from churn_summary`).
//
// The views read current/, so the catalog follows current/ by itself: it is rewritten (atomically, by rename)
// only when its views would change, and a run that leaves current/ alone (a backfill of older dates) leaves the
// catalog file alone too.
import { existsSync } from 'node:fs';
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
  if (existsSync(target) && (await sameViews(target, tmp))) {
    await rm(tmp, { force: true });
  } else {
    await rename(tmp, target);
  }
  await rm(`${tmp}.wal`, { force: true });
  return target;
}

/** Whether two catalog files define the same views (false when either cannot be opened, e.g. locked). */
async function sameViews(a: string, b: string): Promise<boolean> {
  const db = await Db.open();
  try {
    await db.run(`attach ${sqlString(a)} as a (read_only); attach ${sqlString(b)} as b (read_only)`);
    const views = (name: string) =>
      db.all(
        `select view_name, sql from duckdb_views() where database_name = ${sqlString(name)} and not internal order by view_name`,
      );
    return JSON.stringify(await views('a')) === JSON.stringify(await views('b'));
  } catch {
    return false;
  } finally {
    db.close();
  }
}
