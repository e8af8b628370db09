// The import files of a run, beside the Parquet tables (never inside a table's folder, so that a reader's glob over a
// table reads Parquet only):
//   exports/reactivation_audience/reactivation_audience_<tool>.csv   the target group, one file per configured tool
//   exports/crm_flags/crm_flags.csv                                   every customer's early-warning flag, for a CRM
// DuckDB writes each from its model (sql/audiences/), whose SQL gives the tool's header names and cell formats and
// makes every text cell formula-safe; this module only picks the models, the CSV dialect and the byte order mark.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type AudienceExportEntry,
  type AudienceExportProfile,
  audienceExportModel,
  type Config,
} from '../../config/schema.js';
import { type Db, sqlIdent, sqlString } from '../base/duckdb.js';
import type { FileEntry } from './export.js';

export const EXPORTS_DIR = 'exports';

/** How one tool's file is written, and where its format is documented. */
export interface ExportProfile {
  /** The model (sql/audiences/<model>.sql) whose rows and header names the file holds. */
  model: string;
  /** Sort order of the rows (so that the file is byte-identical for the same input). */
  orderBy: string;
  /** Every field quoted (files with names and free text), or only where a field needs it (hashes never do). */
  quoteAll: boolean;
  /** The tool's documented limit for one import file, in bytes: a larger file is published with a note. */
  maxBytes?: number;
  /** The documentation its header and cell formats follow. */
  documentation: string;
}

const MB = 1_000_000;

export const AUDIENCE_EXPORTS: Record<AudienceExportProfile, ExportProfile> = {
  mailchimp: {
    model: audienceExportModel('mailchimp'),
    orderBy: '"Priority"',
    quoteAll: true,
    documentation: 'Mailchimp: Format guidelines for your import file',
  },
  klaviyo: {
    model: audienceExportModel('klaviyo'),
    orderBy: '"Priority"',
    quoteAll: true,
    maxBytes: 50 * MB,
    documentation: 'Klaviyo: Create and add contacts to a new list (CSV requirements)',
  },
  hubspot: {
    model: audienceExportModel('hubspot'),
    orderBy: '"Reactivation Priority"',
    quoteAll: true,
    // 512 MB on paid plans, 20 MB with the free tools.
    maxBytes: 512 * MB,
    documentation: 'HubSpot: Set up import files',
  },
  braze: {
    model: audienceExportModel('braze'),
    orderBy: 'churn_priority_rank',
    quoteAll: true,
    maxBytes: 500 * MB,
    documentation: 'Braze: CSV import; Standard attributes',
  },
  google_ads: {
    model: audienceExportModel('google_ads'),
    orderBy: '"Email"',
    quoteAll: false,
    documentation: 'Google Ads Help: Formatting guidelines for uploading hashed data (Customer Match)',
  },
  meta: {
    model: audienceExportModel('meta'),
    orderBy: 'email',
    quoteAll: false,
    documentation:
      'Meta Business Help Centre: How to format a customer list; Marketing API: Customer File Custom Audiences',
  },
};

export const CRM_FLAGS: ExportProfile = {
  model: 'crm_flags',
  orderBy: 'customer_id',
  quoteAll: true,
  documentation:
    'RFC 4180; reasons separated by semicolons as HubSpot and Salesforce import multi-value fields',
};

/** What the manifest says of one export file. */
export interface ExportManifest {
  kind: 'audience' | 'crm_flags';
  /** The tool of an audience file. */
  profile: AudienceExportProfile | null;
  rows: number;
  /** The header, in order. */
  columns: string[];
  /** Whether the file starts with a UTF-8 byte order mark (the excel option). */
  excel_bom: boolean;
  files: FileEntry[];
}

/** The UTF-8 byte order mark that tells Excel the encoding. */
export const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The configured audience exports as `{ profile, excel }`, in the config's order. */
export function audienceExports(
  config: Pick<Config, 'audience'>,
): { profile: AudienceExportProfile; excel: boolean }[] {
  return config.audience.exports.map((entry: AudienceExportEntry) =>
    typeof entry === 'string' ? { profile: entry, excel: false } : entry,
  );
}

/**
 * Writes the configured exports into `<stagedDir>/exports/`: the audience file of each configured tool and, with
 * crm_flags.enabled, the CRM flags. Returns their manifest entries (keyed by file name without `.csv`) and a note
 * for each file above its tool's size limit.
 */
export async function writeExports(
  db: Db,
  stagedDir: string,
  config: Pick<Config, 'audience' | 'crm_flags'>,
): Promise<{ exports: Record<string, ExportManifest>; notes: string[] }> {
  const exports: Record<string, ExportManifest> = {};
  const notes: string[] = [];
  const write = async (
    kind: ExportManifest['kind'],
    profile: AudienceExportProfile | null,
    spec: ExportProfile,
    folder: string,
    excel: boolean,
  ) => {
    const name = spec.model;
    const rel = `${EXPORTS_DIR}/${folder}/${name}.csv`;
    const path = join(stagedDir, rel);
    await mkdir(join(stagedDir, EXPORTS_DIR, folder), { recursive: true });
    await writeCsv(db, `select * from ${sqlIdent(spec.model)} order by ${spec.orderBy}`, path, {
      quoteAll: spec.quoteAll,
      bom: excel,
      scratch: join(stagedDir, `.${name}.csv.tmp`),
    });
    const { size } = await stat(path);
    if (spec.maxBytes !== undefined && size > spec.maxBytes) {
      notes.push(
        `${rel} is ${Math.round(size / MB)} MB, above the ${Math.round(spec.maxBytes / MB)} MB that ${profile ?? 'the tool'} takes in one import: split it before uploading`,
      );
    }
    const columns = await db.all<{ column_name: string }>(`describe ${sqlIdent(spec.model)}`);
    exports[name] = {
      kind,
      profile,
      rows: await db.number(`select count(*) from ${sqlIdent(spec.model)}`),
      columns: columns.map((c) => c.column_name),
      excel_bom: excel,
      files: [{ path: rel, bytes: size, sha256: await sha256(path) }],
    };
  };
  for (const { profile, excel } of audienceExports(config)) {
    await write('audience', profile, AUDIENCE_EXPORTS[profile], 'reactivation_audience', excel);
  }
  if (config.crm_flags.enabled)
    await write('crm_flags', null, CRM_FLAGS, 'crm_flags', config.crm_flags.excel);
  return { exports, notes };
}

/**
 * A CSV file of a query as RFC 4180 writes it: comma, double quotes doubled inside quoted fields, CRLF line ends,
 * a header row; every field quoted with `quoteAll`; UTF-8, with a byte order mark first when `bom`.
 */
export async function writeCsv(
  db: Db,
  query: string,
  path: string,
  options: { quoteAll: boolean; bom: boolean; scratch: string },
): Promise<void> {
  const target = options.bom ? options.scratch : path;
  await db.run(
    `copy (${query}) to ${sqlString(target)}
     (format csv, header true, delimiter ',', quote '"', escape '"', new_line e'\\r\\n'${options.quoteAll ? ', force_quote *' : ''})`,
  );
  if (!options.bom) return;
  const source = createReadStream(target);
  await pipeline(async function* () {
    yield UTF8_BOM;
    yield* source;
  }, createWriteStream(path));
  await rm(target, { force: true });
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
