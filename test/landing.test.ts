// Landing as the readers type it: Parquet and NDJSON timestamps land typed (no round trip through text), CSV as
// text; staging gives the same values, the same quarantine detail and the same row numbers either way, and several
// entities land at once without changing what is landed.
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { buildModels, fixtureConfig } from './support/models.js';

const ACTIVITY = [
  ['C1', '2024-01-05 10:00:00', 'login', '1'],
  ['C1', '1969-12-31 23:59:59', 'login', '1'],
  ['C2', '2024-03-31 02:30:00', 'page_view', '2'],
  ['C2', '2024-02-01 00:30:00', 'login', '1'],
  ['C9', '2024-02-02 12:00:00', 'login', '1'],
];
const EVENTS = [
  { customer_id: 'C1', occurred_at: '2024-01-05 10:00:00', event_type: 'sent' },
  { customer_id: 'C2', occurred_at: '2024-10-27 02:30:00', event_type: 'open' },
  { customer_id: 'C1', occurred_at: '1960-01-01 00:00:00', event_type: 'click' },
  { customer_id: null, email: 'b@x.com', occurred_at: '2024-02-03 09:00:00', event_type: 'sent' },
];
const CUSTOMERS = 'customer_id,email\nC1,a@x.com\nC2,b@x.com\n';

/** The sample entities in three layouts: all CSV, or activity as Parquet and e-mail events as NDJSON. */
async function exports(typed: boolean): Promise<{ dir: string; sources: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'churn-landing-'));
  await writeFile(join(dir, 'customers.csv'), CUSTOMERS);
  const activityCsv = `customer_id,occurred_at,event_type,quantity\n${ACTIVITY.map((r) => r.join(',')).join('\n')}\n`;
  const eventsCsv = `customer_id,email,occurred_at,event_type\n${EVENTS.map((e) => [e.customer_id ?? '', e.email ?? '', e.occurred_at, e.event_type].join(',')).join('\n')}\n`;
  await writeFile(join(dir, 'activity.csv'), activityCsv);
  await writeFile(join(dir, 'email_events.csv'), eventsCsv);
  const sources: Record<string, unknown> = {
    customers: { type: 'local', path: 'customers.csv' },
    activity: { type: 'local', path: 'activity.csv' },
    email_events: { type: 'local', path: 'email_events.csv' },
  };
  if (typed) {
    const db = await Db.open();
    try {
      await db.run(
        `copy (select customer_id, occurred_at::timestamp as occurred_at, event_type, quantity::integer as quantity
               from read_csv(${sqlString(join(dir, 'activity.csv'))}, all_varchar = true))
         to ${sqlString(join(dir, 'activity.parquet'))} (format parquet)`,
      );
    } finally {
      db.close();
    }
    await writeFile(join(dir, 'email_events.ndjson'), `${EVENTS.map((e) => JSON.stringify(e)).join('\n')}\n`);
    sources.activity = { type: 'local', path: 'activity.parquet', format: 'parquet' };
    sources.email_events = { type: 'local', path: 'email_events.ndjson', format: 'ndjson' };
  }
  return { dir, sources };
}

async function staged(typed: boolean) {
  const { dir, sources } = await exports(typed);
  const config = fixtureConfig({ business_time_zone: 'Europe/Berlin', sources });
  const db = await buildModels(config, dir, '2024-12-31', {
    only: ['quarantine', 'stg_activity', 'stg_email_events'],
    now: new Date('2030-01-01T00:00:00Z'),
  });
  try {
    const types = await db.all(
      `select table_name, column_name, data_type from information_schema.columns
       where table_name in ('raw_activity', 'raw_email_events') and column_name = 'occurred_at' order by table_name`,
    );
    const quarantine = await db.all(
      `select entity, source_row, column_name, reason, value from quarantine order by entity, source_row`,
    );
    const activity = await db.all(
      `select customer_id, strftime(occurred_at at time zone 'UTC', '%Y-%m-%d %H:%M:%S') as utc, occurred_date::varchar as d, quantity
       from stg_activity order by all`,
    );
    const events = await db.all(
      `select customer_id, event_type, strftime(occurred_at at time zone 'UTC', '%Y-%m-%d %H:%M:%S') as utc, occurred_date::varchar as d
       from stg_email_events order by all`,
    );
    const rows = await db.all(`select _source_row::integer as n from raw_activity order by _source_row`);
    return { types, quarantine, activity, events, rows };
  } finally {
    db.close();
  }
}

describe('typed landing', () => {
  it('lands Parquet and NDJSON timestamps typed and stages them as their CSV text is staged', async () => {
    const [text, typed] = await Promise.all([staged(false), staged(true)]);
    expect(text.types.map((t) => t.data_type)).toEqual(['VARCHAR', 'VARCHAR']);
    expect(typed.types.map((t) => t.data_type)).toEqual(['TIMESTAMP', 'TIMESTAMP']);
    expect(typed.quarantine).toEqual(text.quarantine);
    expect(typed.activity).toEqual(text.activity);
    expect(typed.events).toEqual(text.events);
    expect(typed.rows).toEqual(text.rows);
    expect(typed.rows.map((r) => r.n)).toEqual([1, 2, 3, 4, 5]);
    expect(typed.quarantine).toEqual([
      {
        entity: 'activity',
        source_row: '2',
        column_name: 'occurred_at',
        reason: 'timestamp before 1970',
        value: '1969-12-31 23:59:59',
      },
      {
        entity: 'activity',
        source_row: '5',
        column_name: 'customer_id',
        reason: 'unknown customer_id (not in the customers export)',
        value: 'C9',
      },
      {
        entity: 'email_events',
        source_row: '3',
        column_name: 'occurred_at',
        reason: 'timestamp before 1970',
        value: '1960-01-01 00:00:00',
      },
    ]);
    // local wall-clock time in Europe/Berlin, across both DST changes; the e-mail address names C2
    expect(typed.activity).toContainEqual({
      customer_id: 'C2',
      utc: '2024-03-31 01:30:00',
      d: '2024-03-31',
      quantity: 2,
    });
    expect(typed.activity).toContainEqual({
      customer_id: 'C2',
      utc: '2024-01-31 23:30:00',
      d: '2024-02-01',
      quantity: 1,
    });
    expect(typed.events).toContainEqual({
      customer_id: 'C2',
      event_type: 'open',
      utc: '2024-10-27 01:30:00',
      d: '2024-10-27',
    });
    expect(typed.events).toContainEqual({
      customer_id: 'C2',
      event_type: 'sent',
      utc: '2024-02-03 08:00:00',
      d: '2024-02-03',
    });
  });
});

describe('header names and offsets as exports write them', () => {
  it('reads a column named like the canonical one but for case, spaces and punctuation, typed or not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'churn-headers-'));
    await writeFile(
      join(dir, 'orders.csv'),
      [
        'Order ID,Customer_ID ,Ordered At,AMOUNT',
        'O1,C1,2024-02-05 10:00:00 +0100,10.50',
        'O2,C2,2024-02-05 10:00:00 -05:00,20',
        'O3,C1,2024-03-01 08:00:00 Z,5',
      ].join('\n'),
    );
    const db = await Db.open();
    try {
      await db.run(
        `copy (select 'C1' as "Customer ID", timestamp '2024-02-05 10:00:00' as "OccurredAt")
         to ${sqlString(join(dir, 'activity.parquet'))} (format parquet)`,
      );
    } finally {
      db.close();
    }
    const config = fixtureConfig({
      sources: {
        orders: { type: 'local', path: 'orders.csv' },
        activity: { type: 'local', path: 'activity.parquet', format: 'parquet' },
      },
    });
    const built = await buildModels(config, dir, '2024-12-31', {
      only: ['stg_orders', 'stg_activity', 'quarantine'],
    });
    try {
      expect(await built.all('select * from quarantine')).toEqual([]);
      expect(
        await built.all(
          `select order_id, customer_id, strftime(ordered_at at time zone 'UTC', '%Y-%m-%d %H:%M') as utc, amount::double as amount
           from stg_orders order by order_id`,
        ),
      ).toEqual([
        { order_id: 'O1', customer_id: 'C1', utc: '2024-02-05 09:00', amount: 10.5 },
        { order_id: 'O2', customer_id: 'C2', utc: '2024-02-05 15:00', amount: 20 },
        { order_id: 'O3', customer_id: 'C1', utc: '2024-03-01 08:00', amount: 5 },
      ]);
      expect(
        await built.all(
          `select (select data_type from information_schema.columns
                   where table_name = 'raw_activity' and column_name = 'occurred_at') as landed_as,
                  customer_id, strftime(occurred_at at time zone 'UTC', '%Y-%m-%d %H:%M') as utc
           from stg_activity`,
        ),
      ).toEqual([{ landed_as: 'TIMESTAMP', customer_id: 'C1', utc: '2024-02-05 10:00' }]);
    } finally {
      built.close();
    }
  });

  it('refuses two columns that could both be the canonical one, naming them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'churn-headers-'));
    await writeFile(
      join(dir, 'orders.csv'),
      'OrderID,order id,customer_id,ordered_at,amount\nO1,O1,C1,2024-01-01,1\n',
    );
    const config = fixtureConfig({ sources: { orders: { type: 'local', path: 'orders.csv' } } });
    await expect(buildModels(config, dir, '2024-12-31', { only: ['stg_orders'] })).rejects.toThrow(
      'orders: orders.csv has 2 columns that could be order_id ("OrderID", "order id"); say which with sources.orders.columns.order_id',
    );
  });
});
