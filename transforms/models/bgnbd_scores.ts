// bgnbd_scores: p_alive and expected purchases in the next 90 days per customer, from a BG/NBD model (Fader, Hardie &
// Lee 2005) fitted in-process on the run's own customer_purchase_summary; and bgnbd_fit, one row with the fit.
//
// The customers are grouped by (frequency, recency, t) in DuckDB; only those compact groups come into JavaScript,
// are fitted and scored, and go back (appender) to be joined to the customers in SQL. When the model cannot be
// fitted (no purchases, too few repeat buyers, no convergence) every customer still gets a row, with NULL scores,
// bgnbd_fit says why, and the run goes on with a warning and a manifest note.
import type { Db } from '../../pipelines/base/duckdb.js';
import {
  type BgNbdFit,
  expectedPurchases,
  fitBgNbd,
  pAlive,
  type RfGroup,
} from '../../pipelines/fit/bgnbd.js';
import type { ModelContext, TsModel } from '../model.js';
import { purchaseGroupsSql } from './purchase_groups.js';

/** The horizon of expected_purchases_next_90d, in days. */
const HORIZON_DAYS = 90;
const DAYS_PER_UNIT: Record<string, number> = { days: 1, weeks: 7 };

// Working tables of this model, in the connection's temp catalog (never published).
const GROUPS = 'bgnbd_work_groups';
const GROUP_SCORES = 'bgnbd_work_group_scores';

interface GroupRow extends RfGroup {
  groupId: bigint;
  /** The group's customers in the fit's hash sample (health.model_max_fit_customers); n when every one is. */
  nFit: number;
}

/** Every (frequency, recency, T) group, with its customers and those of the fit's sample of at most maxFit. */
async function readGroups(db: Db, maxFit: number): Promise<GroupRow[]> {
  const groups = purchaseGroupsSql(
    'select customer_id, frequency as x, recency as tx, t from customer_purchase_summary',
    maxFit,
  );
  await db.run(`
    create or replace temp table ${GROUPS} as
    select row_number() over (order by x, tx, t) as group_id, x, tx, t, n, n_fit
    from (${groups})`);
  const rows = await db.all(`select group_id, x, tx, t, n, n_fit from ${GROUPS} order by group_id`);
  return rows.map((row) => ({
    groupId: BigInt(String(row.group_id)),
    x: Number(row.x),
    tx: Number(row.tx),
    T: Number(row.t),
    n: Number(row.n),
    nFit: Number(row.n_fit),
  }));
}

async function writeGroupScores(
  db: Db,
  groups: readonly GroupRow[],
  scores: readonly { pAlive: number; expected: number }[],
): Promise<void> {
  await db.run(
    `create or replace temp table ${GROUP_SCORES} (group_id bigint, p_alive double, expected_purchases_next_90d double)`,
  );
  const appender = await db.conn.createAppender(GROUP_SCORES, 'main', 'temp');
  try {
    groups.forEach((group, i) => {
      const score = scores[i]!;
      appender.appendBigInt(group.groupId);
      if (Number.isFinite(score.pAlive)) appender.appendDouble(score.pAlive);
      else appender.appendNull();
      if (Number.isFinite(score.expected)) appender.appendDouble(score.expected);
      else appender.appendNull();
      appender.endRow();
    });
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

async function writeFit(
  db: Db,
  row: {
    status: 'fitted' | 'not_fitted';
    message: string;
    fit: BgNbdFit | null;
    customers: number;
    repeatBuyers: number;
    timeUnit: string;
  },
): Promise<void> {
  const { fit } = row;
  await db.conn.run(
    `create or replace table bgnbd_fit as select
        $1::varchar as status,
        $2::varchar as message,
        $3::double as r,
        $4::double as alpha,
        $5::double as a,
        $6::double as b,
        $7::double as log_likelihood,
        $8::bigint as customers,
        $9::bigint as repeat_buyers,
        $10::varchar as time_unit`,
    [
      row.status,
      row.message,
      fit?.r ?? null,
      fit?.alpha ?? null,
      fit?.a ?? null,
      fit?.b ?? null,
      fit?.logLikelihood ?? null,
      BigInt(row.customers),
      BigInt(row.repeatBuyers),
      row.timeUnit,
    ],
  );
}

export const bgnbdScores: TsModel = {
  name: 'bgnbd_scores',
  dependsOn: ['customer_purchase_summary', 'run_params'],

  async build(ctx: ModelContext): Promise<void> {
    const { db } = ctx;
    const settings = await db.one(
      `select health_model_time_unit as time_unit, health_model_min_repeat_buyers as min_repeat_buyers,
              health_model_max_fit_customers as max_fit
       from run_params`,
    );
    const timeUnit = String(settings?.time_unit ?? '');
    const minRepeatBuyers = Number(settings?.min_repeat_buyers ?? 1);
    const daysPerUnit = DAYS_PER_UNIT[timeUnit];
    if (daysPerUnit === undefined) {
      throw new Error(
        `run_params.health_model_time_unit must be days or weeks, got ${JSON.stringify(timeUnit)}`,
      );
    }

    const groups = await readGroups(db, Number(settings?.max_fit));
    let customers = 0;
    let repeatBuyers = 0;
    for (const g of groups) {
      customers += g.n;
      if (g.x > 0) repeatBuyers += g.n;
    }
    const fitGroups = groups.filter((g) => g.nFit > 0).map((g) => ({ x: g.x, tx: g.tx, T: g.T, n: g.nFit }));
    const fitCustomers = fitGroups.reduce((sum, g) => sum + g.n, 0);
    const fitRepeatBuyers = fitGroups.reduce((sum, g) => sum + (g.x > 0 ? g.n : 0), 0);
    const fittedOn =
      fitCustomers < customers
        ? `a hash sample of ${fitCustomers} of ${customers} customers (${fitRepeatBuyers} repeat buyers; health.model_max_fit_customers)`
        : `${customers} customers (${repeatBuyers} repeat buyers)`;

    let fit: BgNbdFit | null = null;
    let reason = '';
    if (customers === 0) {
      reason = 'no customers with a completed order of positive amount';
    } else if (repeatBuyers < minRepeatBuyers) {
      reason = `${repeatBuyers} repeat buyers, fewer than health.model_min_repeat_buyers (${minRepeatBuyers})`;
    } else {
      try {
        const result = fitBgNbd(fitGroups);
        if (result.converged) fit = result;
        else reason = result.message;
      } catch (err) {
        reason = `fit failed: ${(err as Error).message}`;
      }
    }

    if (fit) {
      const horizon = HORIZON_DAYS / daysPerUnit;
      const params = fit;
      const scores = groups.map((g) => ({
        pAlive: pAlive(params, g.x, g.tx, g.T),
        expected: expectedPurchases(params, horizon, g.x, g.tx, g.T),
      }));
      const unscored = scores.filter(
        (s) => !Number.isFinite(s.pAlive) || !Number.isFinite(s.expected),
      ).length;
      await writeGroupScores(db, groups, scores);
      await db.run(`
        create or replace table bgnbd_scores as
        select
            summary.customer_id,
            summary.frequency,
            summary.recency,
            summary.t,
            scores.p_alive,
            scores.expected_purchases_next_90d
        from customer_purchase_summary as summary
        left join ${GROUPS} as groups
            on groups.x = summary.frequency and groups.tx = summary.recency and groups.t = summary.t
        left join ${GROUP_SCORES} as scores
            on scores.group_id = groups.group_id
        order by summary.customer_id`);
      await writeFit(db, {
        status: 'fitted',
        message: `fitted on ${fittedOn} in ${fit.iterations} iterations`,
        fit,
        customers,
        repeatBuyers,
        timeUnit,
      });
      ctx.log.info(
        {
          model: 'bgnbd',
          r: fit.r,
          alpha: fit.alpha,
          a: fit.a,
          b: fit.b,
          logLikelihood: fit.logLikelihood,
          customers,
          repeatBuyers,
          groups: groups.length,
          iterations: fit.iterations,
          timeUnit,
        },
        'BG/NBD model fitted',
      );
      if (unscored > 0) {
        const note = `BG/NBD: ${unscored} of ${groups.length} (frequency, recency, T) groups could not be scored (NULL)`;
        ctx.log.warn({ model: 'bgnbd', unscored }, note);
        ctx.notes.push(note);
      }
    } else {
      await db.run(`
        create or replace table bgnbd_scores as
        select
            customer_id,
            frequency,
            recency,
            t,
            null::double as p_alive,
            null::double as expected_purchases_next_90d
        from customer_purchase_summary
        order by customer_id`);
      await writeFit(db, {
        status: 'not_fitted',
        message: reason,
        fit: null,
        customers,
        repeatBuyers,
        timeUnit,
      });
      ctx.log.warn(
        { model: 'bgnbd', customers, repeatBuyers, timeUnit },
        `BG/NBD model not fitted: ${reason}`,
      );
      ctx.notes.push(`BG/NBD model not fitted: ${reason}`);
    }
    await db.run(`drop table if exists temp.main.${GROUPS}; drop table if exists temp.main.${GROUP_SCORES}`);
  },
};
