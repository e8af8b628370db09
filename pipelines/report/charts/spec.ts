// What every chart of the report shares: the Chart record, the Vega-Lite config (font, title, axes), the status
// colours, and the helpers that make a chart or, when its data are empty, a one-line message (still a chart,
// with a text mark).
import type { TopLevelSpec } from 'vega-lite';

export type Section = 'retention' | 'surveys' | 'health' | 'audience' | 'quality';

export interface Chart {
  id: string;
  section: Section;
  /** One sentence under the chart: what it shows and how to read it. */
  caption: string;
  spec: TopLevelSpec;
  /** Drawn as a message: there was nothing to chart. */
  empty: boolean;
}

export const WIDTH = 460;
export const HEIGHT = 220;

const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  background: 'white',
  padding: 6,
  title: {
    anchor: 'start',
    fontSize: 14,
    fontWeight: 600,
    subtitleFontSize: 11.5,
    subtitleColor: '#555',
    offset: 10,
  },
  axis: { labelFontSize: 10.5, titleFontSize: 11, gridColor: '#eee', domainColor: '#888', tickColor: '#888' },
  legend: { orient: 'top', labelFontSize: 10.5, titleFontSize: 11, symbolSize: 80 },
  view: { stroke: null },
} as const;

export const STATUS_COLORS: Record<string, string> = {
  active: '#4c9f70',
  at_risk: '#f2a541',
  silent_churn: '#d1495b',
  churned: '#6c757d',
  dormant: '#9aa5b1',
  lost: '#c3c9d0',
  never_active: '#e3e6ea',
};

export type Title = { text: string; subtitle?: string | string[] };

function spec(body: Record<string, unknown>, title: Title): TopLevelSpec {
  return {
    config: CONFIG,
    title,
    ...body,
  } as TopLevelSpec;
}

export function chart(
  id: string,
  section: Section,
  caption: string,
  title: Title,
  body: Record<string, unknown>,
): Chart {
  return { id, section, caption, spec: spec(body, title), empty: false };
}

/** A chart with nothing to draw: its title and a one-line message. */
export function placeholder(id: string, section: Section, title: string, message: string): Chart {
  return {
    id,
    section,
    caption: message,
    empty: true,
    spec: spec(
      {
        width: WIDTH,
        height: 60,
        data: { values: [{ message }] },
        mark: { type: 'text', fontSize: 13, color: '#777', align: 'left', x: 0, y: 30 },
        encoding: { text: { field: 'message', type: 'nominal' } },
      },
      { text: title },
    ),
  };
}

export const PERIOD_AXIS = { title: null, labelAngle: -45, labelOverlap: 'greedy' } as const;

export function last<T>(rows: T[]): T | undefined {
  return rows[rows.length - 1];
}

/** A color (or fill) encoding by a nominal field: its values `domain` drawn in `range`, a legend without a title. */
export function colorBy(field: string, domain: string[], range: string[]) {
  return { field, type: 'nominal', title: null, scale: { domain, range } };
}

/**
 * Horizontal bars with their counts at the end (name, customers): one color, or `colors` by name (no legend), or by
 * the field `colors.by` of the values (with its legend).
 */
export function horizontalBars(
  values: Record<string, unknown>[],
  colors?: { domain: string[]; range: string[]; by?: string },
  width = WIDTH - 120,
) {
  const scale = colors && { domain: colors.domain, range: colors.range };
  return {
    width,
    height: Math.max(60, 22 * values.length),
    data: { values },
    encoding: {
      y: { field: 'name', type: 'nominal', title: null, sort: null },
      x: { field: 'customers', type: 'quantitative', title: 'customers' },
    },
    layer: [
      colors?.by
        ? {
            mark: { type: 'bar' },
            encoding: { color: colorBy(colors.by, colors.domain, colors.range) },
          }
        : {
            mark: { type: 'bar', color: '#2e6f9e' },
            encoding: scale ? { color: { field: 'name', type: 'nominal', legend: null, scale } } : {},
          },
      {
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 10.5, color: '#333' },
        encoding: { text: { field: 'customers', type: 'quantitative', format: ',' } },
      },
    ],
  };
}
