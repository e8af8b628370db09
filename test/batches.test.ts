// Customer batches (sql/macros/batch.sql, transforms/runner.ts): a model whose yml says `batch_by: customer_id` is
// built once per range of customer_id when the population is larger than duckdb.customers_per_batch. On the
// generated sample, built in one pass and in four batches, every model's table is the same (doubles to 1e-9).
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../config/schema.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import type { RunDatabase } from '../pipelines/run/database.js';
import { modelCatalog } from '../transforms/metadata.js';
import { loadModels } from '../transforms/runner.js';
import { relationDifference } from './support/compare.js';
import { buildRun } from './support/models.js';
import { sampleProject } from './support/sample.js';

const SQL = join(import.meta.dirname, '..', 'sql');
const CUSTOMERS = 600;

describe('customer batches', () => {
  let dir: string;
  let onePass: RunDatabase;
  let batched: RunDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'churn-batches-'));
    const { asOf, loaded } = await sampleProject(dir, { customers: CUSTOMERS, seed: 11 });
    const withBatch = (customers_per_batch: number): Config => ({
      ...loaded.config,
      duckdb: { ...loaded.config.duckdb, customers_per_batch },
    });
    onePass = await buildRun(withBatch(0), loaded.baseDir, asOf);
    // 600 customers, at most 170 a batch: four ranges of customer_id
    batched = await buildRun(withBatch(170), loaded.baseDir, asOf);
  }, 240_000);

  afterAll(() => {
    onePass?.db.close();
    batched?.db.close();
  });

  it('builds the batch_by models in four ranges, and the others in one pass', () => {
    const batches = (run: RunDatabase) =>
      Object.fromEntries(run.timings.filter((t) => t.batches).map((t) => [t.model, t.batches]));
    expect(batches(batched)).toEqual({
      fct_customer_period: 4,
      int_customer_active_days: 4,
      int_health_features: 4,
    });
    expect(batches(onePass)).toEqual({});
  });

  it('gives every model the same table as one pass', async () => {
    const files = join(dir, 'tables');
    mkdirSync(files);
    const compared: string[] = [];
    const found: Record<string, unknown> = {};
    const db = await Db.open();
    try {
      for (const model of modelCatalog().models) {
        if (model.grain.length === 0 || !(await batched.db.tableExists(model.name))) continue;
        const parts = [0, 1].map((i) => join(files, `${model.name}-${i}.parquet`));
        for (const [i, run] of [onePass, batched].entries()) {
          await run.db.run(`copy ${model.name} to ${sqlString(parts[i]!)} (format parquet)`);
        }
        const [a, b] = parts.map((p) => `read_parquet(${sqlString(p)})`) as [string, string];
        const difference = await relationDifference(db, a, b, model.grain);
        if (difference) found[model.name] = difference;
        compared.push(model.name);
      }
      expect(found).toEqual({});
      expect(compared).toEqual(
        expect.arrayContaining(['int_health_features', 'fct_customer_period', 'customer_health']),
      );
      // the batched tables hold every customer: the sample's rows, not an empty table equal to another
      expect(await batched.db.number('select count(distinct customer_id) from fct_customer_period')).toBe(
        CUSTOMERS,
      );
      expect(
        await batched.db.number('select count(distinct customer_id) from int_health_features'),
      ).toBeGreaterThan(CUSTOMERS / 2);
    } finally {
      db.close();
    }
  });

  it('leaves the batch filter at every row once the model is built', async () => {
    expect(
      await batched.db.number(
        `select count(*) from (values ('0'), ('C000001'), ('zzz')) as ids(customer_id) where in_customer_batch(customer_id)`,
      ),
    ).toBe(3);
  });

  it('refuses a batch_by model whose SQL never filters by the batch', async () => {
    const sql = mkdtempSync(join(tmpdir(), 'churn-batches-sql-'));
    mkdirSync(join(sql, 'staging'));
    mkdirSync(join(sql, 'facts'));
    copyFileSync(join(SQL, 'staging', '__sources.yml'), join(sql, 'staging', '__sources.yml'));
    writeFileSync(
      join(sql, 'facts', 'per_customer.sql'),
      `select customer_id from (values ('A')) as t(customer_id)\n`,
    );
    writeFileSync(
      join(sql, 'facts', 'per_customer.yml'),
      `version: 2
models:
  - name: per_customer
    description: One row per customer.
    config:
      batch_by: customer_id
    columns:
      - name: customer_id
`,
    );
    await expect(loadModels({ dir: sql, tsModels: [] })).rejects.toThrow(
      /model per_customer \([^)]*facts\/per_customer\.sql\) says batch_by: customer_id in its yml but never calls in_customer_batch/,
    );
  });
});
