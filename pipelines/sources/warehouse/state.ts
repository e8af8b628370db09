// The state an incremental extraction keeps between runs, and the cursor arithmetic it needs, for every dialect.
//
// A JSON state file in the entity's landing folder lists the landed files (oldest first) and the highest cursor
// value landed; the next run reads `cursor >= last - overlap` and compacts. The state carries a fingerprint of the
// source config: when the config changes, everything is extracted again.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../base/log.js';
import { TS_RE } from './text.js';

export const STATE_FILE = '_warehouse_state.json';
const STATE_VERSION = 1;
/** The files a run lands (numbered chunks, or the compacted file), and their partial `.tmp` forms. */
export const FILE_RE = /^run-\d{6}-(?:part-\d{6}|all)\.parquet(?:\.tmp)?$/;
/** DuckDB's spill folder inside the landing folder. */
export const DUCKDB_TMP = '.duckdb-tmp';

export type CursorKind = 'integer' | 'decimal' | 'timestamp' | 'text';

export interface LandingState {
  version: number;
  fingerprint: string;
  run: number;
  /** File names (relative to the landing folder), oldest first. */
  files: string[];
  cursor: { column: string; kind: CursorKind; max: string } | null;
  rows: number | null;
}

/** What identifies a source config for its landing state (never the password: `where` is the location). */
export function stateFingerprint(config: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify({ v: STATE_VERSION, ...config }))
    .digest('hex')
    .slice(0, 16);
}

/** The state of a landing folder, or undefined when there is none (or it is unreadable: a full extraction). */
export async function readState(dir: string, log: Logger): Promise<LandingState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as LandingState;
    if (state.version !== STATE_VERSION || !Array.isArray(state.files)) return undefined;
    return state;
  } catch {
    log.warn(
      { file: join(dir, STATE_FILE) },
      'unreadable warehouse landing state: extracting everything again',
    );
    return undefined;
  }
}

/** Writes the state atomically (a killed run leaves the previous one). */
export async function writeState(dir: string, state: Omit<LandingState, 'version'>): Promise<void> {
  const next: LandingState = { version: STATE_VERSION, ...state };
  await writeFile(join(dir, `${STATE_FILE}.tmp`), `${JSON.stringify(next, null, 2)}\n`);
  await rename(join(dir, `${STATE_FILE}.tmp`), join(dir, STATE_FILE));
}

// ---------------------------------------------------------------------------------------------------------------
// Cursor values and overlap.

export function cursorKind(value: string): CursorKind {
  if (/^-?\d+$/.test(value)) return 'integer';
  if (/^-?\d+\.\d+$/.test(value)) return 'decimal';
  if (TS_RE.test(value) || /^\d{4}-\d\d-\d\d$/.test(value)) return 'timestamp';
  return 'text';
}

function decimalParts(value: string, scale: number): bigint {
  const negative = value.startsWith('-');
  const [int = '0', frac = ''] = (negative ? value.slice(1) : value).split('.');
  const scaled = BigInt(int + frac.padEnd(scale, '0').slice(0, scale));
  return negative ? -scaled : scaled;
}

function fracDigits(value: string): number {
  const dot = value.indexOf('.');
  return dot < 0 ? 0 : value.length - dot - 1;
}

/** A fixed-width, lexicographically ordered form of a landed timestamp. */
function timestampKey(value: string): string {
  const m = TS_RE.exec(value);
  if (!m) return value.length === 10 ? `${value}T00:00:00.000000` : value;
  return `${m[1]}T${m[2]}${(m[3] ?? '.').padEnd(7, '0')}`;
}

/** Compares two cursor values of the same kind; values that do not fit the kind compare as text. */
export function compareCursor(a: string, b: string, kind: CursorKind): number {
  if (a === b) return 0;
  if (kind === 'integer' || kind === 'decimal') {
    if (/^-?\d+(\.\d+)?$/.test(a) && /^-?\d+(\.\d+)?$/.test(b)) {
      const scale = Math.max(fracDigits(a), fracDigits(b));
      const x = decimalParts(a, scale);
      const y = decimalParts(b, scale);
      return x < y ? -1 : x > y ? 1 : 0;
    }
  } else if (kind === 'timestamp') {
    const x = timestampKey(a);
    const y = timestampKey(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : 1;
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** An interval string ('2 hours', '1 day 6 hours', '90m') in milliseconds; undefined when it is not one. */
export function parseInterval(text: string): number | undefined {
  const parts = text
    .trim()
    .toLowerCase()
    .match(/(\d+(?:\.\d+)?)\s*([a-z]+)/g);
  if (!parts || parts.join('').replace(/\s+/g, '') !== text.trim().toLowerCase().replace(/\s+/g, '')) {
    return undefined;
  }
  let total = 0;
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(part);
    const unit = m ? UNIT_MS[m[2] ?? ''] : undefined;
    if (!m || unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return total;
}

/**
 * The lower bound of an incremental read: `last - overlap`, computed here so that one parameter works on every
 * dialect. Timestamps keep their shape (UTC `...Z`, naive, or date-only); a bound below the exact value is safe
 * (a few more rows are re-read and deduplicated).
 */
export function cursorLowerBound(
  last: string,
  kind: CursorKind,
  overlap: string | number | undefined,
): string {
  if (overlap === undefined || overlap === 0 || overlap === '') return last;
  if (kind === 'integer' || kind === 'decimal') {
    const text = String(overlap).trim();
    if (!/^\d+(\.\d+)?$/.test(text)) {
      throw new Error(
        `overlap ${JSON.stringify(overlap)} is not a number, but the cursor column holds numbers`,
      );
    }
    const scale = Math.max(fracDigits(last), fracDigits(text));
    const value = decimalParts(last, scale) - decimalParts(text, scale);
    if (scale === 0) return value.toString();
    const negative = value < 0n;
    const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
    return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  if (kind === 'timestamp') {
    const ms = typeof overlap === 'number' ? undefined : parseInterval(overlap);
    if (ms === undefined) {
      throw new Error(
        `overlap ${JSON.stringify(overlap)} is not an interval such as "2 hours", but the cursor column holds timestamps`,
      );
    }
    const m = TS_RE.exec(last);
    const dateOnly = /^\d{4}-\d\d-\d\d$/.test(last);
    if (!m && !dateOnly) return last;
    const base = dateOnly
      ? Date.parse(`${last}T00:00:00Z`)
      : Date.parse(`${m?.[1]}T${m?.[2]}${(m?.[3] ?? '').slice(0, 4)}Z`);
    if (Number.isNaN(base)) return last;
    const iso = new Date(Math.floor(base - ms)).toISOString();
    if (dateOnly) return iso.slice(0, 10);
    return m?.[8] || m?.[4] ? iso : iso.slice(0, -1);
  }
  throw new Error(
    `overlap is only supported for numeric and timestamp cursor columns, not for text values like "${last}"`,
  );
}
