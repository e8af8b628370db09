// `churn init [folder]`: a commented churn.yaml for a folder of exports. DuckDB reads the columns of every CSV,
// Parquet and NDJSON file (for CSV also the delimiter, the header and the timestamp format it sniffs); a file
// whose name or columns it recognises becomes the source of a canonical entity, and the columns it recognises
// are mapped onto the canonical columns (config/schema.ts ENTITY_COLUMNS). What it cannot tell is left as a
// TODO comment; an entity with a required column it could not find is written commented out.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { parseConfig } from '../config/load.js';
import {
  type ColumnMapping,
  configSchema,
  ENTITIES,
  ENTITY_COLUMNS,
  type Entity,
  type FileFormat,
  SEGMENT_COLUMNS,
} from '../config/schema.js';
import { Db, sqlIdent, sqlString } from './base/duckdb.js';

export class InitError extends Error {
  override readonly name = 'InitError';
}

/** One export: a file, or the files of one format below a subfolder (a glob). */
export interface Dataset {
  /** Absolute path or glob, as DuckDB reads it. */
  path: string;
  /** The path relative to the exports folder, for messages. */
  name: string;
  format: FileFormat;
  columns: { name: string; type: string }[];
  /** CSV only: what DuckDB's sniffer found. */
  csv?: {
    delimiter: string;
    header: boolean;
    encoding?: 'latin-1';
    /** strptime formats of the columns it read as TIMESTAMP / DATE (null when ISO 8601). */
    timestampFormat: string | null;
    dateFormat: string | null;
  };
}

export interface EntityMatch {
  entity: Entity;
  dataset: Dataset;
  columns: Partial<Record<string, ColumnMapping>>;
  /** Why a mapping is what it is (an expression, a format), by canonical column. */
  notes: Partial<Record<string, string>>;
  /** Required canonical columns it could not map. */
  missing: string[];
  /** Source columns no canonical column took. */
  unused: string[];
  /** Lines to check (timestamps that do not parse, no header). */
  todo: string[];
  /** A `where:` filter it proposes (rows without a customer), with why. */
  where?: { sql: string; note: string };
  score: number;
}

export interface InitResult {
  text: string;
  datasets: Dataset[];
  matches: EntityMatch[];
  /** Datasets no entity took. */
  unused: Dataset[];
}

const EXTENSIONS: { suffix: string; format: FileFormat }[] = [
  { suffix: '.csv', format: 'csv' },
  { suffix: '.tsv', format: 'csv' },
  { suffix: '.csv.gz', format: 'csv' },
  { suffix: '.tsv.gz', format: 'csv' },
  { suffix: '.parquet', format: 'parquet' },
  { suffix: '.pq', format: 'parquet' },
  { suffix: '.ndjson', format: 'ndjson' },
  { suffix: '.jsonl', format: 'ndjson' },
  { suffix: '.ndjson.gz', format: 'ndjson' },
  { suffix: '.jsonl.gz', format: 'ndjson' },
];

function formatOf(file: string): { suffix: string; format: FileFormat } | undefined {
  const lower = file.toLowerCase();
  return EXTENSIONS.filter((e) => lower.endsWith(e.suffix)).sort(
    (a, b) => b.suffix.length - a.suffix.length,
  )[0];
}

/** `Customer ID`, `customerId` and `customer_id` are all `customerid`. */
export function normalise(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Words of a file name: `email_events.ndjson` -> email, events. */
function words(name: string): string[] {
  const stem = basename(name).replace(/(\.[a-z0-9]+)+$/i, '');
  return stem
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** File-name words that say which entity a file holds. */
const ENTITY_WORDS: Record<Entity, readonly string[]> = {
  customers: [
    'customer',
    'customers',
    'client',
    'clients',
    'user',
    'users',
    'account',
    'accounts',
    'contacts',
    'members',
  ],
  orders: ['order', 'orders', 'transaction', 'transactions', 'purchase', 'purchases', 'sale', 'sales'],
  subscriptions: ['subscription', 'subscriptions', 'subs', 'contracts', 'memberships', 'plans'],
  activity: [
    'activity',
    'activities',
    'event',
    'events',
    'sessions',
    'logins',
    'usage',
    'visits',
    'pageviews',
  ],
  email_events: ['email', 'emails', 'mail', 'mails', 'campaign', 'campaigns', 'newsletter', 'newsletters'],
  surveys: ['survey', 'surveys', 'nps', 'csat', 'review', 'reviews', 'feedback', 'responses', 'ratings'],
  tickets: ['ticket', 'tickets', 'support', 'cases', 'complaints', 'helpdesk'],
  invoices: ['invoice', 'invoices', 'billing', 'bills', 'payments'],
};

/** What a file name says: 3 for the entity's own name, 2 for one of its words, 0 for none. */
function nameScore(entity: Entity, name: string): number {
  const w = words(name);
  if (w.join('_') === entity || (entity === 'email_events' && w.includes('email') && w.includes('events'))) {
    return 3;
  }
  // `email_events` holds the word `events` too: it is e-mail, not product activity.
  if (entity === 'activity' && w.some((x) => ENTITY_WORDS.email_events.includes(x))) return 0;
  return w.some((x) => ENTITY_WORDS[entity].includes(x)) ? 2 : 0;
}

/** Source column names (normalised) each canonical column is recognised by, after its own name. */
const TIME_WORDS = ['timestamp', 'datetime', 'date', 'time', 'createdat', 'created'];
const COMMON: Record<string, readonly string[]> = {
  customer_id: [
    'customerid',
    'customer',
    'custid',
    'cust',
    'customerno',
    'customernumber',
    'customerkey',
    'clientid',
    'userid',
    'accountid',
    'memberid',
    'contactid',
  ],
  email: ['email', 'emailaddress', 'mail', 'useremail', 'customeremail'],
};
const SYNONYMS: Record<Entity, Record<string, readonly string[]>> = {
  customers: {
    customer_id: ['id'],
    first_name: ['firstname', 'givenname', 'fname', 'forename'],
    last_name: ['lastname', 'surname', 'familyname', 'lname'],
    country: ['country', 'countrycode', 'countryname', 'customercountry', 'customerstate'],
    segment: ['segment', 'customersegment', 'customertype', 'tier'],
    signup_at: [
      'signupdate',
      'signedupat',
      'registeredat',
      'registrationdate',
      'joinedat',
      'joindate',
      'createdat',
      'created',
      'datecreated',
      'firstseen',
    ],
    marketing_consent: [
      'marketingconsent',
      'acceptsmarketing',
      'optin',
      'emailoptin',
      'newsletteroptin',
      'consent',
    ],
    consent_at: ['consentdate', 'optinat', 'optindate', 'consentgivenat'],
    cancelled_at: ['canceledat', 'cancellationdate', 'churnedat', 'closedat', 'deletedat'],
  },
  orders: {
    order_id: [
      'id',
      'ordernumber',
      'orderno',
      'invoiceno',
      'invoicenumber',
      'invoiceid',
      'transactionid',
      'receiptid',
      'purchaseid',
      'saleid',
    ],
    ordered_at: [
      'orderdate',
      'orderdatetime',
      'ordertimestamp',
      'orderpurchasetimestamp',
      'purchasedat',
      'purchasedate',
      'invoicedate',
      'transactiondate',
      ...TIME_WORDS,
    ],
    amount: [
      'total',
      'ordertotal',
      'totalamount',
      'totalprice',
      'grandtotal',
      'revenue',
      'ordervalue',
      'netamount',
      'subtotal',
      'paymentvalue',
      'value',
      'sales',
    ],
    status: ['orderstatus', 'state'],
    currency: ['currencycode'],
  },
  subscriptions: {
    subscription_id: ['id', 'subid', 'contractid'],
    started_at: ['startdate', 'start', 'startedon', 'activatedat', 'subscribedat', 'createdat', 'created'],
    ended_at: ['enddate', 'end', 'endedon', 'cancelledat', 'canceledat', 'churnedat', 'terminatedat'],
    mrr: ['monthlyrevenue', 'monthlyamount', 'monthlyprice', 'amount', 'price'],
    plan: ['planname', 'tier', 'product'],
  },
  activity: {
    occurred_at: ['eventtime', 'eventtimestamp', 'eventdate', 'loggedat', 'seenat', ...TIME_WORDS],
    event_type: ['eventtype', 'event', 'eventname', 'action', 'activity', 'type'],
    quantity: ['qty', 'count', 'units'],
  },
  email_events: {
    occurred_at: ['eventtime', 'eventtimestamp', 'eventdate', 'sentat', ...TIME_WORDS],
    event_type: ['eventtype', 'event', 'eventname', 'action', 'type', 'status'],
    campaign_id: ['campaign', 'campaignname', 'mailingid', 'newsletterid'],
  },
  surveys: {
    response_id: ['id', 'reviewid', 'surveyresponseid', 'answerid'],
    responded_at: [
      'responsedate',
      'submittedat',
      'answeredat',
      'surveydate',
      'reviewcreationdate',
      'reviewdate',
      ...TIME_WORDS,
    ],
    survey_type: ['type', 'survey', 'surveyname', 'kind'],
    score: ['rating', 'npsscore', 'csatscore', 'reviewscore', 'value', 'answer'],
    comment: ['comments', 'text', 'feedback', 'reviewcommentmessage', 'message', 'verbatim'],
  },
  tickets: {
    ticket_id: ['id', 'caseid', 'issueid', 'ticketnumber'],
    opened_at: ['openeddate', 'opendate', 'submittedat', 'reportedat', ...TIME_WORDS],
    resolved_at: ['closedat', 'solvedat', 'resolutiondate', 'closeddate', 'resolveddate'],
    category: ['type', 'topic', 'reason', 'tickettype'],
    is_complaint: ['complaint'],
  },
  invoices: {
    invoice_id: ['id', 'invoiceno', 'invoicenumber', 'billid'],
    issued_at: ['invoicedate', 'issuedate', 'billedat', 'createdat', 'date'],
    due_at: ['duedate', 'paymentdue', 'paymentduedate'],
    paid_at: ['paymentdate', 'paiddate', 'settledat'],
    amount: ['total', 'totalamount', 'amountdue', 'invoiceamount', 'value'],
  },
};

const QUANTITY_WORDS = ['quantity', 'qty', 'units', 'count'];
const UNIT_PRICE_WORDS = ['unitprice', 'price', 'itemprice', 'priceeach'];

function canonicalColumns(entity: Entity): string[] {
  return [...ENTITY_COLUMNS[entity].required, ...ENTITY_COLUMNS[entity].optional];
}

/** strptime formats of ISO 8601 text, which staging reads without a format. */
const ISO_FORMAT = /^%Y-%m-%d([T ]%H:%M(:%S(\.%[fgn])?)?)?$/;

function isTimestampColumn(column: string): boolean {
  return column.endsWith('_at');
}

/** Maps the columns of a dataset onto one entity: own names first, then the synonyms in their order. */
export function matchEntity(entity: Entity, dataset: Dataset): EntityMatch {
  const byNorm = new Map<string, string>();
  for (const c of dataset.columns) if (!byNorm.has(normalise(c.name))) byNorm.set(normalise(c.name), c.name);
  const claimed = new Set<string>();
  const columns: Partial<Record<string, ColumnMapping>> = {};
  const notes: Partial<Record<string, string>> = {};
  const todo: string[] = [];
  const canonical = canonicalColumns(entity);
  const take = (column: string, candidates: readonly string[]): boolean => {
    for (const candidate of candidates) {
      const source = byNorm.get(candidate);
      if (source !== undefined && !claimed.has(source)) {
        claimed.add(source);
        columns[column] = source;
        return true;
      }
    }
    return false;
  };
  for (const column of canonical) take(column, [normalise(column)]);
  for (const column of canonical) {
    if (columns[column] !== undefined) continue;
    take(column, [...(COMMON[column] ?? []), ...(SYNONYMS[entity][column] ?? [])]);
  }
  // An amount from a quantity and a unit price (invoice lines).
  if ((entity === 'orders' || entity === 'invoices') && columns.amount === undefined) {
    const free = (list: readonly string[]) =>
      list.map((w) => byNorm.get(w)).find((c): c is string => c !== undefined && !claimed.has(c));
    const quantity = free(QUANTITY_WORDS);
    const price = free(UNIT_PRICE_WORDS);
    if (quantity && price) {
      claimed.add(quantity);
      claimed.add(price);
      columns.amount = {
        expr: `round(try_cast(${sqlIdent(quantity)} as double) * try_cast(${sqlIdent(price)} as double), 2)`,
      };
      notes.amount = `${quantity} x ${price}`;
    }
  }
  // A survey export of one kind says which in its name.
  if (entity === 'surveys' && columns.survey_type === undefined) {
    const w = words(dataset.name);
    const kind = w.includes('nps')
      ? 'nps'
      : w.some((x) => ['csat', 'review', 'reviews', 'ratings'].includes(x))
        ? 'csat'
        : null;
    if (kind) {
      columns.survey_type = { expr: `'${kind}'` };
      notes.survey_type = `every response of ${dataset.name} is ${kind.toUpperCase()}`;
    }
  }
  // Timestamps the CSV sniffer read in a format other than ISO 8601.
  for (const column of canonical) {
    const source = columns[column];
    if (!isTimestampColumn(column) || typeof source !== 'string') continue;
    const type = dataset.columns.find((c) => c.name === source)?.type ?? '';
    const format =
      type === 'TIMESTAMP' ? dataset.csv?.timestampFormat : type === 'DATE' ? dataset.csv?.dateFormat : null;
    if (format && !ISO_FORMAT.test(format)) {
      columns[column] = { column: source, format };
      notes[column] = `read as ${format}`;
    } else if (/INT|DOUBLE|DECIMAL|FLOAT/.test(type)) {
      todo.push(
        `${column} comes from ${source}, a number: if it is a Unix epoch, map it as { expr: "to_timestamp(${sqlIdent(source).replaceAll('"', '\\"')})" }`,
      );
    }
  }
  if (dataset.csv && !dataset.csv.header) {
    todo.push('the file has no header row: name its columns with csv.names and map them under columns');
  }
  const missing = ENTITY_COLUMNS[entity].required.filter((c) => columns[c] === undefined);
  const unused = dataset.columns.map((c) => c.name).filter((c) => !claimed.has(c));
  const mapped = Object.keys(columns).length;
  const score = nameScore(entity, dataset.name) * 10 + mapped - missing.length * 5;
  return { entity, dataset, columns, notes, missing, unused, todo, score };
}

/** Each entity gets the dataset that fits it best; a dataset serves one entity at most. */
export function assignEntities(datasets: Dataset[]): EntityMatch[] {
  const candidates: EntityMatch[] = [];
  for (const dataset of datasets) {
    for (const entity of ENTITIES) {
      const match = matchEntity(entity, dataset);
      const named = nameScore(entity, dataset.name) > 0;
      // Recognised: by its name, or because every required column (beyond customer_id) is there.
      const byColumns =
        match.missing.length === 0 && ENTITY_COLUMNS[entity].required.some((c) => c !== 'customer_id');
      if (named || byColumns) candidates.push(match);
    }
  }
  candidates.sort((a, b) => b.score - a.score || a.dataset.name.localeCompare(b.dataset.name));
  const taken = new Set<Dataset>();
  const byEntity = new Map<Entity, EntityMatch>();
  for (const match of candidates) {
    if (taken.has(match.dataset) || byEntity.has(match.entity)) continue;
    taken.add(match.dataset);
    byEntity.set(match.entity, match);
  }
  return ENTITIES.map((e) => byEntity.get(e)).filter((m): m is EntityMatch => m !== undefined);
}

/** The exports of a folder: its files, and the files of one format below each subfolder. */
export function findDatasets(folder: string): Omit<Dataset, 'columns' | 'csv'>[] {
  const found: Omit<Dataset, 'columns' | 'csv'>[] = [];
  const entries = readdirSync(folder, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isFile()) {
      const kind = formatOf(entry.name);
      if (kind) found.push({ path, name: entry.name, format: kind.format });
    } else if (entry.isDirectory()) {
      const files = readdirSync(path, { recursive: true, encoding: 'utf8' })
        .filter((f) => !f.split(sep).some((part) => part.startsWith('.')))
        .map((f) => ({ f, kind: formatOf(f) }))
        .filter((x) => x.kind !== undefined && statSync(join(path, x.f)).isFile());
      const suffixes = new Set(files.map((x) => x.kind?.suffix));
      const first = files[0]?.kind;
      if (first && suffixes.size === 1) {
        found.push({
          path: join(path, '**', `*${first.suffix}`),
          name: `${entry.name}/`,
          format: first.format,
        });
      }
    }
  }
  return found;
}

/** A table function reading a Parquet or NDJSON dataset (CSV: profileFrom, with the sniffed dialect). */
function reader(dataset: Pick<Dataset, 'path' | 'format'>): string {
  const path = sqlString(dataset.path);
  if (dataset.format === 'parquet') return `read_parquet(${path})`;
  return `read_json(${path}, format = 'newline_delimited')`;
}

interface SniffRow {
  [key: string]: string | number | boolean | null | { name: string; type: string }[];
  Delimiter: string;
  HasHeader: boolean;
  Columns: { name: string; type: string }[];
  DateFormat: string | null;
  TimestampFormat: string | null;
}

/** Reads the columns (and for CSV the dialect) of one dataset. */
async function describeDataset(db: Db, found: Omit<Dataset, 'columns' | 'csv'>): Promise<Dataset> {
  if (found.format !== 'csv') {
    const rows = await db.all<{ column_name: string; column_type: string }>(
      `describe select * from ${reader(found)}`,
    );
    return { ...found, columns: rows.map((r) => ({ name: r.column_name, type: r.column_type })) };
  }
  // sniff_csv reads one file: the first of a folder's.
  const first = found.path.includes('*') ? firstFile(found.path) : found.path;
  const sniff = async (encoding?: string) =>
    (
      await db.all<SniffRow>(
        `select * from sniff_csv(${sqlString(first)}${encoding ? `, encoding = ${sqlString(encoding)}` : ''})`,
      )
    )[0];
  let row: SniffRow | undefined;
  let encoding: 'latin-1' | undefined;
  try {
    row = await sniff();
  } catch (err) {
    if (!/unicode|utf-8/i.test((err as Error).message)) throw err;
    encoding = 'latin-1';
    row = await sniff(encoding);
  }
  if (!row) throw new InitError(`DuckDB could not read ${found.name}`);
  return {
    ...found,
    columns: row.Columns.map((c) => ({ name: c.name, type: c.type })),
    csv: {
      delimiter: row.Delimiter,
      header: row.HasHeader,
      encoding,
      timestampFormat: row.TimestampFormat,
      dateFormat: row.DateFormat,
    },
  };
}

function firstFile(glob: string): string {
  const root = glob.slice(0, glob.indexOf(`${sep}**`));
  const suffix = glob.slice(glob.lastIndexOf('*') + 1);
  const file = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .sort()
    .find((f) => f.endsWith(suffix));
  if (!file) throw new InitError(`no file matches ${glob}`);
  return join(root, file);
}

/** How many rows the checks of a mapped export read (its first rows). */
const PROFILE_ROWS = 100_000;
/** Fewer bad rows than this share are quarantined by a run (quality.max_quarantine_share): nothing to change. */
const QUARANTINE_SHARE = configSchema.parse({}).quality.max_quarantine_share;

/** The rows of a dataset as landing reads them (CSV as text, with the sniffed delimiter and encoding). */
function profileFrom(dataset: Dataset): string {
  if (dataset.format !== 'csv') return reader(dataset);
  const options = ['all_varchar = true'];
  if (dataset.csv?.encoding) options.push(`encoding = ${sqlString(dataset.csv.encoding)}`);
  if (dataset.csv && dataset.csv.delimiter !== ',')
    options.push(`delim = ${sqlString(dataset.csv.delimiter)}`);
  return `read_csv(${sqlString(dataset.path)}, ${options.join(', ')})`;
}

/**
 * What the first rows of a mapped export show that would fail a run's quarantine gate: many rows without a
 * customer (left out with a `where:`, as they cannot be attributed) and an id that repeats (one row per line of
 * an order or invoice: the row number makes each line its own record, as examples/online_retail.yaml does).
 */
async function profileMatch(db: Db, match: EntityMatch): Promise<void> {
  if (match.missing.length > 0) return;
  const own = ENTITY_COLUMNS[match.entity].required.find((c) => c.endsWith('_id') && c !== 'customer_id');
  const ownSource = own ? match.columns[own] : undefined;
  const customer = ENTITY_COLUMNS[match.entity].required.includes('customer_id')
    ? match.columns.customer_id
    : undefined;
  const ownCol = typeof ownSource === 'string' ? sqlIdent(ownSource) : null;
  const custCol = typeof customer === 'string' ? sqlIdent(customer) : null;
  if (!ownCol && !custCol) return;
  const row = await db.one<{
    n: number | string;
    dup: number | string | null;
    blank: number | string | null;
  }>(
    `select count(*) as n,
        ${ownCol ? `count(${ownCol}) - count(distinct ${ownCol})` : 'null'} as dup,
        ${custCol ? `count(*) filter (where ${custCol} is null or trim(cast(${custCol} as varchar)) = '')` : 'null'} as blank
     from (select * from ${profileFrom(match.dataset)} limit ${PROFILE_ROWS})`,
  );
  const n = Number(row?.n ?? 0);
  const dup = Number(row?.dup ?? 0);
  const blank = Number(row?.blank ?? 0);
  const share = (k: number) => `${k.toLocaleString('en-US')} of the first ${n.toLocaleString('en-US')} rows`;
  if (custCol && typeof customer === 'string' && blank > n * QUARANTINE_SHARE) {
    match.where = {
      sql: `${custCol} is not null and trim(${custCol}) <> ''`,
      note: `${share(blank)} have no ${customer}: they cannot be attributed to a customer and are left out (not quarantined)`,
    };
  }
  if (own && ownCol && typeof ownSource === 'string' && dup > n * QUARANTINE_SHARE) {
    if (match.dataset.path.includes('*')) {
      match.todo.push(
        `${ownSource} repeats (${share(dup)}): ${own} must be unique; map it to a unique column or expression`,
      );
    } else {
      match.columns[own] = { expr: `${ownCol} || '-' || _source_row` };
      match.notes[own] =
        `${ownSource} repeats (${share(dup)}): one ${match.entity.replace(/s$/, '')} per row`;
    }
  }
}

/** strptime formats tried on timestamps that are not ISO 8601, the more common (and the more precise) first. */
const TIMESTAMP_FORMATS = [
  '%m/%d/%Y %H:%M:%S',
  '%m/%d/%Y %H:%M',
  '%d/%m/%Y %H:%M:%S',
  '%d/%m/%Y %H:%M',
  '%d.%m.%Y %H:%M:%S',
  '%d.%m.%Y %H:%M',
  '%Y/%m/%d %H:%M:%S',
  '%d-%m-%Y %H:%M:%S',
  '%m/%d/%Y',
  '%d/%m/%Y',
  '%d.%m.%Y',
  '%Y/%m/%d',
  '%d-%m-%Y',
  '%Y%m%d',
  '%d %b %Y',
  '%b %d, %Y',
];

/**
 * Text timestamps that staging would not read (not ISO 8601): the first format of TIMESTAMP_FORMATS that reads
 * every value of the first 1,000 rows is mapped as { column, format }; when another one reads them too (day and
 * month both 12 or less), a TODO says so; when none does, a TODO asks for it.
 */
async function readTimestamps(db: Db, match: EntityMatch): Promise<void> {
  for (const [column, mapping] of Object.entries(match.columns)) {
    if (!isTimestampColumn(column) || typeof mapping !== 'string') continue;
    const type = match.dataset.columns.find((c) => c.name === mapping)?.type ?? '';
    if (type !== 'VARCHAR') continue;
    const col = sqlIdent(mapping);
    const fits = TIMESTAMP_FORMATS.map(
      (f, i) => `count(*) filter (where try_strptime(v, ${sqlString(f)}) is null) = 0 as f${i}`,
    );
    const row = await db.one<Record<string, string | boolean | null>>(
      `select any_value(v) filter (where try_cast(v as timestamptz) is null) as bad, ${fits.join(', ')}
       from (select trim(cast(${col} as varchar)) as v from ${profileFrom(match.dataset)} limit 1000)
       where v is not null and v <> ''`,
    );
    const bad = row?.bad;
    if (typeof bad !== 'string') continue;
    const formats = TIMESTAMP_FORMATS.filter((_, i) => row?.[`f${i}`] === true);
    const [format, ...others] = formats;
    if (format === undefined) {
      match.todo.push(
        `${column}: values of ${mapping} such as ${JSON.stringify(bad)} do not read as timestamps; ` +
          `give their format, e.g. ${column}: { column: ${JSON.stringify(mapping)}, format: "%d/%m/%Y %H:%M" }`,
      );
      continue;
    }
    match.columns[column] = { column: mapping, format };
    match.notes[column] = `values such as ${JSON.stringify(bad)}`;
    const swapped = format.replace('%d', '%§').replace('%m', '%d').replace('%§', '%m');
    const other = others.find((f) => f === swapped);
    if (other) {
      match.todo.push(
        `${column}: the values of ${mapping} also read as ${other}: check which one the export uses`,
      );
    }
  }
}

// --- writing the YAML ---------------------------------------------------------------------------------

/** A scalar in block context, quoted only when YAML needs it. */
function scalar(value: string): string {
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

function mappingText(mapping: ColumnMapping): string {
  if (typeof mapping === 'string') return scalar(mapping);
  if ('column' in mapping)
    return `{ column: ${JSON.stringify(mapping.column)}, format: ${JSON.stringify(mapping.format)} }`;
  return `{ expr: ${JSON.stringify(mapping.expr)} }`;
}

function describeColumns(entity: Entity): string {
  const { required, optional } = ENTITY_COLUMNS[entity];
  return `${required.join(', ')} (required)${optional.length ? `; ${optional.join(', ')}` : ''}`;
}

/** A path as the config names it: relative to the config's folder, or absolute when that climbs more than once. */
function configPath(configDir: string, path: string): string {
  const rel = relative(configDir, path);
  const climbs = rel.split(sep).filter((part) => part === '..').length;
  if (climbs > 1 || isAbsolute(rel)) return path.split(sep).join('/');
  return rel.split(sep).join('/') || '.';
}

function sourceLines(match: EntityMatch, configDir: string): string[] {
  const d = match.dataset;
  const relPath = configPath(configDir, d.path);
  const lines: string[] = [];
  const kind = d.format === 'csv' ? 'CSV' : d.format === 'parquet' ? 'Parquet' : 'NDJSON';
  lines.push(`  # ${match.entity} <- ${d.name} (${kind}, ${d.columns.length} columns)`);
  const body: string[] = ['type: local', `path: ${scalar(relPath)}`];
  if (d.format !== 'csv') body.push(`format: ${d.format}`);
  const csv: string[] = [];
  if (d.csv && d.csv.delimiter !== ',') csv.push(`delimiter: ${JSON.stringify(d.csv.delimiter)}`);
  if (d.csv && !d.csv.header) csv.push('header: false');
  if (d.csv?.encoding) csv.push(`encoding: ${d.csv.encoding}`);
  if (csv.length) body.push(`csv: { ${csv.join(', ')} }`);
  if (match.where) body.push(`where: ${JSON.stringify(match.where.sql)}  # ${match.where.note}`);
  const mapped = canonicalColumns(match.entity)
    .map((c) => [c, match.columns[c]] as const)
    .filter((e): e is readonly [string, ColumnMapping] => e[1] !== undefined);
  const renamed = mapped.filter(([canonical, m]) => m !== canonical);
  const same = mapped.filter(([canonical, m]) => m === canonical);
  if (renamed.length) {
    body.push('columns:');
    for (const [canonical, mapping] of renamed) {
      const note = match.notes[canonical];
      body.push(`  ${canonical}: ${mappingText(mapping)}${note ? `  # ${note}` : ''}`);
    }
  }
  const comments: string[] = [];
  if (same.length) comments.push(`named as in the export: ${same.map(([c]) => c).join(', ')}`);
  for (const column of match.missing) {
    comments.push(
      `TODO: no column for ${column} (required): map it under columns, e.g. ${column}: <export column>`,
    );
  }
  const notFound = ENTITY_COLUMNS[match.entity].optional.filter((c) => match.columns[c] === undefined);
  if (notFound.length)
    comments.push(`not found (optional, may be mapped under columns): ${notFound.join(', ')}`);
  for (const t of match.todo) comments.push(`TODO: ${t}`);
  if (match.unused.length) comments.push(`not used: ${match.unused.join(', ')}`);
  const active = match.missing.length === 0;
  if (!active) {
    lines.push(`  # left out until its required columns are mapped: remove the leading "# " once they are`);
  }
  const prefix = active ? '  ' : '  # ';
  lines.push(`${prefix}${match.entity}:`);
  for (const line of body) lines.push(`${prefix}  ${line}`);
  for (const comment of comments) lines.push(`    # ${comment}`);
  return lines;
}

export interface InitOptions {
  /** The exports folder. */
  folder: string;
  /** Where the config will be written (its folder is what relative paths start from). */
  configFile: string;
  /** The version line of the header. */
  version?: string;
  /** Written beside the config and named in its yaml-language-server line, when given. */
  schemaFile?: string;
  timeZone?: string;
}

export async function initConfig(options: InitOptions): Promise<InitResult> {
  const folder = resolve(options.folder);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new InitError(`${options.folder} is not a folder; give the folder that holds the exports`);
  }
  const found = findDatasets(folder);
  if (found.length === 0) {
    throw new InitError(
      `no CSV, Parquet or NDJSON files in ${folder} (looked for ${EXTENSIONS.map((e) => `*${e.suffix}`).join(', ')})`,
    );
  }
  const db = await Db.open();
  let datasets: Dataset[];
  let matches: EntityMatch[];
  try {
    datasets = [];
    for (const f of found) {
      try {
        datasets.push(await describeDataset(db, f));
      } catch (err) {
        if (err instanceof InitError) throw err;
        throw new InitError(`DuckDB cannot read ${f.name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    matches = assignEntities(datasets);
    for (const match of matches) {
      await profileMatch(db, match);
      await readTimestamps(db, match);
    }
  } finally {
    db.close();
  }
  const configDir = dirname(resolve(options.configFile));
  const text = renderConfig({ folder, configDir, datasets, matches, options });
  // What init writes must load: a mistake here is a bug, not the user's.
  parseConfig(text, options.configFile);
  const used = new Set(matches.map((m) => m.dataset));
  return { text, datasets, matches, unused: datasets.filter((d) => !used.has(d)) };
}

function renderConfig(input: {
  folder: string;
  configDir: string;
  datasets: Dataset[];
  matches: EntityMatch[];
  options: InitOptions;
}): string {
  const { folder, configDir, datasets, matches, options } = input;
  const folderName = configPath(configDir, folder);
  const configName = basename(options.configFile);
  const timeZone = options.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
  const today = new Date().toISOString().slice(0, 10);
  const recognised = matches.map((m) => m.entity);
  const lines: string[] = [];
  if (options.schemaFile) lines.push(`# yaml-language-server: $schema=${basename(options.schemaFile)}`);
  lines.push(
    `# ${configName}: the exports in ${folderName}/, as \`churn init\`${options.version ? ` (churn-pipeline ${options.version})` : ''} read them on ${today}.`,
    `# Recognised: ${recognised.length ? recognised.join(', ') : 'nothing yet'} (${matches.length} of ${datasets.length} exports).`,
    matches.some((m) => m.todo.length > 0 || m.missing.length > 0)
      ? '# Check every line marked TODO, then:'
      : '# Then:',
    `#   churn validate --config ${configName}   # reads every source and models it in memory; writes nothing`,
    `#   churn run --config ${configName}        # publishes the tables to output.path`,
    "# Paths are relative to this file's folder. A key left out takes its default; `churn schema` prints the",
    '# JSON schema of every key (editors with the YAML language server complete and check this file with it).',
    '',
    "# The time zone of timestamps without an offset, and of the calendar (periods, yesterday's date).",
    `business_time_zone: ${scalar(timeZone)}`,
    '# day, week, month or quarter: the periods of the customer-period facts and the metric tables.',
    'period_grain: month',
    '',
    '# One source per canonical entity (config/schema.ts ENTITY_COLUMNS). `columns` maps a canonical column to an',
    '# export column, to { column, format } for timestamps in another format (strptime), or to { expr } (DuckDB SQL).',
  );
  const byEntity = new Map(matches.map((m) => [m.entity, m]));
  lines.push(
    matches.some((m) => m.missing.length === 0)
      ? 'sources:'
      : 'sources: {} # TODO: no export could be mapped as it is: fill in an entry below, uncomment it and remove the {}',
  );
  for (const entity of ENTITIES) {
    const match = byEntity.get(entity);
    if (match) {
      lines.push(...sourceLines(match, configDir));
      continue;
    }
    lines.push(
      `  # ${entity}: no export recognised. Columns: ${describeColumns(entity)}`,
      `  # ${entity}:`,
      '  #   type: local',
      `  #   path: ${folderName === '.' ? '' : `${folderName}/`}${entity}.csv`,
    );
  }
  const customers = byEntity.get('customers');
  const segments = SEGMENT_COLUMNS.filter(
    (c) =>
      (c === 'segment' || c === 'country') &&
      customers?.missing.length === 0 &&
      customers.columns[c] !== undefined,
  );
  const unused = datasets.filter((d) => !matches.some((m) => m.dataset === d));
  lines.push(
    '',
    '# Customer columns that split cohort_retention, churn_summary and survey_trends (an `all` row is always there).',
    `segment_by: [${segments.join(', ')}]`,
    '# csat_scale: 5          # the CSAT answer scale: 5 or 10',
    '',
    'output:',
    '  type: local',
    '  path: out              # Parquet per table, exports/ (import files), catalog.duckdb; _state/: ledger and lock',
    'state_dir: .churn        # landed files of remote sources, incremental state',
  );
  if (unused.length) {
    lines.push('', '# Exports no entity took:');
    for (const d of unused) {
      const cols = d.columns.map((c) => c.name);
      lines.push(`#   ${d.name}: ${cols.slice(0, 12).join(', ')}${cols.length > 12 ? ', ...' : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the config (and the schema beside it); refuses to overwrite unless forced. */
export async function writeInit(
  file: string,
  text: string,
  force: boolean,
  schema?: { file: string; text: string },
): Promise<void> {
  for (const f of [file, ...(schema ? [schema.file] : [])]) {
    if (!force && existsSync(f)) throw new InitError(`${f} exists; pass --force to overwrite it`);
  }
  await writeFile(file, text);
  if (schema) await writeFile(schema.file, schema.text);
}

// --- `churn schema` -----------------------------------------------------------------------------------

type JsonSchema = { [key: string]: unknown };

function isObject(value: unknown): value is JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The JSON schema of churn.yaml (draft 2020-12), from the zod schema that validates it: what a config may say,
 * before defaults are applied. A map keyed by a fixed set of names (sources: customers, orders, ...) is written
 * as named properties so that editors complete the names; a large shared value schema goes under $defs.
 */
export function configJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const defs: JsonSchema = isObject(schema.$defs) ? schema.$defs : {};
  const visit = (node: unknown, key: string): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child, key);
      return;
    }
    if (!isObject(node)) return;
    for (const [k, child] of Object.entries(node)) visit(child, k);
    const names = isObject(node.propertyNames) ? node.propertyNames.enum : undefined;
    const value = node.additionalProperties;
    if (!Array.isArray(names) || !isObject(value)) return;
    let entry: JsonSchema = value;
    if (JSON.stringify(value).length > 400) {
      const name = key.endsWith('s') ? key.slice(0, -1) : `${key}_entry`;
      defs[name] = value;
      entry = { $ref: `#/$defs/${name}` };
    }
    node.properties = Object.fromEntries(names.map((n) => [String(n), entry]));
    node.additionalProperties = false;
    delete node.propertyNames;
  };
  visit(schema, 'config');
  return {
    $schema: schema.$schema,
    title: 'churn.yaml',
    description:
      'Configuration of churn-pipeline (`churn run --config churn.yaml`). Every key has a default; a config says what differs.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema' && k !== '$defs')),
    ...(Object.keys(defs).length ? { $defs: defs } : {}),
  };
}
