// customer_health and the reactivation audience on small hand-made exports: the real staging SQL, facts,
// int_health_features and int_health_status run on raw_* tables written here; health_scores (the fitted
// p_churn and p_alive of transforms/models/health_scores.ts) and audience_history are built by hand with the
// columns of the real ones, so that these tests pin the rules, not a model fit.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, configSchema, ENTITIES, type Entity } from '../config/schema.js';
import { Db, type JsonValue, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { canonicalColumns, landEntity } from '../pipelines/stages/land.js';
import { createRunParams } from '../transforms/params.js';
import { loadModels, runMacros, runModels } from '../transforms/runner.js';
import { HEADERS } from './support/exports.js';

const AS_OF = '2024-06-30';
const SALT = 'churn-pipeline';

type RawRow = Record<string, string | null>;

interface Fixture {
  rows: Partial<Record<Entity, RawRow[]>>;
  /** MBG/NBD p_alive by customer; customers not listed get NULL (model not fitted). */
  pAlive: Record<string, number>;
  /** p_churn by customer at D; customers not listed get DEFAULT_P_CHURN. */
  pChurn: Record<string, number>;
  /** p_decline by customer at D; customers not listed get DEFAULT_P_DECLINE. */
  pDecline: Record<string, number>;
  history: { as_of: string; customer_id: string | null; email: string | null }[];
}

// --- fixture builders ------------------------------------------------------------------------------------

/** The instant `days` days before the as-of date, at `hour`:00 UTC. */
function at(days: number, hour = 12): string {
  const d = new Date(`${AS_OF}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return `${d.toISOString().slice(0, 10)} ${String(hour).padStart(2, '0')}:00:00`;
}

function emptyFixture(): Fixture {
  return { rows: {}, pAlive: {}, pChurn: {}, pDecline: {}, history: [] };
}

function add(f: Fixture, entity: Entity, row: RawRow): void {
  const rows = f.rows[entity] ?? [];
  rows.push(row);
  f.rows[entity] = rows;
}

function customer(f: Fixture, id: string, attrs: RawRow = {}): void {
  add(f, 'customers', {
    customer_id: id,
    email: `${id.toLowerCase()}@example.com`,
    first_name: `First ${id}`,
    last_name: `Last ${id}`,
    country: 'de',
    segment: 'retail',
    marketing_consent: 'true',
    signup_at: at(600),
    ...attrs,
  });
}

let orderSeq = 0;
/** Completed orders every `step` days from `fromDays` before D down to `toDays` before D. */
function orders(
  f: Fixture,
  id: string,
  fromDays: number,
  toDays: number,
  amount: (days: number) => number = () => 50,
  step = 7,
): void {
  for (let d = fromDays; d >= toDays; d -= step) {
    orderSeq += 1;
    add(f, 'orders', {
      order_id: `O${orderSeq}`,
      customer_id: id,
      ordered_at: at(d),
      amount: String(amount(d)),
    });
  }
}

function activityEvents(f: Fixture, id: string, fromDays: number, toDays: number): void {
  for (let d = fromDays; d >= toDays; d -= 1)
    add(f, 'activity', { customer_id: id, occurred_at: at(d, 9), event_type: 'login' });
}

let campaignSeq = 0;
function email(f: Fixture, id: string, days: number, opened: boolean): void {
  campaignSeq += 1;
  const campaign = `K${campaignSeq}`;
  add(f, 'email_events', {
    customer_id: id,
    occurred_at: at(days, 8),
    event_type: 'sent',
    campaign_id: campaign,
  });
  if (opened)
    add(f, 'email_events', {
      customer_id: id,
      occurred_at: at(days, 10),
      event_type: 'open',
      campaign_id: campaign,
    });
}

let responseSeq = 0;
function survey(f: Fixture, id: string, type: 'nps' | 'csat', days: number, score: number): void {
  responseSeq += 1;
  add(f, 'surveys', {
    response_id: `R${responseSeq}`,
    customer_id: id,
    responded_at: at(days),
    survey_type: type,
    score: String(score),
  });
}

let ticketSeq = 0;
function ticket(f: Fixture, id: string, days: number, complaint: boolean): void {
  ticketSeq += 1;
  add(f, 'tickets', {
    ticket_id: `T${ticketSeq}`,
    customer_id: id,
    opened_at: at(days),
    is_complaint: String(complaint),
  });
}

let invoiceSeq = 0;
function invoice(f: Fixture, id: string, dueDays: number, paidDays: number | null): void {
  invoiceSeq += 1;
  add(f, 'invoices', {
    invoice_id: `I${invoiceSeq}`,
    customer_id: id,
    issued_at: at(dueDays + 14),
    due_at: at(dueDays),
    paid_at: paidDays === null ? null : at(paidDays),
    amount: '50',
  });
}

/** A steady customer: weekly orders for a year (the last 5 days ago), e-mails opened, good surveys, bills paid. */
function steady(f: Fixture, id: string, options: { emails?: boolean; surveys?: boolean } = {}): void {
  orders(f, id, 362, 5);
  if (options.emails !== false) for (let d = 345; d >= 15; d -= 30) email(f, id, d, true);
  if (options.surveys !== false) {
    survey(f, id, 'nps', 200, 9);
    survey(f, id, 'nps', 20, 9);
    survey(f, id, 'csat', 15, 5);
  }
  invoice(f, id, 30, 31);
  invoice(f, id, 3, null);
  ticket(f, id, 10, false);
}

/**
 * Weekly orders that stopped 47 days ago: INACTIVE, and ACTIVITY_DROP from the silence test (no order in 47 days
 * after a weekly year), so at_risk and an audience candidate.
 */
function lapsed(f: Fixture, id: string, amount = 50): void {
  orders(f, id, 362, 47, () => amount);
}

function healthFixture(): Fixture {
  const f = emptyFixture();
  customer(f, 'C01');
  steady(f, 'C01');
  f.pAlive.C01 = 0.95;

  customer(f, 'C02'); // INACTIVE: weekly until 47 days ago (typical gap 7, threshold 30); no model score
  lapsed(f, 'C02');
  f.pChurn.C02 = 0.35;

  customer(f, 'C03'); // ACTIVITY_DROP: daily activity in the baseline window only, orders unchanged
  steady(f, 'C03');
  activityEvents(f, 'C03', 269, 90);
  f.pDecline.C03 = 0.55;

  customer(f, 'C03B'); // the same drop with p_churn 0.6: silent_churn before any silence
  steady(f, 'C03B');
  activityEvents(f, 'C03B', 269, 90);
  f.pDecline.C03B = 0.7;
  f.pChurn.C03B = 0.6;

  customer(f, 'C04'); // SPEND_DROP: same weekly rhythm, 100 -> 20 per order in the recent window
  orders(f, 'C04', 362, 5, (d) => (d >= 90 ? 100 : 20));

  // No SPEND_DROP: baskets as noisy as ever. Weekly, 100 a basket with every fourth 1000 before the recent window,
  // only 100s in it: the average is below half the baseline's, yet every recent basket reaches the baseline's median
  customer(f, 'C04A');
  orders(f, 'C04A', 362, 5, (d) => (d >= 90 && Math.floor(d / 7) % 4 === 0 ? 1000 : 100));

  customer(f, 'C05'); // EMAIL_DISENGAGED: the last 6 e-mails unopened
  steady(f, 'C05', { emails: false });
  for (const d of [200, 170, 140, 110]) email(f, 'C05', d, true);
  for (const d of [100, 85, 70, 55, 40, 25]) email(f, 'C05', d, false);

  customer(f, 'C06'); // EMAIL_DISENGAGED by the halved open rate (6/6 -> 1/4), though the last one was opened
  steady(f, 'C06', { emails: false });
  for (const d of [250, 220, 190, 160, 130, 100]) email(f, 'C06', d, true);
  for (const d of [80, 60, 40]) email(f, 'C06', d, false);
  email(f, 'C06', 20, true);

  customer(f, 'C07'); // COMPLAINTS_UP: 4 recent complaints vs 1 in the baseline (upper tail 0.03)
  steady(f, 'C07');
  ticket(f, 'C07', 200, true);
  for (const d of [30, 25, 18, 12]) ticket(f, 'C07', d, true);

  customer(f, 'C07A'); // 2 recent complaints vs 1 in the baseline: too little evidence (upper tail 0.18)
  steady(f, 'C07A');
  ticket(f, 'C07A', 200, true);
  ticket(f, 'C07A', 30, true);
  ticket(f, 'C07A', 12, true);

  customer(f, 'C07B'); // 2 recent complaints, but fewer per day than its baseline: no COMPLAINTS_UP
  steady(f, 'C07B');
  for (const d of [250, 220, 200, 180, 150, 120]) ticket(f, 'C07B', d, true);
  ticket(f, 'C07B', 30, true);
  ticket(f, 'C07B', 12, true);

  customer(f, 'C08'); // LATE_PAYMENT: due 30 days ago, paid 20 days late
  steady(f, 'C08');
  invoice(f, 'C08', 30, 10);

  customer(f, 'C09'); // NPS_DETRACTOR: 6 -> 5 (a 1-point change is no drop)
  steady(f, 'C09', { surveys: false });
  survey(f, 'C09', 'nps', 200, 6);
  survey(f, 'C09', 'nps', 20, 5);

  customer(f, 'C10'); // NPS_DROP: 10 -> 7 (not a detractor)
  steady(f, 'C10', { surveys: false });
  survey(f, 'C10', 'nps', 200, 10);
  survey(f, 'C10', 'nps', 20, 7);

  customer(f, 'C11'); // LOW_CSAT
  steady(f, 'C11', { surveys: false });
  survey(f, 'C11', 'csat', 15, 2);

  customer(f, 'C12'); // LOW_P_ALIVE
  steady(f, 'C12');
  f.pAlive.C12 = 0.1;

  customer(f, 'C13', { cancelled_at: at(20) }); // churned: explicit cancellation, nothing after it
  orders(f, 'C13', 362, 25);

  customer(f, 'C13B'); // churned: its only subscription ended 50 days ago, nothing after it
  add(f, 'subscriptions', {
    subscription_id: 'S1',
    customer_id: 'C13B',
    started_at: at(300),
    ended_at: at(50),
    mrr: '30',
  });

  customer(f, 'C13C', { cancelled_at: at(100) }); // cancelled, then came back: not churned
  orders(f, 'C13C', 362, 5);

  customer(f, 'C14'); // lost: nothing for 400 days
  orders(f, 'C14', 500, 400, () => 50, 50);

  customer(f, 'C15'); // silent churn: weekly until 61 days ago -> INACTIVE + ACTIVITY_DROP + SPEND_DROP
  orders(f, 'C15', 362, 60, () => 100);
  f.pChurn.C15 = 0.8;

  customer(f, 'C16'); // new: first order 20 days ago, no baseline: nothing to flag
  orders(f, 'C16', 20, 5, () => 50, 5);

  customer(f, 'C17'); // first active 100 days ago: an 11-day baseline (days 100..90), too short to judge a drop
  activityEvents(f, 'C17', 100, 100);
  orders(f, 'C17', 96, 5);

  customer(f, 'C19'); // a one-time buyer, 120 days ago: no rate to fall from, so no drop reason
  orders(f, 'C19', 120, 120, () => 80);
  f.pChurn.C19 = 0.9;

  customer(f, 'C20'); // weekly until 200 days ago: idle beyond health.dormant_after_days (180), past the warning
  orders(f, 'C20', 500, 206);
  f.pChurn.C20 = 0.95;

  customer(f, 'C21'); // a nine-day trial (four orders), idle 95 days since: no rhythm of their own to judge
  orders(f, 'C21', 104, 95, () => 30, 3);
  f.pChurn.C21 = 0.9;

  customer(f, 'C18'); // subscriber without orders: the running subscription keeps them active
  add(f, 'subscriptions', {
    subscription_id: 'S2',
    customer_id: 'C18',
    started_at: at(300),
    ended_at: null,
    mrr: '40',
  });

  customer(f, 'N01'); // no activity at all: never_active
  return f;
}

function audienceFixture(f: Fixture, options: { bConsentFrom?: number } = {}): Fixture {
  // Every A/B customer is lapsed (INACTIVE, at_risk) so a candidate.
  const lapsedCustomer = (id: string, attrs: RawRow = {}, amount = 50) => {
    customer(f, id, attrs);
    lapsed(f, id, amount);
  };
  lapsedCustomer('A01');
  lapsedCustomer('A02', { marketing_consent: 'false' }); // no consent (also unsubscribed: no_consent wins)
  add(f, 'email_events', { customer_id: 'A02', occurred_at: at(50), event_type: 'unsubscribe' });
  lapsedCustomer('A03');
  add(f, 'email_events', { customer_id: 'A03', occurred_at: at(50), event_type: 'unsubscribed' });
  lapsedCustomer('A04'); // hard bounce recorded under another customer, for the same address
  customer(f, 'X99', { email: 'other@example.com' });
  add(f, 'email_events', {
    customer_id: 'X99',
    email: ' A04@Example.com',
    occurred_at: at(50),
    event_type: 'hard_bounce',
  });
  lapsedCustomer('A05');
  add(f, 'email_events', { customer_id: 'A05', occurred_at: at(50), event_type: 'spam' });
  lapsedCustomer('A06', { email: 'not-an-email' });
  lapsedCustomer('A07', { email: '=1+2@example.com' });
  lapsedCustomer('A08', { email: ' Dup@Example.COM ' }, 50); // the same address as A09, less value at risk
  lapsedCustomer('A09', { email: 'dup@example.com' }, 80);
  lapsedCustomer('A10'); // suppressed by e-mail (sent 10 days ago under another customer id)
  f.history.push({ as_of: at(10).slice(0, 10), customer_id: 'OLD1', email: 'A10@example.com' });
  lapsedCustomer('A11'); // suppressed by customer id, 30 days ago (the edge of the window)
  f.history.push({ as_of: at(30).slice(0, 10), customer_id: 'A11', email: 'previous@example.com' });
  lapsedCustomer('A12'); // last audience 31 days ago: outside the window
  f.history.push({ as_of: at(31).slice(0, 10), customer_id: 'A12', email: 'a12@example.com' });
  f.history.push({ as_of: AS_OF, customer_id: 'A01', email: 'a01@example.com' }); // today's own run: ignored
  lapsedCustomer('A13', {
    first_name: '=HYPERLINK("x")',
    last_name: '+1',
    country: '@SUM(A1)',
    segment: '-2',
  });
  const consentFrom = options.bConsentFrom ?? 1;
  for (let i = 1; i <= 40; i += 1) {
    const id = `B${String(i).padStart(2, '0')}`;
    lapsedCustomer(id, { marketing_consent: i >= consentFrom ? 'true' : 'false' }, 20 + i);
  }
  return f;
}

// --- building the database ----------------------------------------------------------------------------

const DEFAULT_P_CHURN = 0.1;
const DEFAULT_P_DECLINE = 0.1;
const REASONS = [
  'inactive',
  'activity_drop',
  'spend_drop',
  'email_disengaged',
  'complaints_up',
  'late_payment',
  'nps_detractor',
  'nps_drop',
  'low_csat',
  'low_p_alive',
];

const FACT_MODELS = new Set([
  'int_customer_active_days',
  'customer_purchase_summary',
  'int_health_snapshots',
  'int_health_dispersions',
  'int_health_features',
]);

const MODELS = new Set([
  'int_health_status',
  'customer_health',
  'int_audience_candidates',
  'reactivation_audience',
  'audience_exclusions',
  'int_audience_targets',
  'reactivation_audience_mailchimp',
  'reactivation_audience_google_ads',
  'crm_flags',
]);

async function build(f: Fixture, config: Config = configSchema.parse({})): Promise<Db> {
  const db = await Db.open({ timeZone: 'UTC' });
  const log = silentLogger();
  await createRunParams(db, config, {
    asOf: AS_OF,
    runStartedAt: new Date('2024-07-01T03:00:00Z'),
    configuredEntities: [...ENTITIES],
  });
  await runMacros(db);
  for (const entity of ENTITIES) {
    await landEntity(db, entity, undefined, undefined, log);
    const rows = f.rows[entity] ?? [];
    if (rows.length === 0) continue;
    const columns = canonicalColumns(entity);
    const values = rows.map(
      (row, i) =>
        `('fixture', ${i + 1}, ${columns.map((c) => (row[c] == null ? 'null' : sqlString(row[c]))).join(', ')})`,
    );
    await db.run(
      `insert into raw_${entity} (_source_file, _source_row, ${columns.map(sqlIdent).join(', ')}) values ${values.join(',\n')}`,
    );
  }
  const all = await loadModels();
  const staging = all.filter((m) => m.layer === 'staging' && /^(chk|stg)_/.test(m.name));
  const ctx = { db, config, log, asOf: AS_OF, notes: [] };
  await runModels(ctx, [...staging, ...all.filter((m) => FACT_MODELS.has(m.name))]);
  // The fixtures are valid input: nothing may be rejected by the staging checks.
  const rejected = await db.all(
    ENTITIES.map((e) => `select '${e}' as entity, rejection from chk_${e} where rejection is not null`).join(
      ' union all ',
    ),
  );
  expect(rejected).toEqual([]);

  // health_scores with the columns of the real model: the fixture's p_churn and p_alive, no contributions
  // (so reasons keep their fixed order).
  const given = (values: Record<string, number>, fallback: number | null) =>
    `case customer_id ${Object.entries(values)
      .map(([id, v]) => `when ${sqlString(id)} then ${v}::double`)
      .join(' ')} else ${fallback === null ? 'null' : fallback}::double end`;
  await db.run(`
    create table health_scores as
    select
        customer_id,
        snapshot_role,
        ${Object.keys(f.pChurn).length ? given(f.pChurn, DEFAULT_P_CHURN) : `${DEFAULT_P_CHURN}::double`} as p_churn,
        ${Object.keys(f.pDecline).length ? given(f.pDecline, DEFAULT_P_DECLINE) : `${DEFAULT_P_DECLINE}::double`} as p_decline,
        ${REASONS.map((r) => `null::double as contrib_${r}`).join(', ')},
        ${Object.keys(f.pAlive).length ? given(f.pAlive, null) : 'null::double'} as p_alive,
        ${Object.keys(f.pAlive).length ? `${given(f.pAlive, null)} * 3` : 'null::double'} as expected_purchases_next_90d,
        'logistic' as risk_model,
        'logistic' as decline_model
    from int_health_features`);
  await db.run(`create table audience_history (as_of date, customer_id varchar, email varchar)`);
  for (const h of f.history) {
    await db.run(
      `insert into audience_history values (date ${sqlString(h.as_of)}, ${h.customer_id ? sqlString(h.customer_id) : 'null'}, ${h.email ? sqlString(h.email) : 'null'})`,
    );
  }
  await runModels(
    ctx,
    all.filter((m) => MODELS.has(m.name) && m.name !== 'int_customer_active_days'),
  );
  return db;
}

function controlByHash(customerId: string, share = 0.1): boolean {
  const hex = createHash('sha256')
    .update(SALT + customerId)
    .digest('hex')
    .slice(0, 8);
  return Number.parseInt(hex, 16) / 2 ** 32 < share;
}

interface HealthRow {
  customer_id: string;
  status: string;
  risk_score: number;
  reasons: string[];
  [key: string]: JsonValue;
}

// --- tests ------------------------------------------------------------------------------------------------

describe('customer_health', () => {
  let db: Db;
  let health: Map<string, HealthRow>;

  beforeAll(async () => {
    db = await build(audienceFixture(healthFixture()));
    const rows = await db.all<HealthRow>(`select * from customer_health order by customer_id`);
    health = new Map(rows.map((r) => [r.customer_id, r]));
  });
  afterAll(() => db?.close());

  const row = (id: string): HealthRow => {
    const r = health.get(id);
    if (!r) throw new Error(`no customer_health row for ${id}`);
    return r;
  };

  it('has one row per known customer; those without activity are never_active', () => {
    expect(row('N01').status).toBe('never_active');
    expect(row('N01').reasons).toBeNull();
    expect(row('X99').status).toBe('never_active');
    expect(health.size).toBe(28 + 14 + 40);
  });

  it('flags nothing on the steady customer', () => {
    const c = row('C01');
    expect(c.reasons).toEqual([]);
    expect(c.risk_score).toBe(100 * DEFAULT_P_CHURN);
    expect(c.p_churn).toBe(DEFAULT_P_CHURN);
    expect(c.status).toBe('active');
    expect(c.activity_decline_p).toBe(1);
    expect(c.typical_gap_days).toBe(7);
    expect(c.days_since_last_activity).toBe(5);
    expect(c.emails_since_last_open).toBe(0);
    expect(c.late_payments_recent).toBe(0);
    expect(c.p_alive).toBe(0.95);
  });

  it.each([
    // 40 days of silence after a weekly year is INACTIVE, and a drop: at the own rate about 6 active days were
    // due, and the silence since the last one is as unlikely as that (tail about 0.01 at the default month-to-month
    // noise), which the other windows confirm (30 days empty, 60 days with 3 of about 9)
    ['C02', ['INACTIVE', 'ACTIVITY_DROP']],
    ['C03', ['ACTIVITY_DROP']],
    ['C04', ['SPEND_DROP']],
    ['C04A', []],
    ['C05', ['EMAIL_DISENGAGED']],
    ['C06', ['EMAIL_DISENGAGED']],
    ['C07', ['COMPLAINTS_UP']],
    ['C07A', []],
    ['C08', ['LATE_PAYMENT']],
    ['C09', ['NPS_DETRACTOR']],
    ['C10', ['NPS_DROP']],
    ['C11', ['LOW_CSAT']],
    ['C12', ['LOW_P_ALIVE']],
  ])('%s fires exactly %j', (id, reasons) => {
    expect(row(id).reasons).toEqual(reasons);
  });

  it('derives the status from p_churn and the own rhythm', () => {
    // weekly until 60 days ago, p_churn 0.8: idle far beyond the own rhythm and likely gone: silent_churn
    const c = row('C15');
    expect(c.reasons?.[0]).toBe('INACTIVE');
    expect(c.risk_score).toBe(80);
    expect(c.status).toBe('silent_churn');
    // the same rhythm, 40 days idle, p_churn 0.35: never active while idle beyond the rhythm, so at_risk
    expect(row('C02').status).toBe('at_risk');
    expect(row('C02').risk_score).toBe(35);
    expect(row('C02').p_alive).toBeNull();
    // a drop in the own history goes on the list even with a low p_churn; p_decline is published, sets no status
    expect(row('C03').status).toBe('at_risk');
    expect(row('C03').p_decline).toBe(0.55);
    expect(row('C03B').reasons).toEqual(['ACTIVITY_DROP']);
    expect(row('C03B').status).toBe('silent_churn');
    expect(row('C03B').p_decline).toBe(0.7);
    expect(row('C03').activity_decline_p as number).toBeLessThan(1e-6);
  });

  it('never gives a one-time buyer a drop reason', () => {
    const oneTimers = [...health.values()].filter(
      (r) => r.active_days_total === 1 || r.active_days_total === '1',
    );
    for (const r of oneTimers) {
      expect(r.reasons ?? []).not.toContain('ACTIVITY_DROP');
      expect(r.reasons ?? []).not.toContain('SPEND_DROP');
    }
  });

  it('keeps the evidence behind the reasons', () => {
    expect(row('C02').days_since_last_activity).toBe(47);
    expect(row('C02').inactive_after_days).toBe(30);
    expect(row('C04').revenue_baseline).toBe('2500.00');
    expect(row('C04').revenue_recent).toBe('260.00');
    expect(row('C05').emails_since_last_open).toBe(6);
    expect(row('C06').email_open_rate_recent).toBe(0.25);
    expect(row('C06').email_open_rate_baseline).toBe(1);
    expect(row('C07').complaints_recent).toBe(4);
    expect(row('C07B').reasons).toEqual([]);
    expect(row('C08').max_days_late_recent).toBe(20);
    expect(row('C09').last_nps).toBe(5);
    expect(row('C10').nps_change).toBe(-3);
    expect(row('C11').min_csat_recent).toBe(2);
  });

  it('values the revenue at risk: p_churn x the horizon at the own pace', () => {
    // lifetime revenue per day of tenure (at least health.recent_days) x 90 days x p_churn
    const expected = (revenue: number, tenure: number, p: number) =>
      (Math.round((revenue / Math.max(tenure, 90)) * 90 * p * 100) / 100).toFixed(2);
    expect(row('C02').lifetime_revenue).toBe('2300.00');
    expect(row('C02').value_at_risk).toBe(expected(2300, 363, 0.35));
    expect(row('C12').value_at_risk).toBe(expected(2600, 363, DEFAULT_P_CHURN));
    expect(row('C19').value_at_risk).toBe(expected(80, 121, 0.9));
    expect(row('C18').value_at_risk).toBe((((40 * 12) / 365) * 90 * DEFAULT_P_CHURN).toFixed(2)); // 90 days of its MRR
  });

  it('puts a rhythm idle beyond dormant_after_days, and a short trial that stopped, in dormant, not on the list', () => {
    expect(row('C20').reasons).toContain('INACTIVE');
    expect(row('C20').days_since_last_activity).toBe(206);
    expect(row('C20').status).toBe('dormant');
    // four orders, but all within nine days: INACTIVE, yet no rhythm to be silent about
    expect(row('C21').reasons).toContain('INACTIVE');
    expect(row('C21').status).toBe('dormant');
  });

  it('puts a one-time buyer idle beyond the recent window with a high p_churn in dormant, not on the list', () => {
    expect(row('C19').status).toBe('dormant');
    expect(row('C19').reasons).toEqual(['INACTIVE']);
  });

  it('applies the status rules: churned, lost, and a comeback after cancelling', () => {
    expect(row('C13').status).toBe('churned');
    expect(row('C13B').status).toBe('churned');
    expect(row('C13C').status).toBe('active');
    expect(row('C14').status).toBe('lost');
    expect(row('C14').days_since_last_activity).toBe(400);
  });

  it('does not flag new customers: the baseline is cut to their tenure', () => {
    expect(row('C16').reasons).toEqual([]);
    expect(row('C16').baseline_window_days).toBe(0);
    expect(row('C16').recent_window_days).toBe(21);
    expect(row('C17').baseline_window_days).toBe(11);
    expect(row('C17').reasons).toEqual([]);
  });

  it('counts a running subscription as activity', () => {
    expect(row('C18').status).toBe('active');
    expect(row('C18').days_since_last_activity).toBe(0);
    expect(row('C18').rfm_segment).toBe('No Purchases');
  });

  it('scores RFM quintiles for purchasers only', async () => {
    const segments = await db.all<{ rfm_segment: string; n: number }>(
      `select rfm_segment, count(*)::int as n from customer_health group by all order by all`,
    );
    const allowed = [
      'Champions',
      'Loyal',
      'Potential Loyalist',
      'New Customers',
      'Promising',
      'Need Attention',
      'About To Sleep',
      'At Risk',
      "Can't Lose Them",
      'Hibernating',
      'Lost',
      'No Purchases',
    ];
    for (const s of segments) expect(allowed).toContain(s.rfm_segment);
    expect(row('C01').rfm_r).toBeGreaterThanOrEqual(4);
    expect(row('C14').rfm_r).toBe(1);
    expect(row('C14').rfm_segment).toBe('Lost');
  });
});

describe('reactivation_audience', () => {
  let db: Db;

  beforeAll(async () => {
    db = await build(audienceFixture(healthFixture()));
  });
  afterAll(() => db?.close());

  const reasonOf = async (id: string) =>
    (
      await db.one<{ r: string | null }>(
        `select exclusion_reason as r from int_audience_candidates where customer_id = '${id}'`,
      )
    )?.r;

  it.each([
    ['A02', 'no_consent'],
    ['A03', 'unsubscribed'],
    ['A04', 'hard_bounced'],
    ['A05', 'spam_complained'],
    ['A06', 'invalid_email'],
    ['A07', 'invalid_email'],
    ['A08', 'duplicate_email'],
    ['A10', 'suppressed'],
    ['A11', 'suppressed'],
  ])('excludes %s as %s', async (id, reason) => {
    expect(await reasonOf(id)).toBe(reason);
  });

  it('keeps the others, one row per normalised e-mail', async () => {
    for (const id of ['A01', 'A09', 'A12', 'A13', 'C02', 'C15']) expect(await reasonOf(id)).toBeNull();
    const dup = await db.all(`select customer_id from reactivation_audience where email = 'dup@example.com'`);
    expect(dup).toEqual([{ customer_id: 'A09' }]);
    expect(await db.number(`select count(*) - count(distinct email) from reactivation_audience`)).toBe(0);
    expect(
      await db.number(
        `select count(*) from reactivation_audience where customer_id like 'C0%' and customer_id not in ('C02', 'C03', 'C03B', 'C04')`,
      ),
    ).toBe(0);
    const a01 = await db.one(`select * from reactivation_audience where customer_id = 'A01'`);
    expect(a01).toMatchObject({
      email: 'a01@example.com',
      status: 'at_risk',
      risk_score: 100 * DEFAULT_P_CHURN,
      reasons: ['INACTIVE', 'ACTIVITY_DROP'],
    });
    expect(a01?.email_sha256).toBe(createHash('sha256').update('a01@example.com').digest('hex'));
  });

  it('summarises every exclusion reason, with 0 when none', async () => {
    const rows = await db.all<{ reason: string; customers: string; share_pct: number }>(
      `select reason, customers::varchar as customers, share_pct from audience_exclusions order by step`,
    );
    const included = [
      'C02',
      'C03',
      'C03B',
      'C04',
      'C15',
      'A01',
      'A09',
      'A12',
      'A13',
      ...Array.from({ length: 40 }, (_, i) => `B${String(i + 1).padStart(2, '0')}`),
    ];
    const controls = included.filter((id) => controlByHash(id)).length;
    expect(rows.map((r) => [r.reason, Number(r.customers)])).toEqual([
      ['no_consent', 1],
      ['unsubscribed', 1],
      ['hard_bounced', 1],
      ['spam_complained', 1],
      ['invalid_email', 2],
      ['duplicate_email', 1],
      ['suppressed', 2],
      ['included_target', included.length - controls],
      ['included_control', controls],
    ]);
    expect(controls).toBeGreaterThan(0);
    expect(rows[0]?.share_pct).toBeCloseTo((100 * 1) / 58, 2);
  });

  it('ranks by value at risk and splits offer tiers in order', async () => {
    const rows = await db.all<{ priority_rank: number; value_at_risk: string; offer_tier: string }>(
      `select priority_rank, value_at_risk, offer_tier from reactivation_audience order by priority_rank`,
    );
    expect(rows.map((r) => r.priority_rank)).toEqual(rows.map((_, i) => i + 1));
    const values = rows.map((r) => Number(r.value_at_risk));
    expect([...values].sort((a, b) => b - a)).toEqual(values);
    expect(rows[0]?.offer_tier).toBe('premium');
    expect(rows.at(-1)?.offer_tier).toBe('basic');
    expect(new Set(rows.map((r) => r.offer_tier))).toEqual(new Set(['premium', 'standard', 'basic']));
  });

  it('assigns the control group by hash, the same across runs with different audiences', async () => {
    const first = await db.all<{ customer_id: string; group: string }>(
      `select customer_id, audience_group as "group" from reactivation_audience order by customer_id`,
    );
    for (const r of first) expect(r.group).toBe(controlByHash(r.customer_id) ? 'control' : 'target');
    // Another night: half the B customers withdrew consent, so the audience is different.
    const other = await build(audienceFixture(healthFixture(), { bConsentFrom: 21 }));
    try {
      const second = await other.all<{ customer_id: string; group: string }>(
        `select customer_id, audience_group as "group" from reactivation_audience order by customer_id`,
      );
      expect(second.length).toBeLessThan(first.length);
      const before = new Map(first.map((r) => [r.customer_id, r.group]));
      for (const r of second) expect(r.group).toBe(before.get(r.customer_id));
      expect(second.some((r) => r.group === 'control')).toBe(true);
    } finally {
      other.close();
    }
  });

  it('makes every text cell of the CSV formula-safe', async () => {
    const a13 = await db.one(`select * from reactivation_audience_mailchimp where "Customer ID" = 'A13'`);
    expect(a13).toMatchObject({
      'First Name': `'=HYPERLINK("x")`,
      'Last Name': "'+1",
      Country: "'@SUM(A1)",
      Segment: "'-2",
      Reasons: 'INACTIVE|ACTIVITY_DROP',
      Status: 'at_risk',
    });
    const cells = await db.all<{ v: string }>(
      `select v from (unpivot (select * exclude ("Risk Score", "Priority") from reactivation_audience_mailchimp)
       on columns(*) into name k value v)`,
    );
    expect(cells.length).toBeGreaterThan(0);
    for (const { v } of cells) expect(v).not.toMatch(/^[=+\-@\t\r]/);
    const macro = await db.one(
      `select csv_safe('-2') as a, csv_safe('plain') as b, csv_safe(null) as c, csv_safe(e'\\tx') as d`,
    );
    expect(macro).toEqual({ a: "'-2", b: 'plain', c: null, d: "'\tx" });
  });

  it("writes the target group only, in priority order, with the tools' header names", async () => {
    const columns = await db.all<{ column_name: string }>(`describe reactivation_audience_mailchimp`);
    expect(columns.map((c) => c.column_name)).toEqual(HEADERS.mailchimp);
    const targets = await db.number(
      `select count(*) from reactivation_audience where audience_group = 'target'`,
    );
    expect(await db.number(`select count(*) from reactivation_audience_mailchimp`)).toBe(targets);
    const priorities = await db.all<{ p: number }>(
      `select "Priority" as p from reactivation_audience_mailchimp`,
    );
    const numbers = priorities.map((r) => r.p);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);

    const hashed = await db.all<{ Email: string }>(`select * from reactivation_audience_google_ads`);
    expect(hashed.length).toBe(targets);
    expect(hashed.every((h) => /^[0-9a-f]{64}$/.test(h.Email))).toBe(true);

    const file = join(mkdtempSync(join(tmpdir(), 'churn-audience-')), 'audience.csv');
    await db.run(
      `copy (select * from reactivation_audience_mailchimp order by "Priority") to ${sqlString(file)}
       (format csv, header true, delimiter ',', quote '"', escape '"', force_quote *, new_line e'\\r\\n')`,
    );
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('"Email Address","First Name","Last Name"')).toBe(true);
    expect(text).toContain(`"'=HYPERLINK(""x"")","'+1","'@SUM(A1)","'-2"`);
    expect(text.split('\r\n').length).toBe(targets + 2);
  });
});

// A shop whose every customer is quieter from April to June: a steady customer's June is then far below their year
// without any of them leaving, and only the season (int_health_dispersions) tells the decline tests so.
describe('the season', () => {
  const SEASONAL = 40;
  /** Active every 2nd day, every 6th from April to June, for 700 days up to D. */
  function seasonalActivity(f: Fixture, id: string, upToDays = 0): number[] {
    const days: number[] = [];
    for (let d = 700; d >= upToDays; d -= 1) {
      const month = new Date(`${at(d).slice(0, 10)}T00:00:00Z`).getUTCMonth() + 1;
      if (d % (month >= 4 && month <= 6 ? 6 : 2) !== 0) continue;
      add(f, 'activity', { customer_id: id, occurred_at: at(d, 9), event_type: 'login' });
      days.push(d);
    }
    return days;
  }
  let db: Db;
  let dayLists: number[][];

  beforeAll(async () => {
    const f = emptyFixture();
    dayLists = [];
    for (let i = 0; i < SEASONAL; i += 1) {
      const id = `S${String(i).padStart(2, '0')}`;
      customer(f, id, { signup_at: at(720) });
      dayLists.push(seasonalActivity(f, id));
    }
    customer(f, 'GONE', { signup_at: at(720) });
    dayLists.push(seasonalActivity(f, 'GONE', 45)); // the same rhythm until 45 days ago, then nothing
    db = await build(f);
  }, 60_000);
  afterAll(() => db.close());

  it('measures the season from the same window a year earlier against the year around it', async () => {
    // (D - 395, D - 365] against (D - 547, D - 182], over the customers in play then (GONE too), by hand
    const inWindow = (days: number[], from: number, to: number) =>
      days.filter((d) => d < from && d >= to).length;
    const windowEvents = dayLists.reduce((s, days) => s + inWindow(days, 395, 365), 0);
    const yearEvents = dayLists.reduce((s, days) => s + inWindow(days, 547, 182), 0);
    const row = await db.one<{ season_30: number; dispersion: number }>(
      `select season_30, dispersion from int_health_dispersions where snapshot_role = 'score' and stream = 'active'`,
    );
    const ratio = windowEvents / 30 / (yearEvents / 365);
    expect(ratio).toBeLessThan(0.5);
    // the log shrunk by its noise: 1 - se^2 / log^2, se^2 = (1 + dispersion x events per customer) / events + 1 / year
    const log = Math.log(ratio);
    const variance =
      (1 + (row?.dispersion ?? 0) * (windowEvents / dayLists.length)) / windowEvents + 1 / yearEvents;
    expect(row?.season_30).toBeCloseTo(Math.exp((1 - variance / log ** 2) * log), 6);
  });

  it('flags no steady customer in the quiet months, and still the one who left', async () => {
    const rows = await db.all<{ customer_id: string; status: string; reasons: string[]; ratio: number }>(`
      select customer_id, status, reasons,
          active_days_recent / active_days_expected_recent as ratio
      from customer_health order by customer_id`);
    const seasonal = rows.filter((r) => r.customer_id.startsWith('S'));
    expect(seasonal).toHaveLength(SEASONAL);
    // without the season each of them would show a drop: well under half the active days their year predicts
    expect(seasonal.every((r) => r.ratio < 0.5)).toBe(true);
    expect(seasonal.filter((r) => r.reasons.includes('ACTIVITY_DROP') || r.status !== 'active')).toEqual([]);
    const gone = rows.find((r) => r.customer_id === 'GONE');
    expect(gone?.reasons).toContain('ACTIVITY_DROP');
    expect(['at_risk', 'silent_churn']).toContain(gone?.status);
  });
});
