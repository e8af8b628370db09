// The report's HTML page: one self-contained file (inline CSS and SVG, no script, no font, no request; the
// Content-Security-Policy forbids any), so that it opens from disk, from an S3 console or as an e-mail attachment.
import type { Section } from './charts/index.js';
import type { ReportData } from './data.js';
import { fixed, int, pct } from './format.js';

export interface RenderedFigure {
  id: string;
  section: Section;
  caption: string;
  svg: string;
  empty: boolean;
}

const SECTIONS: { id: Section; title: string }[] = [
  { id: 'retention', title: 'Retention and churn' },
  { id: 'surveys', title: 'NPS and CSAT' },
  { id: 'health', title: 'Early warning' },
  { id: 'audience', title: 'Reactivation audience' },
  { id: 'quality', title: 'Data quality' },
];

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 Helvetica,Arial,sans-serif;color:#222;background:#f4f5f7}
header{background:#1f3b57;color:#fff;padding:18px 28px 20px}
header h1{margin:0 0 4px;font-size:22px;font-weight:600}
header p{margin:0;color:#c9d6e3;font-size:12.5px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.kpi{background:rgba(255,255,255,.1);border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:19px;font-weight:600}
.kpi span{font-size:11.5px;color:#c9d6e3}
main{padding:6px 28px 28px;max-width:1280px}
h2{font-size:17px;margin:22px 0 10px;color:#1f3b57}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px}
figure svg{display:block;max-width:100%;height:auto}
figcaption{font-size:12px;color:#555;margin-top:6px}
.notes{background:#fff8e1;color:#5a4500;border:1px solid #f2d27a;border-radius:6px;padding:8px 12px;margin-top:14px;font-size:12.5px}
table{border-collapse:collapse;background:#fff;font-size:12.5px;margin-top:12px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f0f2f5;font-weight:600}
footer{padding:0 28px 24px;color:#666;font-size:12px}
code{background:#eef0f3;padding:1px 4px;border-radius:3px}
`;

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function kpis(data: ReportData): string {
  const latest = [...data.periods].reverse().find((p) => !p.small_base);
  const nps = data.surveys.filter((s) => s.survey_type === 'nps' && s.score !== null).at(-1);
  const target = data.audience
    .filter((a) => a.audience_group === 'target')
    .reduce((n, a) => n + a.customers, 0);
  const quarantined = Object.values(data.manifest.quarantine ?? {}).reduce((n, q) => n + q.quarantined, 0);
  const tiles: [string, string][] = [
    [int(data.customers), 'customers'],
    [pct(latest?.churn_rate_pct), `churn ${latest?.period ?? ''}`],
    [pct(latest?.nrr_pct), `NRR ${latest?.period ?? ''}`],
    [nps ? fixed(nps.score, 1) : 'n/a', `NPS ${nps?.period ?? ''}`],
    [int(data.flagged), 'flagged (at risk, silent churn)'],
    [data.backtest ? fixed(data.backtest.auc, 3) : 'n/a', 'backtest AUC'],
    [int(target), 'audience (target)'],
    [int(quarantined), 'rows quarantined'],
  ];
  return tiles
    .map(
      ([value, label]) =>
        `<div class="kpi"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`,
    )
    .join('');
}

function figure(f: RenderedFigure): string {
  return (
    `<figure class="chart" id="chart-${f.id}" data-chart="${f.id}" data-empty="${f.empty}">` +
    // A placeholder's message is its chart: no caption repeats it.
    `${f.svg}${f.empty ? '' : `<figcaption>${escapeHtml(f.caption)}</figcaption>`}</figure>`
  );
}

function reconciliationTable(data: ReportData): string {
  const rows = Object.entries(data.manifest.reconciliation?.rows ?? {});
  if (rows.length === 0) return '';
  const cell = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : int(v));
  const body = rows
    .map(
      ([entity, r]) =>
        `<tr><td>${escapeHtml(entity)}</td><td>${cell(r?.read)}</td><td>${cell(r?.left_out_by_where)}</td>` +
        `<td>${cell(r?.landed)}</td><td>${cell(r?.quarantined)}</td><td>${cell(r?.after_as_of)}</td>` +
        `<td>${cell(r?.staged)}</td><td>${cell(r?.unaccounted)}</td><td>${r?.balanced ? 'yes' : 'NO'}</td></tr>`,
    )
    .join('');
  return (
    '<table id="reconciliation-table"><thead><tr><th>entity</th><th>read</th><th>left out by where</th>' +
    '<th>landed</th><th>quarantined</th><th>after the as-of date</th><th>staged</th><th>unaccounted</th>' +
    `<th>balanced</th></tr></thead><tbody>${body}</tbody></table>`
  );
}

/** The whole page. */
export function renderPage(data: ReportData, figures: RenderedFigure[]): string {
  const m = data.manifest;
  const notes = (m.notes ?? []).filter((n) => n.trim() !== '');
  const sections = SECTIONS.map(({ id, title }) => {
    const inSection = figures.filter((f) => f.section === id);
    if (inSection.length === 0) return '';
    const extra = id === 'quality' ? reconciliationTable(data) : '';
    return `<section id="${id}"><h2>${escapeHtml(title)}</h2><div class="grid">${inSection.map(figure).join('')}</div>${extra}</section>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Churn report as of ${escapeHtml(m.as_of)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Churn report &middot; as of ${escapeHtml(m.as_of)}</h1>
<p>run ${escapeHtml(m.run_id)}${m.finished_at ? ` &middot; finished ${escapeHtml(m.finished_at)}` : ''} &middot; ${int(Object.keys(m.tables).length)} tables published</p>
<div class="kpis">${kpis(data)}</div>
${notes.length ? `<div class="notes">${notes.map((n) => `<div>${escapeHtml(n)}</div>`).join('')}</div>` : ''}
</header>
<main>
${sections}
</main>
<footer>Built from the run's published tables and <code>_manifest.json</code>. Rebuild it with <code>churn report --as-of ${escapeHtml(m.as_of)}</code>.</footer>
</body>
</html>
`;
}
