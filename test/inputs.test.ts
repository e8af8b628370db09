// Bad inputs at the door: files DuckDB would read wrongly without a word (a truncated gzip, a duplicate header
// name, an empty file, a folder), `where:` text that is more than one expression, and the one-line messages a
// user gets for each, naming the file, the line and what to do.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { type Entity, sourceSchema } from '../config/schema.js';
import { Db, type Row } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { parseExpression } from '../pipelines/sources/expression.js';
import { createSource } from '../pipelines/sources/index.js';
import { type LandResult, landEntity } from '../pipelines/stages/land.js';

const log = silentLogger();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function folder(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'churn-inputs-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/** Lands one entity from files in a fresh folder through its real Source and landEntity. */
async function land(
  files: Record<string, string | Buffer>,
  source: Record<string, unknown>,
  entity: Entity = 'orders',
): Promise<{ result: LandResult; rows: Row[]; dir: string }> {
  const dir = await folder(files);
  const spec = sourceSchema.parse({ type: 'local', ...source });
  const db = await Db.open();
  try {
    const src = await createSource(spec);
    const ctx = { entity, landingDir: join(dir, '.landing'), baseDir: dir, log };
    const landed = await src.land(ctx);
    const result = await landEntity(db, entity, spec, landed, log);
    const rows = await db.all(`select * from raw_${entity} order by _source_row`);
    return { result, rows, dir };
  } finally {
    db.close();
  }
}

/** The message of the error landing throws (the test fails when it lands). */
async function failure(
  files: Record<string, string | Buffer>,
  source: Record<string, unknown>,
  entity: Entity = 'orders',
): Promise<string> {
  const error = await land(files, source, entity).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'landing should have failed').toBeInstanceOf(Error);
  const message = (error as Error).message;
  expect(message, 'one line').not.toContain('\n');
  return message;
}

const HEADER = 'order_id,customer_id,ordered_at,amount,status,currency';
function orders(n: number): string {
  const lines = Array.from(
    { length: n },
    (_, i) => `O${i},C${i % 50},2024-01-05 10:00:00,${i}.50,${i % 7 === 0 ? 'refunded' : 'completed'},EUR`,
  );
  return `${HEADER}\n${lines.join('\n')}\n`;
}

describe('gzip files are checked end to end', () => {
  const full = gzipSync(orders(6169));

  it('lands every row of a complete .csv.gz', async () => {
    const { result } = await land({ 'orders.csv.gz': full }, { path: 'orders.csv.gz' });
    expect(result.rows).toBe(6169);
  });

  it('refuses a .csv.gz without its gzip end marker, saying it is truncated', async () => {
    const truncated = full.subarray(0, Math.floor(full.length * 0.6));
    const message = await failure({ 'orders.csv.gz': truncated }, { path: 'orders.csv.gz' });
    expect(message).toMatch(/^orders: orders\.csv\.gz is not a valid gzip file: it is truncated/);
    expect(message).toMatch(/re-export it/);
  });

  it('refuses a truncated file among several matched by a glob, naming it', async () => {
    const message = await failure(
      { 'exports/a.csv.gz': full, 'exports/b.csv.gz': full.subarray(0, full.length - 9) },
      { path: 'exports/*.csv.gz' },
    );
    expect(message).toContain('exports/b.csv.gz is not a valid gzip file: it is truncated');
  });

  it('says so when a .gz file is not gzip at all', async () => {
    const message = await failure({ 'orders.csv.gz': orders(3) }, { path: 'orders.csv.gz' });
    expect(message).toContain('orders.csv.gz is not a valid gzip file: it is not gzip-compressed');
  });
});

describe('header names', () => {
  it('refuses a header with a duplicate name, naming the column', async () => {
    const text = 'order_id,customer_id,ordered_at,amount,amount,currency\nO1,C1,2024-01-05,10,refunded,EUR\n';
    const message = await failure({ 'orders.csv': text }, { path: 'orders.csv' });
    expect(message).toBe(
      'orders: orders.csv has two columns named "amount" in its header (columns 4 and 5), so one of them would be ' +
        "read under another name; rename one in the export, or give every column's name with sources.orders.csv.names",
    );
  });

  it('also when the names differ only in case', async () => {
    const text = 'order_id,customer_id,ordered_at,Amount,amount\nO1,C1,2024-01-05,10,11\n';
    expect(await failure({ 'orders.csv': text }, { path: 'orders.csv' })).toContain(
      'two columns named "amount" in its header (columns 4 and 5)',
    );
  });

  it('keeps a real column whose name ends in _1, and lands with csv.names given', async () => {
    const ok = await land(
      { 'orders.csv': 'order_id,customer_id,ordered_at,amount,note_1\nO1,C1,2024-01-05,10,x\n' },
      { path: 'orders.csv' },
    );
    expect(ok.result.rows).toBe(1);
    const named = await land(
      {
        'orders.csv':
          'order_id,customer_id,ordered_at,amount,amount,currency\nO1,C1,2024-01-05,10,refunded,EUR\n',
      },
      {
        path: 'orders.csv',
        csv: { names: ['order_id', 'customer_id', 'ordered_at', 'amount', 'status', 'currency'] },
      },
    );
    expect(named.rows[0]).toMatchObject({ amount: '10', status: 'refunded' });
  });
});

describe('where: is one boolean expression', () => {
  const files = { 'orders.csv': orders(20) };

  it('filters rows and counts what it left out', async () => {
    const { result, rows } = await land(files, { path: 'orders.csv', where: "status <> 'refunded'" });
    expect(result).toMatchObject({ read: 20, excluded: 3, rows: 17 });
    expect(rows.every((r) => r.status === 'completed')).toBe(true);
    // Row numbers stay those of the file.
    expect(rows[0]?._source_row).toBe('2');
  });

  it('never runs a second statement', async () => {
    const dir = await folder({});
    const target = join(dir, 'x.csv');
    const message = await failure(files, {
      path: 'orders.csv',
      where: `true); copy (select 1) to '${target}'; select (1`,
    });
    expect(message).toMatch(/^sources\.orders\.where is not a valid SQL expression: .*syntax error/);
    expect(existsSync(target)).toBe(false);
    const two = await failure(files, { path: 'orders.csv', where: `true; copy (select 1) to '${target}'` });
    expect(two).toContain('sources.orders.where must be one SQL expression');
    expect(existsSync(target)).toBe(false);
  });

  it('rejects anything after the expression: UNION, ORDER BY, LIMIT, a comment that hides the rest', async () => {
    for (const where of ['true union select 1', 'true order by 1', 'true limit 1', 'true group by 1']) {
      expect(await failure(files, { path: 'orders.csv', where })).toContain(
        'sources.orders.where must be one SQL expression',
      );
    }
    // A trailing comment is harmless: the expression is re-rendered by DuckDB before it is used.
    const { result } = await land(files, {
      path: 'orders.csv',
      where: "status = 'refunded' -- refunds only",
    });
    expect(result.rows).toBe(3);
  });

  it('rejects an expression that is not true/false, and names a wrong column', async () => {
    expect(await failure(files, { path: 'orders.csv', where: 'amount' })).toBe(
      'sources.orders.where "amount" is not a true/false condition (it gives VARCHAR); write a condition such as "status <> \'test\'"',
    );
    const unknown = await failure(files, { path: 'orders.csv', where: "statsu = 'x'" });
    expect(unknown).toMatch(/^sources\.orders\.where "statsu = 'x'" does not work on orders\.csv: .*statsu/);
    expect(await failure(files, { path: 'orders.csv', where: 'amount > 5' })).toContain(
      'cast it to compare with a number or date',
    );
  });

  it('is checked by `churn validate` (Source.check) too', async () => {
    const dir = await folder(files);
    const spec = sourceSchema.parse({ type: 'local', path: 'orders.csv', where: '1; select 2' });
    const src = await createSource(spec);
    await expect(src.check({ entity: 'orders', landingDir: dir, baseDir: dir, log })).rejects.toThrow(
      'sources.orders.where must be one SQL expression',
    );
  });

  it('applies to column expressions and sql source queries as well', async () => {
    const expr = await failure(files, {
      path: 'orders.csv',
      columns: { currency: { expr: "'EUR'); copy (select 1) to 'y.csv'; select ('x'" } },
    });
    expect(expr).toContain('sources.orders.columns.currency.expr is not a valid SQL expression');
    const dir = await folder(files);
    const spec = sourceSchema.parse({
      type: 'sql',
      query: "select * from read_csv('orders.csv'); copy (select 1) to 'z.csv'",
    });
    const src = await createSource(spec);
    await expect(src.land({ entity: 'orders', landingDir: dir, baseDir: dir, log })).rejects.toThrow(
      /sources\.orders\.query must be one SELECT statement/,
    );
  });

  it('keeps integers beyond 2^53 exact in the parse tree', async () => {
    const parsed = await parseExpression(undefined, 'id = 9007199254740993', 'where');
    expect(parsed.sql).toBe('(id = 9007199254740993)');
    expect(JSON.stringify(parsed.ast)).toContain('"9007199254740993"');
  });
});

describe('one-line messages that say what is wrong and what to do', () => {
  it('a latin-1 file: the line, the encoding and the csv.encoding option', async () => {
    const latin1 = Buffer.concat([
      Buffer.from(`${HEADER}\nO1,C1,2024-01-05,10,completed,EUR\nO2,C`),
      Buffer.from([0xe9]),
      Buffer.from('line,2024-01-05,10,completed,EUR\n'),
    ]);
    const message = await failure({ 'orders.csv': latin1 }, { path: 'orders.csv' });
    expect(message).toBe(
      'orders: orders.csv line 3 is not valid UTF-8 text (the file has another character encoding): set ' +
        'sources.orders.csv.encoding to "latin-1" (Western European exports, Windows-1252) or "utf-16", or re-export the file as UTF-8',
    );
    const { rows } = await land(
      { 'orders.csv': latin1 },
      { path: 'orders.csv', csv: { encoding: 'latin-1' } },
    );
    expect(rows[1]?.customer_id).toBe('Céline');
  });

  it('a 10 MB field: its line and the reason', async () => {
    const big = `${HEADER}\nO1,C1,2024-01-05,10,completed,EUR\nO2,C1,2024-01-05,10,"${'x'.repeat(10 * 1024 * 1024)}",EUR\nO3,C1,2024-01-05,10,completed,EUR\n`;
    const message = await failure({ 'orders.csv': big }, { path: 'orders.csv' });
    expect(message).toMatch(
      /^orders: orders\.csv line 3 is 10\.5 MB long, over the limit of 2\.0 MB for one CSV record: if a quote is not closed there, fix the export; if the record really is that long, set sources\.orders\.csv\.max_line_size to \d+ or more$/,
    );
    const limit = Number(/max_line_size to (\d+)/.exec(message)?.[1]);
    const { rows } = await land({ 'orders.csv': big }, { path: 'orders.csv', csv: { max_line_size: limit } });
    expect(rows).toHaveLength(3);
  });

  it('a quote never closed: the line where it opens', async () => {
    const lines = Array.from({ length: 400 }, (_, i) => `O${i},C1,2024-01-05,10,completed,EUR`);
    lines.splice(5, 0, `O-bad,C1,2024-01-05,10,"completed,EUR`);
    const message = await failure(
      { 'orders.csv': `${HEADER}\n${lines.join('\n')}\n` },
      { path: 'orders.csv' },
    );
    expect(message).toBe(
      'orders: orders.csv line 7 opens a quoted field that is never closed: fix the quote in the export, or set sources.orders.csv.quote',
    );
  });

  it('an empty file says it is empty', async () => {
    expect(await failure({ 'orders.csv': '' }, { path: 'orders.csv' })).toBe(
      'orders: orders.csv is empty (0 bytes): the export wrote no header and no rows; re-export it, or remove it from the source',
    );
    expect(await failure({ 'orders.csv': '\n\n' }, { path: 'orders.csv' })).toContain(
      'orders.csv is empty (nothing but blank lines)',
    );
    expect(await failure({ 'orders.csv.gz': gzipSync('') }, { path: 'orders.csv.gz' })).toContain(
      'orders.csv.gz is empty',
    );
  });

  it('a folder as path is an error, not a file read from inside it', async () => {
    const message = await failure({ 'exports/orders.csv': orders(2) }, { path: 'exports' });
    expect(message).toBe(
      'orders: sources.orders.path "exports" is a folder, not a file; give a file, or a glob of the files to read such as "exports/*.csv"',
    );
  });

  it('a row with too few fields: its line and the likely cause', async () => {
    const text = `${orders(30)}O99,C1,2024-01-05\n`;
    const message = await failure({ 'orders.csv': text }, { path: 'orders.csv' });
    expect(message).toMatch(
      /^orders: orders\.csv line 32 has 3 fields where the header has 6: fix that line/,
    );
  });
});
