// report.html: the run's tables as charts, in one self-contained file beside the manifest. A run builds it from
// its staged files after the export stage, and the sink publishes it with the run (runs/as_of=D/report.html and
// current/report.html); `churn report --as-of D` rebuilds it from a published date.
import { existsSync, realpathSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../base/log.js';
import { allCharts } from './charts/index.js';
import { loadReportData, ReportError, type ReportSource, readManifest } from './data.js';
import { type RenderedFigure, renderPage } from './page.js';

export { ReportError } from './data.js';

export const REPORT_FILE = 'report.html';

export interface BuiltReport {
  html: string;
  /** Chart ids in page order. */
  charts: string[];
  /** What vega-lite or vega warned about while drawing. */
  warnings: string[];
}

/** Builds the page from a run's files. */
export async function buildReport(source: ReportSource): Promise<BuiltReport> {
  const data = await loadReportData(source);
  // vega is loaded only when a report is drawn: the other commands start without it.
  const { renderSvg } = await import('./render.js');
  const figures: RenderedFigure[] = [];
  const warnings: string[] = [];
  for (const [i, chart] of allCharts(data).entries()) {
    // Each chart compiles and draws on the main thread: give timers (the run lock's refresh) a turn between them.
    await new Promise((resolve) => setImmediate(resolve));
    const rendered = await renderSvg(chart.spec, `c${i}-`);
    warnings.push(...rendered.warnings.map((w) => `${chart.id}: ${w}`));
    figures.push({
      id: chart.id,
      section: chart.section,
      caption: chart.caption,
      svg: rendered.svg,
      empty: chart.empty,
    });
  }
  return { html: renderPage(data, figures), charts: figures.map((f) => f.id), warnings };
}

/** A staged run: <dir>/_manifest.json and <dir>/<table>/part-0.parquet. */
export function stagedSource(dir: string): ReportSource {
  return { manifestFile: join(dir, '_manifest.json'), tableDir: (table) => join(dir, table) };
}

/**
 * A published date of a local output (or of an S3 output's local copy): the run's folder runs/as_of=D (its
 * version, with every table), else the history partitions <table>/as_of=D of an earlier release's layout.
 */
export function publishedSource(root: string, asOf: string): ReportSource {
  const run = join(root, 'runs', `as_of=${asOf}`);
  return {
    manifestFile: join(run, '_manifest.json'),
    tableDir: (table) => [join(run, table), join(root, table, `as_of=${asOf}`)].find((d) => existsSync(d)),
  };
}

/** Writes a file by a rename, so that a reader never sees half a page. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${REPORT_FILE}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The report stage of a run: writes <stagedDir>/report.html and returns the files the sink publishes beside the
 * manifest. A report that cannot be drawn does not hold back the tables: it is logged, and the run publishes
 * without it.
 */
export async function writeStagedReport(stagedDir: string, asOf: string, log: Logger): Promise<string[]> {
  try {
    const report = await buildReport(stagedSource(stagedDir));
    for (const warning of report.warnings) log.warn({ warning }, 'report: a chart was drawn with a warning');
    await writeFile(join(stagedDir, REPORT_FILE), report.html);
    log.debug({ charts: report.charts.length, bytes: report.html.length }, 'report written');
    return [REPORT_FILE];
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      `${REPORT_FILE} could not be built; the tables are published without it. Fix the cause, then run: churn report --as-of ${asOf}`,
    );
    return [];
  }
}

/** The as-of date of current/ (the newest published date). */
async function currentAsOf(root: string): Promise<string> {
  const file = join(root, 'current', '_manifest.json');
  if (!existsSync(file)) {
    throw new ReportError(
      `nothing is published in ${root} yet (no current/_manifest.json); run churn run first`,
    );
  }
  return readManifest(file).as_of;
}

/**
 * `churn report`: rebuilds report.html of a published date from its published tables and manifest, into the
 * run's folder (runs/as_of=D/report.html, which is also current/report.html when D is the newest date), or into
 * `out`. Returns the file written.
 */
export async function rebuildReport(
  root: string,
  options: { asOf?: string; out?: string; log: Logger },
): Promise<{ asOf: string; file: string; charts: number }> {
  const asOf = options.asOf ?? (await currentAsOf(root));
  const run = join(root, 'runs', `as_of=${asOf}`);
  if (!existsSync(join(run, '_SUCCESS'))) {
    throw new ReportError(
      `as_of ${asOf} is not published in ${root} (no runs/as_of=${asOf}/_SUCCESS); run churn run --as-of ${asOf} first, or pick a published date (churn status)`,
    );
  }
  const report = await buildReport(publishedSource(root, asOf));
  for (const warning of report.warnings)
    options.log.warn({ warning }, 'report: a chart was drawn with a warning');
  // Into the version folder the run's links point at (not through them: the rename must land inside it).
  const file = options.out ?? join(realpathSync(run), REPORT_FILE);
  await writeAtomically(file, report.html);
  return { asOf, file, charts: report.charts.length };
}
