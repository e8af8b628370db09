// Checks on input files before DuckDB reads them, and the evidence behind a read error: a gzip stream verified
// end to end (DuckDB reads a truncated .gz up to where it breaks and stops without an error), an empty file, the
// line of an oversized CSV record.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { SourceError } from './source.js';

export function isGzipName(path: string): boolean {
  return path.toLowerCase().endsWith('.gz');
}

function errorCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return undefined;
}

/**
 * Decompresses a gzip file to nowhere: a truncated, corrupted or not-gzip file fails here, with a message that
 * names it (`name`: how the user knows it) and says which of the three it is.
 */
export async function verifyGzip(file: string, name: string, entity: string): Promise<void> {
  const discard = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  try {
    await pipeline(createReadStream(file), createGunzip(), discard);
  } catch (error) {
    const code = errorCode(error);
    const message = (error as Error).message;
    let problem: string;
    if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message)) {
      problem =
        'it is truncated (the gzip stream ends before its end marker, "unexpected end of file"), so its last rows are missing. ' +
        'The file was not completely written or copied: re-export it (or copy it again), then run again';
    } else if (/incorrect header check/i.test(message)) {
      problem =
        'it is not gzip-compressed despite its .gz name: rename it without .gz if it is plain text, or re-export it';
    } else {
      problem = `it is corrupted (${message}): re-export it, then run again`;
    }
    throw new SourceError(`${entity}: ${name} is not a valid gzip file: ${problem}`);
  }
}

function open(file: string): Readable {
  const raw = createReadStream(file);
  if (!isGzipName(file)) return raw;
  const gunzip = createGunzip();
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

/** Whether a (text) file holds nothing but white space; reads only until the first other byte. */
export async function isBlank(file: string): Promise<boolean> {
  const info = await stat(file);
  if (info.size === 0) return true;
  const stream = open(file);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (const byte of chunk) {
        // space, tab, CR, LF; a UTF-8 byte order mark alone is blank too
        if (
          byte !== 0x20 &&
          byte !== 0x09 &&
          byte !== 0x0d &&
          byte !== 0x0a &&
          ![0xef, 0xbb, 0xbf].includes(byte)
        ) {
          return false;
        }
      }
    }
    return true;
  } finally {
    stream.destroy();
  }
}

export interface LongRecord {
  /** 1-based line of the file where the record starts. */
  line: number;
  /** Its length in bytes (up to where the reading stopped, when the file ends inside it). */
  bytes: number;
  /** The file ends inside a quoted field that starts in this record: a quote is never closed. */
  unclosedQuote: boolean;
}

/**
 * The first CSV record longer than `limit` bytes: where it starts and how long it is. Records end at a newline
 * outside quotes (quote and escape as configured; an escape equal to the quote is a doubled quote).
 */
export async function findLongRecord(
  file: string,
  limit: number,
  quote: string,
  escapeChar: string,
): Promise<LongRecord | undefined> {
  const q = quote ? quote.charCodeAt(0) : -1;
  const e = escapeChar ? escapeChar.charCodeAt(0) : -1;
  let line = 1;
  let recordLine = 1;
  let bytes = 0;
  let inQuote = false;
  let escaped = false;
  let found: LongRecord | undefined;
  const stream = open(file);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]!;
        bytes++;
        if (escaped) {
          escaped = false;
        } else if (inQuote && e !== q && byte === e) {
          escaped = true;
        } else if (byte === q) {
          inQuote = !inQuote;
        } else if (byte === 0x0a) {
          line++;
          if (!inQuote) {
            if (found) {
              found.bytes = bytes;
              return found;
            }
            recordLine = line;
            bytes = 0;
            continue;
          }
        }
        if (!found && bytes > limit) found = { line: recordLine, bytes, unclosedQuote: false };
      }
    }
    if (found) {
      found.bytes = bytes;
      found.unclosedQuote = inQuote;
    }
    return found;
  } finally {
    stream.destroy();
  }
}
