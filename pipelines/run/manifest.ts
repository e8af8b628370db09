// The run's _manifest.json: what was published (tables, import files), the quarantine and reconciliation, the
// timings and the model fits; written into the staging folder with checks.json before the report and the publish.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChecksOutcome } from '../../transforms/checks.js';
import type { ModelTiming } from '../../transforms/runner.js';
import type { Db } from '../base/duckdb.js';
import { writeManifest } from '../stages/export.js';
import type { Exported } from './export.js';
import type { RunManifest } from './types.js';

export interface ManifestInput {
  runId: string;
  asOf: string;
  startedAt: Date;
  configFile: string;
  exported: Exported;
  checks: ChecksOutcome;
  timings: Record<string, number>;
  modelTimings: ModelTiming[];
  notes: string[];
}

/** The model fits of the run (BG/NBD, the risk model, the backtest), when their tables were built. */
async function readFits(
  db: Db,
): Promise<Pick<RunManifest, 'model' | 'health_model' | 'early_warning_backtest'>> {
  const fit = (await db.tableExists('bgnbd_fit')) ? ((await db.one('select * from bgnbd_fit')) ?? {}) : {};
  const healthModel = (await db.tableExists('health_model'))
    ? await db.all('select * from health_model order by target, snapshot_role')
    : [];
  const backtest = (await db.tableExists('early_warning_backtest'))
    ? await db.all(
        `select * exclude (backtest_as_of, outcome_as_of), strftime(backtest_as_of, '%Y-%m-%d') as backtest_as_of,
            strftime(outcome_as_of, '%Y-%m-%d') as outcome_as_of
         from early_warning_backtest where section in ('overall', 'status') order by section, status`,
      )
    : [];
  return {
    model: Object.fromEntries(
      Object.entries(fit).map(([k, v]) => [k, v === null || typeof v === 'number' ? v : String(v)]),
    ),
    health_model: healthModel,
    early_warning_backtest: backtest,
  };
}

export async function buildManifest(db: Db, input: ManifestInput): Promise<RunManifest> {
  const { checks, exported } = input;
  return {
    run_id: input.runId,
    as_of: input.asOf,
    status: 'success',
    started_at: input.startedAt.toISOString(),
    finished_at: '',
    config_file: input.configFile,
    tables: exported.tables,
    exports: exported.exports,
    quarantine: checks.quarantine,
    reconciliation: checks.reconciliation,
    timings_ms: input.timings,
    model_timings: input.modelTimings,
    notes: input.notes,
    ...(await readFits(db)),
    checks: checks.results,
  };
}

/** Writes checks.json and _manifest.json (finished now) into the staging folder. */
export async function writeStagedManifest(stagedDir: string, manifest: RunManifest): Promise<void> {
  await writeFile(join(stagedDir, 'checks.json'), `${JSON.stringify(manifest.checks, null, 2)}\n`);
  manifest.finished_at = new Date().toISOString();
  await writeManifest(stagedDir, manifest);
}
