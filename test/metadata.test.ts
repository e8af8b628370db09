// The yml beside every model (transforms/metadata.ts) is the one description of each table: these tests fail when a
// model has no yml, a published column has no description, the columns a model's SQL outputs and its yml disagree
// (names or DuckDB types, built on the generated sample), the README's table list drifts from the yml, or the
// catalog and manifest do not carry the descriptions.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_CONFIG_FILE } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { Db, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { generateSample } from '../pipelines/sample/generate.js';
import { writeCatalog } from '../pipelines/stages/catalog.js';
import { exportTables, PUBLISHED_TABLES, type TableManifest } from '../pipelines/stages/export.js';
import { MetadataError, type ModelMeta, modelCatalog, readCatalog } from '../transforms/metadata.js';
import { type AnyModel, loadModels } from '../transforms/runner.js';
import { buildModels } from './support/models.js';

const ROOT = join(import.meta.dirname, '..');
const catalog = modelCatalog();

/** The tables a model creates, with the yml entry of each. */
function describedTables(
  models: readonly AnyModel[],
): { model: AnyModel; table: string; meta: ModelMeta | undefined }[] {
  return models.flatMap((model) =>
    model.creates.map((table) => ({ model, table, meta: catalog.model(table) })),
  );
}

describe('the yml beside every model', () => {
  let models: AnyModel[];
  beforeAll(async () => {
    models = await loadModels();
  });

  it('describes every table a model creates, in sql/<layer>/<model>.yml beside its SQL (or of its TypeScript model)', () => {
    const problems: string[] = [];
    for (const { model, table, meta } of describedTables(models)) {
      if (!meta) {
        problems.push(`${table} (${model.file}) has no yml entry: add sql/${model.layer}/${model.name}.yml`);
        continue;
      }
      const expected = `sql/${model.layer}/${model.name}.yml`;
      if (meta.file !== expected)
        problems.push(`${table} is described in ${meta.file}, expected ${expected}`);
      if (model.kind === 'ts' && meta.materializedBy !== model.file) {
        problems.push(`${table}: config.materialized_by must be ${model.file}`);
      }
    }
    expect(problems).toEqual([]);
    expect(models.length).toBeGreaterThan(30);
  });

  it('gives every column a DuckDB type, and every published table and column a description', () => {
    const problems: string[] = [];
    for (const meta of catalog.models) {
      for (const column of meta.columns) {
        if (!column.dataType) problems.push(`${meta.file}: ${meta.name}.${column.name} has no data_type`);
        if (meta.published && !column.description) {
          problems.push(`${meta.file}: published column ${meta.name}.${column.name} has no description`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('tests the grain of every published table: unique together, never null', () => {
    const published = catalog.models.filter((m) => m.published);
    expect(published.map((m) => m.name)).toEqual(PUBLISHED_TABLES.map((t) => t.name));
    for (const meta of published) {
      expect(meta.grain.length, meta.name).toBeGreaterThan(0);
      expect(meta.uniqueCombinations, meta.name).toContainEqual(meta.grain);
      const notNull = meta.columns.filter((c) => c.notNull).map((c) => c.name);
      for (const column of meta.grain) expect(notNull, `${meta.name}.${column}`).toContain(column);
    }
  });

  it("lists the README's tables, grains and files as the yml states them", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `([a-z_]+)`\s*\|([^|]+)\|([^|]+)\|$/gm)].map((m) => ({
      name: m[1]!,
      grain: m[2]!.trim(),
      where: m[3]!.trim(),
    }));
    const published = catalog.models.filter((m) => m.published);
    expect(rows.map((r) => r.name).sort()).toEqual(published.map((m) => m.name).sort());
    for (const meta of published) {
      const row = rows.find((r) => r.name === meta.name)!;
      // The grain as the yml states it, optionally followed by how it is meant (", as of D").
      expect(row.grain.split(',')[0]!.trim(), meta.name).toBe(meta.grain.join(' x '));
      const defined = meta.materializedBy ?? meta.file.replace(/\.yml$/, '.sql');
      expect(row.where, meta.name).toContain(`\`${defined}\``);
    }
  });
});

describe('the yml agrees with what the SQL builds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-metadata-'));
  let db: Db;
  let models: AnyModel[];
  let manifest: Record<string, TableManifest>;

  beforeAll(async () => {
    const sample = await generateSample({ dir: join(dir, 'data', 'sample'), customers: 300, seed: 11 });
    const config = configSchema.parse(parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')));
    db = await buildModels(config, dir, sample.asOf);
    models = await loadModels();
    manifest = await exportTables(db, join(dir, 'out', 'current'));
    await writeCatalog(join(dir, 'out'));
  });
  afterAll(() => db?.close());

  it('has the columns of every built table, with their DuckDB types, and no column the table lacks', async () => {
    const problems: string[] = [];
    for (const { model, table, meta } of describedTables(models)) {
      if (!meta) continue;
      const built = await db.all<{ column_name: string; column_type: string }>(`describe ${sqlIdent(table)}`);
      const described = new Map(meta.columns.map((c) => [c.name, c.dataType]));
      for (const column of built) {
        if (!described.has(column.column_name)) {
          problems.push(
            `${model.file} outputs ${table}.${column.column_name}, which ${meta.file} does not list`,
          );
        } else if (described.get(column.column_name) !== column.column_type.toLowerCase()) {
          problems.push(
            `${table}.${column.column_name} is ${column.column_type.toLowerCase()}, ${meta.file} says ${described.get(column.column_name)}`,
          );
        }
      }
      const names = new Set(built.map((c) => c.column_name));
      for (const column of meta.columns) {
        if (!names.has(column.name)) {
          problems.push(`${meta.file} lists ${table}.${column.name}, which ${model.file} does not output`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('puts every description in the catalog, where duckdb_columns() shows it', async () => {
    const target = join(dir, 'out', 'catalog.duckdb');
    expect(existsSync(target)).toBe(true);
    const reader = await Db.open();
    try {
      await reader.run(`attach ${sqlString(target)} as churn (read_only)`);
      const columns = await reader.all<{ table_name: string; column_name: string; comment: string | null }>(
        `select table_name, column_name, comment from duckdb_columns() where database_name = 'churn'`,
      );
      expect(new Set(columns.map((c) => c.table_name))).toEqual(new Set(PUBLISHED_TABLES.map((t) => t.name)));
      expect(columns.filter((c) => !c.comment)).toEqual([]);
      expect(
        columns.find((c) => c.table_name === 'fct_customer_period' && c.column_name === 'lifecycle')?.comment,
      ).toBe(catalog.column('fct_customer_period', 'lifecycle')?.description);
      const views = await reader.all<{ view_name: string; comment: string | null }>(
        `select view_name, comment from duckdb_views() where database_name = 'churn'`,
      );
      for (const view of views)
        expect(view.comment, view.view_name).toBe(catalog.model(view.view_name)?.description);
    } finally {
      reader.close();
    }
  });

  it('puts every description in the manifest', () => {
    for (const table of PUBLISHED_TABLES) {
      const entry = manifest[table.name]!;
      expect(entry.description, table.name).toBe(catalog.model(table.name)?.description);
      expect(entry.grain).toEqual([...table.grain]);
      expect(entry.columns.filter((c) => !c.description)).toEqual([]);
    }
  });
});

describe('reading the yml', () => {
  function sqlDir(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'churn-yml-'));
    for (const [path, text] of Object.entries(files)) {
      const file = join(root, 'sql', path);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, text);
    }
    return join(root, 'sql');
  }

  const good = `version: 2
models:
  - name: facts_a
    description: A.
    config: { published: true, grain: [id] }
    columns:
      - { name: id, data_type: varchar, description: The id., data_tests: [not_null, unique] }
      - name: kind
        data_type: varchar
        description: The kind.
        data_tests:
          - accepted_values: { values: [x, y] }
          - relationships: { to: "ref('facts_a')", field: id }
`;

  it('reads the dbt format: tests, grain, published', () => {
    const read = readCatalog(sqlDir({ 'facts/facts_a.yml': good }));
    const meta = read.model('facts_a')!;
    expect(meta).toMatchObject({
      layer: 'facts',
      file: 'sql/facts/facts_a.yml',
      published: true,
      grain: ['id'],
    });
    expect(meta.uniqueCombinations).toEqual([['id']]);
    expect(read.column('facts_a', 'kind')).toMatchObject({
      acceptedValues: ['x', 'y'],
      relationship: { to: 'facts_a', field: 'id' },
      notNull: false,
    });
  });

  it('names the file and the key of a mistake, and says what to do', () => {
    const typo = good.replace('description: The kind.', 'descripton: The kind.');
    expect(() => readCatalog(sqlDir({ 'facts/facts_a.yml': typo }))).toThrow(
      /sql\/facts\/facts_a\.yml does not follow the model yml format .*unknown key\(s\) "descripton" under "models\.0\.columns\.1": remove or fix the spelling/,
    );
    const grain = good.replace('grain: [id]', 'grain: [id, period]');
    expect(() => readCatalog(sqlDir({ 'facts/facts_a.yml': grain }))).toThrow(
      /sql\/facts\/facts_a\.yml \(model facts_a\): config\.grain names period, which is not among its columns/,
    );
    const ref = good.replace("ref('facts_a')", "ref('facts_b')");
    expect(() => readCatalog(sqlDir({ 'facts/facts_a.yml': ref }))).toThrow(MetadataError);
    expect(() => readCatalog(sqlDir({ 'facts/facts_a.yml': good, 'metrics/other.yml': good }))).toThrow(
      /facts_a is described twice, in sql\/facts\/facts_a\.yml and in sql\/metrics\/other\.yml/,
    );
    expect(() =>
      readCatalog(sqlDir({ 'facts/facts_a.yml': good.replace('grain: [id]', 'materialized_by: x.ts') })),
    ).toThrow(/config\.materialized_by.*transforms\/models\/<file>\.ts/);
  });
});
