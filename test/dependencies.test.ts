// The runner's dependencies come from DuckDB's parser: the tables a model's statement reads, CTE names resolved in
// their scope. Words in comments, strings, column names and aliases are not dependencies; a table that is no model
// and no source is an error naming it and the file.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db } from '../pipelines/base/duckdb.js';
import { tablesRead } from '../transforms/dependencies.js';
import type { TsModel } from '../transforms/model.js';
import { loadModels, ModelError, orderModels, selectModels } from '../transforms/runner.js';

const SOURCES = `version: 2
sources:
  - name: run
    description: Provided by the run.
    tables:
      - { name: run_params, description: Parameters. }
`;

function sqlDir(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'churn-deps-'));
  for (const [path, text] of Object.entries({ 'staging/__sources.yml': SOURCES, ...files })) {
    const file = join(root, 'sql', path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text);
  }
  return join(root, 'sql');
}

describe('tables read, from the parser', () => {
  let db: Db;
  beforeAll(async () => {
    db = await Db.open();
  });
  afterAll(() => db.close());

  const read = async (sql: string) => {
    const result = await tablesRead(db, sql);
    if ('error' in result) throw new Error(result.error);
    return result.tables.sort();
  };

  it('finds tables in joins, subqueries, set operations and nested CTEs', async () => {
    expect(
      await read(`
        with a as (select * from t1), b as (select * from a join t2 using (k))
        select * from b, (select 1 from t3) s
        where exists (select 1 from t4) and k in (select k from t5)
        union all select * from (with c as (select * from t6) select * from c)`),
    ).toEqual(['t1', 't2', 't3', 't4', 't5', 't6']);
  });

  it('ignores comments, string literals, column names, aliases and table functions', async () => {
    expect(
      await read(`
        -- reads stg_orders? no: this is a comment about stg_orders
        /* customer_health */
        select 'fct_customer_period' as label, t1.stg_customers, x as churn_summary
        from t1 as quarantine, range(3) as r, read_parquet([]) as p`),
    ).toEqual(['t1']);
  });

  it('resolves CTE names where they are in scope: an import CTE named like its table still reads the table', async () => {
    // orders (the CTE) shadows orders (the table) only after it is defined; a later CTE reads the CTE.
    expect(await read('with orders as (select * from orders) select * from orders')).toEqual(['orders']);
    expect(await read('with a as (select 1 as x), b as (select * from a) select * from b')).toEqual([]);
    // A CTE that comes later is not in scope of an earlier one: that earlier one reads a table.
    expect(await read('with a as (select * from b), b as (select 1 as x) select * from a')).toEqual(['b']);
    expect(
      await read(
        'with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select * from r',
      ),
    ).toEqual([]);
    // Other schemas and catalogs are not models.
    expect(await read('select * from temp.work, main.t1, other.main.t2')).toEqual(['t1']);
  });

  it('says why a statement cannot be a model', async () => {
    expect(await tablesRead(db, 'selec 1')).toEqual({ error: expect.stringMatching(/syntax error/) });
    expect(await tablesRead(db, 'select 1; select 2')).toEqual({
      error: 'a model is one select statement, found 2',
    });
  });
});

describe('loading the models', () => {
  it('depends on the models a statement reads, not on the words it contains', async () => {
    const dir = sqlDir({
      'staging/stg_a.sql': 'select 1 as id, (select as_of_date from run_params) as d',
      'facts/int_b.sql': `-- uses fct_c later
        with stg_a as (select * from stg_a) select id, 'fct_c' as fct_c from stg_a`,
      'facts/fct_c.sql': 'with b as (select * from int_b) select * from b',
    });
    const models = await loadModels({ dir, tsModels: [] });
    expect(Object.fromEntries(models.map((m) => [m.name, m.reads]))).toEqual({
      stg_a: [],
      int_b: ['stg_a'],
      fct_c: ['int_b'],
    });
    expect(models.find((m) => m.name === 'int_b')?.file).toBe('sql/facts/int_b.sql');
    expect(orderModels(models).map((m) => m.name)).toEqual(['stg_a', 'int_b', 'fct_c']);
    expect(selectModels(models, ['int_b']).map((m) => m.name)).toEqual(['stg_a', 'int_b']);
  });

  it('fails naming the missing table and the file that reads it', async () => {
    const dir = sqlDir({
      'staging/stg_a.sql': 'select 1 as id',
      'facts/fct_c.sql': 'select * from stg_a join stg_typo using (id)',
    });
    await expect(loadModels({ dir, tsModels: [] })).rejects.toThrow(
      /^model fct_c \(sql\/facts\/fct_c\.sql\) reads stg_typo, which is not a model .* nor a table the run provides \(sql\/staging\/__sources\.yml\): fix the name, or add the model$/,
    );
    await expect(loadModels({ dir, tsModels: [] })).rejects.toBeInstanceOf(ModelError);
  });

  it('fails naming the file that does not parse', async () => {
    const dir = sqlDir({ 'facts/fct_c.sql': 'select * form stg_a' });
    await expect(loadModels({ dir, tsModels: [] })).rejects.toThrow(
      /^model fct_c \(sql\/facts\/fct_c\.sql\) cannot be parsed: parser error: syntax error/,
    );
  });

  it('knows the tables a TypeScript model creates from its yml, and what it reads from dependsOn', async () => {
    const scores: TsModel = { name: 'scores', dependsOn: ['fct_c', 'run_params'], build: async () => {} };
    const yml = `version: 2
models:
  - name: scores
    description: Scores.
    config: { materialized_by: transforms/models/scores.ts }
    columns: [{ name: id, data_type: integer }]
  - name: scores_fit
    description: The fit.
    config: { materialized_by: transforms/models/scores.ts }
    columns: [{ name: r, data_type: double }]
`;
    const dir = sqlDir({
      'facts/fct_c.sql': 'select 1 as id',
      'metrics/scores.yml': yml,
      'metrics/report.sql': 'select * from scores_fit',
    });
    const models = await loadModels({ dir, tsModels: [scores] });
    const ts = models.find((m) => m.name === 'scores')!;
    expect(ts).toMatchObject({
      kind: 'ts',
      layer: 'metrics',
      reads: ['fct_c'],
      creates: ['scores', 'scores_fit'],
    });
    expect(models.find((m) => m.name === 'report')?.reads).toEqual(['scores']);
    expect(orderModels(models).map((m) => m.name)).toEqual(['fct_c', 'scores', 'report']);

    await expect(loadModels({ dir, tsModels: [] })).rejects.toThrow(
      /sql\/metrics\/scores\.yml describes model scores, but there is no sql\/metrics\/scores\.sql and no TypeScript model scores/,
    );
    const unnamed = sqlDir({ 'facts/fct_c.sql': 'select 1 as id' });
    await expect(loadModels({ dir: unnamed, tsModels: [scores] })).rejects.toThrow(
      /the TypeScript model scores \(transforms\/models\/scores\.ts\) has no yml/,
    );
  });

  it('reads the real models: each depends on exactly the models it selects from', async () => {
    const models = await loadModels();
    const reads = (name: string) => models.find((m) => m.name === name)?.reads;
    expect(reads('churn_summary')).toEqual(['fct_customer_period', 'int_customer_segments']);
    // customer_health's final CTE is named customer_health: not a dependency on itself.
    expect(reads('customer_health')).not.toContain('customer_health');
    // int_health_status reads health_scores, a table the TypeScript model creates.
    expect(reads('int_health_status')).toContain('health_scores');
    expect(models.find((m) => m.name === 'health_scores')?.creates).toContain('health_model');
  });

  it('still refuses a cycle', async () => {
    const dir = sqlDir({
      'facts/int_a.sql': 'select * from int_b',
      'facts/int_b.sql': 'select * from int_a',
    });
    const models = await loadModels({ dir, tsModels: [] });
    expect(() => orderModels(models)).toThrow(/cycle: int_a -> int_b -> int_a/);
  });
});
