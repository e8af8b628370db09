// Landing: every configured export becomes a raw_<entity> table of text columns named as the canonical entity,
// with the file and row each record came from. Typing and checks happen later, in the staging models.
//
// Before a file is read it is checked for what DuckDB would otherwise read wrongly without a word: an empty file,
// a folder, two header columns with the same name. A read error becomes one line that names the file, the line
// and what to do. `where:` and `expr:` text is parsed with DuckDB's parser first (sources/expression.ts) and only
// DuckDB's rendering of the one parsed expression is put into the query.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Config,
  ENTITIES,
  ENTITY_COLUMNS,
  type Entity,
  type SourceConfig,
} from '../../config/schema.js';
import { type Db, sqlIdent, sqlString } from '../duckdb.js';
import type { Logger } from '../log.js';
import { oneLine, parseExpression } from '../sources/expression.js';
import { findLongRecord, isBlank } from '../sources/files.js';
import { createSource } from '../sources/index.js';
import type { Landed, LandedFile } from '../sources/source.js';

export class InputError extends Error {
  override readonly name = 'InputError';
}

export function canonicalColumns(entity: Entity): string[] {
  return [...ENTITY_COLUMNS[entity].required, ...ENTITY_COLUMNS[entity].optional];
}

/** DuckDB's limit on one CSV record when max_line_size is not set. */
const DUCKDB_MAX_LINE_SIZE = 2_000_000;

function csvOptions(landed: Landed, header: boolean | undefined): string[] {
  const csv = landed.csv;
  const options = ['all_varchar = true'];
  if (csv) {
    options.push(
      `header = ${header ?? csv.header}`,
      `quote = ${sqlString(csv.quote)}`,
      `escape = ${sqlString(csv.escape)}`,
    );
    if (csv.delimiter !== undefined) options.push(`delim = ${sqlString(csv.delimiter)}`);
    if (csv.skip > 0) options.push(`skip = ${csv.skip}`);
    if (csv.names && header === undefined) options.push(`names = [${csv.names.map(sqlString).join(', ')}]`);
    options.push(`nullstr = [${csv.null_strings.map(sqlString).join(', ')}]`);
    if (csv.encoding !== 'utf-8') options.push(`encoding = ${sqlString(csv.encoding)}`);
    if (csv.max_line_size !== undefined) options.push(`max_line_size = ${csv.max_line_size}`);
  }
  return options;
}

function reader(file: LandedFile, landed: Landed): string {
  const path = sqlString(file.path);
  if (landed.format === 'sql') return `(\n${landed.sql}\n)`;
  if (landed.format === 'parquet') return `read_parquet(${path})`;
  if (landed.format === 'ndjson') return `read_json(${path}, format = 'newline_delimited')`;
  return `read_csv(${path}, ${csvOptions(landed, undefined).join(', ')})`;
}

/**
 * DuckDB's sniffer falls back to one column when no delimiter gives every sampled line the same number of fields
 * (a broken line, an unclosed quote). Reading with the delimiter the header shows finds that line: its error is
 * the message. Throws in every case.
 */
async function explainOneColumn(
  db: Db,
  entity: Entity,
  file: LandedFile,
  landed: Landed,
  header: string,
): Promise<never> {
  const counts = [',', ';', '\t', '|'].map((d) => ({ d, n: header.split(d).length - 1 }));
  const best = counts.sort((a, b) => b.n - a.n)[0]!;
  // Without sniffing: the header's delimiter and field count, every column text.
  const options = csvOptions(landed, undefined).filter((o) => o !== 'all_varchar = true');
  const columns = Array.from({ length: best.n + 1 }, (_, i) => `'c${i}': 'varchar'`);
  options.push('auto_detect = false', `delim = ${sqlString(best.d)}`, `columns = {${columns.join(', ')}}`);
  try {
    await db.all(`select count(*) from read_csv(${sqlString(file.path)}, ${options.join(', ')})`);
  } catch (err) {
    throw await explainRead(err, entity, file, landed);
  }
  const shown = best.d === '\t' ? 'tab ("\\t")' : `"${best.d}"`;
  throw new InputError(
    `${entity}: ${file.origin}: DuckDB could not detect its column delimiter (the header reads as one column); set sources.${entity}.csv.delimiter to ${shown}`,
  );
}

function columnExpr(
  entity: Entity,
  column: string,
  spec: SourceConfig,
  available: Set<string>,
  origin: string,
  exprs: Map<string, string>,
): string {
  const mapping = spec.columns[column];
  const missing = (name: string) =>
    new InputError(
      `${entity}: column "${name}" (for ${column}) is not in ${origin}; its columns are ${[...available].map((c) => `"${c}"`).join(', ')}. ` +
        `Map it with sources.${entity}.columns.${column}`,
    );
  if (mapping === undefined) {
    if (available.has(column)) return `cast(${sqlIdent(column)} as varchar)`;
    if (ENTITY_COLUMNS[entity].required.includes(column)) throw missing(column);
    return 'cast(null as varchar)';
  }
  if (typeof mapping === 'string') {
    if (!available.has(mapping)) throw missing(mapping);
    return `cast(${sqlIdent(mapping)} as varchar)`;
  }
  if ('column' in mapping) {
    if (!available.has(mapping.column)) throw missing(mapping.column);
    // A value that does not match the format stays as it was, so staging quarantines it with its text.
    const col = `cast(${sqlIdent(mapping.column)} as varchar)`;
    return `coalesce(strftime(try_strptime(${col}, ${sqlString(mapping.format)}), '%Y-%m-%d %H:%M:%S'), ${col})`;
  }
  return `cast((${exprs.get(column) ?? 'null'}) as varchar)`;
}

/** The first line of a DuckDB error without its class prefix ("Invalid Input Error: "). */
function duckReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = message.split('\n').map((l) => l.replace(/^[A-Za-z ]*Error:\s*/, '').trim());
  // A CSV error starts with "CSV Error on Line: N" and "Original Line: ..."; the reason comes after them.
  const reason = lines.find((l) => l !== '' && !/^(CSV Error on Line|Original Line):/.test(l));
  return oneLine(reason ?? lines[0] ?? message);
}

/** A DuckDB read error as one line: the file, the line, what is wrong and what to do. */
async function explainRead(
  err: unknown,
  entity: Entity,
  file: LandedFile,
  landed: Landed,
): Promise<InputError> {
  const message = err instanceof Error ? err.message : String(err);
  const at = /CSV Error on Line: (\d+)/.exec(message);
  const line = at ? ` line ${at[1]}` : '';
  const where = `${entity}: ${file.origin}${line}`;
  const csv = landed.csv;
  if (landed.format === 'csv' && /invalid unicode|not utf-8 encoded/i.test(message)) {
    const hint =
      csv?.encoding === 'utf-8' || csv === undefined
        ? `set sources.${entity}.csv.encoding to "latin-1" (Western European exports, Windows-1252) or "utf-16", or re-export the file as UTF-8`
        : `check sources.${entity}.csv.encoding ("${csv.encoding}")`;
    return new InputError(
      `${where} is not valid UTF-8 text (the file has another character encoding): ${hint}`,
    );
  }
  const size = /Maximum line size of (\d+) bytes exceeded/.exec(message);
  if (landed.format === 'csv' && size && file.path) {
    const limit = Number(size[1] ?? DUCKDB_MAX_LINE_SIZE);
    const long = await findLongRecord(file.path, limit, csv?.quote ?? '"', csv?.escape ?? '"').catch(
      () => undefined,
    );
    const lineNo = long ? ` line ${long.line}` : line;
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    const length = long ? ` is ${mb(long.bytes)} long,` : '';
    const cause = long?.unclosedQuote
      ? 'a quoted field is opened there and never closed: fix the quote in the export'
      : `if a quote is not closed there, fix the export; if the record really is that long, set sources.${entity}.csv.max_line_size to ${Math.ceil(((long?.bytes ?? limit) + 1024) / 1024) * 1024} or more`;
    return new InputError(
      `${entity}: ${file.origin}${lineNo}${length} over the limit of ${mb(limit)} for one CSV record: ${cause}`,
    );
  }
  const columns = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  if (landed.format === 'csv' && columns) {
    return new InputError(
      `${where} has ${columns[2]} fields where the header has ${columns[1]}: fix that line (a delimiter or quote inside a value that is not quoted?), or check sources.${entity}.csv.delimiter and csv.quote`,
    );
  }
  if (landed.format === 'csv' && /unterminated quote/i.test(message)) {
    return new InputError(
      `${where} opens a quoted field that is never closed: fix the quote in the export, or set sources.${entity}.csv.quote`,
    );
  }
  const hint =
    landed.format === 'csv'
      ? `check the file and sources.${entity} (format, csv options: delimiter, quote, header)`
      : landed.format === 'sql'
        ? `check sources.${entity}.query`
        : `check the file and sources.${entity}.format`;
  return new InputError(`${where}: cannot read it as ${landed.format}: ${duckReason(err)}; ${hint}`);
}

/** The landed file a DuckDB error is about (its message names the path), else the only one. */
function fileOfError(err: unknown, files: LandedFile[]): LandedFile | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const named = /^\s*file = (.+)$/m.exec(message)?.[1]?.trim();
  return (
    files.find((f) => f.path !== '' && (named === f.path || message.includes(f.path))) ??
    (files.length === 1 ? files[0] : undefined)
  );
}

/** Refuses a file DuckDB would read as something else: a folder, an empty file. */
async function checkFile(entity: Entity, file: LandedFile, landed: Landed): Promise<void> {
  if (landed.format === 'sql' || file.path === '') return;
  const info = await stat(file.path).catch(() => undefined);
  if (info?.isDirectory()) {
    throw new InputError(
      `${entity}: ${file.origin} is a folder, not a file; point sources.${entity} at the files in it`,
    );
  }
  if (!info) return; // DuckDB reports the missing file
  const blank =
    info.size === 0 || (landed.format !== 'parquet' && (await isBlank(file.path).catch(() => false)));
  if (blank) {
    throw new InputError(
      `${entity}: ${file.origin} is empty (${info.size === 0 ? '0 bytes' : 'nothing but blank lines'}): the export wrote no header and no rows; re-export it, or remove it from the source`,
    );
  }
}

/** Two header columns with the same name (DuckDB would silently rename the second one `name_1`). */
async function checkHeader(
  db: Db,
  entity: Entity,
  file: LandedFile,
  landed: Landed,
  available: Set<string>,
): Promise<void> {
  const csv = landed.csv;
  if (landed.format !== 'csv' || !csv?.header || csv.names) return;
  if (![...available].some((c) => /_\d+$/.test(c))) return;
  const first = await db.one(
    `select * from read_csv(${sqlString(file.path)}, ${csvOptions(landed, false).join(', ')}) limit 1`,
  );
  const names = Object.values(first ?? {}).map((v) => (v === null ? '' : String(v)));
  const seen = new Map<string, number>();
  for (const [i, name] of names.entries()) {
    const key = name.trim().toLowerCase();
    const prior = seen.get(key);
    if (key !== '' && prior !== undefined) {
      throw new InputError(
        `${entity}: ${file.origin} has two columns named "${name}" in its header (columns ${prior + 1} and ${i + 1}), so one of them would be read under another name; rename one in the export, or give every column's name with sources.${entity}.csv.names`,
      );
    }
    seen.set(key, i);
  }
}

/** `where:` must give true/false on this file's columns. */
async function checkWhere(
  db: Db,
  entity: Entity,
  file: LandedFile,
  from: string,
  where: string,
  text: string,
): Promise<void> {
  const key = `sources.${entity}.where`;
  let type: string | undefined;
  try {
    const described = await db.all<{ column_type: string }>(
      `describe select (${where}) as _keep from (select 0::bigint as _source_row, * from ${from}) as source`,
    );
    type = described[0]?.column_type;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const candidates = /Candidate bindings: (.+)/.exec(message)?.[1];
    throw new InputError(
      `${key} ${JSON.stringify(text)} does not work on ${file.origin}: ${duckReason(err)}${candidates ? ` (columns: ${oneLine(candidates)})` : ''}; ` +
        'every column of a file is text: cast it to compare with a number or date, e.g. "amount::decimal(18,2) > 0"',
    );
  }
  if (type !== 'BOOLEAN') {
    throw new InputError(
      `${key} ${JSON.stringify(text)} is not a true/false condition (it gives ${type ?? 'nothing'}); write a condition such as "status <> 'test'"`,
    );
  }
}

/** SQL text that names a warehouse row by its key: `postgres table public.orders where order_id = 'O-17'`. */
function rowKeyExpr(file: LandedFile, landed: Landed, available: Set<string>): string | undefined {
  const key = landed.rowKey;
  if (!key) return undefined;
  const resolved = key.columns
    .map((c) => (available.has(c) ? c : [...available].find((a) => a.toLowerCase() === c.toLowerCase())))
    .filter((c): c is string => c !== undefined);
  if (resolved.length === 0) return undefined;
  const quote = (name: string) =>
    /^[a-z_][a-z0-9_]*$/.test(name)
      ? name
      : key.quoting === 'mysql'
        ? `\`${name.replaceAll('`', '``')}\``
        : `"${name.replaceAll('"', '""')}"`;
  const parts = resolved.map((c) => {
    const col = `cast(${sqlIdent(c)} as varchar)`;
    return `case when ${col} is null then ${sqlString(`${quote(c)} is null`)} else ${sqlString(`${quote(c)} = '`)} || replace(${col}, '''', '''''') || '''' end`;
  });
  return `${sqlString(`${file.origin} where `)} || ${parts.join(` || ' and ' || `)}`;
}

export interface LandResult {
  entity: Entity;
  files: number;
  /** Rows in raw_<entity> (after `where:`). */
  rows: number;
  /** Rows read from the landed files, before `where:`. */
  read: number;
  /** Rows left out by `where:` at landing; null when the source applied it (a warehouse query): not counted. */
  excluded: number | null;
}

/** Creates raw_<entity> from the landed files (or an empty raw table when the entity is not configured). */
export async function landEntity(
  db: Db,
  entity: Entity,
  spec: SourceConfig | undefined,
  landed: Landed | undefined,
  log: Logger,
): Promise<LandResult> {
  const columns = canonicalColumns(entity);
  const table = `raw_${entity}`;
  if (!spec || !landed) {
    const empty = columns.map((c) => `cast(null as varchar) as ${sqlIdent(c)}`).join(', ');
    await db.run(
      `create or replace table ${table} as select cast(null as varchar) as _source_file, cast(null as bigint) as _source_row, ${empty} limit 0`,
    );
    return { entity, files: 0, rows: 0, read: 0, excluded: 0 };
  }
  const where =
    spec.where && !landed.whereApplied
      ? (await parseExpression(db, spec.where, `sources.${entity}.where`)).sql
      : undefined;
  const exprs = new Map<string, string>();
  for (const [column, mapping] of Object.entries(spec.columns)) {
    if (typeof mapping === 'object' && 'expr' in mapping) {
      exprs.set(
        column,
        (await parseExpression(db, mapping.expr, `sources.${entity}.columns.${column}.expr`)).sql,
      );
    }
  }
  const parts: string[] = [];
  for (const file of landed.files) {
    await checkFile(entity, file, landed);
    const from = reader(file, landed);
    let available: Set<string>;
    try {
      const described = await db.all<{ column_name: string }>(`describe select * from ${from}`);
      available = new Set(described.map((r) => r.column_name));
    } catch (err) {
      throw await explainRead(err, entity, file, landed);
    }
    const [only] = available;
    if (
      landed.format === 'csv' &&
      landed.csv?.delimiter === undefined &&
      available.size === 1 &&
      only !== undefined &&
      /[,;\t|]/.test(only)
    ) {
      await explainOneColumn(db, entity, file, landed, only);
    }
    await checkHeader(db, entity, file, landed, available);
    if (where !== undefined) await checkWhere(db, entity, file, from, where, spec.where ?? '');
    const select = columns.map(
      (c) => `${columnExpr(entity, c, spec, available, file.origin, exprs)} as ${sqlIdent(c)}`,
    );
    const keyed = rowKeyExpr(file, landed, available);
    const provenance = keyed
      ? // the key names the row; the number tells rows with the same key apart (1 unless the key repeats)
        `${keyed} as _source_file, row_number() over (partition by ${keyed} order by _source_row) as _source_row`
      : `${sqlString(file.origin)} as _source_file, _source_row`;
    const keep = where !== undefined ? `, coalesce((${where}), false) as _kept` : '';
    parts.push(
      `select ${provenance}, ${select.join(', ')}${keep}
       from (select row_number() over () as _source_row, * from ${from}) as source`,
    );
  }
  try {
    await db.run(`create or replace table ${table} as ${parts.join('\nunion all\n')}`);
  } catch (err) {
    const file = fileOfError(err, landed.files);
    if (file) throw await explainRead(err, entity, file, landed);
    throw new InputError(
      `${entity}: reading ${landed.files.length} file(s) failed: ${duckReason(err)}; check the files and sources.${entity} (format, csv options, column expressions)`,
    );
  }
  const read = await db.number(`select count(*) from ${table}`);
  let excluded: number | null = landed.whereApplied ? null : 0;
  if (where !== undefined) {
    excluded = await db.number(`select count(*) from ${table} where not _kept`);
    if (excluded > 0) await db.run(`delete from ${table} where not _kept`);
    await db.run(`alter table ${table} drop column _kept`);
  }
  const rows = read - (excluded ?? 0);
  log.debug({ entity, files: landed.files.length, read, excluded, rows }, 'landed');
  return { entity, files: landed.files.length, rows, read, excluded };
}

/**
 * Lands every entity: each configured source into its raw table (remote sources keep their files under
 * landingRoot/<entity>/ between runs), an empty raw table for the others.
 */
export async function landAll(
  db: Db,
  config: Config,
  dirs: { baseDir: string; landingRoot: string },
  log: Logger,
  onEntity?: (entity: Entity, rows: number, result: LandResult) => void,
): Promise<Partial<Record<Entity, number>>> {
  if (!ACTIVITY_ENTITIES.some((e) => config.sources[e] !== undefined)) {
    throw new InputError(
      'no activity-bearing entity is configured: add sources.orders, sources.activity or sources.subscriptions',
    );
  }
  const rows: Partial<Record<Entity, number>> = {};
  for (const entity of ENTITIES) {
    const spec = config.sources[entity];
    if (!spec) {
      await landEntity(db, entity, undefined, undefined, log);
      continue;
    }
    const source = await createSource(spec);
    try {
      const ctx = { entity, landingDir: join(dirs.landingRoot, entity), baseDir: dirs.baseDir, log };
      await mkdir(ctx.landingDir, { recursive: true });
      const landed = await source.land(ctx);
      const result = await landEntity(db, entity, spec, landed, log);
      rows[entity] = result.rows;
      onEntity?.(entity, result.rows, result);
    } finally {
      await source.close?.();
    }
  }
  return rows;
}

const ACTIVITY_ENTITIES = ['orders', 'activity', 'subscriptions'] as const;
