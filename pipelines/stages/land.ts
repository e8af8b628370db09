// Landing: every configured export becomes a raw_<entity> table of text columns named as the canonical entity,
// with the file and row each record came from. Typing and checks happen later, in the staging models.
import { mkdir } from 'node:fs/promises';
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
import { createSource } from '../sources/index.js';
import type { Landed, LandedFile } from '../sources/source.js';

export class InputError extends Error {
  override readonly name = 'InputError';
}

export function canonicalColumns(entity: Entity): string[] {
  return [...ENTITY_COLUMNS[entity].required, ...ENTITY_COLUMNS[entity].optional];
}

function reader(file: LandedFile, landed: Landed): string {
  const path = sqlString(file.path);
  if (landed.format === 'sql') return `(${landed.sql})`;
  if (landed.format === 'parquet') return `read_parquet(${path})`;
  if (landed.format === 'ndjson') return `read_json(${path}, format = 'newline_delimited')`;
  const csv = landed.csv;
  const options = ['all_varchar = true'];
  if (csv) {
    options.push(
      `header = ${csv.header}`,
      `quote = ${sqlString(csv.quote)}`,
      `escape = ${sqlString(csv.escape)}`,
    );
    if (csv.delimiter !== undefined) options.push(`delim = ${sqlString(csv.delimiter)}`);
    if (csv.skip > 0) options.push(`skip = ${csv.skip}`);
    if (csv.names) options.push(`names = [${csv.names.map(sqlString).join(', ')}]`);
    options.push(`nullstr = [${csv.null_strings.map(sqlString).join(', ')}]`);
    if (csv.encoding !== 'utf-8') options.push(`encoding = ${sqlString(csv.encoding)}`);
  }
  return `read_csv(${path}, ${options.join(', ')})`;
}

function columnExpr(
  entity: Entity,
  column: string,
  spec: SourceConfig,
  available: Set<string>,
  origin: string,
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
  return `cast((${mapping.expr}) as varchar)`;
}

export interface LandResult {
  entity: Entity;
  files: number;
  rows: number;
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
    return { entity, files: 0, rows: 0 };
  }
  const parts: string[] = [];
  for (const file of landed.files) {
    const from = reader(file, landed);
    let available: Set<string>;
    try {
      const described = await db.all<{ column_name: string }>(`describe select * from ${from}`);
      available = new Set(described.map((r) => r.column_name));
    } catch (err) {
      throw new InputError(
        `${entity}: cannot read ${file.origin} as ${landed.format}: ${(err as Error).message.split('\n')[0]}. ` +
          `Check sources.${entity}.format and its csv options (delimiter, quote, header)`,
      );
    }
    const select = columns.map(
      (c) => `${columnExpr(entity, c, spec, available, file.origin)} as ${sqlIdent(c)}`,
    );
    const where = spec.where ? `where (${spec.where})` : '';
    parts.push(
      `select ${sqlString(file.origin)} as _source_file, _source_row, ${select.join(', ')}
       from (select row_number() over () as _source_row, * from ${from}) as source ${where}`,
    );
  }
  try {
    await db.run(`create or replace table ${table} as ${parts.join('\nunion all\n')}`);
  } catch (err) {
    throw new InputError(
      `${entity}: reading ${landed.files.length} file(s) failed: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}. ` +
        `Check the file and sources.${entity} (format, csv options, column expressions)`,
    );
  }
  const rows = await db.number(`select count(*) from ${table}`);
  log.debug({ entity, files: landed.files.length, rows }, 'landed');
  return { entity, files: landed.files.length, rows };
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
  onEntity?: (entity: Entity, rows: number) => void,
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
      rows[entity] = (await landEntity(db, entity, spec, landed, log)).rows;
      onEntity?.(entity, rows[entity]);
    } finally {
      await source.close?.();
    }
  }
  return rows;
}

const ACTIVITY_ENTITIES = ['orders', 'activity', 'subscriptions'] as const;
