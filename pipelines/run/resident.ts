// The tables of a run's database that stay to its end: what the stages after the models read from the database
// (the export, the import files, the manifest, the summary, the withheld audience). The transform stage drops every
// other table once its last reader is done (transforms/runner.ts ReleaseOptions), so that raw, checked and staging
// tables do not stay resident while the later models build. A stage that reads a new table here must add it.

import { PUBLISHED_TABLES } from '../stages/export.js';
import { AUDIENCE_EXPORTS, CRM_FLAGS } from '../stages/exports.js';

/** Read after the models besides the published tables and the import files' models. */
const READ_AFTER_MODELS = [
  // summary.ts: the customer count
  'stg_customers',
  // manifest.ts: the model fit and the risk model; summary.ts: the risk model
  'bgnbd_fit',
  'health_model',
  // transforms/checks.ts withholdAudience empties it with the audience
  'int_audience_targets',
  // summary.ts earlyWarningNotes: the manifest's note when drops set no status
  'int_health_drop_record',
] as const;

/** Every table the stages after the models read. */
export function residentTables(): Set<string> {
  return new Set<string>([
    ...PUBLISHED_TABLES.map((t) => t.name),
    ...Object.values(AUDIENCE_EXPORTS).map((p) => p.model),
    CRM_FLAGS.model,
    ...READ_AFTER_MODELS,
  ]);
}
