// Number formatting for the report's titles and tables (en-US, so that a screenshot reads the same anywhere).

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function int(value: number): string {
  return integer.format(value);
}

export function money(value: number): string {
  return decimal.format(value);
}

/** A percentage given in percent (12.3 -> "12.3%"); "n/a" when absent. */
export function pct(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? 'n/a'
    : `${value.toFixed(digits)}%`;
}

/** A share given as 0..1, in percent. */
export function share(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? 'n/a' : pct(100 * value, digits);
}

export function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

/** A signed amount: "+1,234" or "−1,234" (a true minus sign). */
export function signed(value: number): string {
  return `${value < 0 ? '\u2212' : '+'}${integer.format(Math.abs(value))}`;
}

/** Reason codes and statuses as words: `silent_churn` -> "silent churn". */
export function words(code: string): string {
  return code.replaceAll('_', ' ');
}
