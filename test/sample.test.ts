// The synthetic sample (`churn sample-data`): files and headers, determinism, planted bad rows, archetype
// shares, and behaviour signals clean enough for the early-warning detector to find the silent churners.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db, sqlString } from '../pipelines/duckdb.js';
import { ARCHETYPES, generateSample, type SampleResult } from '../pipelines/sample/generate.js';

const CUSTOMERS = 1200;
const SEED = 7;
const AS_OF = '2026-06-30';

const FILES = [
  'customers.csv',
  'orders.csv.gz',
  'subscriptions.csv',
  'activity.parquet',
  'email_events.ndjson',
  'surveys.csv',
  'tickets.csv',
  'invoices.csv',
  'ground_truth.csv',
  'meta.json',
];

const HEADERS: Record<string, string[]> = {
  'customers.csv': [
    'customer_id',
    'email',
    'first_name',
    'last_name',
    'country',
    'segment',
    'signup_at',
    'marketing_consent',
    'consent_at',
    'cancelled_at',
  ],
  'orders.csv.gz': ['order_id', 'customer_id', 'ordered_at', 'amount', 'status', 'currency'],
  'subscriptions.csv': ['subscription_id', 'customer_id', 'started_at', 'ended_at', 'mrr', 'plan'],
  'activity.parquet': ['customer_id', 'occurred_at', 'event_type', 'quantity'],
  'email_events.ndjson': ['customer_id', 'email', 'occurred_at', 'event_type', 'campaign_id'],
  'surveys.csv': ['response_id', 'customer_id', 'responded_at', 'survey_type', 'score', 'comment'],
  'tickets.csv': ['ticket_id', 'customer_id', 'opened_at', 'resolved_at', 'category', 'is_complaint'],
  'invoices.csv': ['invoice_id', 'customer_id', 'issued_at', 'due_at', 'paid_at', 'amount'],
  'ground_truth.csv': ['customer_id', 'archetype', 'decay_start', 'is_complainer', 'is_late_payer'],
};

const SHARES: Record<(typeof ARCHETYPES)[number], number> = {
  steady: 0.5,
  silent_churner: 0.15,
  cancelled: 0.08,
  resurrected: 0.07,
  new: 0.1,
  lost: 0.1,
};

interface Meta {
  seed: number;
  customers: number;
  as_of: string;
  generated_by: string;
  archetypes: Record<string, number>;
  rows: Record<string, number>;
  planted_bad_rows: { entity: string; key: string; reason: string }[];
}

let root: string;
let dirA: string;
let result: SampleResult;
let meta: Meta;
let db: Db;

/** Every file read as text (all_varchar), as views named after the entity. */
async function loadViews(database: Db, dir: string): Promise<void> {
  const path = (file: string) => sqlString(join(dir, file));
  const csv = (file: string) => `read_csv(${path(file)}, header = true, all_varchar = true)`;
  await database.run(`
    create or replace view customers as select * from ${csv('customers.csv')};
    create or replace view orders as select * from ${csv('orders.csv.gz')};
    create or replace view subscriptions as select * from ${csv('subscriptions.csv')};
    create or replace view activity as select * from read_parquet(${path('activity.parquet')});
    create or replace view email_events as select * from read_json(${path('email_events.ndjson')}, format = 'newline_delimited', columns = {customer_id: 'varchar', email: 'varchar', occurred_at: 'varchar', event_type: 'varchar', campaign_id: 'varchar'});
    create or replace view surveys as select * from ${csv('surveys.csv')};
    create or replace view tickets as select * from ${csv('tickets.csv')};
    create or replace view invoices as select * from ${csv('invoices.csv')};
    create or replace view ground_truth as select * from ${csv('ground_truth.csv')};
  `);
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'churn-sample-test-'));
  dirA = join(root, 'a');
  result = await generateSample({ dir: dirA, customers: CUSTOMERS, seed: SEED });
  meta = JSON.parse(await readFile(join(dirA, 'meta.json'), 'utf8')) as Meta;
  db = await Db.open();
  await loadViews(db, dirA);
}, 60_000);

afterAll(async () => {
  db?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('sample files', () => {
  it('writes every file, with the canonical columns in order', async () => {
    expect((await readdir(dirA)).sort()).toEqual([...FILES].sort());
    for (const [file, columns] of Object.entries(HEADERS)) {
      const described = await db.all<{ column_name: string }>(
        file.endsWith('.parquet')
          ? `describe select * from read_parquet(${sqlString(join(dirA, file))})`
          : file.endsWith('.ndjson')
            ? `describe select * from read_json(${sqlString(join(dirA, file))})`
            : `describe select * from read_csv(${sqlString(join(dirA, file))}, header = true)`,
      );
      expect(
        described.map((c) => c.column_name),
        file,
      ).toEqual(columns);
    }
    const activityTypes = await db.all<{ column_name: string; column_type: string }>(
      `describe select * from activity`,
    );
    expect(activityTypes.find((c) => c.column_name === 'occurred_at')?.column_type).toBe('TIMESTAMP');
  });

  it('reports plausible row counts, the same as the files hold', async () => {
    expect(result.customers).toBe(CUSTOMERS);
    expect(result.asOf).toBe(AS_OF);
    expect(meta).toMatchObject({
      seed: SEED,
      customers: CUSTOMERS,
      as_of: AS_OF,
      generated_by: 'churn sample-data',
    });
    expect(meta.rows).toEqual(result.rows);
    for (const entity of [
      'customers',
      'orders',
      'subscriptions',
      'activity',
      'email_events',
      'surveys',
      'tickets',
      'invoices',
      'ground_truth',
    ]) {
      expect(await db.number(`select count(*) from ${entity}`), entity).toBe(result.rows[entity]);
    }
    const perCustomer = (entity: string) => (result.rows[entity] ?? 0) / CUSTOMERS;
    expect(result.rows.customers).toBe(CUSTOMERS);
    expect(result.rows.ground_truth).toBe(CUSTOMERS);
    expect(perCustomer('orders')).toBeGreaterThan(8);
    expect(perCustomer('orders')).toBeLessThan(40);
    expect(perCustomer('activity')).toBeGreaterThan(30);
    expect(perCustomer('activity')).toBeLessThan(150);
    expect(perCustomer('email_events')).toBeGreaterThan(20);
    expect(perCustomer('email_events')).toBeLessThan(150);
    expect(perCustomer('subscriptions')).toBeGreaterThan(0.3);
    expect(perCustomer('subscriptions')).toBeLessThan(1);
    expect(perCustomer('invoices')).toBeGreaterThan(3);
    expect(perCustomer('surveys')).toBeGreaterThan(1);
    expect(perCustomer('tickets')).toBeGreaterThan(0.5);
    // ids are unique (apart from the planted duplicate order)
    expect(await db.number(`select count(*) - count(distinct customer_id) from customers`)).toBe(0);
    expect(await db.number(`select count(*) - count(distinct order_id) from orders`)).toBe(1);
    expect(await db.number(`select count(*) - count(distinct subscription_id) from subscriptions`)).toBe(0);
    expect(await db.number(`select count(*) - count(distinct invoice_id) from invoices`)).toBe(0);
  });

  it('stamps nothing after the as-of date and keeps behaviour inside each customer lifetime', async () => {
    const end = `timestamp '${AS_OF} 23:59:59'`;
    for (const [entity, column] of [
      ['orders', 'ordered_at'],
      ['activity', 'occurred_at'],
      ['email_events', 'occurred_at'],
      ['surveys', 'responded_at'],
      ['tickets', 'resolved_at'],
      ['invoices', 'paid_at'],
      ['subscriptions', 'started_at'],
      ['customers', 'signup_at'],
    ] as const) {
      expect(
        await db.number(`select count(*) from ${entity} where try_cast(${column} as timestamp) > ${end}`),
      ).toBe(0);
    }
    // no activity after an explicit cancellation, none before sign-up (the planted 1969 row aside)
    expect(
      await db.number(`
        select count(*) from activity join customers using (customer_id)
        where activity.occurred_at > customers.cancelled_at::timestamp
           or (activity.occurred_at < customers.signup_at::timestamp and year(activity.occurred_at) > 1970)`),
    ).toBe(0);
  });

  it('carries the text quirks the audience export must survive', async () => {
    const formulaCells = await db.number(`
      select count(*) from customers
      where regexp_matches(first_name, '^[=+@-]') or regexp_matches(last_name, '^[=+@-]')`);
    expect(formulaCells).toBeGreaterThanOrEqual(2);
    expect(formulaCells).toBeLessThanOrEqual(3);
    expect(
      await db.number(`select count(*) from customers where first_name like '%"%' or last_name like '%,%'`),
    ).toBeGreaterThan(0);
    expect(
      await db.number(`select count(*) from customers where email <> trim(email) and email = upper(email)`),
    ).toBeGreaterThan(0);
    expect(
      await db.number(`select count(*) from surveys where comment like '%' || chr(10) || '%'`),
    ).toBeGreaterThan(0);
    expect(
      await db.number(`select count(*) from surveys where comment like '%"%' or comment like '%,%'`),
    ).toBeGreaterThan(0);
    // a few addresses shared by two customers (~0.2%)
    const shared = await db.number(`
      select count(*) from (select lower(trim(email)) as e from customers where email is not null group by e having count(*) > 1)`);
    expect(shared).toBeGreaterThan(0);
    expect(shared).toBeLessThan(CUSTOMERS * 0.01);
    // about 80% consent
    const consent = await db.number(`select avg((marketing_consent = 'true')::int) from customers`);
    expect(consent).toBeGreaterThan(0.74);
    expect(consent).toBeLessThan(0.86);
  });
});

describe('determinism', () => {
  it('writes byte-identical files for the same seed and size, different ones for another seed', async () => {
    const dirB = join(root, 'b');
    const dirC = join(root, 'c');
    await generateSample({ dir: dirB, customers: CUSTOMERS, seed: SEED });
    await generateSample({ dir: dirC, customers: CUSTOMERS, seed: SEED + 1 });
    for (const file of FILES) {
      expect(await sha256(join(dirB, file)), file).toBe(await sha256(join(dirA, file)));
      if (file !== 'meta.json')
        expect(await sha256(join(dirC, file)), file).not.toBe(await sha256(join(dirA, file)));
    }
  }, 60_000);
});

describe('planted bad rows', () => {
  it('lists one of each kind in meta.json, well under 0.5% of each entity', () => {
    expect(meta.planted_bad_rows.map((p) => p.reason).sort()).toEqual(
      [
        'duplicate order_id',
        'negative NPS score',
        'timestamp before 1970',
        'timestamp before 1970',
        'unknown customer_id (not in customers.csv)',
        'unknown survey_type',
        'unparseable ordered_at',
        'unparseable responded_at',
      ].sort(),
    );
    const perEntity = new Map<string, number>();
    for (const p of meta.planted_bad_rows) perEntity.set(p.entity, (perEntity.get(p.entity) ?? 0) + 1);
    for (const [entity, n] of perEntity) {
      expect(n / (result.rows[entity] ?? 1), entity).toBeLessThan(0.005);
    }
  });

  it('puts them in the files', async () => {
    const planted = (reason: string) => meta.planted_bad_rows.find((p) => p.reason === reason)?.key ?? '';
    const key = (reason: string) => sqlString(planted(reason));
    expect(await db.number(`select count(*) from orders where order_id = ${key('duplicate order_id')}`)).toBe(
      2,
    );
    expect(
      await db.number(`
        select count(*) from orders
        where order_id = ${key('unknown customer_id (not in customers.csv)')}
          and customer_id not in (select customer_id from customers)`),
    ).toBe(1);
    expect(
      await db.number(`
        select count(*) from orders
        where order_id = ${key('unparseable ordered_at')} and try_cast(ordered_at as timestamp) is null`),
    ).toBe(1);
    expect(
      await db.number(
        `select count(*) from surveys where response_id = ${key('negative NPS score')} and survey_type = 'nps' and score::int < 0`,
      ),
    ).toBe(1);
    expect(
      await db.number(
        `select count(*) from surveys where response_id = ${key('unknown survey_type')} and survey_type not in ('nps', 'csat')`,
      ),
    ).toBe(1);
    expect(
      await db.number(
        `select count(*) from surveys where response_id = ${key('unparseable responded_at')} and try_cast(responded_at as timestamp) is null`,
      ),
    ).toBe(1);
    expect(await db.number(`select count(*) from activity where occurred_at < timestamp '1970-01-01'`)).toBe(
      1,
    );
    expect(
      await db.number(`select count(*) from tickets where opened_at::timestamp < timestamp '1970-01-01'`),
    ).toBe(1);
    // nothing else is bad: every other row parses and references a known customer
    expect(
      await db.number(`select count(*) from orders where try_cast(ordered_at as timestamp) is null`),
    ).toBe(1);
    expect(
      await db.number(`select count(*) from surveys where try_cast(responded_at as timestamp) is null`),
    ).toBe(1);
    for (const entity of ['activity', 'email_events', 'surveys', 'tickets', 'invoices', 'subscriptions']) {
      expect(
        await db.number(
          `select count(*) from ${entity} where customer_id not in (select customer_id from customers)`,
        ),
        entity,
      ).toBe(0);
    }
  });

  it('plants none in a sample too small to keep them under the threshold', async () => {
    const dir = join(root, 'tiny');
    await generateSample({ dir, customers: 50, seed: SEED });
    const tiny = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta;
    expect(tiny.planted_bad_rows).toEqual([]);
    expect(tiny.archetypes.steady).toBe(25);
  });
});

describe('ground truth and behaviour', () => {
  it('assigns the archetypes in their shares', async () => {
    const counts = await db.all<{ archetype: string; n: string }>(
      `select archetype, count(*)::varchar as n from ground_truth group by archetype`,
    );
    for (const archetype of ARCHETYPES) {
      const n = Number(counts.find((c) => c.archetype === archetype)?.n ?? 0);
      expect(n, archetype).toBe(meta.archetypes[archetype]);
      expect(Math.abs(n / CUSTOMERS - SHARES[archetype]), archetype).toBeLessThan(0.01);
    }
    expect(
      await db.number(
        `select count(*) from ground_truth where archetype = 'silent_churner' and decay_start is null`,
      ),
    ).toBe(0);
    expect(
      await db.number(
        `select count(*) from ground_truth where archetype <> 'silent_churner' and decay_start is not null`,
      ),
    ).toBe(0);
    const complainers = await db.number(
      `select avg((is_complainer = 'true')::int) from ground_truth where archetype in ('steady', 'silent_churner')`,
    );
    expect(complainers).toBeGreaterThan(0.02);
    expect(complainers).toBeLessThan(0.09);
  });

  it('makes silent churners decay and keeps steady customers steady', async () => {
    // per customer: activity days per day in the last 90 days vs the 180 days before
    await db.run(`
      create or replace table rates as
      with days as (
        select distinct customer_id, occurred_at::date as day from activity
      )
      select
        ground_truth.customer_id,
        ground_truth.archetype,
        count(*) filter (where day > date '${AS_OF}' - 90) / 90.0 as recent_rate,
        count(*) filter (where day <= date '${AS_OF}' - 90 and day > date '${AS_OF}' - 270) / 180.0 as baseline_rate
      from ground_truth
      left join days using (customer_id)
      group by all`);
    const decayed = await db.number(`
      select avg((recent_rate < 0.5 * baseline_rate)::int) from rates
      where archetype = 'silent_churner' and baseline_rate > 0`);
    expect(decayed).toBeGreaterThan(0.6);
    const steadyDrops = await db.number(`
      select count(*) from rates where archetype = 'steady' and baseline_rate > 0 and recent_rate < 0.5 * baseline_rate`);
    expect(steadyDrops).toBe(0);
    expect(await db.number(`select count(*) from rates where archetype = 'new' and recent_rate = 0`)).toBe(0);
    expect(
      await db.number(
        `select count(*) from rates where archetype = 'lost' and (recent_rate > 0 or baseline_rate > 0)`,
      ),
    ).toBe(0);
  });

  it('lets the default early-warning rules find the silent churners (recall >= 0.8, precision >= 0.7)', async () => {
    // a compact version of the spec's rules with its default thresholds and weights
    await db.run(`
      create or replace table signals as
      with
      active_days as (
        select customer_id, occurred_at::date as day from activity where year(occurred_at) > 1970
        union
        select customer_id, try_cast(ordered_at as date) from orders where status = 'completed'
      ),
      activity_stats as (
        select
          customer_id,
          date '${AS_OF}' - max(day) as days_since,
          count(*) filter (where day > date '${AS_OF}' - 90) / 90.0 as recent_rate,
          count(*) filter (where day <= date '${AS_OF}' - 90 and day > date '${AS_OF}' - 270) / 180.0 as baseline_rate
        from active_days where day is not null group by customer_id
      ),
      gaps as (
        select customer_id, median(gap) as typical_gap
        from (select customer_id, day - lag(day) over (partition by customer_id order by day) as gap from active_days)
        where gap is not null group by customer_id
      ),
      sends as (
        select customer_id, campaign_id, min(occurred_at) filter (where event_type = 'sent') as sent_at,
               bool_or(event_type = 'open') as opened
        from email_events group by customer_id, campaign_id
      ),
      last_sends as (
        select customer_id, count(*) as n, count(*) filter (where opened) as opens
        from (select *, row_number() over (partition by customer_id order by sent_at desc) as rn from sends where sent_at is not null)
        where rn <= 5 group by customer_id
      ),
      survey_scores as (
        select customer_id, survey_type, try_cast(responded_at as timestamp) as responded, try_cast(score as int) as score
        from surveys where survey_type in ('nps', 'csat')
      ),
      nps as (
        select customer_id, arg_max(score, responded) as last_nps from survey_scores where survey_type = 'nps' group by customer_id
      ),
      csat as (
        select customer_id, min(score) as min_csat from survey_scores
        where survey_type = 'csat' and responded > date '${AS_OF}' - 90 group by customer_id
      )
      select
        ground_truth.customer_id,
        ground_truth.archetype,
        customers.cancelled_at is not null as is_cancelled,
        coalesce(activity_stats.days_since > 365, true) as is_lost,
        35 * coalesce(activity_stats.days_since > greatest(30, 3 * coalesce(gaps.typical_gap, 0)), false)::int
          + 20 * coalesce(activity_stats.baseline_rate > 0 and activity_stats.recent_rate < 0.5 * activity_stats.baseline_rate, false)::int
          + 10 * coalesce(last_sends.n = 5 and last_sends.opens = 0, false)::int
          + 10 * coalesce(nps.last_nps <= 6, false)::int
          + 10 * coalesce(csat.min_csat <= 2, false)::int as risk_score
      from ground_truth
      join customers using (customer_id)
      left join activity_stats using (customer_id)
      left join gaps using (customer_id)
      left join last_sends using (customer_id)
      left join nps using (customer_id)
      left join csat using (customer_id)`);
    const flagged = `not is_cancelled and not is_lost and risk_score >= 30`;
    const recall = await db.number(
      `select avg((${flagged})::int) from signals where archetype = 'silent_churner'`,
    );
    const precision = await db.number(
      `select avg((archetype = 'silent_churner')::int) from signals where ${flagged}`,
    );
    expect(recall).toBeGreaterThanOrEqual(0.8);
    expect(precision).toBeGreaterThanOrEqual(0.7);
    expect(
      await db.number(`select count(*) from signals where archetype in ('steady', 'new') and ${flagged}`),
    ).toBeLessThan(CUSTOMERS * 0.01);
  });

  it('gives complainers a complaint spike and late payers late or missing payments', async () => {
    const complaints = await db.all<{ is_complainer: string; share: number }>(`
      with recent as (
        select customer_id, count(*) as n from tickets
        where is_complaint = 'true' and opened_at::timestamp > date '${AS_OF}' - 90 group by customer_id
      )
      select is_complainer, avg((coalesce(n, 0) >= 2)::int) as share
      from ground_truth left join recent using (customer_id) group by is_complainer`);
    expect(complaints.find((r) => r.is_complainer === 'true')?.share).toBe(1);
    expect(complaints.find((r) => r.is_complainer === 'false')?.share).toBeLessThan(0.01);
    const late = await db.all<{ is_late_payer: string; share: number }>(`
      with recent as (
        select customer_id, count(*) as n from invoices
        where due_at::timestamp > date '${AS_OF}' - 90 and due_at::timestamp <= date '${AS_OF}'
          and coalesce(paid_at::timestamp, date '${AS_OF}' + 1) > due_at::timestamp + interval 7 day
        group by customer_id
      )
      select is_late_payer, avg((coalesce(n, 0) >= 1)::int) as share
      from ground_truth left join recent using (customer_id)
      where customer_id in (select customer_id from subscriptions) group by is_late_payer`);
    expect(late.find((r) => r.is_late_payer === 'true')?.share).toBeGreaterThan(0.9);
    expect(late.find((r) => r.is_late_payer === 'false')?.share).toBeLessThan(0.01);
  });
});
