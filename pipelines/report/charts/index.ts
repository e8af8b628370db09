// The report's charts as Vega-Lite specs, one function per chart, in page order. Each title carries the chart's
// numbers, so that a screenshot tells the story; the data are the small aggregates of data.ts. The MRR chart is
// left out without subscriptions, the lift chart when the run publishes no reactivation_outcomes.
import type { ReportData } from '../data.js';
import { audienceGroupsChart, exclusionsChart, outcomesChart } from './audience.js';
import { calibrationChart, liftChart, reasonsChart, statusChart } from './health.js';
import { gatesChart, quarantineChart, reconciliationChart } from './quality.js';
import { cohortHeatmap, lifecycleChart, mrrChart, ratesChart } from './retention.js';
import type { Chart } from './spec.js';
import { surveyChart } from './surveys.js';

export type { Chart, Section } from './spec.js';

export function allCharts(d: ReportData): Chart[] {
  return [
    cohortHeatmap(d.cohorts),
    ratesChart(d.periods),
    lifecycleChart(d.periods),
    mrrChart(d.mrr),
    surveyChart(d.surveys, 'nps'),
    surveyChart(d.surveys, 'csat'),
    statusChart(d.statuses, d.customers, d.flagged),
    reasonsChart(d.reasons, d.flagged),
    liftChart(d.backtest, d.deciles),
    calibrationChart(d.backtest, d.deciles),
    exclusionsChart(d.exclusions),
    audienceGroupsChart(d.audience),
    outcomesChart(d.outcomes),
    quarantineChart(d.quarantine, d.manifest),
    gatesChart(d.manifest),
    reconciliationChart(d.manifest),
  ].filter((c): c is Chart => c !== undefined);
}
