// The campaign's lift in the run summary: the latest audience with a complete outcome window (its longest complete
// window), target against control with the 95% intervals, and the trend of that window's lift over the audiences.
import type { Db } from '../base/duckdb.js';

export type Summary = Record<string, string | number | null>;

/** How many earlier audiences the trend shows, oldest first. */
const TREND_AUDIENCES = 6;

interface HeadlineRow {
  [key: string]: string | number | boolean | null;
  audience_as_of: string;
  window_days: number;
  target_customers: number;
  control_customers: number;
  target_rate: number | null;
  control_rate: number | null;
  rate_lift: number | null;
  rate_lift_ci_low: number | null;
  rate_lift_ci_high: number | null;
  rate_lift_significant: boolean | null;
  revenue_lift: number | null;
  revenue_lift_ci_low: number | null;
  revenue_lift_ci_high: number | null;
  sent_customers: number | null;
  never_sent_customers: number | null;
  sent_rate_lift: number | null;
  sent_rate_lift_ci_low: number | null;
  sent_rate_lift_ci_high: number | null;
}

const HEADLINE = `
  with totals as (
      select * from reactivation_outcomes where segment_by = 'all'
  ),
  latest as (
      select audience_as_of, max(window_days) as window_days
      from totals
      where status = 'complete'
      group by audience_as_of
      order by audience_as_of desc
      limit 1
  ),
  target as (
      select totals.* from totals inner join latest using (audience_as_of, window_days)
      where audience_group = 'target'
  ),
  control as (
      select totals.* from totals inner join latest using (audience_as_of, window_days)
      where audience_group = 'control'
  )
  select
      strftime(target.audience_as_of, '%Y-%m-%d') as audience_as_of,
      target.window_days,
      target.customers as target_customers,
      control.customers as control_customers,
      target.reactivation_rate_pct as target_rate,
      control.reactivation_rate_pct as control_rate,
      target.rate_lift_pct_points as rate_lift,
      target.rate_lift_ci_low,
      target.rate_lift_ci_high,
      target.rate_lift_significant,
      target.revenue_lift_per_customer as revenue_lift,
      target.revenue_lift_ci_low,
      target.revenue_lift_ci_high,
      target.sent_customers,
      target.never_sent_customers,
      target.sent_rate_lift_pct_points as sent_rate_lift,
      target.sent_rate_lift_ci_low,
      target.sent_rate_lift_ci_high
  from target cross join control`;

/** The outcome figures of the summary (`outcome_*`); empty when the table was not built. */
export async function readOutcomeSummary(db: Db): Promise<Summary> {
  if (!(await db.tableExists('reactivation_outcomes'))) return {};
  const counts = await db.one<{ audiences: string; next_complete: string | null }>(`
    select count(distinct audience_as_of)::varchar as audiences,
           strftime(min(window_end) filter (where status = 'incomplete'), '%Y-%m-%d') as next_complete
    from reactivation_outcomes where segment_by = 'all'`);
  const summary: Summary = {
    outcome_audiences: Number(counts?.audiences ?? 0),
    outcome_next_complete: counts?.next_complete ?? null,
  };
  const row = await db.one<HeadlineRow>(HEADLINE);
  if (!row) return summary;
  for (const [key, value] of Object.entries(row)) {
    summary[`outcome_${key}`] = typeof value === 'boolean' ? (value ? 'yes' : 'no') : value;
  }
  const trend = await db.all<{ audience_as_of: string; rate_lift: number }>(`
    select strftime(audience_as_of, '%Y-%m-%d') as audience_as_of, rate_lift_pct_points as rate_lift
    from reactivation_outcomes
    where segment_by = 'all' and audience_group = 'target' and status = 'complete'
      and window_days = ${Number(row.window_days)}
    order by audience_as_of desc
    limit ${TREND_AUDIENCES}`);
  summary.outcome_trend = trend
    .reverse()
    .map((t) => `${t.audience_as_of} ${signed(t.rate_lift, 1)}`)
    .join(', ');
  return summary;
}

function signed(value: unknown, digits: number): string {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return 'n/a';
  const n = Number(value);
  return `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;
}

function interval(low: unknown, high: unknown, digits: number): string {
  return low === null || low === undefined
    ? 'no interval'
    : `95% CI ${signed(low, digits)} to ${signed(high, digits)}`;
}

function pct(value: unknown): string {
  return value === null || value === undefined ? 'n/a' : `${Number(value).toFixed(1)}%`;
}

/** The summary lines of the campaign's lift (none when nothing was measured). */
export function outcomeSummaryLines(s: Summary): string[] {
  const pad = (label: string) => `  ${label.padEnd(28)}`;
  const indent = ' '.repeat(30);
  if (!s.outcome_audiences) return [];
  if (!s.outcome_audience_as_of) {
    return [
      `${pad('campaign lift:')}no complete outcome window yet (${s.outcome_audiences} audience(s) measured` +
        `${s.outcome_next_complete ? `, the first window ends ${s.outcome_next_complete}` : ''})`,
    ];
  }
  const lines = [
    `${pad(`campaign lift (${s.outcome_window_days} days):`)}audience of ${s.outcome_audience_as_of}: ` +
      `${pct(s.outcome_target_rate)} of ${s.outcome_target_customers} targeted came back, ` +
      `${pct(s.outcome_control_rate)} of ${s.outcome_control_customers} held out`,
    `${indent}lift ${signed(s.outcome_rate_lift, 1)} pts (${interval(s.outcome_rate_lift_ci_low, s.outcome_rate_lift_ci_high, 1)}), ` +
      `${s.outcome_rate_lift_significant === 'yes' ? 'significant' : 'not significant'}; revenue ${signed(s.outcome_revenue_lift, 2)} ` +
      `per customer (${interval(s.outcome_revenue_lift_ci_low, s.outcome_revenue_lift_ci_high, 2)})`,
  ];
  if (s.outcome_sent_customers !== null && s.outcome_sent_customers !== undefined) {
    lines.push(
      `${indent}among the ${s.outcome_sent_customers} e-mailed (${s.outcome_never_sent_customers} never sent): ` +
        `lift ${signed(s.outcome_sent_rate_lift, 1)} pts (${interval(s.outcome_sent_rate_lift_ci_low, s.outcome_sent_rate_lift_ci_high, 1)})`,
    );
  }
  lines.push(`${indent}trend (${s.outcome_window_days}-day lift by audience): ${s.outcome_trend}`);
  return lines;
}
