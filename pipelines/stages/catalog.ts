// The catalog: a DuckDB file with one view per published table, reading current/, and a `<table>_history` view per
// table over all its as_of partitions (history.ts), so a BI tool or an analyst opens everything with one connection
// (`cd out && duckdb catalog.duckdb`, then `from churn_summary`). Every path in it is relative to the catalog's
// folder, so the output folder can be moved or mounted anywhere: DuckDB resolves relative paths against the working
// directory, or against the file_search_path setting (`set file_search_path = '/mnt/out'`) when it is set.
// Every view and column carries the description of its yml (`comment on`), which BI tools show and
// `select table_name, column_name, comment from duckdb_columns()` lists.
//
// The views read current/, so the catalog follows current/ by itself: it is rewritten (atomically, by rename)
// only when its views would change, and a run that leaves current/ alone (a backfill of older dates) leaves the
// catalog file alone too. sources.yml (dbt-sources.ts) is written beside it the same way.
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { modelCatalog } from '../../transforms/metadata.js';
import { Db, sqlIdent, sqlString } from '../base/duckdb.js';
import { PARTITION_FILE } from '../sinks/sink.js';
import { writeDbtSources } from './dbt-sources.js';
import { PUBLISHED_TABLES } from './export.js';
import { historyViews } from './history.js';

/** `comment on` statements for a view and its columns, from the model's yml. */
async function describeView(db: Db, name: string): Promise<void> {
  const meta = modelCatalog().model(name);
  if (!meta) return;
  await db.run(`comment on view ${sqlIdent(name)} is ${sqlString(meta.description)}`);
  const columns = await db.all<{ column_name: string }>(
    `select column_name from duckdb_columns() where table_name = ${sqlString(name)} order by column_index`,
  );
  for (const { column_name } of columns) {
    const description = meta.columns.find((c) => c.name === column_name)?.description;
    if (description) {
      await db.run(
        `comment on column ${sqlIdent(name)}.${sqlIdent(column_name)} is ${sqlString(description)}`,
      );
    }
  }
}

/**
 * Writes <root>/catalog.duckdb (and sources.yml beside it, whose locations default to `location`: the output's path
 * or s3:// URL, default `root`). A table that current/ does not have (a newer table while current/ is a date
 * published by an earlier release) gets no view until it has.
 */
export async function writeCatalog(root: string, options: { location?: string } = {}): Promise<string> {
  const target = join(root, 'catalog.duckdb');
  const tmp = join(root, `.catalog-${process.pid}.duckdb`);
  await rm(tmp, { force: true });
  // Relative paths resolve against the output folder while the views are made (and checked).
  const db = await Db.open({ path: tmp, fileSearchPath: root });
  try {
    for (const table of PUBLISHED_TABLES) {
      const file = `current/${table.name}/${PARTITION_FILE}`;
      if (!existsSync(join(root, file))) continue;
      await db.run(`create or replace view ${table.name} as select * from read_parquet(${sqlString(file)})`);
      await describeView(db, table.name);
    }
    for (const view of await historyViews(db, root, PUBLISHED_TABLES)) {
      await db.run(`create or replace view ${sqlIdent(view.name)} as ${view.sql}`);
      await db.run(`comment on view ${sqlIdent(view.name)} is ${sqlString(view.description)}`);
      await db.run(
        `comment on column ${sqlIdent(view.name)}.as_of is 'The as-of date of the run that published the row.'`,
      );
    }
  } finally {
    db.close();
  }
  if (existsSync(target) && (await sameViews(target, tmp, root))) {
    await rm(tmp, { force: true });
  } else {
    await rename(tmp, target);
  }
  await rm(`${tmp}.wal`, { force: true });
  await writeDbtSources(root, options.location ?? root);
  return target;
}

/** Whether two catalog files define the same views and descriptions (false when either cannot be opened, e.g. locked). */
async function sameViews(a: string, b: string, root: string): Promise<boolean> {
  const db = await Db.open({ fileSearchPath: root });
  try {
    await db.run(`attach ${sqlString(a)} as a (read_only); attach ${sqlString(b)} as b (read_only)`);
    const views = (name: string) =>
      db.all(
        `select view_name, sql, comment from duckdb_views() where database_name = ${sqlString(name)} and not internal order by view_name`,
      );
    const comments = (name: string) =>
      db.all(
        `select table_name, column_name, comment from duckdb_columns()
         where database_name = ${sqlString(name)} and not internal order by table_name, column_index`,
      );
    return (
      JSON.stringify(await views('a')) === JSON.stringify(await views('b')) &&
      JSON.stringify(await comments('a')) === JSON.stringify(await comments('b'))
    );
  } catch {
    return false;
  } finally {
    db.close();
  }
}
