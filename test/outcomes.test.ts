// reactivation_outcomes and reactivation_outcome_customers on hand-made inputs (who counts, windows, empty groups,
// the send log, the intervals against published values), the history loader across the group column's rename,
// and the intervals' coverage over 100 simulated audiences: an A/A test (no effect: 0 inside in at least 90 of
// 100) and a planted effect (inside in at least 90, and found significant in most).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { type Db, sqlString } from '../pipelines/base/duckdb.js';
import { loadAudienceHistoryFiles } from '../pipelines/outcomes/history.js';
import { buildOutcomes, outcomeDb } from './support/outcomes.js';

let db: Db | undefined;
afterEach(() => {
  db?.close();
  db = undefined;
});

type Audience = [asOf: string, customerId: string, group: string, email?: string];

async function insertAudiences(d: Db, rows: Audience[]): Promise<void> {
  const values = rows.map(
    ([asOf, id, group, email]) =>
      `(date ${sqlString(asOf)}, ${sqlString(id)}, ${sqlString(email ?? `${id.toLowerCase()}@example.com`)}, ${sqlString(group)})`,
  );
  await d.run(`insert into reactivation_audience_history values ${values.join(', ')}`);
}

async function insertActive(d: Db, rows: [customerId: string, day: string][]): Promise<void> {
  const values = rows.map(([id, day]) => `(${sqlString(id)}, date ${sqlString(day)})`);
  await d.run(`insert into int_customer_active_days values ${values.join(', ')}`);
}

async function insertOrders(
  d: Db,
  rows: [customerId: string, day: string, amount: number, status?: string][],
) {
  const values = rows.map(
    ([id, day, amount, status], i) =>
      `('O${i}', ${sqlString(id)}, ${amount}, ${sqlString(status ?? 'completed')}, date ${sqlString(day)})`,
  );
  await d.run(`insert into stg_orders values ${values.join(', ')}`);
}

interface OutcomeRow {
  [key: string]: string | number | boolean | null;
  audience_as_of: string;
  window_days: number;
  audience_group: string;
  segment_by: string;
  segment: string;
  status: string;
  customers: number;
  reactivated: number;
  reactivation_rate_pct: number | null;
  rate_lift_pct_points: number | null;
  rate_lift_ci_low: number | null;
  rate_lift_ci_high: number | null;
  rate_lift_significant: boolean | null;
}

function rows(d: Db, where = "segment_by = 'all'"): Promise<OutcomeRow[]> {
  return d.all<OutcomeRow>(
    `select * exclude (audience_as_of, window_end), strftime(audience_as_of, '%Y-%m-%d') as audience_as_of
     from reactivation_outcomes where ${where} order by audience_as_of, window_days, audience_group desc, segment_by, segment`,
  );
}

describe('who counts, and when', () => {
  it('counts a customer once per audience date, marks open windows and says when a control group is empty', async () => {
    db = await outcomeDb('2026-06-30', { outcomes: { window_days: [14, 30] } });
    await insertAudiences(db, [
      ['2026-05-01', 'A', 'target'],
      ['2026-05-01', 'A', 'target'], // the same customer twice in one partition
      ['2026-05-01', 'B', 'target'],
      ['2026-05-01', 'C', 'control'],
      ['2026-06-20', 'A', 'target'], // and in a later audience
      ['2026-06-30', 'B', 'target'], // D's own audience is not measured
      ['2025-01-01', 'C', 'control'], // older than outcomes.lookback_days
    ]);
    await insertActive(db, [
      ['A', '2026-05-01'], // the audience day itself is not after it
      ['A', '2026-05-05'],
      ['B', '2026-05-25'],
      ['A', '2026-06-25'],
    ]);
    await insertOrders(db, [
      ['C', '2026-05-10', 40, 'cancelled'], // not a purchase
      ['B', '2026-05-25', 30],
    ]);
    await buildOutcomes(db);

    const customers = await db.all<{
      k: string;
      reactivated: boolean;
      days: number | null;
      revenue: string;
    }>(`
      select strftime(audience_as_of, '%m-%d') || '/' || window_days || '/' || customer_id as k, reactivated,
          days_to_reactivation as days, revenue::varchar as revenue
      from reactivation_outcome_customers order by k`);
    expect(customers).toEqual([
      { k: '05-01/14/A', reactivated: true, days: 4, revenue: '0.00' },
      { k: '05-01/14/B', reactivated: false, days: null, revenue: '0.00' },
      { k: '05-01/14/C', reactivated: false, days: null, revenue: '0.00' },
      { k: '05-01/30/A', reactivated: true, days: 4, revenue: '0.00' },
      { k: '05-01/30/B', reactivated: true, days: 24, revenue: '30.00' },
      { k: '05-01/30/C', reactivated: false, days: null, revenue: '0.00' },
      { k: '06-20/14/A', reactivated: true, days: 5, revenue: '0.00' },
      { k: '06-20/30/A', reactivated: true, days: 5, revenue: '0.00' },
    ]);

    const found = await rows(db);
    const pick = (asOf: string, days: number, group: string) =>
      found.find((r) => r.audience_as_of === asOf && r.window_days === days && r.audience_group === group);
    expect(pick('2026-05-01', 14, 'target')).toMatchObject({
      status: 'complete',
      customers: 2,
      reactivated: 1,
      reactivation_rate_pct: 50,
      rate_lift_pct_points: 50,
    });
    expect(pick('2026-05-01', 14, 'control')).toMatchObject({
      status: 'complete',
      customers: 1,
      reactivated: 0,
    });
    expect(pick('2026-05-01', 30, 'target')).toMatchObject({ reactivated: 2, rate_lift_pct_points: 100 });
    // the later audience: both windows open on D, and no control group
    for (const days of [14, 30]) {
      expect(pick('2026-06-20', days, 'target')).toMatchObject({
        status: 'no_control',
        is_complete: false,
        observed_days: 10,
        customers: 1,
        reactivated: 1,
        rate_lift_pct_points: null,
        rate_lift_ci_low: null,
        rate_lift_significant: null,
        revenue_lift_per_customer: null,
      });
      expect(pick('2026-06-20', days, 'control')).toMatchObject({
        status: 'no_control',
        customers: 0,
        reactivation_rate_pct: null,
      });
    }
    expect(found).toHaveLength(8);
    // nothing divided by zero anywhere
    expect(
      await db.number(`
        select count(*) from (unpivot (select columns(c -> c like '%pct%' or c like '%lift%' or c like '%ci_%' or c like '%per_customer')::double
                                       from reactivation_outcomes) on columns(*))
        where isnan(value) or isinf(value)`),
    ).toBe(0);
  });

  it('counts a new subscription as a return, not a plan change of a running one, and splits by segment', async () => {
    db = await outcomeDb('2026-06-30', { segment_by: ['country'] });
    await insertAudiences(db, [
      ['2026-05-01', 'S1', 'target'],
      ['2026-05-01', 'S2', 'target'],
      ['2026-05-01', 'S3', 'control'],
    ]);
    await db.run(`
      insert into stg_subscriptions values
        ('sub1', 'S1', date '2026-05-20', null),                 -- back: none was running on 05-01
        ('sub2', 'S2', date '2026-01-01', date '2026-05-10'),    -- a plan change: one ends, the next starts
        ('sub3', 'S2', date '2026-05-10', null);
      insert into int_customer_segments values ('S1', 'country', 'DE'), ('S3', 'country', 'DE');`);
    await buildOutcomes(db);
    const customers = await db.all<{ customer_id: string; reactivated: boolean }>(
      `select customer_id, reactivated from reactivation_outcome_customers order by customer_id`,
    );
    expect(customers).toEqual([
      { customer_id: 'S1', reactivated: true },
      { customer_id: 'S2', reactivated: false },
      { customer_id: 'S3', reactivated: false },
    ]);
    const bySegment = await rows(db, "segment_by = 'country'");
    expect(bySegment.map((r) => [r.segment, r.audience_group, r.customers, r.status])).toEqual([
      ['DE', 'target', 1, 'complete'],
      ['unknown', 'target', 1, 'no_control'],
      ['DE', 'control', 1, 'complete'],
      ['unknown', 'control', 0, 'no_control'],
    ]);
  });

  it('marks who the send log saw e-mailed and measures the lift among them', async () => {
    db = await outcomeDb('2026-06-30', { outcomes: { campaign_id_pattern: '^winback-' } });
    await insertAudiences(db, [
      ['2026-05-01', 'T1', 'target'],
      ['2026-05-01', 'T2', 'target', 't2.shared@example.com'],
      ['2026-05-01', 'T3', 'target'],
      ['2026-05-01', 'T4', 'target'],
      ['2026-05-01', 'K1', 'control'],
      ['2026-05-01', 'K2', 'control'],
    ]);
    await db.run(`
      insert into stg_email_events values
        ('T1', 't1@example.com', 'winback-2026-05-02', 'sent', date '2026-05-02'),
        (null, ' T2.Shared@Example.com', 'winback-2026-05-02', 'delivered', date '2026-05-02'), -- by e-mail only
        ('T3', 't3@example.com', 'nl-2026-05-02', 'sent', date '2026-05-02'),                 -- another campaign
        ('T4', 't4@example.com', 'winback-2026-05-02', 'bounce', date '2026-05-02'),          -- never reached
        ('K1', 'k1@example.com', 'winback-2026-04-20', 'sent', date '2026-04-20');            -- before the audience`);
    await insertActive(db, [
      ['T1', '2026-05-10'],
      ['T2', '2026-05-11'],
      ['K1', '2026-05-12'],
    ]);
    await buildOutcomes(db);
    const sent = await db.all<{ customer_id: string; was_sent: boolean }>(
      `select customer_id, was_sent from reactivation_outcome_customers order by customer_id`,
    );
    expect(sent.filter((s) => s.was_sent).map((s) => s.customer_id)).toEqual(['T1', 'T2']);
    const [target, control] = await rows(db);
    expect(target).toMatchObject({
      audience_group: 'target',
      customers: 4,
      sent_customers: 2,
      never_sent_customers: 2,
      sent_reactivated: 2,
      sent_reactivation_rate_pct: 100,
      rate_lift_pct_points: 0, // 2 of 4 against 1 of 2
      sent_rate_lift_pct_points: 50, // 2 of 2 sent against 1 of 2
    });
    expect(control).toMatchObject({ audience_group: 'control', sent_customers: 0, never_sent_customers: 2 });

    // without a send log the sent columns are null, not zero
    const plain = await outcomeDb('2026-06-30');
    try {
      await insertAudiences(plain, [
        ['2026-05-01', 'T1', 'target'],
        ['2026-05-01', 'K1', 'control'],
      ]);
      await buildOutcomes(plain);
      const [row] = await rows(plain);
      expect(row).toMatchObject({
        sent_customers: null,
        never_sent_customers: null,
        sent_rate_lift_pct_points: null,
      });
      expect(
        await plain.number('select count(*) from reactivation_outcome_customers where was_sent is not null'),
      ).toBe(0);
    } finally {
      plain.close();
    }
  });
});

describe('the intervals', () => {
  it("gives Newcombe's published interval for the rate and Welch's for revenue", async () => {
    db = await outcomeDb('2026-06-30');
    // Newcombe (1998), example (a): 56/70 against 48/80, hybrid score interval 0.0524 to 0.3339
    await db.run(`
      insert into reactivation_audience_history
      select date '2026-05-01', 'T' || i, null, 'target' from range(70) as r(i);
      insert into reactivation_audience_history
      select date '2026-05-01', 'C' || i, null, 'control' from range(80) as r(i);
      insert into int_customer_active_days
      select 'T' || i, date '2026-05-05' from range(56) as r(i)
      union all select 'C' || i, date '2026-05-05' from range(48) as r(i);
      -- revenue: six target customers spend 10..60 and six control 0..50: equal spreads, Welch df = 10 exactly
      insert into stg_orders
      select 'OT' || i, 'T' || i, 10 * (i + 1), 'completed', date '2026-05-06' from range(6) as r(i)
      union all select 'OC' || i, 'C' || i, 10 * i, 'completed', date '2026-05-06' from range(1, 6) as r(i);`);
    await buildOutcomes(db);
    const [target] = await rows(db);
    expect(target?.rate_lift_pct_points).toBeCloseTo(20, 6);
    expect(target?.rate_lift_ci_low).toBeCloseTo(5.24, 2);
    expect(target?.rate_lift_ci_high).toBeCloseTo(33.39, 2);
    expect(target?.rate_lift_significant).toBe(true);

    // Welch by hand from the same per-customer revenue
    const stats = await db.one<{ mt: number; mc: number; vt: number; vc: number; nt: number; nc: number }>(`
      select
        avg(revenue) filter (where audience_group = 'target')::double as mt,
        avg(revenue) filter (where audience_group = 'control')::double as mc,
        var_samp(revenue) filter (where audience_group = 'target')::double as vt,
        var_samp(revenue) filter (where audience_group = 'control')::double as vc,
        count(*) filter (where audience_group = 'target')::double as nt,
        count(*) filter (where audience_group = 'control')::double as nc
      from reactivation_outcome_customers`);
    const s = stats!;
    const se = Math.sqrt(s.vt / s.nt + s.vc / s.nc);
    const df =
      (s.vt / s.nt + s.vc / s.nc) ** 2 / ((s.vt / s.nt) ** 2 / (s.nt - 1) + (s.vc / s.nc) ** 2 / (s.nc - 1));
    const revenue = await db.one<{ lift: number; low: number; high: number }>(`
      select revenue_lift_per_customer as lift, revenue_lift_ci_low as low, revenue_lift_ci_high as high
      from reactivation_outcomes where segment_by = 'all' and audience_group = 'target'`);
    expect(revenue?.lift).toBeCloseTo(s.mt - s.mc, 9);
    const t = await db.number(`select t_quantile_975(${df})`);
    expect(revenue?.high).toBeCloseTo(s.mt - s.mc + t * se, 9);
    expect(revenue?.low).toBeCloseTo(s.mt - s.mc - t * se, 9);
  });

  it("uses Student's t quantiles (published values) for Welch's interval", async () => {
    db = await outcomeDb('2026-06-30');
    const quantiles = await db.all<{ df: number; t: number }>(
      `select df, t_quantile_975(df) as t from (values (1.0), (2.0), (3.0), (5.0), (10.0), (30.0), (120.0)) as v(df) order by df`,
    );
    const expected: Record<number, number> = {
      1: 12.7062,
      2: 4.3027,
      3: 3.1824,
      5: 2.5706,
      10: 2.2281,
      30: 2.0423,
      120: 1.9799,
    };
    for (const q of quantiles)
      expect(Math.abs(q.t - expected[Number(q.df)]!), `df ${q.df}`).toBeLessThan(0.005);
  });
});

describe('coverage over 100 simulated audiences (one per seed, in one database)', () => {
  /**
   * 100 audiences of 500 customers, 10% control by hash; each customer comes back within 30 days with probability
   * controlRate (control) or controlRate + lift (target), and a returner spends 20-100.
   */
  async function simulate(lift: number): Promise<Db> {
    const d = await outcomeDb('2026-12-31');
    await d.run(`
      -- a uniform number per (seed, customer, purpose): the hash of one string (hashes of several values correlate)
      create macro u(seed, c, tag) as hash(concat_ws('/', seed, c, tag)) / 18446744073709551615.0;
      create table simulated as
      select
        date '2026-01-01' + seed::integer as audience_as_of,
        'S' || seed || '-' || c as customer_id,
        u(seed, c, 'group') < 0.1 as is_control,
        u(seed, c, 'return') as u_return,
        u(seed, c, 'day') as u_day,
        u(seed, c, 'amount') as u_amount
      from range(100) as seeds(seed), range(500) as customers(c);
      insert into reactivation_audience_history
      select audience_as_of, customer_id, null, case when is_control then 'control' else 'target' end from simulated;
      create table returners as
      select *, audience_as_of + 1 + floor(29 * u_day)::integer as day from simulated
      where u_return < 0.3 + case when is_control then 0 else ${lift} end;
      insert into int_customer_active_days select customer_id, day from returners;
      insert into stg_orders
      select 'O-' || customer_id, customer_id, round(20 + 80 * u_amount, 2), 'completed', day from returners;`);
    await buildOutcomes(d);
    return d;
  }

  async function coverage(d: Db, truth: number, revenueTruth: number | null) {
    return d.one<{ audiences: number; rate: number; revenue: number; significant: number }>(`
      select
        count(*)::integer as audiences,
        count(*) filter (where rate_lift_ci_low <= ${truth} and rate_lift_ci_high >= ${truth})::integer as rate,
        count(*) filter (where ${revenueTruth === null ? 'true' : `revenue_lift_ci_low <= ${revenueTruth} and revenue_lift_ci_high >= ${revenueTruth}`})::integer as revenue,
        count(*) filter (where rate_lift_significant)::integer as significant
      from reactivation_outcomes
      where segment_by = 'all' and audience_group = 'target' and status = 'complete'`);
  }

  it('A/A: with no effect, the 95% intervals hold 0 for at least 90 of 100 audiences', async () => {
    db = await simulate(0);
    const found = await coverage(db, 0, 0);
    expect(found?.audiences).toBe(100);
    expect(found?.rate).toBeGreaterThanOrEqual(90);
    expect(found?.revenue).toBeGreaterThanOrEqual(90);
    expect(found?.significant).toBeLessThanOrEqual(10);
  });

  it('a planted lift of 20 points: held by at least 90 of 100 intervals, and found in most audiences', async () => {
    db = await simulate(0.2);
    const found = await coverage(db, 20, null);
    expect(found?.audiences).toBe(100);
    expect(found?.rate).toBeGreaterThanOrEqual(90);
    expect(found?.significant).toBeGreaterThanOrEqual(60);
  });
});

describe('the outcomes config', () => {
  it('defaults to one 30-day window and no send log, and refuses a bad pattern or a window listed twice', () => {
    expect(configSchema.parse({}).outcomes).toEqual({
      window_days: [30],
      lookback_days: 365,
      campaign_id_pattern: null,
    });
    expect(() => configSchema.parse({ outcomes: { campaign_id_pattern: 'winback-(' } })).toThrow(
      /expected a regular expression/,
    );
    expect(() => configSchema.parse({ outcomes: { window_days: [14, 30, 14] } })).toThrow(
      /list each window once/,
    );
    expect(() => configSchema.parse({ outcomes: { window_days: [] } })).toThrow();
  });
});

describe('reading the published history', () => {
  it('reads partitions written before and after the group column was renamed, by name', async () => {
    db = await outcomeDb('2026-06-30');
    const dir = mkdtempSync(join(tmpdir(), 'churn-outcome-history-'));
    const before = join(dir, 'before.parquet');
    const after = join(dir, 'after.parquet');
    await db.run(`
      copy (select 'a@example.com' as email, 'A' as customer_id, 'target' as "group", 1 as priority_rank
            union all select 'b@example.com', 'B', 'control', 2) to ${sqlString(before)} (format parquet);
      copy (select 'B' as customer_id, 'b@example.com' as email, 'target' as audience_group, 'x' as offer_tier)
        to ${sqlString(after)} (format parquet);`);
    const loaded = await loadAudienceHistoryFiles(db, [
      { asOf: '2026-05-01', path: before },
      { asOf: '2026-06-01', path: after },
    ]);
    expect(loaded).toBe(3);
    expect(
      await db.all(
        `select strftime(as_of, '%Y-%m-%d') as as_of, customer_id, email, audience_group
         from reactivation_audience_history order by as_of, customer_id`,
      ),
    ).toEqual([
      { as_of: '2026-05-01', customer_id: 'A', email: 'a@example.com', audience_group: 'target' },
      { as_of: '2026-05-01', customer_id: 'B', email: 'b@example.com', audience_group: 'control' },
      { as_of: '2026-06-01', customer_id: 'B', email: 'b@example.com', audience_group: 'target' },
    ]);
    await buildOutcomes(db);
    expect(await db.number(`select count(*) from reactivation_outcomes where segment_by = 'all'`)).toBe(4);

    // a partition without any group column cannot be measured: the error says what to do
    const broken = join(dir, 'broken.parquet');
    await db.run(`copy (select 'C' as customer_id) to ${sqlString(broken)} (format parquet)`);
    await expect(loadAudienceHistoryFiles(db, [{ asOf: '2026-06-02', path: broken }])).rejects.toThrow(
      /no audience_group or group column.*re-run those dates, or set outcomes.lookback_days/,
    );
    // no partitions: empty
    expect(await loadAudienceHistoryFiles(db, [])).toBe(0);
    expect(await db.number('select count(*) from reactivation_audience_history')).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
