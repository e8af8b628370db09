// The early warning: health statuses, the top reason codes, and the backtest (lift by decile, calibration).
import type { BacktestOverall, CountRow, DecileRow } from '../data.js';
import { fixed, int, pct, share, words } from '../format.js';
import { type Chart, chart, HEIGHT, horizontalBars, placeholder, STATUS_COLORS, WIDTH } from './spec.js';

export function statusChart(statuses: CountRow[], customers: number, flagged: number): Chart {
  const id = 'health-statuses';
  if (statuses.length === 0)
    return placeholder(id, 'health', 'Health statuses', 'No customer in customer_health.');
  const count = (s: string) => statuses.find((r) => r.label === s)?.customers ?? 0;
  const values = statuses.map((s) => ({ name: words(s.label), customers: s.customers }));
  const colors = {
    domain: statuses.map((s) => words(s.label)),
    range: statuses.map((s) => STATUS_COLORS[s.label] ?? '#888'),
  };
  return chart(
    id,
    'health',
    'Every known customer as of the run date by early-warning status; at risk and silent churn are the ones to win back.',
    {
      text: `${int(flagged)} of ${int(customers)} customers flagged (${pct(customers ? (100 * flagged) / customers : null)})`,
      subtitle: `${int(count('silent_churn'))} silent churn, ${int(count('at_risk'))} at risk, ${int(count('active'))} active, ${int(count('churned'))} cancelled.`,
    },
    horizontalBars(values, colors),
  );
}

export function reasonsChart(reasons: CountRow[], flagged: number): Chart {
  const id = 'reason-codes';
  const top = reasons[0];
  if (!top) return placeholder(id, 'health', 'Top reason codes', 'No flagged customer has a reason code.');
  return chart(
    id,
    'health',
    'The signals behind the flags: how many at-risk and silent-churn customers carry each reason code (a customer can carry several).',
    {
      text: `Top reason: ${top.label} on ${int(top.customers)} of ${int(flagged)} flagged (${pct(flagged ? (100 * top.customers) / flagged : null)})`,
      subtitle: `The ${reasons.length} most common reason codes among at-risk and silent-churn customers.`,
    },
    horizontalBars(reasons.map((r) => ({ name: r.label, customers: r.customers }))),
  );
}

const NO_BACKTEST = 'Less than one horizon of history: no backtest yet.';

/** The backtest's highest risk decile (undefined without a backtest). */
function topDecile(deciles: DecileRow[]): DecileRow | undefined {
  return deciles.find((d) => d.risk_decile === Math.max(...deciles.map((x) => x.risk_decile)));
}

export function liftChart(overall: BacktestOverall | null, deciles: DecileRow[]): Chart {
  const id = 'backtest-lift';
  const top = topDecile(deciles);
  if (!overall || !top)
    return placeholder(id, 'health', 'Early-warning backtest: lift by risk decile', NO_BACKTEST);
  return chart(
    id,
    'health',
    `The model run as of ${overall.backtest_as_of} on the data it had then, scored on who churned by ${overall.outcome_as_of}: churn rate per risk decile against the average (1×).`,
    {
      text: `Backtest AUC ${fixed(overall.auc, 3)} (recency alone ${fixed(overall.auc_recency, 3)}); top decile lift ${fixed(top.lift, 2)}×`,
      subtitle: [
        `As of ${overall.backtest_as_of}, ${int(overall.customers)} customers, ${share(overall.churn_rate)} churned within ${overall.horizon_days} days.`,
        `Flags: precision ${share(overall.precision)}, recall ${share(overall.recall)}${overall.median_lead_days !== null ? `, median lead ${fixed(overall.median_lead_days, 0)} days` : ''}.`,
      ],
    },
    {
      width: WIDTH,
      height: HEIGHT,
      data: { values: deciles },
      layer: [
        {
          mark: { type: 'bar', color: '#2e6f9e' },
          encoding: {
            x: {
              field: 'risk_decile',
              type: 'ordinal',
              title: 'risk decile (10 = highest risk)',
              axis: { labelAngle: 0 },
            },
            y: { field: 'lift', type: 'quantitative', title: 'lift (churn rate / average)' },
            tooltip: [
              { field: 'risk_decile', title: 'decile' },
              { field: 'customers', title: 'customers' },
              { field: 'churned', title: 'churned' },
              { field: 'lift', title: 'lift', format: '.2f' },
            ],
          },
        },
        {
          data: { values: [{ one: 1 }] },
          mark: { type: 'rule', color: '#d1495b', strokeDash: [4, 3] },
          encoding: { y: { field: 'one', type: 'quantitative' } },
        },
      ],
    },
  );
}

export function calibrationChart(overall: BacktestOverall | null, deciles: DecileRow[]): Chart {
  const id = 'backtest-calibration';
  const top = topDecile(deciles);
  if (!overall || !top) return placeholder(id, 'health', 'Early-warning backtest: calibration', NO_BACKTEST);
  const values = deciles.map((d) => ({
    risk_decile: d.risk_decile,
    predicted: 100 * d.predicted_p_churn,
    observed: 100 * d.churn_rate,
  }));
  return chart(
    id,
    'health',
    'Mean predicted p_churn against the share that churned, per risk decile: points on the diagonal are well calibrated.',
    {
      text: `Calibration: Brier ${fixed(overall.brier_score, 3)}; top decile predicted ${share(top.predicted_p_churn)}, observed ${share(top.churn_rate)}`,
      subtitle: `Overall predicted ${share(deciles.reduce((n, d) => n + d.predicted_p_churn * d.customers, 0) / Math.max(1, overall.customers))} vs observed ${share(overall.churn_rate)}.`,
    },
    {
      width: HEIGHT + 40,
      height: HEIGHT + 40,
      layer: [
        {
          data: {
            values: [
              { x: 0, y: 0 },
              { x: 100, y: 100 },
            ],
          },
          mark: { type: 'line', color: '#bbb', strokeDash: [4, 3] },
          encoding: {
            x: {
              field: 'x',
              type: 'quantitative',
              title: 'predicted p_churn %',
              scale: { domain: [0, 100] },
            },
            y: { field: 'y', type: 'quantitative', title: 'observed churn %', scale: { domain: [0, 100] } },
          },
        },
        {
          data: { values },
          mark: { type: 'line', point: { size: 45, filled: true }, color: '#2e6f9e' },
          encoding: {
            x: { field: 'predicted', type: 'quantitative' },
            y: { field: 'observed', type: 'quantitative' },
            tooltip: [
              { field: 'risk_decile', title: 'decile' },
              { field: 'predicted', title: 'predicted %', format: '.1f' },
              { field: 'observed', title: 'observed %', format: '.1f' },
            ],
          },
        },
      ],
    },
  );
}
