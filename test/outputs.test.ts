// The published output as its readers open it, after two nightly runs on a small generated sample: DuckDB's recursive
// glob over every table's history, Parquet-only table folders, the catalog (relative paths: a copy of the output
// folder elsewhere opens the same, the original gone), its history views that do not double-count, and sources.yml
// read as dbt and dbt-duckdb read it.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Db, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { runPipeline } from '../pipelines/run/index.js';
import { PUBLISHED_TABLES } from '../pipelines/stages/export.js';
import { RESTATED_TABLES } from '../pipelines/stages/history.js';
import { sampleProject } from './support/sample.js';

interface DbtSources {
  version: number;
  sources: {
    name: string;
    tables: {
      name: string;
      description: string;
      meta: { grain: string[]; external_location: string };
      columns: { name: string; data_type: string; description?: string }[];
    }[];
  }[];
}

describe('outputs every named reader opens as they are', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-outputs-'));
  const original = join(dir, 'out');
  // The output folder as another machine mounts it: a copy, with the original moved away.
  const moved = join(mkdtempSync(join(tmpdir(), 'churn-mounted-')), 'lake');
  const dates: string[] = [];
  let db: Db;
  let catalog: Db;

  beforeAll(async () => {
    const sample = await sampleProject(dir, { customers: 300, seed: 11 });
    const previous = new Date(`${sample.asOf}T00:00:00Z`);
    previous.setUTCDate(previous.getUTCDate() - 1);
    dates.push(previous.toISOString().slice(0, 10), sample.asOf);
    for (const asOf of dates) await runPipeline(sample.loaded, { asOf, log: silentLogger() });
    cpSync(original, moved, { recursive: true, verbatimSymlinks: true });
    renameSync(original, `${original}-gone`);
    db = await Db.open();
    catalog = await Db.open({ path: join(moved, 'catalog.duckdb'), fileSearchPath: moved });
  }, 300_000);
  afterAll(() => {
    catalog?.close();
    db?.close();
  });

  const glob = (path: string) => sqlString(join(moved, path));

  it("reads every table's whole history with DuckDB's recursive glob, the date as a column", async () => {
    for (const { name } of PUBLISHED_TABLES) {
      const files = await db.all<{ file: string }>(
        `select file from glob(${glob(`${name}/**/*.parquet`)}) order by 1`,
      );
      expect(
        files.map((f) => f.file),
        name,
      ).toEqual(dates.map((d) => join(moved, name, `as_of=${d}`, 'part-0.parquet')));
      const rows = await db.all<{ as_of: string }>(
        `select distinct strftime(as_of, '%Y-%m-%d') as as_of
         from read_parquet(${glob(`${name}/**/*.parquet`)}, hive_partitioning = true) order by 1`,
      );
      // Every row carries its partition's date (a table can be empty on a date).
      for (const row of rows) expect(dates, name).toContain(row.as_of);
    }
    const fct = await db.all<{ as_of: string }>(
      `select distinct strftime(as_of, '%Y-%m-%d') as as_of
       from read_parquet(${glob('fct_customer_period/**/*.parquet')}, hive_partitioning = true) order by 1`,
    );
    expect(fct.map((r) => r.as_of)).toEqual(dates);
    // The audience folder holds Parquet only: its import files are under exports/.
    expect(
      await db.number(`select count(*) from read_parquet(${glob('reactivation_audience/**/*.parquet')})`),
    ).toBeGreaterThan(0);
    expect(
      await db.number(
        `select count(*) from read_parquet(${glob('current/reactivation_audience/*.parquet')})`,
      ),
    ).toBeGreaterThan(0);
    for (const asOf of dates) {
      for (const file of [
        'reactivation_audience/reactivation_audience_mailchimp.csv',
        'crm_flags/crm_flags.csv',
      ]) {
        expect(existsSync(join(moved, 'exports', `as_of=${asOf}`, file)), file).toBe(true);
      }
    }
  });

  it('opens the catalog of a copy of the output folder elsewhere: every path in it is relative', async () => {
    const views = await catalog.all<{ view_name: string; sql: string }>(
      `select view_name, sql from duckdb_views() where not internal order by view_name`,
    );
    const names = views.map((v) => v.view_name);
    for (const { name } of PUBLISHED_TABLES) {
      expect(names).toContain(name);
      expect(names).toContain(`${name}_history`);
      expect(await catalog.number(`select count(*) from ${sqlIdent(name)}`)).toBe(
        await db.number(`select count(*) from read_parquet(${glob(`current/${name}/part-0.parquet`)})`),
      );
    }
    for (const view of views) expect(view.sql, view.view_name).not.toContain(dir);
  });

  it('reads the history of a restated table once per row of its grain, from the latest as_of', async () => {
    for (const { name, grain } of PUBLISHED_TABLES.filter((t) => RESTATED_TABLES.has(t.name))) {
      const keys = grain.map(sqlIdent).join(', ');
      const all = await db.number(`select count(*) from read_parquet(${glob(`${name}/**/*.parquet`)})`);
      const distinct = await db.number(
        `select count(*) from (select distinct ${keys} from read_parquet(${glob(`${name}/**/*.parquet`)}))`,
      );
      expect(await catalog.number(`select count(*) from ${name}_history`), name).toBe(distinct);
      if (name === 'fct_customer_period') expect(all).toBeGreaterThan(distinct);
      // What the newest night computed is what the history says of every row it has.
      const differing = await catalog.number(
        `select count(*) from (
           (select * exclude (as_of) from ${name}_history where as_of = date ${sqlString(dates[1]!)})
           except all (select * from ${name}))`,
      );
      expect(differing, name).toBe(0);
    }
    const revenue = await catalog.one<{ history: string; current: string }>(
      `select (select sum(revenue) from fct_customer_period_history)::varchar as history,
              (select sum(revenue) from fct_customer_period)::varchar as current`,
    );
    expect(revenue?.history).toBe(revenue?.current);
  });

  it('reads the history of a snapshot table as one state per as_of', async () => {
    const rows = await catalog.all<{ as_of: string; customers: string }>(
      `select strftime(as_of, '%Y-%m-%d') as as_of, count(*)::varchar as customers
       from customer_health_history group by all order by 1`,
    );
    expect(rows.map((r) => r.as_of)).toEqual(dates);
    expect(
      await catalog.number(`select count(*) from reactivation_audience_history where audience_group is null`),
    ).toBe(0);
  });

  it('writes sources.yml as dbt reads it, each location readable once CHURN_OUTPUT points at the copy', async () => {
    const text = readFileSync(join(moved, 'sources.yml'), 'utf8');
    const doc = parse(text) as DbtSources;
    expect(doc.version).toBe(2);
    expect(doc.sources.map((s) => s.name)).toEqual(['churn']);
    const tables = new Map(doc.sources[0]!.tables.map((t) => [t.name, t]));
    for (const { name, grain } of PUBLISHED_TABLES) {
      for (const source of [tables.get(name), tables.get(`${name}_history`)]) {
        expect(source, name).toBeDefined();
        // dbt renders env_var first; dbt-duckdb then reads the location (a path, or a read_parquet call).
        const location = source!.meta.external_location.replace(
          `{{ env_var('CHURN_OUTPUT', '${original}') }}`,
          moved,
        );
        expect(location, name).not.toContain('{{');
        const from = location.startsWith('read_parquet(') ? location : sqlString(location);
        const described = await db.all<{ column_name: string; column_type: string }>(
          `describe select * from ${from}`,
        );
        expect(
          source!.columns.map((c) => [c.name, c.data_type]),
          source!.name,
        ).toEqual(described.map((c) => [c.column_name, c.column_type.toLowerCase()]));
      }
      expect(tables.get(name)?.meta.grain).toEqual([...grain]);
      expect(tables.get(name)?.description.length).toBeGreaterThan(20);
    }
    const customerId = tables.get('fct_customer_period')?.columns.find((c) => c.name === 'customer_id');
    expect(customerId?.description?.length).toBeGreaterThan(0);
  });

  it('hashes for the ad platforms exactly the trimmed, lower-cased e-mails of the customers export', async () => {
    const emails = await db.all<{ email: string | null }>(
      `select email from read_csv(${sqlString(join(dir, 'data', 'sample', 'customers.csv'))}, all_varchar = true)`,
    );
    const known = new Set(
      emails
        .filter((e) => e.email)
        .map((e) => createHash('sha256').update(e.email!.trim().toLowerCase()).digest('hex')),
    );
    for (const [tool, header] of [
      ['google_ads', 'Email'],
      ['meta', 'email'],
    ] as const) {
      const lines = readFileSync(
        join(moved, 'current', 'exports', 'reactivation_audience', `reactivation_audience_${tool}.csv`),
        'utf8',
      ).split('\r\n');
      expect(lines[0]).toBe(header);
      const hashes = lines.slice(1).filter(Boolean);
      expect(hashes.length).toBeGreaterThan(0);
      for (const hash of hashes) expect(known.has(hash), hash).toBe(true);
    }
  });
});
