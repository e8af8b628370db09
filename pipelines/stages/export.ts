// Export: the published tables are written by DuckDB into the run's staging folder (one Parquet file per table;
// the import files are written by exports.ts, beside them), then described in _manifest.json with row counts,
// schemas and checksums.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelCatalog, publishedModels } from '../../transforms/metadata.js';
import type { Reconciliation } from '../../transforms/reconciliation.js';
import { type Db, type Row, sqlString } from '../base/duckdb.js';
import { PARTITION_FILE } from '../sinks/sink.js';
import type { ExportManifest } from './exports.js';

/**
 * Every published table (`published: true` in its yml), with the grain it is sorted by (so the files are
 * byte-identical for the same input), in layer order.
 */
export const PUBLISHED_TABLES: readonly { name: string; grain: readonly string[] }[] = publishedModels().map(
  (m) => ({ name: m.name, grain: m.grain }),
);

export interface ColumnSchema {
  name: string;
  type: string;
  /** From the model's yml (null for a column the yml does not describe). */
  description: string | null;
}

export interface FileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

export interface TableManifest {
  /** From the model's yml. */
  description: string;
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
    const columns = await db.all<{ column_name: string; column_type: string }>(`describe ${table.name}`);
    const files: FileEntry[] = [];
    for (const file of (await readdir(dir)).sort()) {
      const path = join(dir, file);
      const { size } = await stat(path);
      files.push({ path: `${table.name}/${file}`, bytes: size, sha256: await sha256(path) });
    }
    const meta = modelCatalog().model(table.name);
    tables[table.name] = {
      description: meta?.description ?? '',
      rows: await db.number(`select count(*) from ${table.name}`),
      grain: [...table.grain],
      columns: columns.map((c) => ({
        name: c.column_name,
        type: c.column_type,
        description: modelCatalog().column(table.name, c.column_name)?.description ?? null,
      })),
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
  /** The import files under exports/ (audience per tool, CRM flags), by file name without `.csv`. */
  exports: Record<string, ExportManifest>;
  quarantine: Record<string, { rows: number; quarantined: number; share: number }>;
  /**
   * Where every input row and amount went, per entity: read = staged + quarantined + left out by `where` + after
   * the as-of date; input money = published facts + quarantined + after the as-of date + excluded (with reason).
   */
  reconciliation: Reconciliation;
  timings_ms: Record<string, number>;
  model_timings: { model: string; layer: string; rows: number; ms: number; batches?: number }[];
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
