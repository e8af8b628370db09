// Staging: typing, time zones, and the quarantine of every kind of bad row.
import { describe, expect, it } from 'vitest';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { quarantineHint } from '../transforms/checks.js';
import { runMacros } from '../transforms/runner.js';
import { buildFixture } from './support/models.js';

describe('quarantine', () => {
  const customers = `customer_id,email,marketing_consent,signup_at
C1,a@x.com,true,2024-01-01
C2,b@x.com,maybe,2024-01-01
C1,dup@x.com,true,2024-01-01
C3,c@x.com,no,2024-01-01
C4,d@x.com,Opt-In,2024-01-01
C5,e@x.com,unsubscribed,2024-01-01
`;
  const orders = `order_id,customer_id,ordered_at,amount,status
O1,C1,2024-01-05 10:00:00,10.50,completed
O2,C1,yesterday,10,completed
O3,C1,1969-12-31 23:00:00,10,completed
O4,C1,2031-01-01 00:00:00,10,completed
O5,C9,2024-01-05 10:00:00,10,completed
O1,C1,2024-01-06 10:00:00,10,completed
O6,C1,2024-01-06 10:00:00,ten,completed
O7,C1,2024-01-06 10:00:00,10,shipped
O8,,2024-01-06 10:00:00,10,completed
`;
  const surveys = `response_id,customer_id,responded_at,survey_type,score
R1,C1,2024-01-05,nps,-1
R2,C1,2024-01-05,ces,5
R3,C1,2024-01-05,csat,6
R4,C1,2024-01-05,nps,9
`;
  it('sends each bad row to quarantine with file, row, column and reason, and keeps the good ones', async () => {
    const db = await buildFixture({
      asOf: '2024-01-31',
      csv: { customers, orders, surveys },
      now: new Date('2030-06-01T00:00:00Z'),
    });
    try {
      const rows = await db.all(
        `select entity, source_file, source_row, column_name, reason, value from quarantine order by entity, source_row`,
      );
      expect(rows).toEqual([
        {
          entity: 'customers',
          source_file: 'customers.csv',
          source_row: '2',
          column_name: 'marketing_consent',
          reason: 'not a boolean (true/false, yes/no, 1/0, on/off, opt-in/opt-out)',
          value: 'maybe',
        },
        {
          entity: 'customers',
          source_file: 'customers.csv',
          source_row: '3',
          column_name: 'customer_id',
          reason: 'duplicate key',
          value: 'C1',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '2',
          column_name: 'ordered_at',
          reason: 'unparseable timestamp',
          value: 'yesterday',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '3',
          column_name: 'ordered_at',
          reason: 'timestamp before 1970',
          value: '1969-12-31 23:00:00',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '4',
          column_name: 'ordered_at',
          reason: 'timestamp after the run started',
          value: '2031-01-01 00:00:00',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '5',
          column_name: 'customer_id',
          reason: 'unknown customer_id (not in the customers export)',
          value: 'C9',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '6',
          column_name: 'order_id',
          reason: 'duplicate key',
          value: 'O1',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '7',
          column_name: 'amount',
          reason: 'not a number',
          value: 'ten',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '8',
          column_name: 'status',
          reason: 'not one of completed, cancelled, refunded',
          value: 'shipped',
        },
        {
          entity: 'orders',
          source_file: 'orders.csv',
          source_row: '9',
          column_name: 'customer_id',
          reason: 'missing required value',
          value: null,
        },
        {
          entity: 'surveys',
          source_file: 'surveys.csv',
          source_row: '1',
          column_name: 'score',
          reason: 'NPS score outside 0-10',
          value: '-1',
        },
        {
          entity: 'surveys',
          source_file: 'surveys.csv',
          source_row: '2',
          column_name: 'survey_type',
          reason: 'not one of nps, csat',
          value: 'ces',
        },
        {
          entity: 'surveys',
          source_file: 'surveys.csv',
          source_row: '3',
          column_name: 'score',
          reason: 'CSAT score outside 1-5',
          value: '6',
        },
      ]);
      expect(await db.all(`select order_id, amount::varchar as amount from stg_orders`)).toEqual([
        { order_id: 'O1', amount: '10.50' },
      ]);
      // Consent as e-mail tools export it is a boolean too.
      expect(
        await db.all(`select customer_id, marketing_consent from stg_customers order by customer_id`),
      ).toEqual([
        { customer_id: 'C1', marketing_consent: true },
        { customer_id: 'C3', marketing_consent: false },
        { customer_id: 'C4', marketing_consent: true },
        { customer_id: 'C5', marketing_consent: false },
      ]);
    } finally {
      db.close();
    }
  });

  it('derives the customer list from the data when there is no customers export (no orphan check)', async () => {
    const db = await buildFixture({
      asOf: '2024-01-31',
      csv: { orders: 'order_id,customer_id,ordered_at,amount\nO1,X,2024-01-02,5\nO2,Y,2024-01-03,6\n' },
    });
    try {
      expect(await db.all(`select customer_id, segment from stg_customers order by 1`)).toEqual([
        { customer_id: 'X', segment: 'unknown' },
        { customer_id: 'Y', segment: 'unknown' },
      ]);
      expect(await db.number('select count(*) from quarantine')).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('business time zone', () => {
  it('buckets local wall-clock times in the business zone and keeps explicit offsets', async () => {
    const orders = `order_id,customer_id,ordered_at,amount
late_local,A,2024-01-31 23:30:00,1
utc_offset,B,2024-01-31T23:30:00Z,1
dst_spring,C,2024-03-31 02:30:00,1
`;
    const db = await buildFixture({
      asOf: '2024-04-30',
      csv: { orders },
      config: { business_time_zone: 'Europe/Berlin' },
    });
    try {
      const rows = await db.all(
        `select order_id, strftime(ordered_date, '%Y-%m-%d') as d, strftime(period_start(ordered_date, 'month'), '%Y-%m') as m
         from stg_orders order by order_id`,
      );
      expect(rows).toEqual([
        // 02:30 does not exist on 31 March in Berlin (clocks jump 02:00 -> 03:00); it still lands on that day.
        { order_id: 'dst_spring', d: '2024-03-31', m: '2024-03' },
        // 23:30 local on 31 January belongs to January...
        { order_id: 'late_local', d: '2024-01-31', m: '2024-01' },
        // ...while 23:30 UTC is 00:30 on 1 February in Berlin.
        { order_id: 'utc_offset', d: '2024-02-01', m: '2024-02' },
      ]);
    } finally {
      db.close();
    }
  });

  it('supports day, ISO week and quarter grains', async () => {
    const orders = `order_id,customer_id,ordered_at,amount
o1,A,2024-01-07,1
o2,A,2024-01-08,1
o3,A,2024-04-01,1
`;
    for (const [grain, expected] of [
      ['week', ['2024-01-01', '2024-01-08', '2024-04-01']],
      ['quarter', ['2024-01-01', '2024-04-01']],
      ['day', ['2024-01-07', '2024-01-08', '2024-04-01']],
    ] as const) {
      const db = await buildFixture({ asOf: '2024-04-07', csv: { orders }, config: { period_grain: grain } });
      try {
        const active = await db.all<{ p: string }>(
          `select strftime(period_start, '%Y-%m-%d') as p from fct_customer_period where is_active order by 1`,
        );
        expect(active.map((r) => r.p)).toEqual(expected);
      } finally {
        db.close();
      }
    }
  });
});

describe("the quarantine gate's hint for numbers", () => {
  it.each([
    ['1.020,50', 1020.5],
    ['$1,020.50', 1020.5],
    ['-12 EUR', -12],
  ])('maps %s, which staging cannot read, to a number it reads', async (value, expected) => {
    const hint = quarantineHint('orders', 'amount', 'not a number', value);
    const expr = /sources\.orders\.columns\.amount: \{ expr: "(.*)" \}$/.exec(hint ?? '')?.[1];
    expect(expr, hint ?? '').toBeDefined();
    const db = await Db.open();
    try {
      await runMacros(db);
      expect(await db.one(`select parse_decimal(${sqlString(value)}) as n`)).toEqual({ n: null });
      const mapped = (expr ?? '').replaceAll("<the export's column>", sqlString(value));
      expect(await db.number(`select parse_decimal(${mapped})::double`)).toBe(expected);
    } finally {
      db.close();
    }
  });
});

describe("the quarantine gate's hint for timestamps", () => {
  it.each([
    ['1707123600', '2024-02-05 09:00:00'],
    ['1707123600000', '2024-02-05 09:00:00'],
  ])('maps Unix time %s to the instant it names', async (value, utc) => {
    const hint = quarantineHint('orders', 'ordered_at', 'unparseable timestamp', value) ?? '';
    const expr = /\{ expr: "(.*)" \}$/.exec(hint)?.[1];
    expect(expr, hint).toBeDefined();
    const db = await Db.open({ timeZone: 'Europe/Berlin' });
    try {
      await runMacros(db);
      expect(await db.one(`select parse_business_ts(${sqlString(value)}, 'Europe/Berlin') as t`)).toEqual({
        t: null,
      });
      const mapped = (expr ?? '').replaceAll("<the export's column>", sqlString(value));
      const parsed = await db.one<{ t: string }>(
        `select strftime(parse_business_ts((${mapped})::varchar, 'Europe/Berlin') at time zone 'UTC', '%Y-%m-%d %H:%M:%S') as t`,
      );
      expect(parsed?.t).toBe(utc);
    } finally {
      db.close();
    }
  });

  it.each([
    ['05/01/2024 08:15', '%d/%m/%Y %H:%M', '%m/%d/%Y %H:%M if the month comes first'],
    ['13.01.2024', '%d.%m.%Y', null],
    ['01-13-2024 08:15:00', '%m-%d-%Y %H:%M:%S', null],
  ])('gives a format that reads %s', async (value, format, note) => {
    const hint = quarantineHint('orders', 'ordered_at', 'unparseable timestamp', value) ?? '';
    expect(hint).toContain(`format: "${format}" }`);
    if (note) expect(hint).toContain(note);
    else expect(hint).not.toContain('if the month comes first');
    const db = await Db.open();
    try {
      expect(
        await db.one(`select strptime(${sqlString(value)}, ${sqlString(format)}) is not null as ok`),
      ).toEqual({
        ok: true,
      });
    } finally {
      db.close();
    }
  });
});

describe("the quarantine gate's hint for accepted values", () => {
  it('maps a value the export uses to the first accepted one, with the expression staging then accepts', async () => {
    const hint =
      quarantineHint('orders', 'status', 'not one of completed, cancelled, refunded', "paid'") ?? '';
    const expr = /\{ expr: "(.*)" \}$/.exec(hint)?.[1] ?? '';
    expect(hint).toContain(`If "paid'" means one of them, map it: sources.orders.columns.status:`);
    const db = await Db.open();
    try {
      const mapped = expr.replaceAll("<the export's column>", sqlString("PAID'"));
      expect(await db.one(`select ${mapped} as status`)).toEqual({ status: 'completed' });
    } finally {
      db.close();
    }
  });
});
