// sources.yml beside the outputs: the published tables as dbt sources (dbt's `version: 2` properties format), so that
// a dbt project reads them with `{{ source('churn', 'churn_summary') }}`. Written from current/_manifest.json (the
// tables, grains and column types of what current/ holds; descriptions from the models' yml), rewritten only when
// its text changes, by rename.
//
// Each table's `meta.external_location` (dbt-duckdb's way to read a source from files) is its Parquet file under
// `{{ env_var('CHURN_OUTPUT', '<this output>') }}`: set CHURN_OUTPUT where the output folder is mounted elsewhere.
// `<table>_history` sources read every as_of partition (see history.ts for how to read them without double
// counting).
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { modelCatalog } from '../../transforms/metadata.js';
import { historyGlob, RESTATED_TABLES } from './history.js';

export const DBT_SOURCES_FILE = 'sources.yml';
/** The environment variable a dbt project sets to where the output folder is (default: where the run wrote it). */
export const OUTPUT_ENV = 'CHURN_OUTPUT';

interface ManifestTables {
  as_of: string;
  tables: Record<
    string,
    {
      description?: string;
      grain: string[];
      columns: { name: string; type: string; description?: string | null }[];
    }
  >;
}

interface DbtColumn {
  name: string;
  data_type: string;
  description?: string;
}

interface DbtTable {
  name: string;
  description: string;
  meta: Record<string, string | string[]>;
  columns: DbtColumn[];
}

/** The text of sources.yml for the tables of current/_manifest.json; `location` is the output (path or s3:// URL). */
export function dbtSources(manifest: ManifestTables, location: string): string {
  const base = `{{ env_var('${OUTPUT_ENV}', '${location.replaceAll("'", "\\'")}') }}`;
  const tables: DbtTable[] = [];
  const history: DbtTable[] = [];
  for (const [name, table] of Object.entries(manifest.tables)) {
    const meta = modelCatalog().model(name);
    const columns = table.columns.map((c) => {
      const description = c.description ?? modelCatalog().column(name, c.name)?.description;
      return { name: c.name, data_type: c.type.toLowerCase(), ...(description ? { description } : {}) };
    });
    const description = table.description || meta?.description || name;
    tables.push({
      name,
      description,
      meta: { grain: table.grain, external_location: `${base}/current/${name}/part-0.parquet` },
      columns,
    });
    const restated = RESTATED_TABLES.has(name);
    history.push({
      name: `${name}_history`,
      description: restated
        ? `Every as_of partition of ${name}. Each partition restates every period up to its date: keep the latest ` +
          `as_of per ${table.grain.join(' x ')} (qualify row_number() over (partition by ${table.grain.join(', ')} ` +
          'order by as_of desc) = 1), or filter one as_of; summing over partitions counts a period once per night.'
        : `Every as_of partition of ${name}: the state on each date, one row per ${table.grain.join(' x ')} and ` +
          'as_of. Filter or group by as_of; a sum over dates counts customer-nights.',
      meta: {
        grain: [...table.grain, 'as_of'],
        external_location: `read_parquet('${base}/${historyGlob(name)}', hive_partitioning = true, union_by_name = true)`,
      },
      // The partition's date comes last, where read_parquet puts a hive partition column.
      columns: [
        ...columns,
        {
          name: 'as_of',
          data_type: 'date',
          description: 'The as-of date of the run that published the row.',
        },
      ],
    });
  }
  const document = {
    version: 2,
    sources: [
      {
        name: 'churn',
        description:
          `The tables churn-pipeline publishes (current/ is as of ${manifest.as_of}). ` +
          `Set ${OUTPUT_ENV} to the output folder (or s3:// prefix) where it is mounted.`,
        tables: [...tables, ...history],
      },
    ],
  };
  return (
    '# Written by churn-pipeline after every run that moves current/; do not edit (copy it into your dbt\n' +
    '# project, e.g. models/churn_sources.yml). dbt-duckdb reads each table from meta.external_location.\n' +
    stringify(document, { lineWidth: 0, aliasDuplicateObjects: false })
  );
}

/** Writes <root>/sources.yml from current/_manifest.json when its text changes; its path, or null without current/. */
export async function writeDbtSources(root: string, location: string): Promise<string | null> {
  const manifestPath = join(root, 'current', '_manifest.json');
  if (!existsSync(manifestPath)) return null;
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ManifestTables;
  const text = dbtSources(manifest, location);
  const target = join(root, DBT_SOURCES_FILE);
  if (existsSync(target) && (await readFile(target, 'utf8')) === text) return target;
  const tmp = join(root, `.sources-${process.pid}.yml`);
  await writeFile(tmp, text);
  await rename(tmp, target);
  await rm(tmp, { force: true });
  return target;
}
