import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PALETTE, barChartSvg, escapeXml, lineChartSvg } from './chart.js';
import { formatRowCount } from './options.js';
import { renderHtml } from './html.js';
import type { BenchReport, ExtraValue, ScenarioResult } from './types.js';

/**
 * Formats a duration with three significant figures: 0.412 ms, 38.2 ms, 1.27 s, 4 min 05 s.
 *
 * @example
 * formatDuration(1234) // '1.23 s'
 */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Formats a speedup: 35x, 4.2x, 0.93x.
 *
 * @example
 * formatSpeedup(35.4) // '35x'
 */
export function formatSpeedup(speedup: number | null): string {
  if (speedup === null || !Number.isFinite(speedup)) return '–';
  if (speedup >= 100) return `${Math.round(speedup)}x`;
  if (speedup >= 10) return `${speedup.toFixed(0)}x`;
  return `${speedup.toFixed(speedup >= 1 ? 1 : 2)}x`;
}

function formatSlope(slope: number | null | undefined): string {
  return slope === null || slope === undefined ? '–' : slope.toFixed(2);
}

function formatExtra(key: string, value: ExtraValue): string {
  if (Array.isArray(value)) return `${key}=[${value.map((v) => Math.round(v * 10) / 10).join(', ')}]`;
  if (typeof value === 'number') {
    if (key.endsWith('_ms')) return `${key}=${formatDuration(value)}`;
    return `${key}=${Number.isInteger(value) ? value : value.toFixed(2)}`;
  }
  return `${key}=${String(value)}`;
}

/** The extra figures worth a table cell (arrays of runs stay in the JSON). */
function extraSummary(r: ScenarioResult): string {
  return Object.entries(r.extra).filter(([, v]) => !Array.isArray(v)).map(([k, v]) => formatExtra(k, v)).join(', ');
}

const count = (n: number | null | undefined) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
const megabytes = (n: number | null | undefined) => (n === null || n === undefined ? '–' : `${(n / 2 ** 20).toFixed(1)} MB`);

const mdCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The results as a Markdown document: one table of medians, slopes when several sizes ran, plans.
 *
 * @example
 * await writeFile('results.md', renderMarkdown(report));
 */
export function renderMarkdown(report: BenchReport): string {
  const lines = [
    `# sync-lookup bench`,
    '',
    `PostgreSQL ${report.postgres}; ${report.machine.cpus} × ${report.machine.cpu_model}, ${Math.round(report.machine.memory_bytes / 2 ** 30)} GB RAM; ` +
      `sizes ${report.sizes.map(formatRowCount).join(', ')}; median of ${report.repeat} run(s) each; seed ${report.seed}.`,
    '',
    '| scenario | rows | original | ours | speedup | pages read (original → ours) | pages holding the rows | WAL (original → ours) | rows affected | extra |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...report.scenarios.map((r) =>
      `| ${r.name} | ${r.rows.toLocaleString('en-US')} | ${formatDuration(r.baseline_ms)} | ${formatDuration(r.ms)} | ` +
      `${formatSpeedup(r.speedup)} | ${count(r.baseline_pages_read)} → ${count(r.pages_read)} | ${count(r.pages_holding_rows)} | ` +
      `${megabytes(r.baseline_wal_bytes)} → ${megabytes(r.wal_bytes)} | ` +
      `${count(r.rows_affected)} | ${mdCell(extraSummary(r))} |`),
  ];
  if (report.projection) {
    lines.push('', `## Projection to ${formatRowCount(report.projection.size)} rows`, '', report.projection.note, '',
      '| scenario | original | ours | fit error (original, ours) |', '|---|---:|---:|---:|',
      ...report.projection.scenarios.map((p) => `| ${p.name} | ${formatDuration(p.baseline_ms)} | ${formatDuration(p.ms)} | ` +
        `${p.baseline_fit_error ?? '–'}, ${p.fit_error ?? '–'} |`));
  }
  if (report.sizes.length > 1) {
    lines.push('', '## Growth (log-log slope of time against rows: 1 = linear in the table, 0 = flat)', '',
      '| scenario | original slope | our slope |', '|---|---:|---:|');
    for (const r of firstOfEach(report.scenarios)) {
      lines.push(`| ${r.name} | ${formatSlope(r.baseline_slope)} | ${formatSlope(r.slope)} |`);
    }
  }
  lines.push('', '## Plans (largest size)', '', '| scenario | original plan | our plan |', '|---|---|---|');
  for (const r of lastOfEach(report.scenarios)) {
    lines.push(`| ${r.name} | ${mdCell(r.baseline_plan ?? '–')} | ${mdCell(r.plan ?? '–')} |`);
  }
  if (report.notes.length) lines.push('', '## Notes', '', ...report.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

function firstOfEach(results: ScenarioResult[]): ScenarioResult[] {
  const seen = new Set<string>();
  return results.filter((r) => !seen.has(r.name) && !!seen.add(r.name));
}

/** Each scenario's result at the largest size run (in first-seen order of names). */
export function lastOfEach(results: ScenarioResult[]): ScenarioResult[] {
  const byName = new Map<string, ScenarioResult>();
  for (const r of results) {
    const prev = byName.get(r.name);
    if (!prev || r.rows >= prev.rows) byName.set(r.name, r);
  }
  return [...byName.values()];
}

/**
 * The side-by-side table people read in a terminal: operation, original time, our time, speedup, and
 * the plan each used in words.
 *
 * @example
 * process.stdout.write(renderTextTable(report.scenarios));
 */
export function renderTextTable(results: ScenarioResult[], options: { planWidth?: number } = {}): string {
  const width = options.planWidth ?? 56;
  // Long plans (an operation of several statements) are cut here; renderPlans prints them whole.
  const cut = (plan: string | null) => (plan === null ? '–' : plan.length > width ? `${plan.slice(0, width - 1)}…` : plan);
  const headers = ['operation', 'rows', 'original', 'ours', 'speedup', 'original plan', 'our plan'];
  const rows = results.map((r) => [r.name, formatRowCount(r.size), formatDuration(r.baseline_ms), formatDuration(r.ms),
    formatSpeedup(r.speedup), cut(r.baseline_plan), cut(r.plan)]);
  const cells = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

/**
 * Every plan in full, per operation (largest size), for below the table.
 *
 * @example
 * process.stdout.write(renderPlans(report.scenarios));
 */
export function renderPlans(results: ScenarioResult[]): string {
  return lastOfEach(results).filter((r) => r.baseline_plan || r.plan)
    .map((r) => `${r.name}\n  original: ${r.baseline_plan ?? '–'}\n  ours:     ${r.plan ?? '–'}`).join('\n');
}

/** The chart of one scenario: baseline and ours against table size, log-log. */
export function scenarioChartSvg(name: string, results: ScenarioResult[]): string {
  const mine = results.filter((r) => r.name === name);
  const series = [
    { name: 'original', color: PALETTE[0]!, points: mine.filter((r) => r.baseline_ms !== null).map((r) => ({ x: r.rows, y: r.baseline_ms! })) },
    { name: 'sync-lookup', color: PALETTE[1]!, points: mine.map((r) => ({ x: r.rows, y: r.ms })) },
  ].filter((s) => s.points.length > 0);
  return lineChartSvg({
    title: name, xLabel: 'lookup rows (log)', yLabel: 'median time (log)', series,
    formatX: (v) => formatRowCount(Math.round(v)), formatY: (v) => formatDuration(v),
  });
}

/** The speedup of every scenario with an original form, one bar per table size. */
export function speedupChartSvg(report: BenchReport): string {
  const members = report.sizes.map((s, i) => ({ name: formatRowCount(s), color: PALETTE[(i + 1) % PALETTE.length]! }));
  const bars = report.scenarios.filter((r) => r.speedup !== null)
    .map((r) => ({ group: r.name, member: formatRowCount(r.size), value: Math.round(r.speedup! * 100) / 100 }));
  return barChartSvg({ title: 'speedup over the original form (median, log scale)', yLabel: 'times faster', members, bars,
    formatValue: formatSpeedup });
}

/**
 * All scenario charts in one SVG (a grid of small multiples), for a README or a docs page.
 *
 * @example
 * await writeFile('docs/bench-time-vs-rows.svg', timeGridSvg(report));
 */
export function timeGridSvg(report: BenchReport, columns = 3): string {
  const names = [...new Set(report.scenarios.map((r) => r.name))];
  const w = 460;
  const h = 300;
  const rowsCount = Math.ceil(names.length / columns);
  const width = w * Math.min(columns, Math.max(1, names.length));
  const height = h * Math.max(1, rowsCount);
  const parts = names.map((n, i) => scenarioChartSvg(n, report.scenarios)
    .replace('<svg ', `<svg x="${(i % columns) * w}" y="${Math.floor(i / columns) * h}" `));
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>sync-lookup bench: median time against table size, original and sync-lookup</title>`, ...parts, '</svg>'].join('\n');
}

/** The HTML report (html.ts), here too for callers of this module. */
export { renderHtml } from './html.js';

/** Files written by {@link writeReport}. */
export interface WrittenReport { dir: string; files: string[] }

/**
 * Writes `results.json`, `results.md`, `index.html`, `speedup.svg` and `time-vs-rows.svg` into `dir`
 * (created if missing).
 *
 * @example
 * const { files } = await writeReport(report, 'bench-out');
 */
export async function writeReport(report: BenchReport, dir: string, html: { title?: string; intro?: string; footer?: string } = {}): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ['results.json', `${JSON.stringify(report, null, 2)}\n`],
    ['results.md', renderMarkdown(report)],
    ['index.html', renderHtml(report, html)],
    ['speedup.svg', `${speedupChartSvg(report)}\n`],
    ['time-vs-rows.svg', `${timeGridSvg(report)}\n`],
  ];
  for (const [name, text] of files) await writeFile(path.join(dir, name), text);
  return { dir: path.resolve(dir), files: files.map(([name]) => path.join(path.resolve(dir), name)) };
}
