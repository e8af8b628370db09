// Every warehouse value lands as its exact text: int8 and numeric as the server writes them (money stays exact),
// timestamps with an offset as ISO-8601 in UTC, timestamps without one as naive ISO-8601, booleans as true/false.
// Both dialects' type parsers end here.

/** A server timestamp: date, time, fraction, then an offset (sign, hours, minutes, seconds) or Z. */
export const TS_RE =
  /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|(Z))?$/;

/**
 * A server's timestamp text as ISO-8601: with an offset it is converted to UTC (`...Z`, microseconds kept), without
 * one it stays naive (`2024-01-02T03:04:05`). Values it does not recognise (infinity, BC, years > 9999) are kept.
 */
export function isoTimestamp(text: string): string {
  // Fast path: the server's UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]+00` (session TimeZone is UTC).
  if (text.length >= 22 && text.charCodeAt(10) === 32 && text.endsWith('+00') && text.charCodeAt(4) === 45) {
    return `${text.slice(0, 10)}T${text.slice(11, -3)}Z`;
  }
  const m = TS_RE.exec(text);
  if (!m) return text;
  const [, date, time, frac = '', sign, hh, mm, ss, zulu] = m;
  if (!sign && !zulu) return `${date}T${time}${frac}`;
  const offsetSeconds = sign
    ? (sign === '-' ? -1 : 1) * (Number(hh) * 3600 + Number(mm ?? 0) * 60 + Number(ss ?? 0))
    : 0;
  if (offsetSeconds === 0) return `${date}T${time}${frac}Z`;
  const utc = Date.parse(`${date}T${time}Z`) - offsetSeconds * 1000;
  if (Number.isNaN(utc)) return text;
  return `${new Date(utc).toISOString().slice(0, 19)}${frac}Z`;
}

/** A driver value as landed text. */
export function toText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  return JSON.stringify(value);
}
