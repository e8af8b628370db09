// The import files (exports/): the reactivation audience for each tool and the CRM flags, written by the real models
// (sql/audiences/) and the real exporter, checked against what each tool documents for its import:
//   Mailchimp  "Format guidelines for your import file": `Email Address` required, FNAME/LNAME as `First Name` and
//              `Last Name`, `Tags` comma-separated, text fields, dates YYYY-MM-DD.
//   Klaviyo    "Create and add contacts to a new list": the first column `Email`, Klaviyo's property names as headers.
//   HubSpot    "Set up import files": headers name properties, `Email` identifies the contact, multiple checkboxes
//              values separated by semicolons.
//   Braze      "CSV import", "Standard attributes": `external_id`, lower-case standard attribute names (exact),
//              `country` an ISO 3166-1 alpha-2 code, blank cells leave the profile alone.
//   Google Ads "Formatting guidelines for uploading hashed data": the English header `Email`, SHA-256 of the
//              lower-cased e-mail without spaces; UTF-8 or ASCII.
//   Meta       "How to format a customer list" / the Marketing API's EMAIL key: header `email`, SHA-256 of the trimmed,
//              lower-cased e-mail, lower-case hex.
// And for every file: RFC 4180 (CRLF, quotes doubled), UTF-8 without a byte order mark unless `excel`, no live
// formula in any cell, the target group only.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE_EXPORT_PROFILES, configSchema, ENTITIES } from '../config/schema.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { AUDIENCE_EXPORTS, UTF8_BOM, writeExports } from '../pipelines/stages/exports.js';
import { createRunParams } from '../transforms/params.js';
import { loadModels, runMacros, runModels } from '../transforms/runner.js';
import { HEADERS } from './support/exports.js';

const AS_OF = '2024-06-30';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * A strict RFC 4180 reader: every record ends with CRLF, a quoted field doubles its quotes, an unquoted field holds
 * no quote, comma, CR or LF. Throws on anything else; returns the records and whether each field was quoted.
 */
function parseCsv(text: string): { rows: string[][]; quoted: boolean[][] } {
  const rows: string[][] = [];
  const quoted: boolean[][] = [];
  let i = 0;
  while (i < text.length) {
    const row: string[] = [];
    const rowQuoted: boolean[] = [];
    for (;;) {
      let value = '';
      const isQuoted = text[i] === '"';
      if (isQuoted) {
        i += 1;
        for (;;) {
          if (i >= text.length) throw new Error('unterminated quoted field');
          if (text[i] === '"' && text[i + 1] === '"') {
            value += '"';
            i += 2;
          } else if (text[i] === '"') {
            i += 1;
            break;
          } else {
            value += text[i];
            i += 1;
          }
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\r') {
          if (text[i] === '"' || text[i] === '\n') throw new Error(`bare quote or LF at ${i}`);
          value += text[i];
          i += 1;
        }
      }
      row.push(value);
      rowQuoted.push(isQuoted);
      if (text[i] === ',') {
        i += 1;
        continue;
      }
      if (text.slice(i, i + 2) !== '\r\n')
        throw new Error(`record ${rows.length + 1} does not end with CRLF`);
      i += 2;
      break;
    }
    rows.push(row);
    quoted.push(rowQuoted);
  }
  return { rows, quoted };
}

/** The file as records of header -> value. */
function records(text: string): Record<string, string>[] {
  const { rows } = parseCsv(text);
  const [header, ...data] = rows;
  return data.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

/** Raw e-mails as a customers export has them (spaces, capitals), with the audience row each one makes. */
const PEOPLE = [
  // email, customer_id, first, last, country, segment, status, risk, reasons, tier, rank, group
  [
    ' Anna.Berg@Example.COM ',
    'C1',
    'Anna',
    'Berg',
    'de',
    'consumer',
    'silent_churn',
    81.5,
    ['INACTIVE', 'SPEND_DROP'],
    'premium',
    1,
    'target',
  ],
  [
    'chloe@example.fr',
    'C2',
    'Chloé',
    'Müller "Mimi"',
    'France',
    'b2b',
    'at_risk',
    62.0,
    ['ACTIVITY_DROP'],
    'gold, plus',
    2,
    'target',
  ],
  [
    'x@example.org',
    '-C3',
    '=HYPERLINK("x")',
    '+1',
    '@SUM(A1)',
    '-2',
    'at_risk',
    55.25,
    [],
    'basic',
    3,
    'target',
  ],
  [
    'held.out@example.org',
    'C4',
    'Held',
    'Out',
    'AT',
    'consumer',
    'at_risk',
    70.0,
    ['INACTIVE'],
    'premium',
    4,
    'control',
  ],
] as const;

/** A typed row of nulls, for an audience of nobody (the `where` drops it). */
const EMPTY_ROW = `(${Array(7).fill('null::varchar').join(', ')}, null::double, null::varchar[], null::timestamptz,
  null::decimal(18,2), null::double, null::decimal(18,2), null::integer, null::varchar, null::varchar)`;

async function fixture(db: Db, withAudience = true): Promise<void> {
  const rows = PEOPLE.filter(() => withAudience).map(
    ([email, id, first, last, country, segment, status, risk, reasons, tier, rank, group]) =>
      `(${[email.trim().toLowerCase(), id, first, last, country, segment, status].map(sqlString).join(', ')},
        ${risk}::double, [${reasons.map(sqlString).join(', ')}]::varchar[], timestamptz '2024-05-0${rank} 10:00:00+00',
        100.00::decimal(18,2), 0.4::double, 50.00::decimal(18,2), ${rank}::integer, ${sqlString(tier)}, ${sqlString(group)})`,
  );
  await db.run(`
    create or replace table reactivation_audience as
    select *, sha256(email) as email_sha256
    from (values ${rows.length ? rows.join(', ') : EMPTY_ROW})
        as t(email, customer_id, first_name, last_name, country, segment, status, risk_score, reasons, last_active_at,
             lifetime_revenue, p_alive, value_at_risk, priority_rank, offer_tier, audience_group)
    where email is not null`);
  // customer_health and stg_customers for the CRM flags: every known customer, flagged or not.
  await db.run(`
    create or replace table customer_health as
    select * from (values
        ('C1', 'silent_churn', 81.5::double, ['INACTIVE', 'SPEND_DROP']::varchar[]),
        ('C2', 'at_risk', 62.0::double, ['ACTIVITY_DROP']::varchar[]),
        ('C5', 'active', 3.0::double, []::varchar[]),
        ('C6', 'churned', 90.0::double, ['INACTIVE']::varchar[]),
        ('=C7', 'dormant', 40.0::double, ['INACTIVE']::varchar[])
    ) as t(customer_id, status, risk_score, reasons)`);
  await db.run(`
    create or replace table stg_customers as
    select * from (values ('C1', ' Anna.Berg@Example.COM '), ('C2', 'chloe@example.fr'), ('C5', null), ('C6', 'c6@example.org'),
                          ('=C7', '+c7@example.org'))
        as t(customer_id, email)`);
}

const EXPORT_MODELS = new Set([
  'int_audience_targets',
  ...Object.values(AUDIENCE_EXPORTS).map((p) => p.model),
  'crm_flags',
]);

async function build(withAudience = true): Promise<Db> {
  const db = await Db.open({ timeZone: 'UTC' });
  await createRunParams(db, configSchema.parse({}), {
    asOf: AS_OF,
    runStartedAt: new Date('2024-07-01T03:00:00Z'),
    configuredEntities: [...ENTITIES],
  });
  await runMacros(db);
  await fixture(db, withAudience);
  const models = (await loadModels()).filter((m) => EXPORT_MODELS.has(m.name));
  expect(models.map((m) => m.name).sort()).toEqual([...EXPORT_MODELS].sort());
  await runModels(
    { db, config: configSchema.parse({}), log: silentLogger(), asOf: AS_OF, notes: [] },
    models,
  );
  return db;
}

const file = (dir: string, tool: string) =>
  readFileSync(join(dir, 'exports', 'reactivation_audience', `reactivation_audience_${tool}.csv`));

describe('audience import files, one per tool', () => {
  let db: Db;
  const dir = mkdtempSync(join(tmpdir(), 'churn-exports-'));
  let manifest: Awaited<ReturnType<typeof writeExports>>;

  beforeAll(async () => {
    db = await build();
    manifest = await writeExports(db, dir, configSchema.parse({}));
  });
  afterAll(() => db?.close());

  it('writes every tool by default, and the CRM flags, with their manifest entries', () => {
    expect(Object.keys(manifest.exports).sort()).toEqual(
      [...AUDIENCE_EXPORT_PROFILES.map((t) => `reactivation_audience_${t}`), 'crm_flags'].sort(),
    );
    for (const tool of AUDIENCE_EXPORT_PROFILES) {
      const entry = manifest.exports[`reactivation_audience_${tool}`]!;
      expect(entry).toMatchObject({
        kind: 'audience',
        profile: tool,
        rows: 3,
        excel_bom: false,
        columns: HEADERS[tool],
      });
      const bytes = file(dir, tool);
      expect(entry.files).toEqual([
        {
          path: `exports/reactivation_audience/reactivation_audience_${tool}.csv`,
          bytes: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
        },
      ]);
    }
    expect(manifest.notes).toEqual([]);
  });

  for (const tool of AUDIENCE_EXPORT_PROFILES) {
    it(`${tool}: the documented header, RFC 4180 with CRLF, UTF-8 without BOM, the target group only`, () => {
      const bytes = file(dir, tool);
      expect(bytes.subarray(0, 3).equals(UTF8_BOM)).toBe(false);
      const text = bytes.toString('utf8');
      expect(Buffer.from(text, 'utf8').equals(bytes)).toBe(true);
      const { rows, quoted } = parseCsv(text);
      expect(rows[0]).toEqual(HEADERS[tool]);
      expect(rows.length).toBe(1 + 3);
      for (const row of rows) expect(row.length).toBe(HEADERS[tool].length);
      // Names and free text are quoted everywhere (an empty cell is a missing value); the hashed files need no
      // quotes (hex and one plain header).
      const hashed = tool === 'google_ads' || tool === 'meta';
      rows.forEach((row, r) => {
        row.forEach((cell, c) => {
          if (cell !== '') expect(quoted[r]?.[c], `${tool} ${r}:${c}`).toBe(!hashed);
        });
      });
      expect(text).not.toContain('held.out');
      expect(text).not.toContain(sha256('held.out@example.org'));
    });
  }

  it('leaves no live formula in any cell and keeps accents and quotes as UTF-8 text', () => {
    for (const tool of ['mailchimp', 'klaviyo', 'hubspot', 'braze'] as const) {
      const text = file(dir, tool).toString('utf8');
      for (const row of parseCsv(text).rows) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      expect(text).toContain('"Chloé","Müller ""Mimi"""');
      expect(text).toContain(`"'=HYPERLINK(""x"")","'+1",${tool === 'braze' ? '' : `"'@SUM(A1)"`}`);
    }
  });

  it('mailchimp: Email Address first, FNAME/LNAME labels, comma-separated Tags, YYYY-MM-DD dates, priority order', () => {
    const rows = records(file(dir, 'mailchimp').toString('utf8'));
    expect(rows.map((r) => r['Email Address'])).toEqual([
      'anna.berg@example.com',
      'chloe@example.fr',
      'x@example.org',
    ]);
    expect(rows[0]).toMatchObject({
      'First Name': 'Anna',
      'Last Name': 'Berg',
      Reasons: 'INACTIVE|SPEND_DROP',
      'Last Active': '2024-05-01',
      Priority: '1',
      Tags: 'reactivation,silent_churn,premium',
    });
    // A comma inside a tier's name would split the tag.
    expect(rows[1]?.Tags).toBe('reactivation,at_risk,gold  plus');
    for (const row of rows) expect(row['Email Address']).toMatch(/^[^\s@]+@[^\s@]+$/);
  });

  it('klaviyo: Email in the first column, Klaviyo property names, custom properties for the rest', () => {
    const rows = records(file(dir, 'klaviyo').toString('utf8'));
    expect(Object.keys(rows[0]!)[0]).toBe('Email');
    expect(rows[0]).toMatchObject({ Email: 'anna.berg@example.com', 'Churn Reasons': 'INACTIVE|SPEND_DROP' });
  });

  it('hubspot: Email identifies the contact, reasons as a multiple checkboxes value (semicolons)', () => {
    const rows = records(file(dir, 'hubspot').toString('utf8'));
    expect(rows[0]).toMatchObject({
      Email: 'anna.berg@example.com',
      'Country/Region': 'de',
      'Churn Reasons': 'INACTIVE;SPEND_DROP',
      'Last Active Date': '2024-05-01',
    });
    expect(rows[2]?.['Churn Reasons']).toBe('');
  });

  it('braze: external_id first, exact lower-case standard attributes, ISO 3166-1 alpha-2 country or blank', () => {
    const rows = records(file(dir, 'braze').toString('utf8'));
    expect(Object.keys(rows[0]!)[0]).toBe('external_id');
    expect(rows.map((r) => r.external_id)).toEqual(['C1', 'C2', "'-C3"]);
    // `de` is a code (upper-cased); `France` and a formula are not: blank, which leaves Braze's value alone.
    expect(rows.map((r) => r.country)).toEqual(['DE', '', '']);
    for (const row of rows) expect(row.churn_last_active_at).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const row of rows) expect(row.churn_reasons?.length).toBeLessThanOrEqual(255);
    for (const header of HEADERS.braze) expect(header).toBe(header.toLowerCase());
  });

  it('google_ads and meta: SHA-256 of the trimmed, lower-cased e-mail as lower-case hex, nothing else', () => {
    const expected = PEOPLE.filter((p) => p[11] === 'target')
      .map((p) => sha256(p[0].trim().toLowerCase()))
      .sort();
    for (const [tool, header] of [
      ['google_ads', 'Email'],
      ['meta', 'email'],
    ] as const) {
      const text = file(dir, tool).toString('utf8');
      expect(/^[\x20-\x7e\r\n]*$/.test(text), `${tool} is ASCII`).toBe(true);
      const rows = records(text);
      expect(rows.map((r) => r[header])).toEqual(expected);
      for (const row of rows) expect(row[header]).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('excel: the same bytes after a UTF-8 byte order mark', async () => {
    const excelDir = mkdtempSync(join(tmpdir(), 'churn-exports-excel-'));
    const result = await writeExports(
      db,
      excelDir,
      configSchema.parse({
        audience: { exports: [{ profile: 'mailchimp', excel: true }, 'meta'] },
        crm_flags: { excel: true },
      }),
    );
    expect(Object.keys(result.exports).sort()).toEqual([
      'crm_flags',
      'reactivation_audience_mailchimp',
      'reactivation_audience_meta',
    ]);
    expect(result.exports.reactivation_audience_mailchimp?.excel_bom).toBe(true);
    const withBom = file(excelDir, 'mailchimp');
    expect(withBom.subarray(0, 3).equals(UTF8_BOM)).toBe(true);
    expect(withBom.subarray(3).equals(file(dir, 'mailchimp'))).toBe(true);
    expect(file(excelDir, 'meta').equals(file(dir, 'meta'))).toBe(true);
    const crm = readFileSync(join(excelDir, 'exports', 'crm_flags', 'crm_flags.csv'));
    expect(crm.subarray(0, 3).equals(UTF8_BOM)).toBe(true);
  });

  it('writes header-only files for an empty audience', async () => {
    const empty = await build(false);
    try {
      const emptyDir = mkdtempSync(join(tmpdir(), 'churn-exports-empty-'));
      const result = await writeExports(empty, emptyDir, configSchema.parse({}));
      for (const tool of AUDIENCE_EXPORT_PROFILES) {
        expect(result.exports[`reactivation_audience_${tool}`]?.rows).toBe(0);
        expect(parseCsv(file(emptyDir, tool).toString('utf8')).rows).toEqual([HEADERS[tool]]);
      }
    } finally {
      empty.close();
    }
  });
});

describe('CRM flags', () => {
  let db: Db;
  const dir = mkdtempSync(join(tmpdir(), 'churn-crm-'));

  beforeAll(async () => {
    db = await build();
    await writeExports(db, dir, configSchema.parse({ audience: { exports: [] } }));
  });
  afterAll(() => db?.close());

  it('lists every known customer with flagged for at_risk and silent_churn, reasons by semicolons, the as-of date', () => {
    const text = readFileSync(join(dir, 'exports', 'crm_flags', 'crm_flags.csv'), 'utf8');
    const { rows, quoted } = parseCsv(text);
    expect(rows[0]).toEqual(['customer_id', 'email', 'status', 'flagged', 'risk_score', 'reasons', 'as_of']);
    expect(quoted[0]?.every(Boolean)).toBe(true);
    expect(records(text)).toEqual([
      {
        customer_id: "'=C7",
        email: "'+c7@example.org",
        status: 'dormant',
        flagged: 'false',
        risk_score: '40.0',
        reasons: 'INACTIVE',
        as_of: AS_OF,
      },
      {
        customer_id: 'C1',
        email: 'anna.berg@example.com',
        status: 'silent_churn',
        flagged: 'true',
        risk_score: '81.5',
        reasons: 'INACTIVE;SPEND_DROP',
        as_of: AS_OF,
      },
      {
        customer_id: 'C2',
        email: 'chloe@example.fr',
        status: 'at_risk',
        flagged: 'true',
        risk_score: '62.0',
        reasons: 'ACTIVITY_DROP',
        as_of: AS_OF,
      },
      {
        customer_id: 'C5',
        email: '',
        status: 'active',
        flagged: 'false',
        risk_score: '3.0',
        reasons: '',
        as_of: AS_OF,
      },
      {
        customer_id: 'C6',
        email: 'c6@example.org',
        status: 'churned',
        flagged: 'false',
        risk_score: '90.0',
        reasons: 'INACTIVE',
        as_of: AS_OF,
      },
    ]);
  });

  it('is left out with crm_flags.enabled: false', async () => {
    const off = await writeExports(
      db,
      mkdtempSync(join(tmpdir(), 'churn-crm-off-')),
      configSchema.parse({ crm_flags: { enabled: false } }),
    );
    expect(Object.keys(off.exports)).not.toContain('crm_flags');
  });
});

describe('audience.exports in the config', () => {
  it('takes tool names or { profile, excel }, and refuses a tool listed twice or unknown, naming the key', () => {
    expect(configSchema.parse({}).audience.exports).toEqual([...AUDIENCE_EXPORT_PROFILES]);
    expect(configSchema.parse({ audience: { exports: [{ profile: 'braze' }] } }).audience.exports).toEqual([
      { profile: 'braze', excel: false },
    ]);
    const twice = configSchema.safeParse({
      audience: { exports: ['braze', { profile: 'braze', excel: true }] },
    });
    expect(twice.success).toBe(false);
    expect(twice.error?.issues[0]).toMatchObject({
      path: ['audience', 'exports', 1],
      message: '"braze" is listed twice: list each tool once',
    });
    const unknown = configSchema.safeParse({ audience: { exports: ['salesforce'] } });
    expect(unknown.success).toBe(false);
    expect(unknown.error?.issues[0]?.path).toEqual(['audience', 'exports', 0]);
  });
});
