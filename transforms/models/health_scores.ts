// health_scores: p_churn, p_alive and expected purchases per customer and snapshot (int_health_snapshots), and
// health_model, one row per scored snapshot saying which model produced p_churn and why.
//
// 1. MBG/NBD (Batislam, Gemici & Kalkan 2007), fitted per snapshot on the compact (x, t_x, T) purchase groups
//    of int_health_features (of a hash sample of at most health.model_max_fit_customers customers, so that the fit
//    stops growing with the population; every group is scored): p_alive, expected purchases in 90 days and P(no purchase in the horizon). Unlike
//    BG/NBD it lets a one-time buyer drop out, so p_alive falls with recency for everyone.
// 2. The risk model, learned each night from the user's own history: an L2 logistic regression on the f_*
//    features (plus the MBG/NBD figures) of the `train` snapshot (D - horizon), labelled by what happened by D,
//    applied to the `score` snapshot (D). The backtest's model is fitted on the `backtest` snapshot (D - 2
//    horizons, outcome by D - horizon) and applied to `train`, so early_warning_backtest judges a model that saw
//    nothing after D - horizon. With too little history (fewer than health.model_min_training_customers
//    customers, or one outcome missing) p_churn falls back to MBG/NBD's P(no purchase in the horizon), and
//    without a purchase model to the customer's own Poisson rate.
//
// Only compact arrays come into JavaScript: the purchase groups and a deterministic hash sample of at most
// health.model_max_training_rows training rows. Scoring runs in SQL from the fitted coefficients, which also give
// each reason code's contribution (coefficient x standardised feature, summed over the code's features).

import type { Db } from '../../pipelines/base/duckdb.js';
import type { BgNbdFit, RfGroup } from '../../pipelines/fit/bgnbd.js';
import { fitLogistic, type LogisticFit } from '../../pipelines/fit/logistic.js';
import { fitMbgNbd, mbgExpectedPurchases, mbgPAlive, mbgProbNoPurchase } from '../../pipelines/fit/mbgnbd.js';
import type { ModelContext, TsModel } from '../model.js';
import { purchaseGroupsSql } from './purchase_groups.js';

const FEATURES_TABLE = 'int_health_features';
const MBG_TABLE = 'int_health_mbg';
const ROLES = ['score', 'train', 'backtest'] as const;
type Role = (typeof ROLES)[number];
const DAYS_PER_UNIT: Record<string, number> = { days: 1, weeks: 7 };
/** MBG/NBD fits whose gradient norm is below this are used even when short of the strict convergence test. */
const GRADIENT_ACCEPT = 1e-3;
/** Standardised features are clipped to +-this when scoring, so a value unseen in training cannot dominate. */
const Z_CLIP = 5;

/** The risk model's features, grouped by the reason code they speak for (null: context, no reason). */
export const FEATURE_REASONS: Record<string, string | null> = {
  f_log_recency: 'INACTIVE',
  f_recency: 'INACTIVE',
  f_log_recency_sq: 'INACTIVE',
  f_recency_x_history: 'INACTIVE',
  f_recency_share_of_tenure: 'INACTIVE',
  f_log_recency_per_gap: 'INACTIVE',
  f_silence_log_p: 'INACTIVE',
  f_activity_decline: 'ACTIVITY_DROP',
  f_log_active_recent: 'ACTIVITY_DROP',
  f_log_active_w30: 'ACTIVITY_DROP',
  f_log_ratio_w30: 'ACTIVITY_DROP',
  f_log_ratio_recent: 'ACTIVITY_DROP',
  f_orders_decline: 'SPEND_DROP',
  f_log_emails_since_open: 'EMAIL_DISENGAGED',
  f_email_decline: 'EMAIL_DISENGAGED',
  f_has_email: 'EMAIL_DISENGAGED',
  f_log_complaints_recent: 'COMPLAINTS_UP',
  f_complaints_up: 'COMPLAINTS_UP',
  f_log_late_payments: 'LATE_PAYMENT',
  f_nps_detractor: 'NPS_DETRACTOR',
  f_nps_fall: 'NPS_DROP',
  f_low_csat: 'LOW_CSAT',
  f_mbg_log_odds_dead: 'LOW_P_ALIVE',
  f_mbg_log_expected: 'LOW_P_ALIVE',
  f_log_tenure: null,
  f_log_active_days: null,
  f_one_time: null,
  f_log_rate_90: null,
  f_log_revenue: null,
  f_log_order_value: null,
  f_has_subscription: null,
  f_log_mrr: null,
};
export const FEATURES = Object.keys(FEATURE_REASONS);
export const REASON_CODES = [
  'INACTIVE',
  'ACTIVITY_DROP',
  'SPEND_DROP',
  'EMAIL_DISENGAGED',
  'COMPLAINTS_UP',
  'LATE_PAYMENT',
  'NPS_DETRACTOR',
  'NPS_DROP',
  'LOW_CSAT',
  'LOW_P_ALIVE',
] as const;

interface Settings {
  horizonDays: number;
  daysPerUnit: number;
  minRepeatBuyers: number;
  minTraining: number;
  maxTrainingRows: number;
  /** The MBG/NBD fits see at most this many customers per snapshot (health.model_max_fit_customers). */
  maxFitCustomers: number;
  l2: number;
}

interface MbgResult {
  role: Role;
  fit: BgNbdFit | null;
  message: string;
  customers: number;
  repeatBuyers: number;
}

/** What a learned model predicts: churn (no activity in the horizon) or decline (below the own rate in it). */
type Target = 'churn' | 'decline';
const LABELS: Record<Target, string> = { churn: 'churned_in_horizon', decline: 'declined_in_horizon' };

interface RiskModel {
  target: Target;
  role: Role;
  trainedOn: Role | null;
  kind: 'logistic' | 'mbgnbd' | 'own_rate';
  reason: string;
  trainingCustomers: number;
  trainingChurnRate: number | null;
  fit: LogisticFit | null;
}

async function readSettings(db: Db): Promise<Settings> {
  const row = await db.one(`
    select health_horizon_days as horizon, health_model_time_unit as unit,
        health_model_min_repeat_buyers as min_repeat, health_model_min_training_customers as min_training,
        health_model_max_training_rows as max_rows, health_model_l2 as l2,
        health_model_max_fit_customers as max_fit
    from run_params`);
  const daysPerUnit = DAYS_PER_UNIT[String(row?.unit ?? '')];
  if (daysPerUnit === undefined) {
    throw new Error(
      `run_params.health_model_time_unit must be days or weeks, got ${JSON.stringify(row?.unit)}`,
    );
  }
  return {
    horizonDays: Number(row?.horizon),
    daysPerUnit,
    minRepeatBuyers: Number(row?.min_repeat),
    minTraining: Number(row?.min_training),
    maxTrainingRows: Number(row?.max_rows),
    maxFitCustomers: Number(row?.max_fit),
    l2: Number(row?.l2),
  };
}

/** Fits MBG/NBD per snapshot on its purchase groups and writes the scores of each group to int_health_mbg. */
async function fitPurchaseModels(db: Db, settings: Settings): Promise<MbgResult[]> {
  await db.run(`
    create or replace table ${MBG_TABLE} (
        snapshot_role varchar, x double, tx double, t double,
        p_alive double, expected_purchases_next_90d double, p_no_purchase_horizon double
    )`);
  const results: MbgResult[] = [];
  for (const role of ROLES) {
    // Every (x, t_x, T) group is scored; the fit sees those of a hash sample of health.model_max_fit_customers.
    const rows = await db.all(
      purchaseGroupsSql(
        `select customer_id, purchase_frequency as x, purchase_recency as tx, purchase_t as t
         from ${FEATURES_TABLE}
         where snapshot_role = '${role}' and purchase_frequency is not null`,
        settings.maxFitCustomers,
      ),
    );
    const groups: RfGroup[] = rows.map((r) => ({
      x: Number(r.x),
      tx: Number(r.tx),
      T: Number(r.t),
      n: Number(r.n),
    }));
    const fitGroups: RfGroup[] = rows
      .filter((r) => Number(r.n_fit) > 0)
      .map((r) => ({ x: Number(r.x), tx: Number(r.tx), T: Number(r.t), n: Number(r.n_fit) }));
    const customers = groups.reduce((s, g) => s + g.n, 0);
    const repeatBuyers = groups.reduce((s, g) => s + (g.x > 0 ? g.n : 0), 0);
    const fitCustomers = fitGroups.reduce((s, g) => s + g.n, 0);
    let fit: BgNbdFit | null = null;
    let message = '';
    if (customers === 0) message = 'no customers with a completed order';
    else if (repeatBuyers < settings.minRepeatBuyers) {
      message = `${repeatBuyers} repeat buyers, fewer than health.model_min_repeat_buyers (${settings.minRepeatBuyers})`;
    } else {
      try {
        const result = fitMbgNbd(fitGroups);
        // A feature and a fallback need a good fit, not a paper-exact one: a small gradient is enough.
        if (
          result.converged ||
          (Number.isFinite(result.logLikelihood) && result.gradientNorm < GRADIENT_ACCEPT)
        ) {
          fit = result;
        } else message = result.message;
      } catch (err) {
        message = `fit failed: ${(err as Error).message}`;
      }
    }
    if (fit) {
      const params = fit;
      const horizon = settings.horizonDays / settings.daysPerUnit;
      const ninety = 90 / settings.daysPerUnit;
      const appender = await db.conn.createAppender(MBG_TABLE);
      try {
        for (const g of groups) {
          appender.appendVarchar(role);
          appender.appendDouble(g.x);
          appender.appendDouble(g.tx);
          appender.appendDouble(g.T);
          for (const value of [
            mbgPAlive(params, g.x, g.tx, g.T),
            mbgExpectedPurchases(params, ninety, g.x, g.tx, g.T),
            mbgProbNoPurchase(params, horizon, g.x, g.tx, g.T),
          ]) {
            if (Number.isFinite(value)) appender.appendDouble(value);
            else appender.appendNull();
          }
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      const fittedOn =
        fitCustomers < customers
          ? `a hash sample of ${fitCustomers} of ${customers} customers (health.model_max_fit_customers)`
          : `${customers} customers (${repeatBuyers} repeat buyers)`;
      message = `fitted on ${fittedOn} in ${fit.iterations} iterations`;
    }
    results.push({ role, fit, message, customers, repeatBuyers });
  }
  return results;
}

/** Features plus the MBG/NBD figures, one row per customer and snapshot. */
async function buildModelInputs(db: Db): Promise<void> {
  await db.run(`
    create or replace temp table health_model_inputs as
    select
        features.*,
        mbg.p_alive,
        mbg.expected_purchases_next_90d,
        mbg.p_no_purchase_horizon,
        coalesce(ln((1 - mbg.p_alive + 1e-6) / (mbg.p_alive + 1e-6)), 0) as f_mbg_log_odds_dead,
        coalesce(ln(1 + mbg.expected_purchases_next_90d), 0) as f_mbg_log_expected
    from ${FEATURES_TABLE} as features
    left join ${MBG_TABLE} as mbg
        on mbg.snapshot_role = features.snapshot_role
        and mbg.x = features.purchase_frequency
        and mbg.tx = features.purchase_recency
        and mbg.t = features.purchase_t`);
}

/** Fits the logistic risk model on one snapshot's labelled rows (a hash sample), or says why not. */
async function fitRiskModel(
  db: Db,
  settings: Settings,
  target: Target,
  role: Role,
  trainedOn: Role,
): Promise<RiskModel> {
  const label = LABELS[target];
  const labelled = `from health_model_inputs where snapshot_role = '${trainedOn}' and ${label} is not null`;
  const counts = await db.one(
    `select count(*) as n, count(*) filter (where ${label}) as churned ${labelled}`,
  );
  const n = Number(counts?.n ?? 0);
  const churned = Number(counts?.churned ?? 0);
  const base = {
    target,
    role,
    trainedOn,
    trainingCustomers: n,
    trainingChurnRate: n > 0 ? churned / n : null,
  };
  const fallback = target === 'churn' ? ('mbgnbd' as const) : ('own_rate' as const);
  if (n < settings.minTraining) {
    return {
      ...base,
      kind: fallback,
      reason: `${n} customers with a known outcome as of ${trainedOn}, fewer than health.model_min_training_customers (${settings.minTraining})`,
      fit: null,
    };
  }
  if (churned < 10 || n - churned < 10) {
    return {
      ...base,
      kind: fallback,
      reason: `${churned} of ${n} training customers ${target === 'churn' ? 'churned' : 'declined'}: too few of one outcome to learn from`,
      fit: null,
    };
  }
  const reader = await db.conn.runAndReadAll(`
    select ${FEATURES.map((f) => `${f}::double as ${f}`).join(', ')}, ${label}::double as y
    from (select * ${labelled} order by hash(customer_id), customer_id limit ${settings.maxTrainingRows})
    order by customer_id`);
  const columns = reader.getColumns();
  const rows = reader.currentRowCount;
  const p = FEATURES.length;
  const x = new Float64Array(rows * p);
  const y = new Uint8Array(rows);
  for (let j = 0; j < p; j++) {
    const column = columns[j]!;
    for (let i = 0; i < rows; i++) x[i * p + j] = Number(column[i]);
  }
  const labels = columns[p]!;
  for (let i = 0; i < rows; i++) y[i] = Number(labels[i]);
  const fit = fitLogistic({ features: FEATURES, x, y }, { l2: settings.l2 });
  if (!fit.converged) {
    return {
      ...base,
      kind: fallback,
      reason: `logistic regression did not converge in ${fit.iterations} iterations`,
      fit: null,
    };
  }
  return {
    ...base,
    trainingCustomers: rows,
    kind: 'logistic',
    reason: `learned from ${rows} customers as of the ${trainedOn} snapshot (${(100 * (base.trainingChurnRate ?? 0)).toFixed(1)}% ${target === 'churn' ? 'churned' : 'declined'} in the horizon)`,
    fit,
  };
}

function num(value: number): string {
  return Number.isFinite(value) ? value.toPrecision(17) : '0';
}

/** The standardised term of feature j, coefficient x clip((x - mean) / scale), as SQL. */
function term(fit: LogisticFit, j: number): string {
  const z = `(${FEATURES[j]} - ${num(fit.means[j]!)}) / ${num(fit.scales[j]!)}`;
  return `(${num(fit.coefficients[j]!)} * least(${Z_CLIP}, greatest(-${Z_CLIP}, ${z})))`;
}

/** The linear predictor of a fitted model, as SQL. */
function logit(fit: LogisticFit): string {
  return `${num(fit.intercept)} + ${FEATURES.map((_, j) => term(fit, j)).join(' + ')}`;
}

/** SQL columns p_churn, p_decline and contrib_<code> (from the churn model) for one scored snapshot. */
function scoringColumns(churn: RiskModel, decline: RiskModel): string {
  const contributions = REASON_CODES.map((code) => {
    if (!churn.fit) return `null::double as contrib_${code.toLowerCase()}`;
    const fit = churn.fit;
    const terms = FEATURES.map((f, j) => (FEATURE_REASONS[f] === code ? term(fit, j) : null)).filter(
      (t): t is string => t !== null,
    );
    return `${terms.length ? terms.join(' + ') : '0'} as contrib_${code.toLowerCase()}`;
  });
  // Without a learned churn model: MBG/NBD's P(no purchase in the horizon), else the own Poisson rate.
  const pChurn = churn.fit
    ? `1 / (1 + exp(-(${logit(churn.fit)})))`
    : `coalesce(p_no_purchase_horizon, exp(-(select health_horizon_days from run_params) * active_days_total / (tenure_days + (select health_horizon_days from run_params))))`;
  // Without a learned decline model: the evidence of a decline so far (1 - the decline test's tail).
  const pDecline = decline.fit
    ? `case when has_rate then 1 / (1 + exp(-(${logit(decline.fit)}))) end`
    : `case when has_rate then 1 - coalesce(activity_decline_p, 1) end`;
  return [`${pChurn} as p_churn`, `${pDecline} as p_decline`, ...contributions].join(',\n        ');
}

async function writeScores(db: Db, models: RiskModel[]): Promise<void> {
  const parts = (['score', 'train'] as const).map((role) => {
    const churn = models.find((m) => m.role === role && m.target === 'churn')!;
    const decline = models.find((m) => m.role === role && m.target === 'decline')!;
    return `
    select
        customer_id,
        snapshot_role,
        ${scoringColumns(churn, decline)},
        p_alive,
        expected_purchases_next_90d,
        '${churn.kind}' as risk_model,
        '${decline.kind}' as decline_model
    from health_model_inputs
    where snapshot_role = '${role}'`;
  });
  await db.run(
    `create or replace table health_scores as ${parts.join('\nunion all')}\norder by snapshot_role, customer_id`,
  );
}

async function writeModelTable(db: Db, models: RiskModel[], mbg: MbgResult[]): Promise<void> {
  await db.run(`
    create or replace table health_model (
        target varchar, snapshot_role varchar, trained_on varchar, risk_model varchar, reason varchar,
        training_customers bigint, training_churn_rate double, coefficients varchar,
        purchase_model varchar, purchase_model_message varchar,
        mbg_r double, mbg_alpha double, mbg_a double, mbg_b double, mbg_log_likelihood double
    )`);
  for (const model of models) {
    const purchase = mbg.find((m) => m.role === model.role);
    const coefficients = model.fit
      ? JSON.stringify({
          intercept: model.fit.intercept,
          ...Object.fromEntries(FEATURES.map((f, j) => [f, model.fit?.coefficients[j] ?? 0])),
        })
      : null;
    await db.conn.run(
      `insert into health_model values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        model.target,
        model.role,
        model.trainedOn,
        model.kind,
        model.reason,
        BigInt(model.trainingCustomers),
        model.trainingChurnRate,
        coefficients,
        purchase?.fit ? 'mbgnbd' : 'none',
        purchase?.message ?? '',
        purchase?.fit?.r ?? null,
        purchase?.fit?.alpha ?? null,
        purchase?.fit?.a ?? null,
        purchase?.fit?.b ?? null,
        purchase?.fit?.logLikelihood ?? null,
      ],
    );
  }
}

export const healthScores: TsModel = {
  name: 'health_scores',
  dependsOn: [FEATURES_TABLE, 'run_params'],

  async build(ctx: ModelContext): Promise<void> {
    const { db } = ctx;
    const settings = await readSettings(db);
    const mbg = await fitPurchaseModels(db, settings);
    await buildModelInputs(db);
    const models: RiskModel[] = [];
    for (const target of ['churn', 'decline'] as const) {
      models.push(await fitRiskModel(db, settings, target, 'score', 'train'));
      models.push(await fitRiskModel(db, settings, target, 'train', 'backtest'));
    }
    await writeScores(db, models);
    await writeModelTable(db, models, mbg);
    await db.run('drop table if exists temp.main.health_model_inputs');
    for (const model of models) {
      const line = `early warning (${model.role}): p_${model.target} from ${model.kind}: ${model.reason}`;
      if (model.kind === 'logistic') ctx.log.info({ model: 'health', role: model.role }, line);
      else {
        ctx.log.warn({ model: 'health', role: model.role }, line);
        if (model.role === 'score') ctx.notes.push(line);
      }
    }
    for (const m of mbg) {
      if (!m.fit && m.role === 'score') ctx.notes.push(`MBG/NBD model not fitted: ${m.message}`);
    }
  },
};
