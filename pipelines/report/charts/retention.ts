// Retention and churn: the cohort heatmap, churn rate with NRR and GRR, lifecycle movements, MRR movements.
import type { CohortCell, MrrRow, PeriodRow } from '../data.js';
import { int, pct, signed } from '../format.js';
import { type Chart, chart, colorBy, HEIGHT, last, PERIOD_AXIS, placeholder, WIDTH } from './spec.js';

export function cohortHeatmap(cells: CohortCell[]): Chart {
  const id = 'cohort-retention';
  if (cells.length === 0)
    return placeholder(id, 'retention', 'Cohort retention', 'No cohort has a complete period yet.');
  // Period 1 retention pooled over the cohorts that publish it (the small ones have it withheld).
  const first = cells.filter((c) => c.period_index === 1 && c.retention_pct !== null);
  const pooled = (rows: CohortCell[]) => {
    const size = rows.reduce((n, c) => n + c.cohort_size, 0);
    return size > 0 ? (100 * rows.reduce((n, c) => n + c.active_customers, 0)) / size : null;
  };
  const cohorts = new Set(cells.map((c) => c.cohort)).size;
  const newest = last(first);
  const maxIndex = Math.max(...cells.map((c) => c.period_index));
  const far = cells.filter((c) => c.period_index === Math.min(12, maxIndex) && c.retention_pct !== null);
  const text =
    first.length > 0
      ? `Cohort retention: ${pct(pooled(first))} active in period 1 (${cohorts} cohorts)`
      : `Cohort retention of ${cohorts} cohorts`;
  const subtitle = [
    newest
      ? `Newest cohort ${newest.cohort}: ${pct(newest.retention_pct)} of ${int(newest.cohort_size)} in period 1.`
      : '',
    far.length > 0 && Math.min(12, maxIndex) > 1
      ? `Period ${Math.min(12, maxIndex)}: ${pct(pooled(far))} over ${far.length} cohorts. Grey: cohort too small to publish a rate.`
      : 'Grey: cohort too small to publish a rate.',
  ].filter(Boolean);
  const rows = cohorts;
  return chart(
    id,
    'retention',
    'Share of each cohort (customers by the period of their first activity) active in each later period; period 0 is 100%.',
    { text, subtitle },
    {
      width: Math.max(WIDTH, Math.min(640, 16 * (maxIndex + 1))),
      height: Math.max(120, Math.min(520, 14 * rows)),
      data: { values: cells },
      encoding: {
        x: {
          field: 'period_index',
          type: 'ordinal',
          title: 'periods since first activity',
          axis: { labelAngle: 0, labelOverlap: 'greedy' },
        },
        y: { field: 'cohort', type: 'ordinal', title: 'cohort', sort: 'ascending' },
        tooltip: [
          { field: 'cohort', title: 'cohort' },
          { field: 'period_index', title: 'period' },
          { field: 'cohort_size', title: 'cohort size' },
          { field: 'active_customers', title: 'active' },
          { field: 'retention_pct', title: 'retention %', format: '.1f' },
        ],
      },
      layer: [
        { mark: { type: 'rect', color: '#e5e5e5' } },
        {
          transform: [{ filter: 'datum.retention_pct !== null' }],
          mark: { type: 'rect' },
          encoding: {
            color: {
              field: 'retention_pct',
              type: 'quantitative',
              title: 'retention %',
              scale: { scheme: 'blues', domain: [0, 100] },
              legend: { orient: 'right', gradientLength: 160 },
            },
          },
        },
      ],
    },
  );
}

export function ratesChart(periods: PeriodRow[]): Chart {
  const id = 'churn-nrr-grr';
  const title = 'Churn rate, NRR and GRR';
  const rated = periods.filter((p) => !p.small_base);
  const latest = last(rated);
  if (!latest)
    return placeholder(
      id,
      'retention',
      title,
      'No complete period has a large enough start base for a rate.',
    );
  const small = periods.filter((p) => p.small_base).length;
  const avgChurn = rated.reduce((n, p) => n + (p.churn_rate_pct ?? 0), 0) / rated.length;
  return chart(
    id,
    'retention',
    'Churn = churned / customers active the period before; NRR and GRR = their revenue this period against the last (GRR caps each at last period).',
    {
      text: `${latest.period}: churn ${pct(latest.churn_rate_pct)}, NRR ${pct(latest.nrr_pct)}, GRR ${pct(latest.grr_pct)}`,
      subtitle: [
        `Churn averages ${pct(avgChurn)} over ${rated.length} periods.`,
        small > 0
          ? `Grey: ${small} period${small === 1 ? '' : 's'} whose start base is under the minimum (rates withheld).`
          : 'Every period has a start base above the minimum.',
      ],
    },
    {
      width: WIDTH,
      height: HEIGHT,
      data: { values: periods },
      encoding: { x: { field: 'period', type: 'ordinal', axis: PERIOD_AXIS, sort: null } },
      layer: [
        {
          transform: [{ filter: 'datum.small_base' }],
          mark: { type: 'rect', color: '#d9d9d9', opacity: 0.7 },
          encoding: {
            tooltip: [
              { field: 'period', title: 'period' },
              { field: 'customers_start', title: 'start base (too small)' },
            ],
          },
        },
        {
          transform: [
            { fold: ['churn_rate_pct', 'nrr_pct', 'grr_pct'], as: ['metric', 'value'] },
            { filter: 'datum.value !== null' },
            {
              calculate:
                "datum.metric === 'churn_rate_pct' ? 'churn %' : datum.metric === 'nrr_pct' ? 'NRR %' : 'GRR %'",
              as: 'measure',
            },
          ],
          mark: { type: 'line', point: { size: 20 }, strokeWidth: 2 },
          encoding: {
            y: { field: 'value', type: 'quantitative', title: '%' },
            color: colorBy('measure', ['churn %', 'NRR %', 'GRR %'], ['#d1495b', '#2e6f9e', '#66a182']),
            tooltip: [
              { field: 'period', title: 'period' },
              { field: 'measure', title: 'measure' },
              { field: 'value', title: 'value', format: '.1f' },
              { field: 'customers_start', title: 'start base' },
            ],
          },
        },
      ],
    },
  );
}

export function lifecycleChart(periods: PeriodRow[]): Chart {
  const id = 'lifecycle';
  const latest = last(periods);
  if (!latest) return placeholder(id, 'retention', 'Lifecycle', 'No complete period yet.');
  return chart(
    id,
    'retention',
    'Customers per period by lifecycle: new, retained and resurrected stack up; churned (active the period before, not now) hang below zero.',
    {
      text: `${latest.period}: ${int(latest.new_customers)} new, ${int(latest.retained)} retained, ${int(latest.resurrected)} resurrected, ${int(latest.churned)} churned`,
      subtitle: `${int(latest.active_customers)} active customers in ${latest.period}, from ${int(latest.customers_start)} the period before.`,
    },
    periodBars(periods, {
      transform: [
        { fold: ['new_customers', 'retained', 'resurrected', 'churned'], as: ['movement', 'count'] },
        {
          calculate: "datum.movement === 'new_customers' ? 'new' : datum.movement",
          as: 'lifecycle',
        },
        { calculate: "datum.movement === 'churned' ? -datum.count : datum.count", as: 'customers' },
        {
          calculate:
            "datum.lifecycle === 'retained' ? 0 : datum.lifecycle === 'new' ? 1 : datum.lifecycle === 'resurrected' ? 2 : 3",
          as: 'stack_order',
        },
      ],
      encoding: {
        y: { field: 'customers', type: 'quantitative', title: 'customers', stack: 'zero' },
        order: { field: 'stack_order', type: 'quantitative' },
        color: colorBy(
          'lifecycle',
          ['new', 'retained', 'resurrected', 'churned'],
          ['#66a182', '#2e6f9e', '#8cb8d8', '#d1495b'],
        ),
        tooltip: [
          { field: 'period', title: 'period' },
          { field: 'lifecycle', title: 'lifecycle' },
          { field: 'count', title: 'customers' },
        ],
      },
    }),
  );
}

/** MRR movements (ChartMogul's): only for runs with subscriptions (undefined otherwise). */
export function mrrChart(rows: MrrRow[]): Chart | undefined {
  const latest = last(rows);
  if (!latest) return undefined;
  const total = (r: MrrRow) =>
    r.mrr_new + r.mrr_expansion + r.mrr_reactivation - r.mrr_contraction - r.mrr_churned;
  return chart(
    'mrr-movements',
    'retention',
    'Monthly recurring revenue added (new, expansion, reactivation) and lost (contraction, churned) per period.',
    {
      text: `MRR ${latest.period}: ${int(latest.mrr_end)} (${signed(total(latest))} on ${int(latest.mrr_start)})`,
      subtitle: [
        `${signed(latest.mrr_new)} new, ${signed(latest.mrr_expansion)} expansion, ${signed(latest.mrr_reactivation)} reactivation, ` +
          `${signed(-latest.mrr_contraction)} contraction, ${signed(-latest.mrr_churned)} churned.`,
        `MRR-based NRR ${pct(latest.mrr_nrr_pct)}, GRR ${pct(latest.mrr_grr_pct)}.`,
      ],
    },
    periodBars(rows, {
      transform: [
        {
          fold: ['mrr_new', 'mrr_expansion', 'mrr_reactivation', 'mrr_contraction', 'mrr_churned'],
          as: ['movement', 'amount'],
        },
        { calculate: "replace(datum.movement, 'mrr_', '')", as: 'kind' },
        {
          calculate:
            "datum.kind === 'contraction' || datum.kind === 'churned' ? -datum.amount : datum.amount",
          as: 'mrr',
        },
      ],
      encoding: {
        y: { field: 'mrr', type: 'quantitative', title: 'MRR movement', stack: 'zero' },
        color: colorBy(
          'kind',
          ['new', 'expansion', 'reactivation', 'contraction', 'churned'],
          ['#66a182', '#2e6f9e', '#8cb8d8', '#f2a541', '#d1495b'],
        ),
        tooltip: [
          { field: 'period', title: 'period' },
          { field: 'kind', title: 'movement' },
          { field: 'amount', title: 'MRR', format: ',.0f' },
          { field: 'mrr_end', title: 'MRR at the end', format: ',.0f' },
        ],
      },
    }),
  );
}

/** Bars per period, stacked from zero (movements in and out): `layout` is the transform and the encoding but x. */
function periodBars(
  values: object[],
  layout: { transform: Record<string, unknown>[]; encoding: Record<string, unknown> },
) {
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    transform: layout.transform,
    mark: { type: 'bar' },
    encoding: { x: { field: 'period', type: 'ordinal', axis: PERIOD_AXIS, sort: null }, ...layout.encoding },
  };
}
