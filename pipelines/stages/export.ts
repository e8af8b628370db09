// Export: the published tables are written by DuckDB into the run's staging folder (Parquet, plus the
// audience CSVs), then described in _manifest.json with row counts, schemas and checksums.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Reconciliation } from '../../transforms/reconciliation.js';
import { type Db, type Row, sqlString } from '../duckdb.js';
import { PARTITION_FILE } from '../sinks/sink.js';

/** Every published table, with the grain it is sorted by (so the files are byte-identical for the same input). */
export const PUBLISHED_TABLES = [
  { name: 'fct_customer_period', grain: ['customer_id', 'period_start'] },
  { name: 'cohort_retention', grain: ['segment_by', 'segment', 'cohort_period', 'period_index'] },
  { name: 'churn_summary', grain: ['segment_by', 'segment', 'period_start'] },
  { name: 'survey_trends', grain: ['survey_type', 'segment_by', 'segment', 'period_start'] },
  { name: 'customer_health', grain: ['customer_id'] },
  { name: 'early_warning_backtest', grain: ['section', 'status', 'risk_decile'] },
  { name: 'reactivation_audience', grain: ['email'] },
  { name: 'audience_exclusions', grain: ['reason'] },
  { name: 'quarantine', grain: ['entity', 'source_file', 'source_row'] },
] as const;
export type PublishedTable = (typeof PUBLISHED_TABLES)[number]['name'];

/** The CSV files marketing imports, built from the audience models (already formula-safe and with tool headers). */
export const AUDIENCE_CSVS = [
  {
    model: 'reactivation_audience_csv',
    file: 'reactivation_audience.csv',
    orderBy: '"Priority", "Email Address"',
  },
  {
    model: 'reactivation_audience_hashed_csv',
    file: 'reactivation_audience_hashed.csv',
    orderBy: 'email_sha256',
  },
] as const;

export interface ColumnSchema {
  name: string;
  type: string;
}

export interface FileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

export interface TableManifest {
  rows: number;
  grain: string[];
  columns: ColumnSchema[];
  files: FileEntry[];
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function exportTables(db: Db, stagedDir: string): Promise<Record<string, TableManifest>> {
  const tables: Record<string, TableManifest> = {};
  for (const table of PUBLISHED_TABLES) {
    const dir = join(stagedDir, table.name);
    await mkdir(dir, { recursive: true });
    const target = join(dir, PARTITION_FILE);
    await db.run(
      `copy (select * from ${table.name} order by ${table.grain.join(', ')})
       to ${sqlString(target)} (format parquet, compression zstd, row_group_size 122880)`,
    );
    if (table.name === 'reactivation_audience') {
      for (const csv of AUDIENCE_CSVS) {
        await db.run(
          `copy (select * from ${csv.model} order by ${csv.orderBy})
           to ${sqlString(join(dir, csv.file))} (format csv, header true, delimiter ',', quote '"', escape '"', force_quote *, new_line e'\\r\\n')`,
        );
      }
    }
    const columns = await db.all<{ column_name: string; column_type: string }>(`describe ${table.name}`);
    const files: FileEntry[] = [];
    for (const file of (await readdir(dir)).sort()) {
      const path = join(dir, file);
      const { size } = await stat(path);
      files.push({ path: `${table.name}/${file}`, bytes: size, sha256: await sha256(path) });
    }
    tables[table.name] = {
      rows: await db.number(`select count(*) from ${table.name}`),
      grain: [...table.grain],
      columns: columns.map((c) => ({ name: c.column_name, type: c.column_type })),
      files,
    };
  }
  return tables;
}

export interface Manifest {
  run_id: string;
  as_of: string;
  status: 'success';
  started_at: string;
  finished_at: string;
  config_file: string;
  tables: Record<string, TableManifest>;
  quarantine: Record<string, { rows: number; quarantined: number; share: number }>;
  /**
   * Where every input row and amount went, per entity: read = staged + quarantined + left out by `where` + after
   * the as-of date; input money = published facts + quarantined + after the as-of date + excluded (with reason).
   */
  reconciliation: Reconciliation;
  timings_ms: Record<string, number>;
  model_timings: { model: string; layer: string; rows: number; ms: number }[];
  notes: string[];
  model: Record<string, string | number | null>;
  /** Which model produced p_churn for each scored snapshot, and why (health_model). */
  health_model: Row[];
  /** The early warning's backtest: the overall and per-status rows of early_warning_backtest. */
  early_warning_backtest: Row[];
}

export async function writeManifest(stagedDir: string, manifest: Manifest): Promise<void> {
  await writeFile(join(stagedDir, '_manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}
