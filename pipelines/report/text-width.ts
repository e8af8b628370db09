// Text widths for vega's layout in Node. Without a canvas, vega guesses every character at 0.8 em, which makes
// titles and axis labels look far wider than they are (charts come out with wide empty margins, and shrink to
// fit the page). The report's font is Helvetica / Arial (Liberation Sans on Linux, metric-compatible), so the
// widths are its standard font metrics, in 1/1000 em, for the printable ASCII characters.

// Characters 32 (space) to 126 (~).
const REGULAR = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
  556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
  500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
  556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
  278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
const BOLD = [
  278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
  556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278,
  556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584,
  556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556,
  333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];
/** Anything else (±, −, ×, accented letters) is taken as wide as a digit. */
const OTHER = 556;

/** The width in pixels of `text` at `fontSize` in Helvetica / Arial. */
export function helveticaWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let units = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    units += code >= 32 && code <= 126 ? table[code - 32]! : OTHER;
  }
  return (units * fontSize) / 1000;
}

/** A scenegraph text item as vega hands it to textMetrics.width. */
export interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  /** The width a label is truncated to (with an ellipsis), 0 or absent for none. */
  limit?: number;
}

/** vega's textMetrics.width: the item's font size (vega's default 11), weight and truncation limit. */
export function itemTextWidth(item: TextItem, text: unknown): number {
  const line = text === null || text === undefined ? '' : String(text).trim();
  const weight = item.fontWeight;
  const bold = weight === 'bold' || weight === '600' || (typeof weight === 'number' && weight >= 600);
  const width = helveticaWidth(line, item.fontSize ?? 11, bold);
  return item.limit && item.limit > 0 ? Math.min(width, item.limit) : width;
}
