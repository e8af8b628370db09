// report.html in a real browser: a run on a generated sample publishes the page into its run folder and under
// current/; headless Chromium (Debian's package, driven by playwright-core) opens it from disk with no console
// error and no request, and every chart is drawn with visible marks; `churn report` rebuilds the same page from
// the published outputs. The screenshot of the page is written for the README (docs/report.png).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../pipelines/base/log.js';
import { buildProgram } from '../pipelines/cli.js';
import { buildReport, publishedSource, REPORT_FILE } from '../pipelines/report/index.js';
import { type RunResult, runPipeline } from '../pipelines/run/index.js';
import { sampleProject } from './support/sample.js';

const ROOT = join(import.meta.dirname, '..');
/** Debian's chromium package; CHROMIUM_PATH points elsewhere (a developer's own Chrome or Chromium). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The flags a closed network needs: no background connections, no update or sync checks. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The README's picture: written when missing, or again with CHURN_UPDATE_SCREENSHOT=1. */
const README_SCREENSHOT = join(ROOT, 'docs', 'report.png');

/**
 * Every chart the sample's report has: it has subscriptions, surveys, a backtest, quarantined rows and, from the
 * second run on, an earlier audience to measure.
 */
const CHARTS = [
  'cohort-retention',
  'churn-nrr-grr',
  'lifecycle',
  'mrr-movements',
  'nps',
  'csat',
  'health-statuses',
  'reason-codes',
  'backtest-lift',
  'backtest-calibration',
  'audience-exclusions',
  'audience-groups',
  'reactivation-lift',
  'quarantine',
  'quality-gates',
  'reconciliation',
];

/**
 * Run in the page (plain JavaScript, the DOM is not in this project's types): per figure, its chart id, whether it
 * is a placeholder, its title and how many of vega's mark elements have a visible box.
 */
const MEASURE_CHARTS = `[...document.querySelectorAll('figure.chart')].map((figure) => {
  const marks = [...figure.querySelectorAll('svg g.role-mark')].flatMap((g) => [
    ...g.querySelectorAll('path, rect, line, text, circle'),
  ]);
  const drawn = marks.filter((m) => {
    const box = m.getBBox();
    return box.width > 0 || box.height > 0;
  }).length;
  const title = figure.querySelector('svg g.role-title text');
  return {
    id: figure.dataset.chart || '',
    empty: figure.dataset.empty || '',
    title: title ? title.textContent : '',
    drawn,
  };
})`;

function daysBefore(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

interface ChartInPage {
  id: string;
  empty: string;
  title: string;
  /** Mark elements with a visible box (a rect, a path, a symbol, a text). */
  drawn: number;
}

describe('report.html', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-report-'));
  const out = join(dir, 'out');
  let result: RunResult;

  let earlier: RunResult;

  beforeAll(async () => {
    const { asOf, loaded } = await sampleProject(dir, { customers: 600, seed: 7 });
    // An audience published 35 days before: the last run measures its 30-day reactivation (the lift chart).
    earlier = await runPipeline(loaded, { asOf: daysBefore(asOf, 35), log: silentLogger() });
    result = await runPipeline(loaded, { asOf, log: silentLogger() });
  });

  it('is published with every run: in its run folder, and under current/ for the newest date', () => {
    const current = join(out, 'current', REPORT_FILE);
    const run = (r: RunResult) => readFileSync(join(out, 'runs', `as_of=${r.asOf}`, REPORT_FILE), 'utf8');
    expect(existsSync(current), current).toBe(true);
    expect(run(result)).toBe(readFileSync(current, 'utf8'));
    expect(run(earlier)).toContain(`<title>Churn report as of ${earlier.asOf}</title>`);
  });

  it('is one self-contained file: no script, no external address, a policy that forbids requests', () => {
    const html = readFileSync(join(out, 'current', REPORT_FILE), 'utf8');
    expect(html).toContain(`<title>Churn report as of ${result.asOf}</title>`);
    expect(html).toContain(`content="default-src 'none';`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import/i);
    expect(html.match(/(?:src|href)="(?!#)[^"]*"/g) ?? []).toEqual([]);
    for (const id of CHARTS) expect(html, id).toContain(`data-chart="${id}"`);
  });

  it('draws every chart without a warning from vega-lite or vega', async () => {
    const report = await buildReport(publishedSource(out, result.asOf));
    expect(report.warnings).toEqual([]);
    expect(report.charts).toEqual(CHARTS);
  });

  it('is rebuilt by churn report --as-of D from the published outputs, byte for byte', async () => {
    const file = join(dir, 'rebuilt.html');
    const args = ['--config', join(dir, 'churn.yaml'), 'report', '--as-of', result.asOf, '--out', file];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let printed = '';
    try {
      await buildProgram().parseAsync(['node', 'churn', ...args]);
      printed = stdout.mock.calls.map((call) => String(call[0])).join('');
    } finally {
      stdout.mockRestore();
    }
    expect(printed).toContain(`report of ${result.asOf} written to ${file}: 16 charts`);
    expect(readFileSync(file, 'utf8')).toBe(readFileSync(join(out, 'current', REPORT_FILE), 'utf8'));
  });

  it('opens from disk in headless Chromium: no console error, no request, every chart drawn', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: install Debian's package (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH to a Chrome or Chromium binary`,
      );
    }
    const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'churn-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const url = pathToFileURL(join(out, 'current', REPORT_FILE)).href;
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('request', (request) => {
        if (request.url() !== url) requests.push(request.url());
      });
      await page.goto(url, { waitUntil: 'load' });
      const charts = await page.evaluate<ChartInPage[]>(MEASURE_CHARTS);
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      expect(charts.map((c) => c.id)).toEqual(CHARTS);
      for (const chart of charts) {
        expect(chart.empty, chart.id).toBe('false');
        expect(chart.drawn, `${chart.id} has no visible mark`).toBeGreaterThan(0);
        // The numbers are in the title: a screenshot tells the story.
        expect(chart.title, chart.id).toMatch(/\d/);
      }
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
      if (!existsSync(README_SCREENSHOT) || process.env.CHURN_UPDATE_SCREENSHOT === '1') {
        mkdirSync(join(ROOT, 'docs'), { recursive: true });
        copyFileSync(shot, README_SCREENSHOT);
      }
    } finally {
      await context.close();
    }
  });
});
