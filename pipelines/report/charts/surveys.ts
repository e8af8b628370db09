// NPS and CSAT per period with their 95% margins.
import type { SurveyRow } from '../data.js';
import { fixed, int } from '../format.js';
import { type Chart, chart, colorBy, HEIGHT, last, PERIOD_AXIS, placeholder, WIDTH } from './spec.js';

export function surveyChart(rows: SurveyRow[], type: 'nps' | 'csat'): Chart {
  const id = type;
  const name = type === 'nps' ? 'NPS' : 'CSAT';
  const unit = type === 'nps' ? '' : '%';
  const data = rows.filter((r) => r.survey_type === type && r.score !== null);
  const latest = last(data);
  if (!latest) return placeholder(id, 'surveys', name, `No ${name} responses in a complete period.`);
  const significant = data.filter((r) => r.significant_change).length;
  const value = (v: number | null) => `${fixed(v, 1)}${unit}`;
  return chart(
    id,
    'surveys',
    type === 'nps'
      ? 'NPS = % promoters (9-10) − % detractors (0-6) per period, with its 95% margin of error as a band; filled points changed significantly.'
      : 'CSAT = % satisfied (top two boxes) per period, with its 95% margin of error as a band; filled points changed significantly.',
    {
      text: `${name} ${latest.period}: ${value(latest.score)} ± ${fixed(latest.moe95, 1)} (95%, ${int(latest.responses)} responses)`,
      subtitle: `${significant} significant change${significant === 1 ? '' : 's'} in ${data.length} periods (two-sided test at 95%).`,
    },
    {
      width: WIDTH,
      height: HEIGHT,
      data: { values: data },
      transform: [
        { calculate: 'datum.score - (datum.moe95 || 0)', as: 'low' },
        { calculate: 'datum.score + (datum.moe95 || 0)', as: 'high' },
        {
          calculate: "datum.significant_change ? 'significant change' : 'no significant change'",
          as: 'change',
        },
      ],
      encoding: { x: { field: 'period', type: 'ordinal', axis: PERIOD_AXIS, sort: null } },
      layer: [
        {
          mark: { type: 'area', opacity: 0.25, color: type === 'nps' ? '#2e6f9e' : '#66a182' },
          encoding: {
            y: {
              field: 'low',
              type: 'quantitative',
              title: `${name}${unit ? ' %' : ''}`,
              scale: { zero: false },
            },
            y2: { field: 'high' },
          },
        },
        {
          mark: { type: 'line', color: type === 'nps' ? '#2e6f9e' : '#66a182', strokeWidth: 2 },
          encoding: { y: { field: 'score', type: 'quantitative' } },
        },
        {
          mark: { type: 'point', size: 40, strokeWidth: 1.5, color: type === 'nps' ? '#2e6f9e' : '#66a182' },
          encoding: {
            y: { field: 'score', type: 'quantitative' },
            fill: colorBy(
              'change',
              ['significant change', 'no significant change'],
              [type === 'nps' ? '#2e6f9e' : '#66a182', 'white'],
            ),
            tooltip: [
              { field: 'period', title: 'period' },
              { field: 'score', title: name, format: '.1f' },
              { field: 'moe95', title: '± 95%', format: '.1f' },
              { field: 'responses', title: 'responses' },
              { field: 'change', title: 'change' },
            ],
          },
        },
      ],
    },
  );
}
