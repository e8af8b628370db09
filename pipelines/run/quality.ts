// The quality stage: every gate on the built models (transforms/checks.ts). A failing gate stops the run before
// anything is exported; warnings are logged; stale activity under `checks.freshness.audience: warn` empties the
// audience and publishes the rest.
import type { Config, Entity } from '../../config/schema.js';
import {
  assertChecks,
  type ChecksOutcome,
  type GateReads,
  gateReaders,
  runChecks,
  withheldAudience,
  withholdAudience,
} from '../../transforms/checks.js';
import type { Landing } from '../../transforms/reconciliation.js';
import type { Db } from '../base/duckdb.js';
import type { Logger } from '../base/log.js';
import type { LedgerEntry } from '../ops/state.js';
import type { RunChecked } from './events.js';

export interface QualityInput {
  db: Db;
  config: Config;
  asOf: string;
  configured: Entity[];
  landing: Partial<Record<Entity, Landing>>;
  /** The previous successful run of the output (the volume gate compares against it). */
  previous: LedgerEntry | undefined;
  /** The manifest's notes (the withheld audience adds one). */
  notes: string[];
  log: Logger;
  /** Told the outcome before a failing gate stops the run (the ledger records it either way). */
  onOutcome?: (outcome: ChecksOutcome) => Promise<void>;
  /** What the transform stage read for the gates of the tables it dropped. */
  reads?: GateReads;
}

/** The gates' reads for the transform stage, which drops the tables they read once they are done. */
export function qualityReaders(
  input: Pick<QualityInput, 'db' | 'config' | 'asOf' | 'configured' | 'landing'> & { reads: GateReads },
): ReturnType<typeof gateReaders> {
  return gateReaders(input);
}

export async function checkQuality(input: QualityInput): Promise<ChecksOutcome> {
  const { db, log, previous } = input;
  const outcome = await runChecks({
    db,
    config: input.config,
    asOf: input.asOf,
    configured: input.configured,
    previous: previous && {
      runId: previous.run_id,
      asOf: previous.as_of,
      landedRows: previous.landed_rows,
    },
    landing: input.landing,
    reads: input.reads,
  });
  await input.onOutcome?.(outcome);
  for (const warning of outcome.results.filter((r) => r.status === 'warn')) {
    log.warn({ check: warning.check, target: warning.target }, warning.message);
  }
  assertChecks(outcome);
  const withheld = withheldAudience(outcome);
  if (withheld) {
    await withholdAudience(db);
    input.notes.push(withheld.message);
  }
  return outcome;
}

/** Quarantined rows of every entity. */
function quarantinedRows(checks: ChecksOutcome): number {
  return Object.values(checks.quarantine).reduce((n, q) => n + q.quarantined, 0);
}

/** The outcome as the ledger and the webhook keep it. */
export function checkedEvent(outcome: ChecksOutcome): RunChecked {
  return {
    type: 'checked',
    passed: outcome.passed,
    warned: outcome.warned,
    failed: outcome.failed,
    messages: outcome.results.filter((r) => r.status !== 'pass').map((r) => r.message),
    quarantined: Object.fromEntries(
      Object.entries(outcome.quarantine)
        .filter(([, q]) => q.rows > 0)
        .map(([entity, q]) => [entity, q.quarantined]),
    ),
    quarantinedRows: quarantinedRows(outcome),
  };
}

/** The stage's log fields. */
export function qualityFields(c: ChecksOutcome): Record<string, unknown> {
  return {
    quarantined: quarantinedRows(c),
    checks: { passed: c.passed, warned: c.warned, failed: c.failed },
  };
}
