import { escapeXml } from './chart.js';
import { formatRowCount } from './options.js';
import { formatDuration, formatSpeedup, lastOfEach, scenarioChartSvg, speedupChartSvg } from './report.js';
import type { BenchReport, ScenarioResult } from './types.js';

/*
 * The HTML report a user reads (the demo's first page): the headline first, then one row per scenario (at the
 * largest size) with its time, its pages and the one ratio that matters for it, the plans folded under each
 * row, then charts across sizes. Laid out to fit a 1 280-pixel-wide window without horizontal scrolling
 * (fixed table layout, long words wrap, charts scale down); a test renders it in headless Chromium.
 */

/** The ratio that matters for a scenario, in words, e.g. "window 3 min 10 s → 4.1 ms (46 000×)". */
export function keyRatio(r: ScenarioResult): string {
  const arrow = (label: string, a: number | null | undefined, b: number | null | undefined) =>
    `${label} ${formatDuration(a ?? null)} → ${formatDuration(b ?? null)}` +
    (a && b ? ` (${formatSpeedup(a / b)})` : '');
  if (r.name === 'upgrade') {
    return `${arrow('in the downtime window:', r.baseline_window_ms, r.window_ms)}; online ${formatDuration(r.online_ms ?? null)}, ` +
      `pull p99 ${formatDuration(r.pull_p99_ms ?? null)} (idle ${formatDuration(r.idle_pull_p99_ms ?? null)})`;
  }
  if (r.name === 'add-record-type-index') return arrow('longest write wait:', r.baseline_longest_write_stall_ms, r.longest_write_stall_ms);
  if (r.pages_holding_rows && r.pages_read !== null && r.baseline_pages_read !== null && !r.name.endsWith('-partitioned')) {
    const x = (n: number) => `${(n / r.pages_holding_rows!).toFixed(n / r.pages_holding_rows! >= 10 ? 0 : 2)}×`;
    return `pages read per page holding the rows: ${x(r.baseline_pages_read)} → ${x(r.pages_read)} (the limit is 1×)`;
  }
  if (r.speedup === null) return typeof r.extra.rows_per_s === 'number' ? `${Math.round(r.extra.rows_per_s).toLocaleString('en-US')} rows/s` : '–';
  return `time: ${formatSpeedup(r.speedup)} faster`;
}

/** One line of the headline, from the `upgrade` scenario at the largest size; null without it. */
export function headline(report: BenchReport): string | null {
  const up = lastOfEach(report.scenarios).find((r) => r.name === 'upgrade');
  if (!up) return null;
  return `The seed's upgrade at ${formatRowCount(up.size)} rows: ${formatDuration(up.baseline_window_ms ?? up.baseline_ms)} in the downtime window → ` +
    `${formatDuration(up.window_ms ?? up.ms)}; the online part took ${formatDuration(up.online_ms ?? null)} while facilities kept pulling ` +
    `(pull p99 ${formatDuration(up.pull_p99_ms ?? null)}, idle ${formatDuration(up.idle_pull_p99_ms ?? null)}; longest write ` +
    `${formatDuration(up.longest_write_stall_ms ?? null)}; a change reached a facility within ${formatDuration(up.build_lag_max_ms ?? null)}).`;
}

const num = (n: number | null | undefined) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
const mb = (n: number | null | undefined) => (n === null || n === undefined ? '–' : `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 2 : 0)} MB`);

function scenarioRows(r: ScenarioResult): string {
  const pages = `${num(r.baseline_pages_read)} → ${num(r.pages_read)}` +
    (r.pages_holding_rows !== undefined ? `<br><small>${num(r.pages_holding_rows)} hold the rows</small>` : '');
  return `<tr><td><b>${escapeXml(r.name)}</b><br><small>${escapeXml(r.title)}</small></td>` +
    `<td class="n">${formatDuration(r.baseline_ms)}</td><td class="n">${formatDuration(r.ms)}</td>` +
    `<td class="n">${pages}</td><td class="n">${mb(r.baseline_wal_bytes)} → ${mb(r.wal_bytes)}</td>` +
    `<td><b>${escapeXml(keyRatio(r))}</b></td></tr>\n` +
    `<tr class="plans"><td colspan="6"><details><summary>plans and figures</summary>` +
    `<p><b>original:</b> ${escapeXml(r.baseline_plan ?? '–')}</p><p><b>ours:</b> ${escapeXml(r.plan ?? '–')}</p>` +
    `<p><small>${escapeXml(Object.entries(r.extra).filter(([, v]) => !Array.isArray(v)).map(([k, v]) => `${k}=${String(v)}`).join(', '))}</small></p>` +
    `</details></td></tr>`;
}

const CSS = `body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 16px;color:#222;box-sizing:border-box}
*{box-sizing:border-box}p,li,td{overflow-wrap:anywhere}
.headline{font-size:1.3em;background:#eef7f1;border-left:6px solid #1b9e77;padding:.6em 1em}
table{border-collapse:collapse;margin:1em 0;width:100%;table-layout:fixed}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
td.n{text-align:right}th{background:#f4f4f4}tr.plans td{border-top:none;background:#fafafa}
details p{margin:.3em 0}small{color:#666}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.charts svg{width:100%;height:auto;max-width:100%}`;

/**
 * A self-contained HTML report: headline, one row per scenario (time, pages, WAL, the ratio that matters,
 * plans folded), charts inline, notes, the machine.
 *
 * @example
 * await writeFile('index.html', renderHtml(report, { title: 'sync-lookup bench' }));
 */
export function renderHtml(report: BenchReport, options: { title?: string; intro?: string; footer?: string } = {}): string {
  const title = options.title ?? 'sync-lookup bench';
  const names = [...new Set(report.scenarios.map((r) => r.name))];
  const head = headline(report);
  const m = report.machine;
  const largest = formatRowCount(report.sizes[report.sizes.length - 1] ?? 0);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeXml(title)}</title>
<style>${CSS}</style></head><body>
<h1>${escapeXml(title)}</h1>
${head ? `<p class="headline">${escapeXml(head)}</p>` : ''}
${options.intro ? `<p>${escapeXml(options.intro)}</p>` : ''}
<p>PostgreSQL ${escapeXml(report.postgres)} · ${m.cpus} × ${escapeXml(m.cpu_model)} · ${Math.round(m.memory_bytes / 2 ** 30)} GB RAM ·
${escapeXml(m.os)} · Node ${escapeXml(m.node)} · sizes ${escapeXml(report.sizes.map(formatRowCount).join(', '))} ·
median of ${report.repeat} run(s) · seed ${report.seed} · ${escapeXml(report.started_at)}</p>
<h2>At ${escapeXml(largest)} rows</h2>
<table><colgroup><col style="width:30%"><col style="width:9%"><col style="width:9%"><col style="width:15%"><col style="width:13%"><col style="width:24%"></colgroup>
<tr><th>scenario</th><th>original</th><th>sync-lookup</th><th>pages read (original → ours)</th><th>WAL</th><th>what matters</th></tr>
${lastOfEach(report.scenarios).map(scenarioRows).join('\n')}
</table>
<h2>Time against table size</h2>
<div class="charts">
${names.map((n) => scenarioChartSvg(n, report.scenarios)).join('\n')}
</div>
<h2>Speedup</h2>
<div class="charts">${speedupChartSvg(report)}</div>
${report.notes.length ? `<h2>Notes</h2><ul>${report.notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>` : ''}
${options.footer ?? ''}
<h2>Server settings</h2>
<p>${Object.entries(m.postgres_settings).map(([k, v]) => `${escapeXml(k)} = ${escapeXml(v)}`).join(' · ')}</p>
</body></html>
`;
}
