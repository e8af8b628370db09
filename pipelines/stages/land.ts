// Landing: every configured export becomes a raw_<entity> table with the columns of the canonical entity, and the
// file and row each record came from. Each file is read once (Parquet in parallel; two entities land at once). A
// timestamp column its reader already typed (Parquet, NDJSON, a `sql` source) lands as it is; every other column
// lands as text. Typing what is text and the checks happen later, in the staging models: DuckDB's typed CSV reading
// is not the contract's (a decimal comma, yes/no booleans, offsets and zone names in timestamps: sql/macros), so CSV
// columns stay text and staging parses them.
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
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';
import type { Logger } from '../base/log.js';
import { oneLine, parseExpression } from '../sources/expression.js';
import { findLongRecord, isBlank } from '../sources/files.js';
import { createSource } from '../sources/index.js';
import type { Landed, LandedFile, ShardLanding } from '../sources/source.js';

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
 * The rows of one landed file as `source`, each with its 1-based `_source_row`: Parquet's own row number (the read
 * stays parallel), else row_number() over () in file order (that read runs on one thread: landAll lands several
 * entities at once).
 */
function numbered(file: LandedFile, landed: Landed, from: string, names: string[]): string {
  if (landed.format === 'parquet' && !names.some((n) => n.toLowerCase() === 'file_row_number')) {
    return `(select file_row_number + 1 as _source_row, * exclude (file_row_number)
       from read_parquet(${sqlString(file.path)}, file_row_number = true)) as source`;
  }
  return `(select row_number() over () as _source_row, * from ${from}) as source`;
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

/** A header name as compared with a canonical column: lower case, letters and digits only ("Order ID" -> "orderid"). */
function headerKey(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The names among `names` that differ from `column` only in case, spaces and punctuation. */
function alikeColumns(column: string, names: Iterable<string>): string[] {
  return [...names].filter((name) => headerKey(name) === headerKey(column));
}

/**
 * The file's column an unmapped canonical column is read from: the column of that name, or else the one column whose
 * name differs from it only in case, spaces and punctuation ("Order ID", "ORDER_ID" and "OrderId" for order_id).
 */
function headerColumn(
  entity: Entity,
  column: string,
  available: Set<string>,
  origin: string,
): string | undefined {
  if (available.has(column)) return column;
  const alike = alikeColumns(column, available);
  if (alike.length > 1) {
    throw new InputError(
      `${entity}: ${origin} has ${alike.length} columns that could be ${column} (${alike.map((c) => `"${c}"`).join(', ')}); ` +
        `say which with sources.${entity}.columns.${column}`,
    );
  }
  return alike[0];
}

/** The source column a canonical column is read from as it is (itself, or the column it is renamed from). */
function sourceColumn(column: string, spec: SourceConfig): string | undefined {
  const mapping = spec.columns[column];
  if (mapping === undefined) return column;
  return typeof mapping === 'string' ? mapping : undefined;
}

/** The canonical timestamp columns (every `*_at` column of config/schema.ts ENTITY_COLUMNS). */
function isTimestampColumn(column: string): boolean {
  return column.endsWith('_at');
}

/** Types a reader gives that staging reads as they are (sql/macros/time.sql parse_business_ts). */
const TYPED_TIMESTAMPS = new Set([
  'TIMESTAMP WITH TIME ZONE',
  'TIMESTAMP',
  'TIMESTAMP_S',
  'TIMESTAMP_MS',
  'TIMESTAMP_NS',
  'DATE',
]);

/**
 * The canonical columns that land with their reader's type: timestamp columns read as they are from a column every
 * file of the entity gives as the same timestamp or date type. The others land as text.
 */
function typedColumns(columns: string[], spec: SourceConfig, files: Map<string, string>[]): Set<string> {
  const typed = new Set<string>();
  for (const column of columns) {
    const name = sourceColumn(column, spec);
    if (!isTimestampColumn(column) || name === undefined) continue;
    const inFile = (f: Map<string, string>) =>
      f.get(name) ?? (spec.columns[column] === undefined ? alikeType(column, f) : undefined);
    const types = new Set(files.map(inFile));
    const [type] = types;
    if (types.size === 1 && type !== undefined && TYPED_TIMESTAMPS.has(type)) typed.add(column);
  }
  return typed;
}

/** The type of the one column of a file named like `column` but for case, spaces and punctuation. */
function alikeType(column: string, types: Map<string, string>): string | undefined {
  const alike = alikeColumns(column, types.keys());
  return alike.length === 1 ? types.get(alike[0] ?? '') : undefined;
}

function columnExpr(
  entity: Entity,
  column: string,
  spec: SourceConfig,
  available: Set<string>,
  origin: string,
  exprs: Map<string, string>,
  typed: Set<string>,
): string {
  const mapping = spec.columns[column];
  const header = mapping === undefined ? headerColumn(entity, column, available, origin) : undefined;
  if (typed.has(column)) return sqlIdent(header ?? sourceColumn(column, spec) ?? column);
  const missing = (name: string) =>
    new InputError(
      `${entity}: column "${name}" (for ${column}) is not in ${origin}; its columns are ${[...available].map((c) => `"${c}"`).join(', ')}. ` +
        `Map it with sources.${entity}.columns.${column}`,
    );
  if (mapping === undefined) {
    if (header !== undefined) return `cast(${sqlIdent(header)} as varchar)`;
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
  const readers: { file: LandedFile; from: string; types: Map<string, string> }[] = [];
  for (const file of landed.files) {
    await checkFile(entity, file, landed);
    const from = reader(file, landed);
    let types: Map<string, string>;
    try {
      const described = await db.all<{ column_name: string; column_type: string }>(
        `describe select * from ${from}`,
      );
      types = new Map(described.map((r) => [r.column_name, r.column_type]));
    } catch (err) {
      throw await explainRead(err, entity, file, landed);
    }
    const available = new Set(types.keys());
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
    readers.push({ file, from, types });
  }
  const typed = typedColumns(
    columns,
    spec,
    readers.map((r) => r.types),
  );
  const parts: string[] = [];
  for (const { file, from, types } of readers) {
    const available = new Set(types.keys());
    const select = columns.map(
      (c) => `${columnExpr(entity, c, spec, available, file.origin, exprs, typed)} as ${sqlIdent(c)}`,
    );
    const keyed = rowKeyExpr(file, landed, available);
    const provenance = keyed
      ? // the key names the row; the number tells rows with the same key apart (1 unless the key repeats)
        `${keyed} as _source_file, row_number() over (partition by ${keyed} order by _source_row) as _source_row`
      : `${sqlString(file.origin)} as _source_file, _source_row`;
    const keep = where !== undefined ? `, coalesce((${where}), false) as _kept` : '';
    parts.push(
      `select ${provenance}, ${select.join(', ')}${keep}
       from ${numbered(file, landed, from, [...available])}`,
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
 * landingRoot/<entity>/ between runs), an empty raw table for the others. Two entities land at once, each on its
 * own connection (a numbered CSV or NDJSON read runs on one thread), warehouse extractions one at a time; results,
 * progress and the first error come in ENTITIES order, as if they had landed one after the other.
 */
export async function landAll(
  db: Db,
  config: Config,
  dirs: { baseDir: string; landingRoot: string; shard?: ShardLanding },
  log: Logger,
  onEntity?: (entity: Entity, rows: number, result: LandResult) => void,
): Promise<Partial<Record<Entity, number>>> {
  if (!ACTIVITY_ENTITIES.some((e) => config.sources[e] !== undefined)) {
    throw new InputError(
      'no activity-bearing entity is configured: add sources.orders, sources.activity or sources.subscriptions',
    );
  }
  for (const entity of ENTITIES) {
    if (!config.sources[entity]) await landEntity(db, entity, undefined, undefined, log);
  }
  const configured = ENTITIES.filter((e) => config.sources[e] !== undefined);
  const landOne = async (conn: Db, entity: Entity): Promise<LandResult> => {
    const spec = config.sources[entity]!;
    const source = await createSource(spec);
    try {
      const landingDir = join(dirs.landingRoot, entity);
      const ctx = { entity, landingDir, baseDir: dirs.baseDir, log, shard: dirs.shard };
      await mkdir(ctx.landingDir, { recursive: true });
      const landed = await source.land(ctx);
      return await landEntity(conn, entity, spec, landed, log);
    } finally {
      await source.close?.();
    }
  };

  const outcomes = new Map<Entity, { result: LandResult } | { error: unknown }>();
  let reported = 0;
  const report = (): void => {
    // in ENTITIES order: an entity is reported once every one before it is
    while (reported < configured.length) {
      const entity = configured[reported]!;
      const outcome = outcomes.get(entity);
      if (!outcome || 'error' in outcome) return;
      onEntity?.(entity, outcome.result.rows, outcome.result);
      reported += 1;
    }
  };
  let next = 0;
  let failed = false;
  let warehouse: Promise<void> = Promise.resolve();
  const worker = async (conn: Db): Promise<void> => {
    while (!failed && next < configured.length) {
      const entity = configured[next]!;
      next += 1;
      const run = () => landOne(conn, entity);
      let landing: Promise<LandResult>;
      if (config.sources[entity]?.type === 'warehouse') {
        landing = warehouse.then(run);
        warehouse = landing.then(
          () => undefined,
          () => undefined,
        );
      } else {
        landing = run();
      }
      try {
        outcomes.set(entity, { result: await landing });
      } catch (error) {
        outcomes.set(entity, { error });
        failed = true;
      }
      report();
    }
  };
  const extra = configured.length > 1 && (config.duckdb.threads ?? 2) > 1 ? await db.connect() : undefined;
  try {
    await Promise.all([worker(db), ...(extra ? [worker(extra)] : [])]);
  } finally {
    extra?.close();
  }
  for (const entity of configured) {
    const outcome = outcomes.get(entity);
    if (outcome && 'error' in outcome) throw outcome.error;
  }
  const rows: Partial<Record<Entity, number>> = {};
  for (const entity of configured) {
    const outcome = outcomes.get(entity);
    if (outcome && 'result' in outcome) rows[entity] = outcome.result.rows;
  }
  return rows;
}

const ACTIVITY_ENTITIES = ['orders', 'activity', 'subscriptions'] as const;
