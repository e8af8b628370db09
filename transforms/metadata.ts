// What the product knows about each table, read from the yml beside its model (sql/<layer>/<model>.yml, dbt's
// format): its description, grain, columns (type, description, tests) and whether it is published. The runner,
// the gates, the export, the manifest and the catalog read it from here, so it is written down once.
//
//   version: 2
//   models:
//     - name: fct_customer_period
//       description: One row per customer and period ...
//       config: { published: true, grain: [customer_id, period_start] }   # materialized_by: transforms/models/x.ts
//       columns:
//         - name: lifecycle
//           data_type: varchar
//           description: ...
//           data_tests: [not_null, { accepted_values: { values: [new, retained] } }]
//       data_tests:
//         - unique_combination_of_columns: { combination_of_columns: [customer_id, period_start] }
//
// Tables the run provides before any model is built (run_params, raw_<entity>...) are `sources:` in a yml of their
// own (sql/staging/__sources.yml).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { z } from 'zod';

export const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

/** The layers, in the order a reader follows them. */
export const LAYERS = ['staging', 'facts', 'metrics', 'audiences'] as const;
export type Layer = (typeof LAYERS)[number];

export class MetadataError extends Error {
  override readonly name = 'MetadataError';
}

const identifier = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case identifier');
const columnName = z.string().min(1);

const columnTestSchema = z.union([
  z.literal('not_null'),
  z.literal('unique'),
  z.strictObject({
    accepted_values: z.strictObject({
      values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
    }),
  }),
  z.strictObject({
    relationships: z.strictObject({
      to: z.string().regex(/^ref\('[a-z_][a-z0-9_]*'\)$/, "must be ref('<model or source table>')"),
      field: columnName,
    }),
  }),
]);

const columnSchema = z.strictObject({
  name: columnName,
  data_type: z.string().min(1).optional(),
  description: z.string().optional(),
  data_tests: z.array(columnTestSchema).optional(),
});

const modelSchema = z.strictObject({
  name: identifier,
  description: z.string().min(1),
  config: z
    .strictObject({
      published: z.boolean().optional(),
      grain: z.array(columnName).min(1).optional(),
      materialized_by: z
        .string()
        .regex(/^transforms\/models\/[a-z_][a-z0-9_]*\.ts$/, 'must be transforms/models/<file>.ts')
        .optional(),
      // local: its rows are per customer and read only per-customer inputs (built per shard, docs/shards.md)
      shard: z.enum(['local', 'global']).optional(),
      // customer_id: its rows are per customer and its import CTEs filter with in_customer_batch(customer_id), so the
      // runner may build it in ranges of customer_id (duckdb.customers_per_batch)
      batch_by: z.literal('customer_id').optional(),
    })
    .optional(),
  columns: z.array(columnSchema).min(1),
  data_tests: z
    .array(
      z.strictObject({
        unique_combination_of_columns: z.strictObject({ combination_of_columns: z.array(columnName).min(1) }),
      }),
    )
    .optional(),
});

const sourceSchema = z.strictObject({
  name: identifier,
  description: z.string().min(1),
  tables: z
    .array(
      z.strictObject({
        name: identifier,
        description: z.string().min(1),
        columns: z.array(z.strictObject({ name: columnName, description: z.string().optional() })).optional(),
      }),
    )
    .min(1),
});

const fileSchema = z.strictObject({
  version: z.literal(2),
  models: z.array(modelSchema).optional(),
  sources: z.array(sourceSchema).optional(),
});

export interface ColumnMeta {
  name: string;
  /** DuckDB type, lower case (`varchar`, `decimal(18,2)`, `varchar[]`), or null when the yml leaves it out. */
  dataType: string | null;
  description: string | null;
  notNull: boolean;
  unique: boolean;
  acceptedValues: readonly string[] | null;
  /** `relationships`: every non-null value is in `to`.`field`. */
  relationship: { to: string; field: string } | null;
}

export interface ModelMeta {
  name: string;
  layer: Layer;
  /** The yml file that describes the model, relative to the project root (sql/facts/x.yml). */
  file: string;
  description: string;
  published: boolean;
  /** The columns that identify a row; the published files are sorted by them. Empty when not stated. */
  grain: readonly string[];
  /** The TypeScript model that writes the table (transforms/models/<file>.ts), or null for a SQL model. */
  materializedBy: string | null;
  /** `local`: built per customer-hash shard by `churn run --shard` (docs/shards.md); `global` (default): in the merge. */
  shard: 'local' | 'global';
  /** `customer_id`: built in ranges of customer_id on a large population (transforms/runner.ts); else null. */
  batchBy: 'customer_id' | null;
  columns: readonly ColumnMeta[];
  /** `unique_combination_of_columns` tests, and a one-column one per `unique` column test. */
  uniqueCombinations: readonly (readonly string[])[];
}

export interface SourceTableMeta {
  name: string;
  source: string;
  file: string;
  description: string;
  columns: readonly { name: string; description: string | null }[];
}

export interface ModelCatalog {
  /** Every described model, in layer order, then by name. */
  models: readonly ModelMeta[];
  /** The tables the run provides before the models are built. */
  sources: readonly SourceTableMeta[];
  model(name: string): ModelMeta | undefined;
  column(model: string, column: string): ColumnMeta | undefined;
}

function projectPath(file: string, dir: string): string {
  return relative(join(dir, '..'), file);
}

/** A zod issue on one line: where in the file, and what is expected. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.length ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')} under "${key}": remove or fix the spelling`;
      }
      return `"${key}": ${issue.message.replace(/^Invalid (input|option): /, '')}`;
    })
    .join('; ');
}

function parseFile(file: string, shown: string): z.infer<typeof fileSchema> {
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    const reason = ((doc.errors[0]?.message ?? '').split('\n')[0] ?? '').trim().replace(/:$/, '');
    throw new MetadataError(`${shown} is not valid YAML: ${reason}; fix the file, then run again`);
  }
  const result = fileSchema.safeParse(doc.toJS());
  if (!result.success) {
    throw new MetadataError(
      `${shown} does not follow the model yml format (dbt's version 2): ${describeIssues(result.error)}`,
    );
  }
  return result.data;
}

function toModel(raw: z.infer<typeof modelSchema>, layer: Layer, file: string): ModelMeta {
  const where = `${file} (model ${raw.name})`;
  const names = new Set<string>();
  for (const column of raw.columns) {
    if (names.has(column.name))
      throw new MetadataError(`${where} lists column ${column.name} twice: keep one`);
    names.add(column.name);
  }
  const known = (columns: readonly string[], what: string): void => {
    const unknown = columns.filter((c) => !names.has(c));
    if (unknown.length) {
      throw new MetadataError(
        `${where}: ${what} names ${unknown.join(', ')}, which is not among its columns: list it under columns or fix the name`,
      );
    }
  };
  const published = raw.config?.published ?? false;
  const grain = raw.config?.grain ?? [];
  known(grain, 'config.grain');
  if (raw.config?.batch_by) {
    known([raw.config.batch_by], 'config.batch_by');
    if (raw.config.materialized_by) {
      throw new MetadataError(
        `${where} is built by ${raw.config.materialized_by}, which the runner cannot batch: remove config.batch_by`,
      );
    }
  }
  if (published && grain.length === 0) {
    throw new MetadataError(
      `${where} is published but states no grain: add config.grain, the columns that identify a row`,
    );
  }
  const columns = raw.columns.map((c): ColumnMeta => {
    const tests = c.data_tests ?? [];
    let acceptedValues: string[] | null = null;
    let relationship: ColumnMeta['relationship'] = null;
    for (const test of tests) {
      if (typeof test === 'string') continue;
      if ('accepted_values' in test) acceptedValues = test.accepted_values.values.map(String);
      else relationship = { to: test.relationships.to.slice(5, -2), field: test.relationships.field };
    }
    return {
      name: c.name,
      dataType: c.data_type?.toLowerCase() ?? null,
      description: c.description?.trim() || null,
      notNull: tests.includes('not_null'),
      unique: tests.includes('unique'),
      acceptedValues,
      relationship,
    };
  });
  const uniqueCombinations: string[][] = [];
  for (const test of raw.data_tests ?? []) {
    const combination = test.unique_combination_of_columns.combination_of_columns;
    known(combination, 'unique_combination_of_columns');
    uniqueCombinations.push(combination);
  }
  for (const c of columns) if (c.unique) uniqueCombinations.push([c.name]);
  return {
    name: raw.name,
    layer,
    file,
    description: raw.description.trim(),
    published,
    grain,
    materializedBy: raw.config?.materialized_by ?? null,
    shard: raw.config?.shard ?? 'global',
    batchBy: raw.config?.batch_by ?? null,
    columns,
    uniqueCombinations,
  };
}

/** Reads and checks every yml under the layer folders of `dir` (default: the project's sql/). */
export function readCatalog(dir: string = SQL_DIR): ModelCatalog {
  const models: ModelMeta[] = [];
  const sources: SourceTableMeta[] = [];
  const seen = new Map<string, string>();
  const claim = (name: string, file: string): void => {
    const other = seen.get(name);
    if (other) {
      throw new MetadataError(`${name} is described twice, in ${other} and in ${file}: keep one`);
    }
    seen.set(name, file);
  };
  for (const layer of LAYERS) {
    let files: string[];
    try {
      files = readdirSync(join(dir, layer)).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
    } catch {
      continue;
    }
    const layerModels: ModelMeta[] = [];
    for (const f of files.sort()) {
      const path = join(dir, layer, f);
      const shown = projectPath(path, dir);
      const parsed = parseFile(path, shown);
      for (const raw of parsed.models ?? []) {
        claim(raw.name, shown);
        layerModels.push(toModel(raw, layer, shown));
      }
      for (const source of parsed.sources ?? []) {
        for (const table of source.tables) {
          claim(table.name, shown);
          sources.push({
            name: table.name,
            source: source.name,
            file: shown,
            description: table.description.trim(),
            columns: (table.columns ?? []).map((c) => ({ name: c.name, description: c.description ?? null })),
          });
        }
      }
    }
    models.push(...layerModels.sort((a, b) => a.name.localeCompare(b.name)));
  }
  for (const model of models) {
    for (const column of model.columns) {
      const to = column.relationship?.to;
      if (to !== undefined && !seen.has(to)) {
        throw new MetadataError(
          `${model.file} (model ${model.name}): column ${column.name} relates to ref('${to}'), which no yml describes: fix the name`,
        );
      }
    }
  }
  const byName = new Map(models.map((m) => [m.name, m]));
  return {
    models,
    sources,
    model: (name) => byName.get(name),
    column: (model, column) => byName.get(model)?.columns.find((c) => c.name === column),
  };
}

const cache = new Map<string, ModelCatalog>();

/** The catalog of `dir`, read once per process. */
export function modelCatalog(dir: string = SQL_DIR): ModelCatalog {
  let catalog = cache.get(dir);
  if (!catalog) {
    catalog = readCatalog(dir);
    cache.set(dir, catalog);
  }
  return catalog;
}

/** The published models, in layer order: what the export writes and the catalog shows. */
export function publishedModels(dir: string = SQL_DIR): ModelMeta[] {
  return modelCatalog(dir).models.filter((m) => m.published);
}
