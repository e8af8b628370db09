// The reactivation audience: candidates and exclusions, target vs control, and the lift of earlier audiences.
import type { AudienceGroupRow, ExclusionRow, OutcomeRow } from '../data.js';
import { int, pct, words } from '../format.js';
import {
  type Chart,
  chart,
  colorBy,
  HEIGHT,
  horizontalBars,
  last,
  PERIOD_AXIS,
  placeholder,
  STATUS_COLORS,
  WIDTH,
} from './spec.js';

export function exclusionsChart(rows: ExclusionRow[]): Chart {
  const id = 'audience-exclusions';
  const candidates = rows[0]?.candidates ?? 0;
  if (rows.length === 0 || candidates === 0)
    return placeholder(
      id,
      'audience',
      'Reactivation audience',
      'No at-risk or silent-churn candidate for the audience.',
    );
  const count = (reason: string) => rows.find((r) => r.reason === reason)?.customers ?? 0;
  const target = count('included_target');
  const control = count('included_control');
  const excluded = rows.filter((r) => !r.reason.startsWith('included_'));
  const topExcluded = [...excluded].sort((a, b) => b.customers - a.customers)[0];
  const excludedTotal = excluded.reduce((n, r) => n + r.customers, 0);
  const values = rows.map((r) => ({
    name: words(r.reason.replace(/^included_/, 'included: ')),
    customers: r.customers,
    kind: r.reason.startsWith('included_') ? 'in the audience' : 'left out',
  }));
  return chart(
    id,
    'audience',
    'Every candidate (at risk or silent churn) in the order the exclusions apply: each is counted once, by the first reason that left them out.',
    {
      text: `Audience: ${int(target)} target + ${int(control)} control of ${int(candidates)} candidates`,
      subtitle:
        excludedTotal > 0 && topExcluded
          ? `${int(excludedTotal)} left out, most for ${words(topExcluded.reason)} (${int(topExcluded.customers)}).`
          : 'Nobody left out.',
    },
    horizontalBars(
      values,
      { by: 'kind', domain: ['in the audience', 'left out'], range: ['#4c9f70', '#c3c9d0'] },
      WIDTH - 140,
    ),
  );
}

export function audienceGroupsChart(rows: AudienceGroupRow[]): Chart {
  const id = 'audience-groups';
  const total = (group: string) =>
    rows.filter((r) => r.audience_group === group).reduce((n, r) => n + r.customers, 0);
  const target = total('target');
  const control = total('control');
  if (target + control === 0)
    return placeholder(id, 'audience', 'Target vs control', 'The audience is empty in this run.');
  return chart(
    id,
    'audience',
    'The audience split by a deterministic hash: marketing writes to target; control is held out so that the campaign’s lift can be measured.',
    {
      text: `Target ${int(target)} vs control ${int(control)} (${pct((100 * control) / (target + control))} held out)`,
      subtitle: 'Customers per status in each group.',
    },
    {
      width: WIDTH - 140,
      height: 110,
      data: { values: rows.map((r) => ({ ...r, status: words(r.status) })) },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'audience_group', type: 'nominal', title: null, sort: ['target', 'control'] },
        x: { field: 'customers', type: 'quantitative', title: 'customers', stack: 'zero' },
        color: colorBy(
          'status',
          ['at risk', 'silent churn', 'churned'],
          ['at_risk', 'silent_churn', 'churned'].map((s) => STATUS_COLORS[s] ?? '#888'),
        ),
        tooltip: [
          { field: 'audience_group', title: 'group' },
          { field: 'status', title: 'status' },
          { field: 'customers', title: 'customers' },
        ],
      },
    },
  );
}

/** Reactivation of earlier audiences, target against control (undefined when the run publishes no outcomes). */
export function outcomesChart(rows: OutcomeRow[] | null): Chart | undefined {
  if (rows === null) return undefined;
  const measured = rows.filter((r) => r.customers > 0);
  const latestRow = last(measured.filter((r) => r.status === 'complete')) ?? last(measured);
  if (!latestRow) {
    return placeholder(
      'reactivation-lift',
      'audience',
      'Reactivation: target vs control',
      'No audience published before this date to measure yet (reactivation_outcomes is empty).',
    );
  }
  const latest = latestRow.audience_as_of;
  const group = (name: string) => rows.find((r) => r.audience_as_of === latest && r.audience_group === name);
  const target = group('target');
  const control = group('control');
  const lift = target?.lift ?? null;
  const points = (v: number | null) =>
    v === null ? 'n/a' : `${v >= 0 ? '+' : '\u2212'}${Math.abs(v).toFixed(1)}`;
  const interval =
    target && target.lift_low !== null && target.lift_high !== null
      ? ` (95% CI ${points(target.lift_low)} to ${points(target.lift_high)})`
      : '';
  const verdict =
    target?.lift_significant === true
      ? 'significant'
      : target?.lift_significant === false
        ? 'not significant'
        : 'no test';
  const dates = new Set(rows.map((r) => r.audience_as_of)).size;
  return chart(
    'reactivation-lift',
    'audience',
    `Share of each audience that came back within ${latestRow.window_days} days of its date (qualifying activity), target against the held-out control, with 95% intervals; open windows are pale.`,
    {
      text: `Audience of ${latest}: ${pct(target?.reactivation_pct)} of target came back vs ${pct(control?.reactivation_pct)} of control`,
      subtitle: [
        `Lift ${points(lift)} points${interval}, ${verdict}${target?.status === 'incomplete' ? ' (window still open)' : ''}.`,
        `${dates} audience date${dates === 1 ? '' : 's'}, ${latestRow.window_days}-day window, all segments.`,
      ],
    },
    {
      // A few audience dates: bars of a steady width instead of two slabs across the chart.
      width: dates <= 6 ? { step: 90 } : WIDTH,
      height: HEIGHT,
      data: {
        values: rows.map((r) => ({ ...r, open: r.status === 'incomplete' ? 'window open' : 'complete' })),
      },
      encoding: {
        x: { field: 'audience_as_of', type: 'ordinal', axis: PERIOD_AXIS, sort: null, title: null },
        xOffset: { field: 'audience_group', sort: ['target', 'control'] },
      },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            y: { field: 'reactivation_pct', type: 'quantitative', title: 'came back %' },
            color: colorBy('audience_group', ['target', 'control'], ['#2e6f9e', '#9aa5b1']),
            opacity: { condition: { test: "datum.status === 'incomplete'", value: 0.45 }, value: 1 },
            tooltip: [
              { field: 'audience_as_of', title: 'audience date' },
              { field: 'audience_group', title: 'group' },
              { field: 'customers', title: 'customers' },
              { field: 'reactivated', title: 'came back' },
              { field: 'reactivation_pct', title: 'came back %', format: '.1f' },
              { field: 'status', title: 'status' },
            ],
          },
        },
        {
          transform: [{ filter: 'datum.ci_low !== null && datum.ci_high !== null' }],
          mark: { type: 'rule', color: '#333' },
          encoding: { y: { field: 'ci_low', type: 'quantitative' }, y2: { field: 'ci_high' } },
        },
      ],
    },
  );
}
