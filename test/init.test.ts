// `churn init [folder]`: the config it writes for a folder of exports maps what it recognises and loads, and
// `churn validate` passes on it: for the sample (canonical names) and for a shop's own exports (other names,
// a semicolon-separated Latin-1 CSV, US dates, invoice lines, a folder of Parquet parts, NDJSON answers).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../config/load.js';
import { ENTITIES } from '../config/schema.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { buildProgram } from '../pipelines/cli.js';
import { InitError, initConfig, normalise } from '../pipelines/init.js';
import { validate } from '../pipelines/ops/validate.js';
import { generateSample } from '../pipelines/sample/generate.js';

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

async function expectValid(configFile: string, asOf: string): Promise<void> {
  const report = await validate(loadConfig(configFile), asOf, silentLogger());
  expect(report.checked.filter((c) => !c.ok)).toEqual([]);
}

describe('churn init on the sample', () => {
  let dir: string;
  let asOf: string;
  beforeAll(async () => {
    dir = tempDir('churn-init-sample-');
    asOf = (await generateSample({ dir: join(dir, 'exports'), customers: 120, seed: 3 })).asOf;
  });

  it('maps every entity by its canonical names, leaves ground_truth.csv out, and validates', async () => {
    const configFile = join(dir, 'churn.yaml');
    const result = await initConfig({ folder: join(dir, 'exports'), configFile });
    expect(result.matches.map((m) => m.entity)).toEqual([...ENTITIES]);
    for (const m of result.matches) {
      expect(m.missing, m.entity).toEqual([]);
      for (const [canonical, source] of Object.entries(m.columns)) expect(source, m.entity).toBe(canonical);
    }
    expect(result.unused.map((d) => d.name)).toEqual(['ground_truth.csv']);
    const raw = parse(result.text) as { sources: Record<string, { path: string; format?: string }> };
    expect(raw.sources.activity).toEqual({
      type: 'local',
      path: 'exports/activity.parquet',
      format: 'parquet',
    });
    expect(raw.sources.email_events?.format).toBe('ndjson');
    expect(raw.sources.orders?.path).toBe('exports/orders.csv.gz');
    expect(result.text).not.toContain('TODO');
    writeFileSync(configFile, result.text);
    await expectValid(configFile, asOf);
  });
});

describe("churn init on a shop's own exports", () => {
  const asOf = '2026-03-28';
  let dir: string;
  let exportsDir: string;
  let linesWithCustomer = 0;

  beforeAll(async () => {
    dir = tempDir('churn-init-shop-');
    exportsDir = join(dir, 'exports');
    mkdirSync(join(exportsDir, 'events', '2025'), { recursive: true });
    mkdirSync(join(exportsDir, 'events', '2026'), { recursive: true });
    const ids = Array.from({ length: 40 }, (_, i) => `C${1000 + i}`);
    const names = ['José', 'Zoë', 'Ånne', 'Jürgen', 'Chloé'];
    // Semicolon-separated, Latin-1 (Windows) text, dates as dd/mm/yyyy.
    const customers = [
      'Customer ID;E-Mail;First Name;Country;Created At',
      ...ids.map(
        (id, i) =>
          `${id};${id.toLowerCase()}@example.com;${names[i % names.length]};${i % 3 ? 'Österreich' : 'France'};${String((i % 28) + 1).padStart(2, '0')}/${String((i % 12) + 1).padStart(2, '0')}/2024`,
      ),
    ];
    writeFileSync(
      join(exportsDir, 'Customers Export.csv'),
      Buffer.from(`${customers.join('\r\n')}\r\n`, 'latin1'),
    );
    // Invoice lines (an invoice number repeats per line), US dates without leading zeros, a quarter of the
    // lines without a customer (guest checkouts).
    const lines = ['InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice'];
    let invoice = 5000;
    for (let month = 0; month < 15; month++) {
      for (const [i, id] of ids.entries()) {
        if ((i + month) % 3 === 0) continue;
        invoice += 1;
        const day = (i % 27) + 1;
        const year = 2025 + Math.floor(month / 12);
        const m = (month % 12) + 1;
        for (let line = 0; line < 2; line++) {
          lines.push(
            `${invoice},${id},${m}/${day}/${year} ${8 + line}:0${line},${line + 1},${(4.5 + i).toFixed(2)}`,
          );
          linesWithCustomer += 1;
        }
        if (i % 4 === 0) lines.push(`${invoice + 100000},,${m}/${day}/${year} 12:00,1,3.00`);
      }
    }
    writeFileSync(join(exportsDir, 'transactions.csv.gz'), gzipSync(`${lines.join('\n')}\n`));
    // Product events, one Parquet file per year.
    const db = await Db.open();
    try {
      for (const year of [2025, 2026]) {
        const file = join(exportsDir, 'events', String(year), 'part-0.parquet');
        await db.run(`copy (
            select 'C' || (1000 + (i % 40))::varchar as user_id,
                   timestamp '${year}-01-01 10:00:00' + to_days((i * 7) % ${year === 2025 ? 360 : 85}) as timestamp,
                   case when i % 2 = 0 then 'login' else 'view' end as event
            from range(400) as t(i)
          ) to ${sqlString(file)} (format parquet)`);
      }
    } finally {
      db.close();
    }
    // NPS answers as NDJSON.
    const answers = ids.slice(0, 30).map((id, i) =>
      JSON.stringify({
        user_id: id,
        submitted_at: `2025-${String((i % 12) + 1).padStart(2, '0')}-15T09:30:00Z`,
        rating: i % 11,
        comment: i % 5 ? null : 'ok',
      }),
    );
    writeFileSync(join(exportsDir, 'nps_responses.jsonl'), `${answers.join('\n')}\n`);
    writeFileSync(join(exportsDir, 'products.csv'), 'sku,title,list_price\nA1,Mug,9.90\nB2,Tee,19.00\n');
    writeFileSync(join(exportsDir, 'notes.txt'), 'not an export');
  });

  it('recognises each export and maps its columns, formats, filters and expressions', async () => {
    const configFile = join(dir, 'churn.yaml');
    const result = await initConfig({ folder: exportsDir, configFile });
    const byEntity = Object.fromEntries(result.matches.map((m) => [m.entity, m]));
    expect(Object.keys(byEntity).sort()).toEqual(['activity', 'customers', 'orders', 'surveys']);
    expect(result.unused.map((d) => d.name)).toEqual(['products.csv']);

    const raw = parse(result.text) as {
      sources: Record<string, Record<string, unknown>>;
      segment_by: string[];
    };
    expect(raw.sources.customers).toEqual({
      type: 'local',
      path: 'exports/Customers Export.csv',
      csv: { delimiter: ';', encoding: 'latin-1' },
      columns: {
        customer_id: 'Customer ID',
        email: 'E-Mail',
        first_name: 'First Name',
        country: 'Country',
        signup_at: { column: 'Created At', format: '%d/%m/%Y' },
      },
    });
    expect(raw.segment_by).toEqual(['country']);

    expect(raw.sources.orders).toEqual({
      type: 'local',
      path: 'exports/transactions.csv.gz',
      where: `"CustomerID" is not null and trim("CustomerID") <> ''`,
      columns: {
        order_id: { expr: `"InvoiceNo" || '-' || _source_row` },
        customer_id: 'CustomerID',
        ordered_at: { column: 'InvoiceDate', format: '%m/%d/%Y %H:%M' },
        amount: { expr: 'round(try_cast("Quantity" as double) * try_cast("UnitPrice" as double), 2)' },
      },
    });
    expect(raw.sources.activity).toEqual({
      type: 'local',
      path: 'exports/events/**/*.parquet',
      format: 'parquet',
      columns: { customer_id: 'user_id', occurred_at: 'timestamp', event_type: 'event' },
    });
    expect(raw.sources.surveys).toEqual({
      type: 'local',
      path: 'exports/nps_responses.jsonl',
      format: 'ndjson',
      columns: {
        customer_id: 'user_id',
        responded_at: 'submitted_at',
        survey_type: { expr: "'nps'" },
        score: 'rating',
      },
    });
    // Entities without an export are there, commented out, with their columns.
    expect(result.text).toContain(
      '  # tickets: no export recognised. Columns: ticket_id, customer_id, opened_at (required)',
    );
    expect(result.text).toContain('#   products.csv: sku, title, list_price');

    writeFileSync(configFile, result.text);
    const report = await validate(loadConfig(configFile), asOf, silentLogger());
    expect(report.checked.filter((c) => !c.ok)).toEqual([]);
    // Every row with a customer lands; none is quarantined (the guest lines are left out by `where`).
    expect(report.quarantine?.orders).toMatchObject({ rows: linesWithCustomer, quarantined: 0 });
    expect(report.quarantine?.customers).toMatchObject({ rows: 40, quarantined: 0 });
    expect(report.quarantine?.activity?.quarantined).toBe(0);
    expect(report.quarantine?.surveys).toMatchObject({ rows: 30, quarantined: 0 });
  });

  it('comments out an entity whose required columns it cannot find, with a TODO per column', async () => {
    const folder = tempDir('churn-init-partial-');
    writeFileSync(join(folder, 'orders.csv'), 'order_ref,buyer,placed\nA,c1,2025-01-02\n');
    const result = await initConfig({ folder, configFile: join(folder, 'churn.yaml') });
    expect(result.matches.map((m) => [m.entity, m.missing])).toEqual([
      ['orders', ['order_id', 'customer_id', 'ordered_at', 'amount']],
    ]);
    expect(result.text).toContain('sources: {} # TODO');
    expect(result.text).toContain('  # orders:\n  #   type: local\n  #   path: orders.csv');
    expect(result.text).toContain('# TODO: no column for order_id (required)');
    expect(() => parse(result.text)).not.toThrow();
  });

  it('reads dates in another format, and says when day and month could be swapped', async () => {
    const folder = tempDir('churn-init-dates-');
    writeFileSync(
      join(folder, 'activity.csv'),
      'customer_id,date\nc1,01/02/2025 10:00\nc2,03/04/2025 11:30\n',
    );
    const result = await initConfig({ folder, configFile: join(folder, 'churn.yaml') });
    expect(result.matches[0]?.columns.occurred_at).toEqual({ column: 'date', format: '%m/%d/%Y %H:%M' });
    expect(result.text).toContain(
      '# TODO: occurred_at: the values of date also read as %d/%m/%Y %H:%M: check which one the export uses',
    );
    writeFileSync(
      join(folder, 'activity.csv'),
      'customer_id,date\nc1,25/02/2025 10:00\nc2,03/04/2025 11:30\n',
    );
    const unambiguous = await initConfig({ folder, configFile: join(folder, 'churn.yaml') });
    expect(unambiguous.matches[0]?.columns.occurred_at).toEqual({ column: 'date', format: '%d/%m/%Y %H:%M' });
    expect(unambiguous.text).not.toContain('TODO');
  });

  it('says so when the folder holds no export, or is not a folder', async () => {
    const folder = tempDir('churn-init-empty-');
    writeFileSync(join(folder, 'readme.md'), '# nothing');
    await expect(initConfig({ folder, configFile: join(folder, 'churn.yaml') })).rejects.toThrow(InitError);
    await expect(initConfig({ folder, configFile: join(folder, 'churn.yaml') })).rejects.toThrow(
      /no CSV, Parquet or NDJSON files/,
    );
    await expect(
      initConfig({ folder: join(folder, 'readme.md'), configFile: join(folder, 'churn.yaml') }),
    ).rejects.toThrow(/is not a folder/);
  });

  it('normalises column names the way exports spell them', () => {
    expect(['Customer ID', 'customerId', 'customer_id', 'CUSTOMER-ID'].map(normalise)).toEqual(
      Array(4).fill('customerid'),
    );
  });
});

describe('the churn init command', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes churn.yaml and churn.schema.json, refuses to overwrite them, and prints with -o -', async () => {
    const dir = tempDir('churn-init-cli-');
    mkdirSync(join(dir, 'exports'));
    writeFileSync(
      join(dir, 'exports', 'orders.csv'),
      'order_id,customer_id,ordered_at,amount\no1,c1,2025-01-02,10\n',
    );
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    const configFile = join(dir, 'churn.yaml');
    await buildProgram().parseAsync(['node', 'churn', 'init', join(dir, 'exports'), '-o', configFile]);
    expect(out.join('')).toMatch(/wrote .*churn\.yaml and .*churn\.schema\.json for 1 export/);
    expect(out.join('')).toMatch(/orders +orders\.csv +4 columns mapped/);
    const text = readFileSync(configFile, 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=churn.schema.json');
    const schema = JSON.parse(readFileSync(join(dir, 'churn.schema.json'), 'utf8')) as { title: string };
    expect(schema.title).toBe('churn.yaml');
    expect(loadConfig(configFile).config.sources.orders).toMatchObject({ path: 'exports/orders.csv' });

    await expect(
      buildProgram().parseAsync(['node', 'churn', 'init', join(dir, 'exports'), '-o', configFile]),
    ).rejects.toThrow(/exists; pass --force/);
    await buildProgram().parseAsync([
      'node',
      'churn',
      'init',
      join(dir, 'exports'),
      '-o',
      configFile,
      '--force',
    ]);

    out.length = 0;
    await buildProgram().parseAsync(['node', 'churn', 'init', join(dir, 'exports'), '-o', '-']);
    expect(out.join('')).toContain('  orders:\n    type: local\n');
    expect(existsSync(join(dir, 'churn.schema.json'))).toBe(true);
  });
});
