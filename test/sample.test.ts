// The synthetic sample (`churn sample-data`): files and headers, determinism, planted bad rows, archetype
// shares, and a population as hard as real purchase logs: heterogeneous, noisy, seasonal rates, slow but
// regular customers, one-time buyers, declines of several kinds with signals that do not all align.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, ENTITIES } from '../config/schema.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import {
  ARCHETYPES,
  DECAY_KINDS,
  FOLLOW_UP_DAYS,
  GROUND_TRUTH_COLUMNS,
  generateSample,
  NEVER_SENT_SHARE,
  PLANTED_LIFT,
  type SampleMeta,
  type SampleResult,
} from '../pipelines/sample/generate.js';
import { canonicalColumns } from '../pipelines/stages/land.js';

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

const HEADERS: Record<string, readonly string[]> = {
  'customers.csv': canonicalColumns('customers'),
  'orders.csv.gz': canonicalColumns('orders'),
  'subscriptions.csv': canonicalColumns('subscriptions'),
  'activity.parquet': canonicalColumns('activity'),
  'email_events.ndjson': ['customer_id', 'email', 'occurred_at', 'event_type', 'campaign_id'],
  'surveys.csv': ['response_id', 'customer_id', 'responded_at', 'survey_type', 'score', 'comment'],
  'tickets.csv': canonicalColumns('tickets'),
  'invoices.csv': canonicalColumns('invoices'),
  'ground_truth.csv': GROUND_TRUTH_COLUMNS,
};

const SHARES: Record<(typeof ARCHETYPES)[number], number> = {
  steady: 0.33,
  slow_regular: 0.1,
  one_time: 0.1,
  silent_churner: 0.14,
  cancelled: 0.07,
  resurrected: 0.07,
  new: 0.09,
  lost: 0.1,
};

const DECAY_SHARES: Record<(typeof DECAY_KINDS)[number], number> = { fast: 0.3, slow: 0.4, partial: 0.3 };

/** The archetypes whose orders follow a Poisson process at a lognormal base rate. */
const POISSON_ARCHETYPES = `('steady', 'silent_churner', 'cancelled', 'resurrected', 'new', 'lost')`;

let root: string;
let dirA: string;
let result: SampleResult;
let meta: SampleMeta;
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
  meta = JSON.parse(await readFile(join(dirA, 'meta.json'), 'utf8')) as SampleMeta;
  db = await Db.open();
  await loadViews(db, dirA);
}, 60_000);

afterAll(async () => {
  db?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** `value` is above `low` and below `high`. */
function expectBetween(value: number | undefined, low: number, high: number): void {
  expect(value).toBeGreaterThan(low);
  expect(value).toBeLessThan(high);
}

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
    for (const entity of [...ENTITIES, 'ground_truth']) {
      expect(await db.number(`select count(*) from ${entity}`), entity).toBe(result.rows[entity]);
    }
    const perCustomer = (entity: string) => (result.rows[entity] ?? 0) / CUSTOMERS;
    expect(result.rows.customers).toBe(CUSTOMERS);
    expect(result.rows.ground_truth).toBe(CUSTOMERS);
    expectBetween(perCustomer('orders'), 5, 25);
    expectBetween(perCustomer('activity'), 25, 100);
    expectBetween(perCustomer('email_events'), 20, 150);
    expectBetween(perCustomer('subscriptions'), 0.3, 1);
    expect(perCustomer('invoices')).toBeGreaterThan(3);
    expect(perCustomer('surveys')).toBeGreaterThan(1);
    expect(perCustomer('tickets')).toBeGreaterThan(0.5);
    // ids are unique (apart from the planted duplicate order)
    expect(await db.number(`select count(*) - count(distinct customer_id) from customers`)).toBe(0);
    expect(await db.number(`select count(*) - count(distinct order_id) from orders`)).toBe(1);
    expect(await db.number(`select count(*) - count(distinct subscription_id) from subscriptions`)).toBe(0);
    expect(await db.number(`select count(*) - count(distinct invoice_id) from invoices`)).toBe(0);
  });

  it('stamps only orders, activity and the win-back e-mail after the as-of date, nothing after the follow-up, and keeps behaviour inside each customer lifetime', async () => {
    const end = `timestamp '${AS_OF} 23:59:59'`;
    const followUpEnd = `timestamp '${meta.campaign.follow_up_until} 23:59:59'`;
    for (const [entity, column] of [
      ['orders', 'ordered_at'],
      ['activity', 'occurred_at'],
      ['email_events', 'occurred_at'],
    ] as const) {
      expect(
        await db.number(
          `select count(*) from ${entity} where try_cast(${column} as timestamp) > ${followUpEnd}`,
        ),
      ).toBe(0);
      expect(
        await db.number(`select count(*) from ${entity} where try_cast(${column} as timestamp) > ${end}`),
      ).toBeGreaterThan(0);
    }
    expect(
      await db.number(
        `select count(*) from email_events where occurred_at::timestamp > ${end} and campaign_id <> ${sqlString(meta.campaign.campaign_id)}`,
      ),
    ).toBe(0);
    for (const [entity, column] of [
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
    // in the history: no activity after an explicit cancellation, none before sign-up (the planted 1969 row aside)
    expect(
      await db.number(`
        select count(*) from activity join customers using (customer_id)
        where (activity.occurred_at > customers.cancelled_at::timestamp and activity.occurred_at <= ${end})
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
    expectBetween(shared, 0, CUSTOMERS * 0.01);
    // about 80% consent
    const consent = await db.number(`select avg((marketing_consent = 'true')::int) from customers`);
    expectBetween(consent, 0.74, 0.86);
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
    const tiny = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SampleMeta;
    expect(tiny.planted_bad_rows).toEqual([]);
    expect(tiny.archetypes.steady).toBe(17);
  });
});

describe('ground truth and behaviour', () => {
  const asOf = `date '${AS_OF}'`;

  beforeAll(async () => {
    // typed ground truth, completed orders (the planted copies and orphans left out) and active days
    await db.run(`
      create or replace table truth as
      select
        customer_id, archetype, decay_start::date as decay_start, decay_kind,
        base_orders_per_30d::double as base_rate, is_complainer = 'true' as is_complainer,
        is_late_payer = 'true' as is_late_payer, customer_no::integer as customer_no,
        signup_at::timestamp::date as signup_day, cancelled_at::timestamp as cancelled_at
      from ground_truth join customers using (customer_id);
      -- the history up to the as-of date (the follow-up after it is checked on its own below)
      create or replace table completed as
      select customer_id, try_cast(ordered_at as timestamp)::date as day
      from orders
      where status = 'completed' and try_cast(ordered_at as timestamp) is not null
        and try_cast(ordered_at as timestamp)::date <= ${asOf}
        and customer_id in (select customer_id from customers)
      qualify row_number() over (partition by order_id order by ordered_at) = 1;
      create or replace table events as
      select customer_id, occurred_at::date as day from activity
      where year(occurred_at) > 1970 and occurred_at::date <= ${asOf};
      create or replace table active_days as
      select customer_id, day from events union select customer_id, day from completed;
    `);
  });

  it('assigns the archetypes and the kinds of decline in their shares', async () => {
    const counts = await db.all<{ archetype: string; n: string }>(
      `select archetype, count(*)::varchar as n from truth group by archetype`,
    );
    for (const archetype of ARCHETYPES) {
      const n = Number(counts.find((c) => c.archetype === archetype)?.n ?? 0);
      expect(n, archetype).toBe(meta.archetypes[archetype]);
      expect(Math.abs(n / CUSTOMERS - SHARES[archetype]), archetype).toBeLessThan(0.01);
    }
    expect(
      await db.number(`
        select count(*) from truth
        where (archetype = 'silent_churner') <> (decay_start is not null)
           or (archetype = 'silent_churner') <> (decay_kind is not null)`),
    ).toBe(0);
    // the decline starts 20-200 days before the as-of date
    expect(
      await db.number(`
        select count(*) from truth
        where decay_start < ${asOf} - 200 or decay_start > ${asOf} - 20`),
    ).toBe(0);
    const silent = await db.number(`select count(*) from truth where archetype = 'silent_churner'`);
    for (const kind of DECAY_KINDS) {
      const n = await db.number(`select count(*) from truth where decay_kind = '${kind}'`);
      expect(Math.abs(n / silent - DECAY_SHARES[kind]), kind).toBeLessThan(0.01);
    }
    // one_time customers have no repeat rate; everyone else has one
    expect(
      await db.number(`select count(*) from truth where (archetype = 'one_time') <> (base_rate = 0)`),
    ).toBe(0);
  });

  it('draws heterogeneous rates: most customers buy rarely, a long tail buys often', async () => {
    const rates = await db.one<{ cv: number; median: number; fast: number; weekly: number }>(`
      select
        stddev_pop(base_rate) / avg(base_rate) as cv,
        median(base_rate) as median,
        avg((base_rate > 2)::int) as fast,
        avg((base_rate >= 4)::int) as weekly
      from truth where archetype in ${POISSON_ARCHETYPES}`);
    expectBetween(rates?.cv, 0.8, 1.4);
    expectBetween(rates?.median, 0.3, 0.7);
    expectBetween(rates?.fast, 0.01, 0.1);
    expect(rates?.weekly).toBeLessThan(0.02);
    // orders in the last year of those who ordered in it: a median of a few, a long tail, many single orders
    const year = await db.one<{ median: number; p90: number; single: number }>(`
      select median(n) as median, quantile_cont(n, 0.9) as p90, avg((n = 1)::int) as single
      from (select customer_id, count(*) as n from completed where day > ${asOf} - 365 group by 1)`);
    expect(year?.median).toBeLessThanOrEqual(6);
    expect(year?.p90).toBeGreaterThanOrEqual(8);
    expect(year?.single).toBeGreaterThan(0.12);
    // the hidden rate drives the data: steady customers' observed order rates follow it
    expect(
      await db.number(`
        select corr(ln(n * 30.0 / (${asOf} - signup_day + 1)), ln(base_rate))
        from (select customer_id, count(*) as n from completed group by 1)
        join truth using (customer_id)
        where archetype = 'steady' and signup_day < ${asOf} - 365`),
    ).toBeGreaterThan(0.7);
    // Poisson timing: order gaps of steady customers are irregular (a CV near 1, not a cadence)
    expect(
      await db.number(`
        select median(cv) from (
          select customer_id, stddev_pop(gap) / avg(gap) as cv
          from (
            select customer_id, day - lag(day) over (partition by customer_id order by day) as gap
            from (select distinct customer_id, day from completed)
          )
          join truth using (customer_id)
          where gap is not null and archetype = 'steady'
          group by 1 having count(*) >= 5)`),
    ).toBeGreaterThan(0.7);
  });

  it('adds noisy months and a seasonality to the rates', async () => {
    // monthly activity counts of steady customers vary more than a Poisson count would (variance = mean)
    expect(
      await db.number(`
        with months as (
          select unnest(generate_series(date '2024-01-01', ${asOf} - 30, interval 1 month))::date as month
        ),
        customer_months as (
          select customer_id, month from truth, months where archetype = 'steady' and month > signup_day
        ),
        counts as (select customer_id, date_trunc('month', day)::date as month, count(*) as n from events group by all),
        per_customer as (
          select customer_id, avg(coalesce(n, 0)) as mean, var_pop(coalesce(n, 0)) as variance, count(*) as months
          from customer_months left join counts using (customer_id, month) group by 1
        )
        select median(variance / mean) from per_customer where months >= 12 and mean >= 5`),
    ).toBeGreaterThan(1.5);
    // a December bump and a summer dip, among the same early customers
    const season = await db.one<{ december: number; summer: number; spring: number }>(`
      select
        count(*) filter (where month(day) = 12) / 2.0 as december,
        count(*) filter (where month(day) in (7, 8)) / 4.0 as summer,
        count(*) filter (where month(day) in (3, 4, 5)) / 6.0 as spring
      from completed join truth using (customer_id)
      where archetype = 'steady' and signup_day < date '2024-03-01'
        and day >= date '2024-03-01' and day < date '2026-03-01'`);
    expect(season!.december / season!.summer).toBeGreaterThan(1.2);
    expect(season!.december / season!.spring).toBeGreaterThan(1.1);
  });

  it('keeps slow_regular customers regular and one_time customers at one order', async () => {
    /** The row counts every customer of the archetype (n): each of them is `every`, none is `none`. */
    const expectAll = (
      row: Record<string, number> | undefined,
      archetype: 'slow_regular' | 'one_time',
      every: string,
      none: string,
    ): void => {
      expect(Number(row?.n)).toBe(meta.archetypes[archetype]);
      expect(Number(row?.[every])).toBe(Number(row?.n));
      expect(Number(row?.[none])).toBe(0);
    };
    const slow = await db.one<{
      n: number;
      regular: number;
      overdue: number;
      rate_off: number;
      activity: number;
    }>(`
      with gaps as (
        select customer_id, day - lag(day) over (partition by customer_id order by day) as gap
        from (select distinct customer_id, day from completed)
      ),
      per_customer as (
        select customer_id, median(gap) as typical_gap, stddev_pop(gap) / avg(gap) as cv
        from gaps where gap is not null group by 1
      ),
      last_orders as (select customer_id, max(day) as last_day, count(*) as n_orders from completed group by 1),
      activity_rates as (select customer_id, count(*) as n_events from events group by 1)
      select
        count(*) as n,
        count(*) filter (where typical_gap between 38 and 140 and cv < 0.3 and n_orders >= 3) as regular,
        count(*) filter (where ${asOf} - last_day > 1.3 * typical_gap + 5) as overdue,
        max(abs(base_rate * typical_gap / 30 - 1)) as rate_off,
        avg(coalesce(n_events, 0) * 30.0 / (${asOf} - signup_day + 1)) as activity
      from truth
      join per_customer using (customer_id)
      join last_orders using (customer_id)
      left join activity_rates using (customer_id)
      where archetype = 'slow_regular'`);
    expectAll(slow, 'slow_regular', 'regular', 'overdue');
    expect(slow?.rate_off).toBeLessThan(0.2);
    expect(slow?.activity).toBeLessThan(1.5);

    const once = await db.one<{ n: number; single: number; later: number; recent: number; old: number }>(`
      with counts as (
        select customer_id, count(*) as n_orders, max(day) as last_order from completed group by 1
      ),
      last_events as (select customer_id, max(day) as last_event from events group by 1)
      select
        count(*) as n,
        count(*) filter (where n_orders = 1 and last_order = signup_day) as single,
        count(*) filter (where last_event > signup_day + 14) as later,
        avg((signup_day > ${asOf} - 180)::int) as recent,
        avg((signup_day < ${asOf} - 540)::int) as old
      from truth join counts using (customer_id) left join last_events using (customer_id)
      where archetype = 'one_time'`);
    expectAll(once, 'one_time', 'single', 'later');
    expect(once?.recent).toBeGreaterThan(0.1);
    expect(once?.old).toBeGreaterThan(0.3);
  });

  it('makes silent churners decline by kind while steady customers only fluctuate', async () => {
    // per kind: activity events per day from 30 (fast, slow) or 60 (partial) days after the decay start,
    // over the rate of the 150 days before it
    const declines = await db.all<{ decay_kind: string; ratio: number; after: number }>(`
      with per_customer as (
        select
          truth.customer_id,
          truth.decay_kind,
          truth.decay_start + case when truth.decay_kind = 'partial' then 60 else 30 end as late_start,
          count(*) filter (where events.day >= truth.decay_start - 150 and events.day < truth.decay_start) as before_n,
          count(*) filter (where events.day >= truth.decay_start + case when truth.decay_kind = 'partial' then 60 else 30 end) as after_n
        from truth left join events using (customer_id)
        where truth.archetype = 'silent_churner'
        group by all
      )
      select
        decay_kind,
        (sum(after_n) / sum(${asOf} - late_start + 1)) / (sum(before_n) / (150.0 * count(*))) as ratio,
        sum(after_n) as after
      from per_customer
      where late_start <= ${asOf} - 10
      group by 1`);
    const ratio = (kind: string) => declines.find((d) => d.decay_kind === kind)!;
    expect(Number(ratio('fast').after)).toBe(0);
    expectBetween(ratio('slow').ratio, 0.05, 0.7);
    expectBetween(ratio('partial').ratio, 0.1, 0.5);
    // fast decliners stop ordering too
    expect(
      await db.number(`
        select count(*) from completed join truth using (customer_id)
        where decay_kind = 'fast' and day >= decay_start + 30`),
    ).toBe(0);

    // steady customers: no decline on the whole, but individual quiet spells (noise a detector must tolerate)
    const steady = await db.one<{ ratio: number; drops: number }>(`
      with per_customer as (
        select
          customer_id,
          count(*) filter (where day > ${asOf} - 90) / 90.0 as recent,
          count(*) filter (where day <= ${asOf} - 90 and day > ${asOf} - 270) / 180.0 as baseline
        from truth left join active_days using (customer_id)
        where archetype = 'steady' and signup_day <= ${asOf} - 270
        group by 1
      )
      select sum(recent) / sum(baseline) as ratio, avg((recent < 0.5 * baseline)::int) as drops
      from per_customer`);
    expectBetween(steady?.ratio, 0.8, 1.25);
    expectBetween(steady?.drops, 0.03, 0.35);
  });

  it('keeps new, lost, resurrected and cancelled customers to their plan', async () => {
    const lifecycle = await db.one<Record<string, number>>(`
      with last_days as (select customer_id, max(day) as last_day from active_days group by 1),
      gaps as (
        select customer_id, max(gap) as longest_gap
        from (select customer_id, day - lag(day) over (partition by customer_id order by day) as gap from active_days)
        group by 1
      )
      select
        count(*) filter (where archetype = 'new' and signup_day < ${asOf} - 89) as old_new,
        count(*) filter (where archetype = 'new' and last_day is null) as silent_new,
        count(*) filter (where archetype = 'lost' and last_day > ${asOf} - 120) as active_lost,
        avg((last_day < ${asOf} - 365)::int) filter (where archetype = 'lost') as long_lost,
        count(*) filter (where archetype = 'resurrected' and (last_day < ${asOf} - 150 or longest_gap < 90)) as not_back
      from truth left join last_days using (customer_id) left join gaps using (customer_id)`);
    expect(Number(lifecycle?.old_new)).toBe(0);
    expect(Number(lifecycle?.silent_new)).toBe(0);
    expect(Number(lifecycle?.active_lost)).toBe(0);
    expectBetween(lifecycle?.long_lost, 0.45, 0.65);
    expect(Number(lifecycle?.not_back)).toBe(0);

    // cancelled: cancelled_at, an ended subscription or both; nothing active after the end
    const cancelled = await db.one<Record<string, number>>(`
      with subscription_ends as (
        select customer_id, max(coalesce(ended_at::timestamp, timestamp '9999-12-31')) as last_end
        from subscriptions group by 1
      ),
      ends as (
        select customer_id, cancelled_at, last_end, coalesce(cancelled_at, last_end) as gone_at
        from truth left join subscription_ends using (customer_id)
        where archetype = 'cancelled'
      )
      select
        count(*) filter (where cancelled_at is null and coalesce(last_end, timestamp '9999-12-31') > ${asOf} + 1) as not_cancelled,
        count(*) filter (where cancelled_at is null) as subscription_only,
        count(*) filter (where cancelled_at is not null and last_end is not null) as both_ways,
        (select count(*) from active_days join ends using (customer_id) where day > gone_at::date) as active_after
      from ends`);
    expect(Number(cancelled?.not_cancelled)).toBe(0);
    expect(Number(cancelled?.subscription_only)).toBeGreaterThan(0);
    expect(Number(cancelled?.both_ways)).toBeGreaterThan(0);
    expect(Number(cancelled?.active_after)).toBe(0);
    // cancelled_at belongs to cancelled customers only
    expect(
      await db.number(
        `select count(*) from truth where cancelled_at is not null and archetype <> 'cancelled'`,
      ),
    ).toBe(0);
  });

  it("lets the silent churners' other signals disagree, and gives steady customers some bad ones", async () => {
    // e-mail opens after the decline vs before it: fewer on the whole, but many keep opening
    await db.run(`
      create or replace table sends as
      select customer_id, min(occurred_at::timestamp) filter (where event_type = 'sent')::date as day,
             bool_or(event_type in ('open', 'click')) as opened
      from email_events where occurred_at::timestamp::date <= ${asOf} group by customer_id, campaign_id`);
    const opens = await db.one<{ ratio: number; kept: number }>(`
      with per_customer as (
        select
          customer_id,
          avg(opened::int) filter (where sends.day < decay_start) as before_rate,
          avg(opened::int) filter (where sends.day >= decay_start + 30) as after_rate,
          count(*) filter (where sends.day >= decay_start + 30) as after_n
        from sends join truth using (customer_id)
        where archetype = 'silent_churner' and decay_start <= ${asOf} - 90
        group by 1
      )
      select sum(after_rate) / sum(before_rate) as ratio, avg((after_rate >= 0.5 * before_rate)::int) as kept
      from per_customer where before_rate >= 0.15 and after_n >= 3`);
    expectBetween(opens?.ratio, 0.2, 0.75);
    expectBetween(opens?.kept, 0.2, 0.75);
    // steady customers who opened none of their last 5 e-mails exist
    expect(
      await db.number(`
        select avg((opens = 0)::int) from (
          select customer_id, count(*) filter (where opened) as opens
          from (select *, row_number() over (partition by customer_id order by day desc) as rn from sends where day is not null)
          join truth using (customer_id)
          where rn <= 5 and archetype = 'steady' group by 1 having count(*) = 5)`),
    ).toBeGreaterThan(0.1);

    // surveys: a detractor after the decline for a minority of the silent churners; some steady detractors
    const surveys = await db.one<{ silent: number; steady: number }>(`
      with nps as (
        select customer_id, try_cast(responded_at as timestamp)::date as day, try_cast(score as int) as score
        from surveys where survey_type = 'nps'
      )
      select
        avg(coalesce(silent_detractor, false)::int) filter (where archetype = 'silent_churner') as silent,
        avg(coalesce(steady_detractor, false)::int) filter (where archetype = 'steady') as steady
      from truth
      left join (
        select customer_id,
          bool_or(nps.score <= 6 and nps.day >= truth.decay_start) as silent_detractor,
          bool_or(nps.score <= 6 and nps.day > ${asOf} - 365) as steady_detractor
        from nps join truth using (customer_id) group by 1
      ) using (customer_id)`);
    expectBetween(surveys?.silent, 0.1, 0.5);
    expect(surveys?.steady).toBeGreaterThan(0.03);

    // complaints rise for some silent churners only; a few steady customers complain too
    const complainers = await db.one<{ silent: number; steady: number }>(`
      select
        avg(is_complainer::int) filter (where archetype = 'silent_churner') as silent,
        avg(is_complainer::int) filter (where archetype in ('steady', 'slow_regular')) as steady
      from truth`);
    expectBetween(complainers?.silent, 0.08, 0.22);
    expectBetween(complainers?.steady, 0.01, 0.07);
  });

  it('is not trivially separable: simple early-warning rules miss churners and flag healthy customers', async () => {
    // a compact version of the spec's rules with its default thresholds and weights
    await db.run(`
      create or replace table signals as
      with
      activity_stats as (
        select
          customer_id,
          ${asOf} - max(day) as days_since,
          count(*) filter (where day > ${asOf} - 90) / 90.0 as recent_rate,
          count(*) filter (where day <= ${asOf} - 90 and day > ${asOf} - 270) / 180.0 as baseline_rate
        from active_days group by customer_id
      ),
      gaps as (
        select customer_id, median(gap) as typical_gap
        from (select customer_id, day - lag(day) over (partition by customer_id order by day) as gap from active_days)
        where gap is not null group by customer_id
      ),
      last_sends as (
        select customer_id, count(*) as n, count(*) filter (where opened) as opens
        from (select *, row_number() over (partition by customer_id order by day desc) as rn from sends where day is not null)
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
        where survey_type = 'csat' and responded > ${asOf} - 90 group by customer_id
      )
      select
        truth.customer_id,
        truth.archetype,
        truth.cancelled_at is not null as is_cancelled,
        coalesce(activity_stats.days_since > 365, true) as is_lost,
        35 * coalesce(activity_stats.days_since > greatest(30, 3 * coalesce(gaps.typical_gap, 0)), false)::int
          + 20 * coalesce(activity_stats.baseline_rate > 0 and activity_stats.recent_rate < 0.5 * activity_stats.baseline_rate, false)::int
          + 10 * coalesce(last_sends.n = 5 and last_sends.opens = 0, false)::int
          + 10 * coalesce(nps.last_nps <= 6, false)::int
          + 10 * coalesce(csat.min_csat <= 2, false)::int as risk_score
      from truth
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
    // the signals are there (far better than chance: 14% are silent churners) but not clean
    expectBetween(recall, 0.3, 0.9);
    expectBetween(precision, 0.2, 0.9);
    // healthy customers with a quiet spell or bad signals get flagged too
    expect(
      await db.number(
        `select count(*) from signals where archetype in ('steady', 'slow_regular', 'new') and ${flagged}`,
      ),
    ).toBeGreaterThan(CUSTOMERS * 0.01);
  });

  it('gives complainers a complaint spike and late payers late or missing payments', async () => {
    // complainers: 3-6 complaints within 60 days; nobody else has 3 within 60 days
    const spikes = await db.all<{ is_complainer: boolean; share: number }>(`
      with windows as (
        select customer_id, count(*) over (
          partition by customer_id order by opened_at::timestamp range between interval 60 day preceding and current row
        ) as n
        from tickets where is_complaint = 'true'
      ),
      spikes as (select customer_id, max(n) as most from windows group by 1)
      select is_complainer, avg((coalesce(most, 0) >= 3)::int) as share
      from truth left join spikes using (customer_id) group by is_complainer`);
    expect(spikes.find((r) => r.is_complainer === true)?.share).toBe(1);
    expect(spikes.find((r) => r.is_complainer === false)?.share).toBeLessThan(0.01);
    // steady complainers' spikes are recent: noise for a complaints-up rule
    expect(
      await db.number(`
        select avg((n >= 2)::int) from truth left join (
          select customer_id, count(*) as n from tickets
          where is_complaint = 'true' and opened_at::timestamp > ${asOf} - 120 group by customer_id
        ) using (customer_id)
        where is_complainer and archetype in ('steady', 'slow_regular')`),
    ).toBe(1);
    const late = await db.all<{ is_late_payer: boolean; share: number }>(`
      with recent as (
        select customer_id, count(*) as n from invoices
        where due_at::timestamp > ${asOf} - 90 and due_at::timestamp <= ${asOf}
          and coalesce(paid_at::timestamp, ${asOf} + 1) > due_at::timestamp + interval 7 day
        group by customer_id
      )
      select is_late_payer, avg((coalesce(n, 0) >= 1)::int) as share
      from truth left join recent using (customer_id)
      where customer_id in (select customer_id from subscriptions) group by is_late_payer`);
    expect(late.find((r) => r.is_late_payer === true)?.share).toBeGreaterThan(0.9);
    expect(late.find((r) => r.is_late_payer === false)?.share).toBeLessThan(0.01);
  });
});

describe('the follow-up after the as-of date and the planted win-back campaign', () => {
  const asOf = `date '${AS_OF}'`;
  const followUpEnd = `${asOf} + ${FOLLOW_UP_DAYS}`;

  beforeAll(async () => {
    await db.run(`
      create or replace table campaign_truth as
      select
        customer_id, archetype, decay_kind, holdout_group, is_persuadable = 'true' as is_persuadable,
        winback_sent = 'true' as winback_sent, decay_start::date as decay_start
      from ground_truth;
      create or replace table follow_up_days as
      select customer_id, try_cast(ordered_at as timestamp)::date as day from orders
      where status = 'completed' and try_cast(ordered_at as timestamp)::date > ${asOf}
      union
      select customer_id, occurred_at::date from activity where occurred_at::date > ${asOf};
      create or replace table last_90_days as
      select customer_id, try_cast(ordered_at as timestamp)::date as day from orders
      where status = 'completed' and try_cast(ordered_at as timestamp)::date between ${asOf} - 89 and ${asOf}
      union
      select customer_id, occurred_at::date from activity where occurred_at::date between ${asOf} - 89 and ${asOf};
      create or replace table winback_events as
      select * from email_events where campaign_id = ${sqlString(meta.campaign.campaign_id)};
    `);
  });

  it('records the campaign in meta.json and assigns the holdout of the default config', async () => {
    const defaults = configSchema.parse({}).audience;
    expect(meta.campaign).toEqual({
      audience_as_of: AS_OF,
      campaign_id: 'winback-2026-07-01',
      sent_on: '2026-07-01',
      follow_up_until: '2026-08-29',
      holdout_salt: defaults.holdout_salt,
      control_share: defaults.control_share,
      never_sent_share: NEVER_SENT_SHARE,
      planted_lift_sent: PLANTED_LIFT,
      planted_lift_targeted: PLANTED_LIFT * (1 - NEVER_SENT_SHARE),
    });
    // the group of sql/audiences/int_audience_candidates.sql under the default salt and share
    expect(
      await db.number(`
        select count(*) from campaign_truth
        where holdout_group <> case
          when ('0x' || left(sha256(${sqlString(defaults.holdout_salt)} || customer_id), 8))::ubigint / 4294967296.0
            < ${defaults.control_share} then 'control' else 'target' end`),
    ).toBe(0);
    const shares = await db.one<{
      control: number;
      persuadable_target: number;
      persuadable_control: number;
    }>(`
      select
        avg((holdout_group = 'control')::int) as control,
        avg(is_persuadable::int) filter (where holdout_group = 'target') as persuadable_target,
        avg(is_persuadable::int) filter (where holdout_group = 'control') as persuadable_control
      from campaign_truth`);
    expectBetween(shares?.control, 0.07, 0.13);
    // persuadable customers are drawn independently of the group: the same share in both
    expect(Math.abs(shares!.persuadable_target - PLANTED_LIFT)).toBeLessThan(0.04);
    expect(Math.abs(shares!.persuadable_control - PLANTED_LIFT)).toBeLessThan(0.1);
  });

  it('e-mails the target group once, the day after the as-of date, less the share it never reaches', async () => {
    const sends = await db.one<Record<string, number>>(`
      with per_customer as (
        select customer_id, count(*) filter (where event_type = 'sent') as sent,
               min(occurred_at::timestamp)::date as first_day
        from winback_events group by 1
      )
      select
        count(*) filter (where campaign_truth.winback_sent and coalesce(per_customer.sent, 0) <> 1)::integer as sent_not_once,
        count(*) filter (where not campaign_truth.winback_sent and per_customer.customer_id is not null)::integer as unsent_with_events,
        count(*) filter (where campaign_truth.holdout_group = 'control' and campaign_truth.winback_sent)::integer as control_sent,
        count(*) filter (where per_customer.first_day <> date ${sqlString(meta.campaign.sent_on)})::integer as other_day,
        count(*) filter (where campaign_truth.winback_sent)::integer as recipients
      from campaign_truth left join per_customer using (customer_id)`);
    expect(sends).toMatchObject({ sent_not_once: 0, unsent_with_events: 0, control_sent: 0, other_day: 0 });
    expect(Number(sends?.recipients)).toBeGreaterThan(CUSTOMERS * 0.5);
    // of the consenting target customers with a usable address, about NEVER_SENT_SHARE are never sent
    const neverSent = await db.number(`
      select avg((not winback_sent)::int) from campaign_truth
      join customers using (customer_id)
      where holdout_group = 'target' and marketing_consent = 'true'
        and customer_id in (select customer_id from email_events where occurred_at::timestamp::date <= ${asOf})
        and customer_id not in (
          select customer_id from email_events where event_type in ('bounce', 'unsubscribe', 'spam_complaint'))`);
    expect(Math.abs(neverSent - NEVER_SENT_SHARE)).toBeLessThan(0.04);
  });

  it('brings persuadable customers back within two weeks when e-mailed and keeps them away when not', async () => {
    const effect = await db.one<Record<string, number>>(`
      with firsts as (select customer_id, min(day) as first_day from follow_up_days group by 1)
      select
        count(*) filter (where is_persuadable and winback_sent
                         and coalesce(first_day > ${asOf} + 14, true))::integer as sent_not_back,
        count(*) filter (where is_persuadable and not winback_sent and first_day is not null)::integer as unsent_back,
        count(*) filter (where is_persuadable and winback_sent)::integer as brought_back
      from campaign_truth left join firsts using (customer_id)`);
    expect(effect).toMatchObject({ sent_not_back: 0, unsent_back: 0 });
    expect(Number(effect?.brought_back)).toBeGreaterThan(CUSTOMERS * 0.1);
    expect(await db.number(`select count(*) from follow_up_days where day > ${followUpEnd}`)).toBe(0);
  });

  it("goes on at each customer's own pace after the as-of date for everyone else", async () => {
    const pace = await db.one<{ ratio: number; stopped_active: number }>(`
      with steady as (
        select
          customer_id,
          (select count(*) from follow_up_days f where f.customer_id = t.customer_id) / ${FOLLOW_UP_DAYS}.0 as after,
          (select count(*) from last_90_days a where a.customer_id = t.customer_id) / 90.0 as before
        from campaign_truth t where archetype = 'steady' and not is_persuadable
      )
      select
        sum(after) / sum(before) as ratio,
        (select count(*) from campaign_truth t join follow_up_days f using (customer_id)
         where not t.is_persuadable
           and (t.archetype in ('lost', 'cancelled') or (t.decay_kind = 'fast' and t.decay_start < ${asOf} - 31))) as stopped_active
      from steady`);
    // steady customers keep their pace (a summer dip: July and August are the season's lowest months)
    expectBetween(pace?.ratio, 0.6, 1.1);
    // who had stopped before the as-of date stays stopped
    expect(Number(pace?.stopped_active)).toBe(0);
  });

  it('leaves the history as it was: without a planted effect the rows up to the as-of date are the same', async () => {
    const dir = join(root, 'aa');
    await generateSample({ dir, customers: CUSTOMERS, seed: SEED, campaignLift: 0 });
    const aa = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SampleMeta;
    expect(aa.campaign.planted_lift_sent).toBe(0);
    for (const file of ['customers.csv', 'subscriptions.csv', 'surveys.csv', 'tickets.csv', 'invoices.csv']) {
      expect(await sha256(join(dir, file)), file).toBe(await sha256(join(dirA, file)));
    }
    const read: Record<string, (d: string) => string> = {
      orders: (d) => `read_csv(${sqlString(join(d, 'orders.csv.gz'))}, header = true, all_varchar = true)`,
      activity: (d) => `read_parquet(${sqlString(join(d, 'activity.parquet'))})`,
      email_events: (d) =>
        `read_json(${sqlString(join(d, 'email_events.ndjson'))}, format = 'newline_delimited', columns = {customer_id: 'varchar', email: 'varchar', occurred_at: 'varchar', event_type: 'varchar', campaign_id: 'varchar'})`,
    };
    for (const [entity, column] of [
      ['orders', 'ordered_at'],
      ['activity', 'occurred_at'],
      ['email_events', 'occurred_at'],
    ] as const) {
      const history = (d: string) =>
        `select * from ${read[entity]!(d)} where try_cast(${column} as timestamp) is null or try_cast(${column} as timestamp) < ${asOf} + 1`;
      const rows = await db.number(`select count(*) from (${history(dirA)})`);
      expect(rows, entity).toBeGreaterThan(0);
      const differing = await db.number(
        `select count(*) from ((${history(dirA)} except all ${history(dir)}) union all (${history(dir)} except all ${history(dirA)}))`,
      );
      expect(differing, entity).toBe(0);
    }
    // the ground truth of the archetypes is the same; nobody is persuadable
    const truth = (d: string) =>
      `read_csv(${sqlString(join(d, 'ground_truth.csv'))}, header = true, all_varchar = true)`;
    expect(
      await db.number(`
        select count(*) from (
          select * exclude (is_persuadable, winback_sent) from ${truth(dirA)}
          except all select * exclude (is_persuadable, winback_sent) from ${truth(dir)})`),
    ).toBe(0);
    expect(await db.number(`select count(*) from ${truth(dir)} where is_persuadable = 'true'`)).toBe(0);
  }, 60_000);
});
