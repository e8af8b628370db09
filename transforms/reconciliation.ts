// The reconciliation of a run (spec "Reconciliation"), written into every manifest and checked before publishing:
//   rows, per configured entity: read = staged + quarantined + left out by `where` + after the as-of date;
//   money, for orders and invoices: the amounts of the landed rows = the amounts in the published facts
//   + those quarantined + those after the as-of date + those excluded for a stated reason.
// Every sum is computed by DuckDB in exact decimals; a difference of one cent is a difference.
import { ENTITIES, type Entity } from '../config/schema.js';
import { type Db, type Row, sqlIdent, sqlString } from '../pipelines/base/duckdb.js';

/** Where the rows of an entity went. */
export interface RowReconciliation {
  /** Rows the source gave: landed + left out by `where` (null when that count is not known). */
  read: number | null;
  /** Rows the source's `where` filter left out (null when not counted: a warehouse applies it in its query). */
  left_out_by_where: number | null;
  /** Rows that reached the raw table (after `where`). */
  landed: number;
  /** Rows in the published quarantine table. */
  quarantined: number;
  /** Good rows stamped after the end of the as-of date: outside this run, not errors. */
  after_as_of: number;
  /** Rows in the staging table the models read. */
  staged: number;
  /** landed - (staged + quarantined + after_as_of): 0 when every row is accounted for. */
  unaccounted: number;
  balanced: boolean;
}

/** A published column and the staged money it must carry. */
export interface MoneyFlow {
  /** `table.column` of the published facts. */
  column: string;
  /** The sum over the staged rows by the rule of the facts. */
  staged: number;
  /** The sum over the published column. */
  published: number;
}

/** Where the money of an entity went (orders: absolute amounts, a refund counts as money; invoices: amounts). */
export interface MoneyReconciliation {
  /** The amount column of the entity, and how it is summed. */
  measure: string;
  /** Sum over every landed row with a readable amount. */
  input: number;
  /** Sum over the quarantined rows (their rows without a readable amount are counted beside it). */
  quarantined: number;
  quarantined_rows_without_amount: number;
  /** Sum over the good rows after the as-of date. */
  after_as_of: number;
  /** Staged money the facts leave out on purpose, with the reason. */
  excluded: { reason: string; rows: number; amount: number }[];
  /** The published columns that carry the rest. */
  published: MoneyFlow[];
  /** input - (published + quarantined + after_as_of + excluded): 0 when every cent is accounted for. */
  unaccounted: number;
  balanced: boolean;
}

export interface Reconciliation {
  /** True when every row and every amount below is accounted for. */
  balanced: boolean;
  rows: Partial<Record<Entity, RowReconciliation>>;
  money: Partial<Record<'orders' | 'invoices', MoneyReconciliation>>;
}

/** The timestamp of each event entity: when its row happened (every entity but customers). */
export const EVENT_COLUMNS: Record<Exclude<Entity, 'customers'>, string> = {
  orders: 'ordered_at',
  subscriptions: 'started_at',
  activity: 'occurred_at',
  email_events: 'occurred_at',
  surveys: 'responded_at',
  tickets: 'opened_at',
  invoices: 'issued_at',
};

/** The timestamp by which staging keeps an entity's rows up to the end of the as-of date (stg_<entity>.sql). */
export const AS_OF_COLUMNS: Record<Entity, string | null> = { customers: null, ...EVENT_COLUMNS };

/** A problem that stops the reconciliation of an entity (a table that was not built). */
export interface ReconciliationProblem {
  target: string;
  message: string;
}

/**
 * A query of some tables whose answer a run may take early, while they exist (it drops the raw, checked and
 * staging tables after their last reader), and keep for the gates.
 */
export interface TableRead<T> {
  /** Names the answer: the same key is the same query. */
  key: string;
  tables: readonly string[];
  read(): Promise<T>;
}

/** Answers a read: from what was kept of it, or by reading now. */
export type ReadThrough = <T>(read: TableRead<T>) => Promise<T>;

/** Reads now (no run kept anything). */
export const readNow: ReadThrough = (read) => read.read();

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

async function missingTables(db: Db, tables: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const table of tables) if (!(await db.tableExists(table))) missing.push(table);
  return missing;
}

async function reconcileRows(
  db: Db,
  entity: Entity,
  landing: Landing | undefined,
): Promise<RowReconciliation> {
  const column = AS_OF_COLUMNS[entity];
  const after = column
    ? `(select count(*) from ${sqlIdent(`chk_${entity}`)} as chk, run_params
        where chk.rejection is null and chk.${sqlIdent(column)} >= run_params.as_of_end)`
    : '0';
  const row = await db.one(
    `select
        (select count(*) from ${sqlIdent(`raw_${entity}`)}) as landed,
        (select count(*) from quarantine where entity = ${sqlString(entity)}) as quarantined,
        ${after} as after_as_of,
        (select count(*) from ${sqlIdent(`stg_${entity}`)}) as staged`,
  );
  const landed = num(row?.landed);
  const quarantined = num(row?.quarantined);
  const afterAsOf = num(row?.after_as_of);
  const staged = num(row?.staged);
  const unaccounted = landed - staged - quarantined - afterAsOf;
  // Without a count from landing (a model built on tables landed elsewhere), nothing is known to be left out.
  const leftOut = landing ? landing.excluded : 0;
  const read = landing ? (landing.excluded === null ? null : landing.read) : landed;
  return {
    read,
    left_out_by_where: leftOut,
    landed,
    quarantined,
    after_as_of: afterAsOf,
    staged,
    unaccounted,
    balanced: unaccounted === 0 && (read === null || leftOut === null || read === landed + leftOut),
  };
}

/**
 * A money reconciliation from the row of its totals query, whose columns are input, quarantined,
 * quarantined_without, after_as_of, unaccounted, flows_match and the ones named here.
 */
function moneyOf(
  row: Row | undefined,
  names: {
    measure: string;
    excluded: { reason: string; rows: string; amount: string };
    published: { column: string; staged: string; published: string }[];
  },
): MoneyReconciliation {
  const unaccounted = num(row?.unaccounted);
  return {
    measure: names.measure,
    input: num(row?.input),
    quarantined: num(row?.quarantined),
    quarantined_rows_without_amount: num(row?.quarantined_without),
    after_as_of: num(row?.after_as_of),
    excluded: [
      {
        reason: names.excluded.reason,
        rows: num(row?.[names.excluded.rows]),
        amount: num(row?.[names.excluded.amount]),
      },
    ],
    published: names.published.map((p) => ({
      column: p.column,
      staged: num(row?.[p.staged]),
      published: num(row?.[p.published]),
    })),
    unaccounted,
    balanced: unaccounted === 0 && row?.flows_match === true,
  };
}

/**
 * Orders: every landed amount counts by its absolute value (a refund is money going back). The facts
 * (fct_customer_period) carry completed orders with a positive amount as revenue and refunded or negative
 * ones as refunds; a cancelled order with a positive amount is neither.
 */
async function reconcileOrders(db: Db): Promise<MoneyReconciliation> {
  const row = await db.one(
    `with totals as (
        select
            (select coalesce(sum(abs(amount)), 0) from chk_orders) as input,
            (select coalesce(sum(abs(amount)), 0) from chk_orders where rejection is not null) as quarantined,
            (select count(*) from chk_orders where rejection is not null and amount is null) as quarantined_without,
            (select coalesce(sum(abs(chk.amount)), 0) from chk_orders as chk, run_params
             where chk.rejection is null and chk.ordered_at >= run_params.as_of_end) as after_as_of,
            (select coalesce(sum(amount) filter (where status = 'completed' and amount > 0), 0) from stg_orders)
                as staged_revenue,
            (select coalesce(sum(abs(amount)) filter (where status = 'refunded' or amount < 0), 0) from stg_orders)
                as staged_refunds,
            (select coalesce(sum(amount) filter (where status = 'cancelled' and amount > 0), 0) from stg_orders)
                as cancelled,
            (select count(*) filter (where status = 'cancelled' and amount > 0) from stg_orders) as cancelled_rows,
            (select coalesce(sum(revenue), 0) from fct_customer_period) as revenue,
            (select coalesce(sum(refunds), 0) from fct_customer_period) as refunds
    )
    select *,
        input - (revenue + refunds + quarantined + after_as_of + cancelled) as unaccounted,
        staged_revenue = revenue and staged_refunds = refunds as flows_match
    from totals`,
  );
  return moneyOf(row, {
    measure: 'sum of |amount| (a refund counts as money)',
    excluded: {
      reason: 'cancelled orders (status cancelled, positive amount) are neither revenue nor refunds',
      rows: 'cancelled_rows',
      amount: 'cancelled',
    },
    published: [
      { column: 'fct_customer_period.revenue', staged: 'staged_revenue', published: 'revenue' },
      { column: 'fct_customer_period.refunds', staged: 'staged_refunds', published: 'refunds' },
    ],
  });
}

/** Invoices: the facts carry an invoice's amount in the period it falls due, once due by the as-of date. */
async function reconcileInvoices(db: Db): Promise<MoneyReconciliation> {
  const row = await db.one(
    `with totals as (
        select
            (select coalesce(sum(amount), 0) from chk_invoices) as input,
            (select coalesce(sum(amount), 0) from chk_invoices where rejection is not null) as quarantined,
            (select count(*) from chk_invoices where rejection is not null and amount is null) as quarantined_without,
            (select coalesce(sum(chk.amount), 0) from chk_invoices as chk, run_params
             where chk.rejection is null and chk.issued_at >= run_params.as_of_end) as after_as_of,
            (select coalesce(sum(stg.amount), 0) from stg_invoices as stg, run_params
             where stg.due_date <= run_params.as_of_date) as staged_due,
            (select coalesce(sum(stg.amount), 0) from stg_invoices as stg, run_params
             where stg.due_date > run_params.as_of_date) as not_due,
            (select count(*) from stg_invoices as stg, run_params
             where stg.due_date > run_params.as_of_date and stg.amount is not null) as not_due_rows,
            (select coalesce(sum(invoices_due_amount), 0) from fct_customer_period) as due
    )
    select *,
        input - (due + quarantined + after_as_of + not_due) as unaccounted,
        staged_due = due as flows_match
    from totals`,
  );
  return moneyOf(row, {
    measure: 'sum of amount',
    excluded: {
      reason: 'not yet due on the as-of date (an invoice counts in the period it falls due)',
      rows: 'not_due_rows',
      amount: 'not_due',
    },
    published: [
      { column: 'fct_customer_period.invoices_due_amount', staged: 'staged_due', published: 'due' },
    ],
  });
}

/** What landing counted for an entity (pipelines/stages/land.ts LandResult). */
export interface Landing {
  /** Rows read from the landed files, before `where`. */
  read: number;
  /** Rows `where` left out; null when the source applied it (a warehouse query), so they were never read. */
  excluded: number | null;
}

/** The rows of an entity, or the tables that were not built. */
export function rowsRead(
  db: Db,
  entity: Entity,
  landing: Landing | undefined,
): TableRead<RowReconciliation | { missing: string[] }> {
  const tables = [`raw_${entity}`, `chk_${entity}`, `stg_${entity}`, 'quarantine'];
  return {
    key: `reconciliation rows ${entity}`,
    tables,
    read: async () => {
      const missing = await missingTables(db, tables);
      return missing.length ? { missing } : reconcileRows(db, entity, landing);
    },
  };
}

/** The money of orders or invoices, or the tables that were not built. */
export function moneyRead(
  db: Db,
  entity: 'orders' | 'invoices',
): TableRead<MoneyReconciliation | { missing: string[] }> {
  const tables = [`chk_${entity}`, `stg_${entity}`, 'fct_customer_period'];
  return {
    key: `reconciliation amount ${entity}`,
    tables,
    read: async () => {
      const missing = await missingTables(db, tables);
      if (missing.length) return { missing };
      return entity === 'orders' ? reconcileOrders(db) : reconcileInvoices(db);
    },
  };
}

/** Every read of the reconciliation of the configured entities. */
export function reconciliationReads(
  db: Db,
  configured: readonly Entity[],
  landing: Partial<Record<Entity, Landing>> = {},
): TableRead<unknown>[] {
  return [
    ...ENTITIES.filter((e) => configured.includes(e)).map((e) => rowsRead(db, e, landing[e])),
    ...(['orders', 'invoices'] as const).filter((e) => configured.includes(e)).map((e) => moneyRead(db, e)),
  ];
}

/**
 * Reconciles every configured entity's rows (with landing's counts), and the money of orders and invoices;
 * `through` answers each read (from what a run kept of it).
 */
export async function reconcile(
  db: Db,
  configured: readonly Entity[],
  landing: Partial<Record<Entity, Landing>> = {},
  through: ReadThrough = readNow,
): Promise<{ reconciliation: Reconciliation; problems: ReconciliationProblem[] }> {
  const reconciliation: Reconciliation = { balanced: true, rows: {}, money: {} };
  const problems: ReconciliationProblem[] = [];
  for (const entity of ENTITIES) {
    if (!configured.includes(entity)) continue;
    const rows = await through(rowsRead(db, entity, landing[entity]));
    if ('missing' in rows) {
      problems.push({ target: `${entity} rows`, message: `table ${rows.missing.join(', ')} was not built` });
      continue;
    }
    reconciliation.rows[entity] = rows;
  }
  for (const entity of ['orders', 'invoices'] as const) {
    if (!configured.includes(entity)) continue;
    const amounts = await through(moneyRead(db, entity));
    if ('missing' in amounts) {
      problems.push({
        target: `${entity} amount`,
        message: `table ${amounts.missing.join(', ')} was not built`,
      });
      continue;
    }
    reconciliation.money[entity] = amounts;
  }
  reconciliation.balanced =
    problems.length === 0 &&
    Object.values(reconciliation.rows).every((r) => r.balanced) &&
    Object.values(reconciliation.money).every((m) => m.balanced);
  return { reconciliation, problems };
}

const money = (n: number) => n.toFixed(2);

/** One clause saying why an entity's rows do not add up (empty when they do). */
export function describeRows(entity: Entity, asOf: string, r: RowReconciliation): string {
  if (r.balanced) return '';
  if (r.unaccounted === 0) {
    return `reconciliation: ${entity} rows do not add up: ${r.read} read <> ${r.landed} landed + ${r.left_out_by_where} left out by sources.${entity}.where`;
  }
  return (
    `reconciliation: ${entity} rows do not add up: ${r.landed} landed <> ${r.staged} staged + ${r.quarantined} quarantined + ` +
    `${r.after_as_of} after the as-of date ${asOf} (${Math.abs(r.unaccounted)} row(s) ${r.unaccounted > 0 ? 'unaccounted for' : 'counted twice'})`
  );
}

/** One clause saying why an entity's money does not add up (empty when it does). */
export function describeMoney(entity: string, asOf: string, m: MoneyReconciliation): string {
  if (m.balanced) return '';
  const published = m.published.reduce((n, f) => n + f.published, 0);
  const parts = [
    `reconciliation: ${entity} amounts do not add up: input ${money(m.input)} <> published ${money(published)} ` +
      `(${m.published.map((f) => `${f.column} ${money(f.published)}`).join(' + ')}) + quarantined ${money(m.quarantined)} + ` +
      `after the as-of date ${asOf} ${money(m.after_as_of)}` +
      m.excluded.map((e) => ` + excluded ${money(e.amount)}`).join('') +
      ` (difference ${money(m.unaccounted)})`,
    ...m.published
      .filter((f) => Math.abs(f.staged - f.published) >= 0.005)
      .map((f) => `${f.column} is ${money(f.published)} but the staged rows carry ${money(f.staged)}`),
  ];
  return parts.join('; ');
}
