// early_warning_backtest's arithmetic on a hand-made population: the verdicts of the `train` snapshot and the
// customers' last activity at D are written by hand with the columns of int_health_status and int_health_features,
// and every figure of the table is recomputed here independently (brute-force pairwise AUC, counts, deciles).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { Db } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { auc } from '../pipelines/fit/metrics.js';
import { createRunParams } from '../transforms/params.js';
import { loadModels, runMacros, runModels } from '../transforms/runner.js';

const AS_OF = '2024-06-30';
const SNAPSHOT = '2024-04-01'; // D - 90 days

interface Customer {
  id: string;
  status: string;
  pChurn: number;
  pAlive: number | null;
  daysSince: number;
  churned: boolean;
  pDecline: number | null;
  declined: boolean | null;
  /** Days from the snapshot to the last activity up to D (negative: before the snapshot). */
  lead: number;
}

// 40 customers: deterministic, with ties in p_churn and in recency, flagged and not, churned and not.
function population(): Customer[] {
  const statuses = ['active', 'at_risk', 'silent_churn', 'dormant'];
  const out: Customer[] = [];
  for (let i = 0; i < 40; i++) {
    const pChurn = Math.round(((i * 37) % 40) / 4) / 10; // 0.0 .. 0.9 in steps, many ties
    const churned = (i * 7) % 10 < pChurn * 10;
    out.push({
      id: `K${String(i).padStart(2, '0')}`,
      status: statuses[i % 4]!,
      pChurn,
      pAlive: i % 5 === 0 ? null : 1 - pChurn / 2,
      daysSince: (i * 13) % 50,
      churned,
      pDecline: i % 3 === 0 ? null : ((i * 11) % 10) / 10,
      declined: i % 3 === 0 ? null : (i * 3) % 5 < 2,
      lead: churned ? -((i * 13) % 50) : 10 + (i % 60),
    });
  }
  return out;
}

const dateOffset = (base: string, days: number) => {
  const d = new Date(`${base}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
};

function pairwiseAuc(scores: number[], labels: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++)
    for (let j = 0; j < scores.length; j++) {
      if (!labels[i] || labels[j]) continue;
      pairs += 1;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  return wins / pairs;
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describe('early_warning_backtest', () => {
  let db: Db;
  let rows: Record<string, Record<string, unknown>>;
  const people = population();

  beforeAll(async () => {
    db = await Db.open({ timeZone: 'UTC' });
    const config = configSchema.parse({});
    await createRunParams(db, config, {
      asOf: AS_OF,
      runStartedAt: new Date(),
      configuredEntities: ['orders'],
    });
    await runMacros(db);
    const values = people.map(
      (c) =>
        `('${c.id}', 'train', date '${SNAPSHOT}', date '${AS_OF}', '${c.status}', ${c.pChurn}, ${c.pAlive ?? 'null'}, ${c.daysSince}, 'logistic', ${c.churned}, ${c.pDecline ?? 'null'}, ${c.declined ?? 'null'})`,
    );
    await db.run(`
      create table int_health_status as
      select * from (values ${values.join(', ')}) as t(customer_id, snapshot_role, snapshot_date, outcome_date,
          status, p_churn, p_alive, days_since_last_activity, risk_model, churned_in_horizon, p_decline,
          declined_in_horizon)`);
    const later = people.map((c) => `('${c.id}', 'score', date '${dateOffset(SNAPSHOT, c.lead)}')`);
    await db.run(`
      create table int_health_features as
      select * from (values ${later.join(', ')}) as t(customer_id, snapshot_role, last_active_date)`);
    const model = (await loadModels()).filter((m) => m.name === 'early_warning_backtest');
    await runModels({ db, config, log: silentLogger(), asOf: AS_OF, notes: [] }, model);
    const all = await db.all('select * from early_warning_backtest');
    rows = Object.fromEntries(all.map((r) => [`${r.section}/${r.status}/${r.risk_decile}`, r]));
  });
  afterAll(() => db?.close());

  const churners = () => people.filter((c) => c.churned).length;
  const flagged = () => people.filter((c) => c.status === 'at_risk' || c.status === 'silent_churn');

  it('scores p_churn and the baselines by AUC with ties counted half', () => {
    const overall = rows['overall/all/0']!;
    const labels = people.map((c) => c.churned);
    expect(overall.auc).toBeCloseTo(
      pairwiseAuc(
        people.map((c) => c.pChurn),
        labels,
      ),
      12,
    );
    expect(overall.auc).toBeCloseTo(
      auc(
        people.map((c) => c.pChurn),
        labels.map(Number),
      ),
      12,
    );
    expect(overall.auc_recency).toBeCloseTo(
      pairwiseAuc(
        people.map((c) => c.daysSince),
        labels,
      ),
      12,
    );
    const withModel = people.filter((c) => c.pAlive !== null);
    expect(overall.auc_p_alive).toBeCloseTo(
      pairwiseAuc(
        withModel.map((c) => 1 - (c.pAlive ?? 0)),
        withModel.map((c) => c.churned),
      ),
      12,
    );
    const withRate = people.filter((c) => c.pDecline !== null);
    expect(overall.auc_p_decline).toBeCloseTo(
      pairwiseAuc(
        withRate.map((c) => c.pDecline ?? 0),
        withRate.map((c) => c.declined === true),
      ),
      12,
    );
  });

  it('counts the flagged list: share, precision, recall, Brier score and lead time', () => {
    const overall = rows['overall/all/0']!;
    const list = flagged();
    expect(overall.customers).toBe('40');
    expect(overall.churned).toBe(String(churners()));
    expect(overall.flagged_share).toBeCloseTo(list.length / 40, 12);
    expect(overall.precision).toBeCloseTo(list.filter((c) => c.churned).length / list.length, 12);
    expect(overall.recall).toBeCloseTo(list.filter((c) => c.churned).length / churners(), 12);
    // what a flag promises: left, or fell below half the own rate
    const drifted = (c: (typeof people)[number]) => c.churned || c.declined === true;
    expect(overall.drift_precision).toBeCloseTo(list.filter(drifted).length / list.length, 12);
    expect(list.some((c) => !c.churned && c.declined === true)).toBe(true);
    const brier = people.reduce((s, c) => s + (c.pChurn - Number(c.churned)) ** 2, 0) / 40;
    expect(overall.brier_score).toBeCloseTo(brier, 12);
    expect(overall.median_lead_days).toBe(median(list.map((c) => c.lead)));
    expect(overall.backtest_as_of).toBe(SNAPSHOT);
    expect(overall.outcome_as_of).toBe(AS_OF);
  });

  it('gives each status its precision (share that left) and recall (share of all who left)', () => {
    for (const status of ['active', 'at_risk', 'silent_churn', 'dormant']) {
      const group = people.filter((c) => c.status === status);
      const row = rows[`status/${status}/0`]!;
      const left = group.filter((c) => c.churned).length;
      expect(row.customers).toBe(String(group.length));
      expect(row.precision).toBeCloseTo(left / group.length, 12);
      expect(row.recall).toBeCloseTo(left / churners(), 12);
      const drifted = group.filter((c) => c.churned || c.declined === true).length;
      expect(row.drift_precision).toBeCloseTo(drifted / group.length, 12);
    }
  });

  it('splits ten risk deciles by p_churn, calibrated and with lift over the base rate', () => {
    const sorted = [...people].sort((a, b) => a.pChurn - b.pChurn || a.id.localeCompare(b.id));
    const base = churners() / 40;
    for (let d = 1; d <= 10; d++) {
      const group = sorted.slice((d - 1) * 4, d * 4);
      const row = rows[`decile/all/${d}`]!;
      const observed = group.filter((c) => c.churned).length / 4;
      expect(row.customers).toBe('4');
      expect(row.predicted_p_churn).toBeCloseTo(group.reduce((s, c) => s + c.pChurn, 0) / 4, 12);
      expect(row.churn_rate).toBeCloseTo(observed, 12);
      expect(row.lift).toBeCloseTo(observed / base, 12);
    }
  });
});
