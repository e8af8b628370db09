// The export stage: every published table as Parquet and the import files (audience per tool, CRM flags) into the
// run's staging folder, which the sink then publishes.
import type { Config } from '../../config/schema.js';
import type { Db } from '../base/duckdb.js';
import type { Logger } from '../base/log.js';
import { exportTables, type TableManifest } from '../stages/export.js';
import { EXPORTS_DIR, type ExportManifest, writeExports } from '../stages/exports.js';

export interface Exported {
  tables: Record<string, TableManifest>;
  exports: Record<string, ExportManifest>;
}

export const NOTHING_EXPORTED: Exported = { tables: {}, exports: {} };

export async function exportRun(
  db: Db,
  stagedDir: string,
  config: Config,
  notes: string[],
  log: Logger,
): Promise<Exported> {
  const tables = await exportTables(db, stagedDir);
  const files = await writeExports(db, stagedDir, config);
  notes.push(...files.notes);
  for (const note of files.notes) log.warn({ stage: 'export' }, note);
  return { tables, exports: files.exports };
}

/** The stage's log fields. */
export function exportFields(e: Exported): Record<string, unknown> {
  return { tables: Object.keys(e.tables).length, exports: Object.keys(e.exports).length };
}

/** The staged folders to publish: one per table, and exports/ beside them when there are import files. */
export function stagedFolders(e: Exported): string[] {
  return [...Object.keys(e.tables), ...(Object.keys(e.exports).length > 0 ? [EXPORTS_DIR] : [])];
}

/** Rows per exported table (the ledger records them). */
export function tableRows(e: Exported): Record<string, number> {
  return Object.fromEntries(Object.entries(e.tables).map(([name, t]) => [name, t.rows]));
}
