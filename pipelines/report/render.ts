// Renders a Vega-Lite spec to SVG text in Node: compiled by vega-lite, then drawn by vega's headless View
// (renderer 'none': no canvas, no DOM). Warnings of both are collected instead of printed.
import { parse, resetSVGDefIds, textMetrics, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { itemTextWidth } from './text-width.js';

// Layout with the report font's real widths instead of vega's 0.8 em guess (see text-width.ts).
textMetrics.width = itemTextWidth;

/** The logger interface of vega and vega-lite: messages are kept, never printed. */
class CollectingLogger {
  readonly messages: string[] = [];
  private current = 2;

  level(): number;
  level(value: number): this;
  level(value?: number): number | this {
    if (value === undefined) return this.current;
    this.current = value;
    return this;
  }
  error(...args: unknown[]): this {
    throw new Error(args.map(String).join(' '));
  }
  warn(...args: unknown[]): this {
    this.messages.push(args.map(String).join(' '));
    return this;
  }
  info(): this {
    return this;
  }
  debug(): this {
    return this;
  }
}

export interface RenderedChart {
  svg: string;
  /** What vega-lite or vega warned about (an encoding it dropped, a field it could not find). */
  warnings: string[];
}

/** Draws one chart. Ids inside the SVG get `idPrefix`, so that several charts can share one page. */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<RenderedChart> {
  const logger = new CollectingLogger();
  const compiled = compile(spec, { logger }).spec;
  const view = new View(parse(compiled), { renderer: 'none', logger });
  try {
    // Gradient and clip ids count from 0 in every chart (the prefix makes them unique on the page), so that the
    // same run always gives the same page.
    resetSVGDefIds();
    const svg = await view.toSVG();
    return { svg: prefixIds(svg, idPrefix), warnings: logger.messages };
  } finally {
    view.finalize();
  }
}

/** Makes the ids of an SVG (clip paths, gradients) and their references unique to it. */
export function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${prefix}${id}"`);
}
