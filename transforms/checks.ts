// Data-quality gates, dbt style, run after the models and before anything is exported or published:
//   the tests of each model's yml (unique combinations of columns, not_null, accepted_values, relationships;
//   transforms/metadata.ts), freshness of each configured entity, volume against the previous successful run,
//   and the quarantine share.
// Each gate is `error` (the run fails and publishes nothing), `warn` (published and flagged) or `off`
// (config `checks:`). Messages say what broke and where; they never carry e-mail addresses or names.
import {
  AUDIENCE_EXPORT_PROFILES,
  audienceExportModel,
  type CheckSeverity,
  type Config,
  ENTITIES,
  type Entity,
} from '../config/schema.js';
import { type Db, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';
import { type ColumnMeta, modelCatalog } from './metadata.js';
import {
  describeMoney,
  describeRows,
  EVENT_COLUMNS,
  type Landing,
  type ReadThrough,
  type Reconciliation,
  readNow,
  reconcile,
  reconciliationReads,
  type TableRead,
} from './reconciliation.js';

export class QualityError extends Error {
  override readonly name = 'QualityError';
}

/**
 * The gates' answers from tables a run drops after their last model (raw_*, chk_*, most stg_*): read by the
 * transform stage while the tables exist (gateReaders), then found here by runChecks, which reads every other
 * table when it runs.
 */
export class GateReads {
  private readonly answers = new Map<string, unknown>();

  /** Reads now and keeps the answer. */
  async take<T>(read: TableRead<T>): Promise<void> {
    this.answers.set(read.key, await read.read());
  }

  /** The answer kept of the read, else read now. */
  readonly through: ReadThrough = async <T>(read: TableRead<T>): Promise<T> =>
    this.answers.has(read.key) ? (this.answers.get(read.key) as T) : read.read();
}

const through = (ctx: CheckContext): ReadThrough => ctx.reads?.through ?? readNow;

export const CHECK_KINDS = [
  'unique',
  'not_null',
  'accepted_values',
  'relationships',
  'freshness',
  'volume',
  'quarantine',
  'reconciliation',
] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export interface CheckResult {
  check: CheckKind;
  /** What was checked: `table(columns)`, `table.column`, `child.column -> parent.column` or an entity. */
  target: string;
  severity: 'error' | 'warn';
  status: 'pass' | 'warn' | 'fail';
  /** Offending rows or values (0 when it passed). */
  failing: number;
  /** What broke and where (empty when it passed). */
  message: string;
}

export interface QuarantineCount {
  rows: number;
  quarantined: number;
  share: number;
}

export interface CheckContext {
  db: Db;
  config: Config;
  asOf: string;
  /** Entities with a configured source. */
  configured: readonly Entity[];
  /** Raw rows per entity of the previous successful run of this output (volume check), with its id. */
  previous?: { runId: string; asOf: string; landedRows: Record<string, number> };
  /** What landing counted per entity (rows read, rows left out by `where`), for the reconciliation. */
  landing?: Partial<Record<Entity, Landing>>;
  /** What a run read early of the tables it dropped (gateReaders); without it every table is read now. */
  reads?: GateReads;
}

export interface ChecksOutcome {
  results: CheckResult[];
  quarantine: Record<string, QuarantineCount>;
  /** Where every input row and amount went (the manifest's `reconciliation`). */
  reconciliation: Reconciliation;
  passed: number;
  warned: number;
  failed: number;
}

/** Columns whose values never appear in a message (personal data). */
const PERSONAL = new Set(['email', 'first_name', 'last_name']);

/** The timestamp that says how fresh each entity's export is. */
export const FRESHNESS_COLUMNS: Record<Entity, string> = { customers: 'signup_at', ...EVENT_COLUMNS };

function outcome(
  check: CheckKind,
  target: string,
  severity: CheckSeverity,
  failing: number,
  message: string,
): CheckResult | null {
  if (severity === 'off') return null;
  const status = failing === 0 ? 'pass' : severity === 'error' ? 'fail' : 'warn';
  return { check, target, severity, status, failing, message: failing === 0 ? '' : message };
}

async function columnsOf(db: Db, table: string): Promise<Set<string> | null> {
  if (!(await db.tableExists(table))) return null;
  const rows = await db.all<{ column_name: string }>(`describe ${sqlIdent(table)}`);
  return new Set(rows.map((r) => r.column_name));
}

/** The problem when a table or its columns are missing, or null. */
function missing(table: string, columns: Set<string> | null, wanted: readonly string[]): string | null {
  if (columns === null) return `table ${table} was not built`;
  const absent = wanted.filter((c) => !columns.has(c));
  return absent.length ? `${table} has no column ${absent.join(', ')}` : null;
}

function examples(values: string[]): string {
  return values.length ? `, e.g. ${values.join(', ')}` : '';
}

type ModelMeta = ReturnType<typeof modelCatalog>['models'][number];

/** The unique and not_null tests of one model. */
function modelTestsRead(ctx: CheckContext, model: ModelMeta): TableRead<(CheckResult | null)[]> {
  return { key: `tests ${model.name}`, tables: [model.name], read: () => modelTests(ctx, model) };
}

async function modelTests(ctx: CheckContext, model: ModelMeta): Promise<(CheckResult | null)[]> {
  const { db, config } = ctx;
  const results: (CheckResult | null)[] = [];
  const notNull = model.columns.filter((c) => c.notNull).map((c) => c.name);
  const columns = await columnsOf(db, model.name);
  let problem: string | null = null;
  for (const combination of model.uniqueCombinations) {
    const grain = [...combination];
    const target = `${model.name}(${grain.join(', ')})`;
    problem = missing(model.name, columns, grain);
    if (problem) {
      results.push(outcome('unique', target, config.checks.unique, 1, `unique: ${problem}`));
      break;
    }
    const keys = grain.map(sqlIdent).join(', ');
    const showKeys = !grain.some((c) => PERSONAL.has(c));
    const dupes = await db.all<{ k: string; n: string }>(
      `select concat_ws('/', ${grain.map((c) => `coalesce(cast(${sqlIdent(c)} as varchar), 'null')`).join(', ')}) as k,
              count(*) as n
       from ${sqlIdent(model.name)} group by ${keys} having count(*) > 1 order by n desc, k limit 1000`,
    );
    results.push(
      outcome(
        'unique',
        target,
        config.checks.unique,
        dupes.length,
        `unique: ${model.name} has ${dupes.length}${dupes.length === 1000 ? '+' : ''} duplicate ${grain.join(' x ')} value(s)` +
          examples(showKeys ? dupes.slice(0, 3).map((d) => `${d.k} (${d.n}x)`) : []),
      ),
    );
  }
  // A table that is missing (or lacks its key) fails once, under unique.
  if (problem) return results;
  problem = missing(model.name, columns, notNull);
  if (problem) {
    results.push(outcome('not_null', model.name, config.checks.not_null, 1, `not_null: ${problem}`));
    return results;
  }
  for (const column of notNull) {
    const nulls = await db.number(
      `select count(*) from ${sqlIdent(model.name)} where ${sqlIdent(column)} is null`,
    );
    results.push(
      outcome(
        'not_null',
        `${model.name}.${column}`,
        config.checks.not_null,
        nulls,
        `not_null: ${model.name}.${column} is null in ${nulls} row(s)`,
      ),
    );
  }
  return results;
}

/** The models with unique or not_null tests. */
function testedModels(): ModelMeta[] {
  return modelCatalog().models.filter(
    (m) => m.uniqueCombinations.length > 0 || m.columns.some((c) => c.notNull),
  );
}

async function uniqueAndNotNull(ctx: CheckContext, results: (CheckResult | null)[]): Promise<void> {
  for (const model of testedModels()) results.push(...(await through(ctx)(modelTestsRead(ctx, model))));
}

/** Every column test of one kind, from the models' yml. */
function columnTests<T>(
  pick: (column: ColumnMeta) => T | null,
): { table: string; column: string; test: T }[] {
  const found: { table: string; column: string; test: T }[] = [];
  for (const model of modelCatalog().models) {
    for (const column of model.columns) {
      const test = pick(column);
      if (test !== null) found.push({ table: model.name, column: column.name, test });
    }
  }
  return found;
}

/** The accepted_values test of one column. */
function acceptedValuesRead(
  ctx: CheckContext,
  rule: { table: string; column: string; values: readonly string[] },
): TableRead<CheckResult | null> {
  const { db, config } = ctx;
  const target = `${rule.table}.${rule.column}`;
  return {
    key: `accepted_values ${target}`,
    tables: [rule.table],
    read: async () => {
      const problem = missing(rule.table, await columnsOf(db, rule.table), [rule.column]);
      if (problem) {
        return outcome(
          'accepted_values',
          target,
          config.checks.accepted_values,
          1,
          `accepted_values: ${problem}`,
        );
      }
      const bad = await db.all<{ v: string; n: string }>(
        `select cast(${sqlIdent(rule.column)} as varchar) as v, count(*) as n from ${sqlIdent(rule.table)}
         where ${sqlIdent(rule.column)} is not null
           and cast(${sqlIdent(rule.column)} as varchar) not in (${rule.values.map(sqlString).join(', ')})
         group by all order by n desc, v`,
      );
      const rows = bad.reduce((n, b) => n + Number(b.n), 0);
      return outcome(
        'accepted_values',
        target,
        config.checks.accepted_values,
        rows,
        `accepted_values: ${target} has ${rows} row(s) outside (${rule.values.join(', ')}): ` +
          bad
            .slice(0, 3)
            .map((b) => `'${b.v}' (${b.n}x)`)
            .join(', '),
      );
    },
  };
}

function acceptedValuesReads(ctx: CheckContext): TableRead<CheckResult | null>[] {
  return columnTests((c) => c.acceptedValues).map(({ table, column, test: values }) =>
    acceptedValuesRead(ctx, { table, column, values }),
  );
}

async function acceptedValues(ctx: CheckContext, results: (CheckResult | null)[]): Promise<void> {
  for (const read of acceptedValuesReads(ctx)) results.push(await through(ctx)(read));
}

/** The relationships test of one column. */
function relationshipRead(
  ctx: CheckContext,
  rule: { child: string; column: string; parent: string; parentColumn: string },
): TableRead<CheckResult | null> {
  const { db, config } = ctx;
  const target = `${rule.child}.${rule.column} -> ${rule.parent}.${rule.parentColumn}`;
  return {
    key: `relationships ${target}`,
    tables: [rule.child, rule.parent],
    read: async () => {
      const problem =
        missing(rule.child, await columnsOf(db, rule.child), [rule.column]) ??
        missing(rule.parent, await columnsOf(db, rule.parent), [rule.parentColumn]);
      if (problem) {
        return outcome('relationships', target, config.checks.relationships, 1, `relationships: ${problem}`);
      }
      const orphans = await db.all<{ v: string }>(
        `select distinct cast(child.${sqlIdent(rule.column)} as varchar) as v
         from ${sqlIdent(rule.child)} as child
         where child.${sqlIdent(rule.column)} is not null
           and not exists (select 1 from ${sqlIdent(rule.parent)} as parent
                           where parent.${sqlIdent(rule.parentColumn)} = child.${sqlIdent(rule.column)})
         order by v`,
      );
      return outcome(
        'relationships',
        target,
        config.checks.relationships,
        orphans.length,
        `relationships: ${orphans.length} ${rule.column} value(s) of ${rule.child} are not in ${rule.parent}` +
          examples(orphans.slice(0, 3).map((o) => o.v)),
      );
    },
  };
}

function relationshipReads(ctx: CheckContext): TableRead<CheckResult | null>[] {
  return columnTests((c) => c.relationship).map(({ table, column, test }) =>
    relationshipRead(ctx, { child: table, column, parent: test.to, parentColumn: test.field }),
  );
}

async function relationships(ctx: CheckContext, results: (CheckResult | null)[]): Promise<void> {
  for (const read of relationshipReads(ctx)) results.push(await through(ctx)(read));
}

/** The entities whose rows make a customer active: stale ones must not pick whom to write to. */
export const ACTIVITY_ENTITIES: readonly Entity[] = ['orders', 'activity', 'subscriptions'];

/** The target of the freshness gate on the reactivation audience. */
export const AUDIENCE_FRESHNESS_TARGET = 'reactivation_audience';

/** The newest row of an entity's staging table (its business date) and its age on the as-of date. */
function newestRead(
  ctx: CheckContext,
  entity: Entity,
): TableRead<{ problem: string } | { newest: string | null; age: number | null }> {
  const { db, asOf } = ctx;
  const table = `stg_${entity}`;
  const column = FRESHNESS_COLUMNS[entity];
  return {
    key: `freshness ${entity}`,
    tables: [table],
    read: async () => {
      const problem = missing(table, await columnsOf(db, table), [column]);
      if (problem) return { problem };
      const row = await db.one<{ newest: string | null; age: number | string | null }>(
        `select strftime(newest, '%Y-%m-%d') as newest, date_diff('day', newest, date ${sqlString(asOf)}) as age
         from (select max(business_date(${sqlIdent(column)}, (select time_zone from run_params))) as newest
               from ${sqlIdent(table)})`,
      );
      const age = row?.age === null || row?.age === undefined ? null : Number(row.age);
      return { newest: row?.newest ?? null, age };
    },
  };
}

/** The entities whose freshness is checked. */
function freshnessEntities(ctx: CheckContext): Entity[] {
  const settings = ctx.config.checks.freshness;
  return ENTITIES.filter(
    (entity) =>
      settings.max_age_days[entity] !== undefined &&
      ctx.configured.includes(entity) &&
      !(settings.severity === 'off' && (settings.audience === 'off' || !ACTIVITY_ENTITIES.includes(entity))),
  );
}

async function freshness(ctx: CheckContext, results: (CheckResult | null)[]): Promise<void> {
  const { config, asOf } = ctx;
  const settings = config.checks.freshness;
  // Activity-bearing entities found stale (their message), for the audience gate.
  const stale: string[] = [];
  let entityFailed = false;
  for (const entity of freshnessEntities(ctx)) {
    const maxAge = settings.max_age_days[entity] ?? 0;
    const table = `stg_${entity}`;
    const column = FRESHNESS_COLUMNS[entity];
    let message: string;
    let isStale: boolean;
    const newest = await through(ctx)(newestRead(ctx, entity));
    if ('problem' in newest) {
      message = `freshness: ${newest.problem}`;
      isStale = true;
    } else {
      const { age } = newest;
      isStale = age === null || age > maxAge;
      message =
        age === null
          ? `freshness: ${entity} has no rows up to the as-of date ${asOf} (${table}.${column})`
          : `freshness: the newest ${entity} row (${column}) is from ${newest.newest}, ${age} days before the as-of date ${asOf}; ` +
            `checks.freshness.max_age_days.${entity} is ${maxAge}`;
    }
    const result = outcome('freshness', entity, settings.severity, isStale ? 1 : 0, message);
    results.push(result);
    if (result?.status === 'fail') entityFailed = true;
    if (isStale && ACTIVITY_ENTITIES.includes(entity)) stale.push(message.replace(/^freshness: /, ''));
  }
  // A run that fails on freshness already publishes nothing; otherwise stale activity keeps the audience back.
  if (entityFailed) return;
  const reason = stale.join('; ');
  results.push(
    outcome(
      'freshness',
      AUDIENCE_FRESHNESS_TARGET,
      settings.audience,
      stale.length,
      settings.audience === 'error'
        ? `freshness: no reactivation audience from stale inputs: ${reason}. ` +
            'Deliver fresh exports, or set checks.freshness.audience: warn to publish the metric tables without an audience'
        : `freshness: the reactivation audience is withheld (published empty) because its inputs are stale: ${reason}; ` +
            'checks.freshness.audience is warn',
    ),
  );
}

/** The audience gate's result when it withholds the audience (status warn), else undefined. */
export function withheldAudience(outcome: ChecksOutcome): CheckResult | undefined {
  return outcome.results.find(
    (r) => r.check === 'freshness' && r.target === AUDIENCE_FRESHNESS_TARGET && r.status === 'warn',
  );
}

/**
 * Empties the reactivation audience (the table and the models of its import files) so that nobody is mailed from
 * stale inputs;
 * audience_exclusions counts the candidates who would have been included under `withheld_stale_inputs`.
 */
export async function withholdAudience(db: Db): Promise<void> {
  const exportModels = ['int_audience_targets', ...AUDIENCE_EXPORT_PROFILES.map(audienceExportModel)];
  for (const table of ['reactivation_audience', ...exportModels]) {
    if (await db.tableExists(table)) await db.run(`delete from ${sqlIdent(table)}`);
  }
  if (await db.tableExists('audience_exclusions')) {
    await db.run(
      `insert into audience_exclusions (reason, step, customers, candidates, share_pct)
       select 'withheld_stale_inputs', max(step) + 1, sum(customers) filter (where reason like 'included_%'),
              max(candidates),
              coalesce(round(100.0 * sum(customers) filter (where reason like 'included_%') / nullif(max(candidates), 0), 2), 0)
       from audience_exclusions`,
    );
    await db.run(
      `update audience_exclusions set customers = 0, share_pct = 0 where reason like 'included_%'`,
    );
  }
}

async function volume(ctx: CheckContext, results: (CheckResult | null)[]): Promise<void> {
  const { db, config, previous } = ctx;
  const settings = config.checks.volume;
  if (!previous) return;
  for (const entity of ctx.configured) {
    const before = previous.landedRows[entity];
    if (before === undefined || before === 0) continue;
    const now = await through(ctx)(rawRowsRead(db, entity));
    const drop = (before - now) / before;
    results.push(
      outcome(
        'volume',
        entity,
        settings.severity,
        drop >= settings.max_drop_share ? before - now : 0,
        `volume: ${entity} has ${now} raw rows, ${(drop * 100).toFixed(0)}% fewer than the ${before} of the previous ` +
          `successful run ${previous.runId} (as of ${previous.asOf}); checks.volume.max_drop_share is ${settings.max_drop_share}. ` +
          `Check that the ${entity} export is complete`,
      ),
    );
  }
}

/** The raw rows of an entity. */
function rawRowsRead(db: Db, entity: Entity): TableRead<number> {
  const table = `raw_${entity}`;
  return { key: `rows ${table}`, tables: [table], read: () => db.number(`select count(*) from ${table}`) };
}

/** Rows and quarantined rows per entity. */
export async function quarantineCounts(
  db: Db,
  answer: ReadThrough = readNow,
): Promise<Record<string, QuarantineCount>> {
  const counts: Record<string, QuarantineCount> = {};
  for (const entity of ENTITIES) {
    const rows = await answer(rawRowsRead(db, entity));
    const quarantined = await db.number(`select count(*) from quarantine where entity = '${entity}'`);
    const share = rows === 0 ? 0 : quarantined / rows;
    counts[entity] = { rows, quarantined, share: Number(share.toFixed(6)) };
  }
  return counts;
}

/**
 * What to do about the most common reason rows of an entity are quarantined, where the config can fix it: a format
 * for timestamps, an expression for numbers, the customers export for orphans.
 */
export function quarantineHint(
  entity: string,
  column: string,
  reason: string,
  value: string | null = null,
): string | null {
  const mapping = `sources.${entity}.columns.${column}`;
  if (reason === 'unparseable timestamp') {
    const text = (value ?? '').trim();
    if (/^\d{10}(\d{3})?$/.test(text)) {
      const seconds = text.length === 10 ? '' : ' / 1000';
      return (
        `The export writes ${column} as Unix time (${text.length === 10 ? 'seconds' : 'milliseconds'}): map ` +
        `${mapping}: { expr: "to_timestamp(<the export's column>::bigint${seconds})" }`
      );
    }
    const { format, note } = timestampFormat(text);
    return (
      `If every ${column} is written this way, give its format: ${mapping}: { column: <the export's column>, ` +
      `format: "${format}" } (strptime codes${note})`
    );
  }
  if (reason === 'not a number') {
    const text = (value ?? '').trim();
    // 1.020,50: thousands dots and a decimal comma; 1,020.50 or $20: thousands commas or a currency sign.
    const expr = /^-?\d{1,3}(\.\d{3})+(,\d+)?$/.test(text)
      ? `replace(replace(<the export's column>, '.', ''), ',', '.')`
      : `regexp_replace(<the export's column>, '[^0-9.-]', '', 'g')`;
    return (
      `Numbers take a decimal point or a decimal comma, without currency signs or thousands separators; if the ` +
      `export writes them otherwise, map ${mapping}: { expr: "${expr}" }`
    );
  }
  if (reason.startsWith('not one of ') && value !== null) {
    const [accepted] = reason.slice('not one of '.length).split(', ');
    return (
      `If "${value}" means one of them, map it: ${mapping}: { expr: "case lower(<the export's column>) ` +
      `when '${value.replaceAll("'", "''")}' then '${accepted}' else <the export's column> end" }`
    );
  }
  if (reason.startsWith('unknown customer_id'))
    return (
      'Those customers are missing from the customers export, or their own customers rows are quarantined: export ' +
      'every customer and fix their rows (or leave the customers source out to derive the customers from the data)'
    );
  if (reason === 'duplicate key')
    return `The export repeats ${column} values and only the first row of each is kept: check the export's key`;
  return null;
}

/** A strptime format for a day-first or month-first date (and time) such as 05/01/2024 08:15 or 05.01.2024. */
function timestampFormat(text: string): { format: string; note: string } {
  const m = /^(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:[ T]\d{1,2}:\d{2}(:\d{2})?)?$/.exec(text);
  if (!m) return { format: '%d/%m/%Y %H:%M', note: '' };
  const [, first, sep, second, , seconds] = m;
  const time = text.length > 10 ? (seconds ? ' %H:%M:%S' : ' %H:%M') : '';
  const monthFirst = Number(second) > 12 && Number(first) <= 12;
  const format = monthFirst ? `%m${sep}%d${sep}%Y${time}` : `%d${sep}%m${sep}%Y${time}`;
  const ambiguous = Number(first) <= 12 && Number(second) <= 12;
  return { format, note: ambiguous ? `; %m${sep}%d${sep}%Y${time} if the month comes first` : '' };
}

async function quarantineShare(
  ctx: CheckContext,
  counts: Record<string, QuarantineCount>,
  results: (CheckResult | null)[],
): Promise<void> {
  const { db, config } = ctx;
  const maxShare = config.quality.max_quarantine_share;
  for (const entity of ENTITIES) {
    const c = counts[entity];
    if (!c || c.rows === 0) continue;
    const over = c.quarantined / c.rows > maxShare;
    let message = '';
    if (over) {
      const top = await db.all<{
        column_name: string;
        reason: string;
        n: string;
        example: string;
        example_value: string | null;
      }>(
        `select column_name, reason, count(*) as n,
                arg_min(
                    source_file || ' row ' || source_row
                        || coalesce(': ' || to_json(left(value, 40))::varchar, ''),
                    source_row
                ) as example,
                arg_min(value, source_row) as example_value
         from quarantine where entity = '${entity}' group by all order by n desc, column_name, reason limit 3`,
      );
      // What to do about each reason listed that the config can fix, in the same order.
      const hints = [
        ...new Set(top.map((t) => quarantineHint(entity, t.column_name, t.reason, t.example_value))),
      ].filter((h): h is string => h !== null);
      message =
        `quarantine: ${entity}: ${c.quarantined} of ${c.rows} rows (${(c.share * 100).toFixed(2)}%) quarantined, above ` +
        `quality.max_quarantine_share ${(maxShare * 100).toFixed(2)}%; most common: ` +
        top.map((t) => `${t.column_name} ${t.reason} (${t.n}x, e.g. ${t.example})`).join('; ') +
        hints.map((h) => `. ${h}`).join('');
    }
    results.push(outcome('quarantine', entity, config.checks.quarantine, over ? c.quarantined : 0, message));
  }
}

/** The reconciliation gate: one result per entity's rows and per entity's money. */
async function reconciliationChecks(
  ctx: CheckContext,
  results: (CheckResult | null)[],
): Promise<Reconciliation> {
  const severity = ctx.config.checks.reconciliation;
  const { reconciliation, problems } = await reconcile(ctx.db, ctx.configured, ctx.landing, through(ctx));
  for (const p of problems) {
    results.push(
      outcome('reconciliation', p.target, severity, 1, `reconciliation: ${p.target}: ${p.message}`),
    );
  }
  for (const [entity, rows] of Object.entries(reconciliation.rows)) {
    const failing = rows.balanced ? 0 : Math.max(1, Math.abs(rows.unaccounted));
    results.push(
      outcome(
        'reconciliation',
        `${entity} rows`,
        severity,
        failing,
        describeRows(entity as Entity, ctx.asOf, rows),
      ),
    );
  }
  for (const [entity, amounts] of Object.entries(reconciliation.money)) {
    results.push(
      outcome(
        'reconciliation',
        `${entity} amount`,
        severity,
        amounts.balanced ? 0 : 1,
        describeMoney(entity, ctx.asOf, amounts),
      ),
    );
  }
  return reconciliation;
}

/**
 * Every read of the gates, as readers for the transform stage (transforms/runner.ts): a run that drops tables
 * after their last reader takes these answers while the tables exist, into `reads`, and runChecks finds them there.
 */
export function gateReaders(
  ctx: CheckContext & { reads: GateReads },
): { name: string; tables: readonly string[]; run: () => Promise<void> }[] {
  const { db, reads } = ctx;
  const all: TableRead<unknown>[] = [
    ...ENTITIES.map((e) => rawRowsRead(db, e)),
    ...freshnessEntities(ctx).map((e) => newestRead(ctx, e)),
    ...testedModels().map((m) => modelTestsRead(ctx, m)),
    ...acceptedValuesReads(ctx),
    ...relationshipReads(ctx),
    ...reconciliationReads(db, ctx.configured, ctx.landing),
  ];
  return all.map((read) => ({
    name: `the gates (${read.key})`,
    tables: read.tables,
    run: () => reads.take(read),
  }));
}

/** Runs every configured gate; never throws for a failed gate (see `assertChecks`). */
export async function runChecks(ctx: CheckContext): Promise<ChecksOutcome> {
  const collected: (CheckResult | null)[] = [];
  const quarantine = await quarantineCounts(ctx.db, through(ctx));
  await quarantineShare(ctx, quarantine, collected);
  await volume(ctx, collected);
  await freshness(ctx, collected);
  await uniqueAndNotNull(ctx, collected);
  await acceptedValues(ctx, collected);
  await relationships(ctx, collected);
  const reconciliation = await reconciliationChecks(ctx, collected);
  const results = collected.filter((r): r is CheckResult => r !== null);
  return {
    results,
    quarantine,
    reconciliation,
    passed: results.filter((r) => r.status === 'pass').length,
    warned: results.filter((r) => r.status === 'warn').length,
    failed: results.filter((r) => r.status === 'fail').length,
  };
}

/** Throws a QualityError naming every failed `error` gate. */
export function assertChecks(outcome: ChecksOutcome): void {
  const failed = outcome.results.filter((r) => r.status === 'fail');
  if (failed.length === 0) return;
  throw new QualityError(
    `${failed.length} data-quality gate(s) failed, nothing was published: ${failed.map((f) => f.message).join(' | ')}. ` +
      'Fix the export (or the column mapping in the config, or the gate in the checks: section) and run again',
  );
}
