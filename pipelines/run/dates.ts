// The as-of date of a run and its id.
import { randomBytes } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import { InputError } from '../stages/land.js';

/** Yesterday in the business time zone, as YYYY-MM-DD. */
export function defaultAsOf(timeZone: string, now: Date = new Date()): string {
  const today = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(now);
  const d = new Date(`${today}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

export function validateAsOf(asOf: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(asOf) || Number.isNaN(Date.parse(`${asOf}T00:00:00Z`))) {
    throw new InputError(`as-of date "${asOf}" is not a date; give it as YYYY-MM-DD`);
  }
  return asOf;
}

/** The as-of date a command asked for, else the config's, else yesterday in the business time zone. */
export function runAsOf(
  config: Pick<Config, 'as_of' | 'business_time_zone'>,
  asOf: string | undefined,
  now: Date,
): string {
  return validateAsOf(asOf ?? config.as_of ?? defaultAsOf(config.business_time_zone, now));
}

/** `<as-of>_<UTC start, to the second>_<6 hex digits>`: sorts by date, then start. */
export function newRunId(asOf: string, now: Date): string {
  return `${asOf}_${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}_${randomBytes(3).toString('hex')}`;
}
