// vega re-exports vega-scenegraph's textMetrics, the hook that measures text for layout (vl-convert sets it
// too); vega's typings leave it out. pipelines/report/render.ts sets its width function.
import 'vega';

declare module 'vega' {
  export const textMetrics: {
    width: (
      item: { fontSize?: number; fontWeight?: string | number; limit?: number },
      text: unknown,
    ) => number;
  };
}
