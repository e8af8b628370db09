// Data quality, from the quarantine table and the manifest: quarantine by reason, the gates, the reconciliation.
import type { QuarantineRow, ReportManifest } from '../data.js';
import { int, money, pct, words } from '../format.js';
import { type Chart, chart, colorBy, placeholder, WIDTH } from './spec.js';

export function quarantineChart(rows: QuarantineRow[], manifest: ReportManifest): Chart {
  const id = 'quarantine';
  const counts = Object.values(manifest.quarantine ?? {});
  const read = counts.reduce((n, q) => n + q.rows, 0);
  const quarantined = counts.reduce((n, q) => n + q.quarantined, 0);
  const worst = Object.entries(manifest.quarantine ?? {}).sort((a, b) => b[1].share - a[1].share)[0];
  const title = `Quarantine: ${int(quarantined)} of ${int(read)} input rows (${pct(read ? (100 * quarantined) / read : null, 3)})`;
  if (rows.length === 0)
    return placeholder(id, 'quality', title, 'Every input row passed typing and constraints.');
  return chart(
    id,
    'quality',
    'Input rows rejected by typing or constraints, by entity and reason (the quarantine table names file, row and value of each).',
    {
      text: title,
      subtitle: worst
        ? `Highest share: ${worst[0]} ${pct(100 * worst[1].share, 3)} (${int(worst[1].quarantined)} of ${int(worst[1].rows)}); the gate stops a run above its limit.`
        : undefined,
    },
    {
      width: WIDTH - 200,
      height: Math.max(60, 22 * rows.length),
      data: { values: rows.map((r) => ({ ...r, name: `${r.entity}: ${r.reason}` })) },
      encoding: {
        y: { field: 'name', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } },
        x: { field: 'rows', type: 'quantitative', title: 'rows', axis: { tickMinStep: 1 } },
      },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: { color: { field: 'entity', type: 'nominal', title: null, legend: null } },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3, fontSize: 10.5, color: '#333' },
          encoding: { text: { field: 'rows', type: 'quantitative', format: ',' } },
        },
      ],
    },
  );
}

export function gatesChart(manifest: ReportManifest): Chart {
  const id = 'quality-gates';
  const checks = manifest.checks ?? [];
  if (checks.length === 0)
    return placeholder(id, 'quality', 'Quality gates', 'The manifest lists no quality check.');
  const by = (status: string) => checks.filter((c) => c.status === status).length;
  const values = [...new Set(checks.map((c) => c.check))].flatMap((check) =>
    ['pass', 'warn', 'fail'].map((status) => ({
      check: words(check),
      status,
      checks: checks.filter((c) => c.check === check && c.status === status).length,
    })),
  );
  const warned = checks.find((c) => c.status === 'warn');
  return chart(
    id,
    'quality',
    'The checks a run must pass before anything is published: quarantine share, freshness, keys, values, relationships and reconciliation.',
    {
      text: `Quality gates: ${int(checks.length)} checks, ${by('pass')} passed, ${by('warn')} warned, ${by('fail')} failed`,
      subtitle: warned ? `Warning: ${warned.message.slice(0, 110)}` : 'Nothing to look at.',
    },
    stackedBars(
      new Set(checks.map((c) => c.check)).size,
      values.filter((v) => v.checks > 0),
      {
        y: { field: 'check', type: 'nominal', title: null, sort: null },
        x: {
          field: 'checks',
          type: 'quantitative',
          title: 'checks',
          stack: 'zero',
          axis: { tickMinStep: 1 },
        },
        color: colorBy('status', ['pass', 'warn', 'fail'], ['#4c9f70', '#f2a541', '#d1495b']),
        tooltip: [
          { field: 'check', title: 'check' },
          { field: 'status', title: 'status' },
          { field: 'checks', title: 'checks' },
        ],
      },
    ),
  );
}

export function reconciliationChart(manifest: ReportManifest): Chart {
  const id = 'reconciliation';
  const rows = Object.entries(manifest.reconciliation?.rows ?? {});
  if (rows.length === 0)
    return placeholder(
      id,
      'quality',
      'Reconciliation',
      'The manifest has no reconciliation (an earlier release wrote it).',
    );
  const total = (
    key: 'landed' | 'staged' | 'quarantined' | 'left_out_by_where' | 'after_as_of' | 'unaccounted',
  ) => rows.reduce((n, [, r]) => n + Number(r?.[key] ?? 0), 0);
  const parts = [
    ['staged', 'staged'],
    ['quarantined', 'quarantined'],
    ['left_out_by_where', 'left out by where'],
    ['after_as_of', 'after the as-of date'],
    ['unaccounted', 'unaccounted'],
  ] as const;
  const values = rows.flatMap(([entity, r]) =>
    parts.map(([key, part]) => ({ entity, part, rows: Number(r?.[key] ?? 0) })),
  );
  const balanced = manifest.reconciliation?.balanced === true;
  const moneyLines = Object.entries(manifest.reconciliation?.money ?? {}).map(([entity, m]) => {
    const published = (m?.published ?? []).reduce((n, p) => n + Number(p.published), 0);
    const excluded = (m?.excluded ?? []).reduce((n, e) => n + Number(e.amount), 0);
    return `${entity} ${money(Number(m?.input ?? 0))} = ${money(published)} published + ${money(Number(m?.quarantined ?? 0))} quarantined + ${money(excluded)} excluded${Number(m?.after_as_of ?? 0) ? ` + ${money(Number(m?.after_as_of))} after D` : ''}`;
  });
  return chart(
    id,
    'quality',
    'Where every input row went, per entity (share of the rows landed); the money lines are in the subtitle and in the table below.',
    {
      text: `Reconciliation ${balanced ? 'balanced' : 'NOT balanced'}: ${int(total('landed'))} rows = ${int(total('staged'))} staged + ${int(total('quarantined'))} quarantined + ${int(total('left_out_by_where') + total('after_as_of'))} left out`,
      subtitle: moneyLines.length ? moneyLines.map((m) => `${m}.`) : undefined,
    },
    stackedBars(
      rows.length,
      values.filter((v) => v.rows > 0),
      {
        y: { field: 'entity', type: 'nominal', title: null, sort: null },
        x: {
          field: 'rows',
          type: 'quantitative',
          title: 'share of rows landed',
          stack: 'normalize',
          axis: { format: '%' },
        },
        color: colorBy(
          'part',
          parts.map(([, p]) => p),
          ['#4c9f70', '#d1495b', '#9aa5b1', '#c3c9d0', '#000000'],
        ),
        tooltip: [
          { field: 'entity', title: 'entity' },
          { field: 'part', title: 'went to' },
          { field: 'rows', title: 'rows', format: ',' },
        ],
      },
    ),
  );
}

/** Horizontal stacked bars, `bars` of them, for the quality charts: the values that are there, the encoding given. */
function stackedBars(bars: number, values: Record<string, unknown>[], encoding: Record<string, unknown>) {
  return {
    width: WIDTH - 140,
    height: Math.max(60, 22 * bars),
    data: { values },
    mark: { type: 'bar' },
    encoding,
  };
}
