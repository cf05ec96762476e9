/**
 * SVG charts generated in code (no browser, no charting library): time against table size on log-log
 * axes, and speedups as grouped bars on a log axis. Every data point is an element carrying its values in
 * `data-*` attributes and a `<title>` tooltip, so the charts can be checked by a program as well as read.
 */

/** One point of a series: x and y in data units (both must be positive: the axes are logarithmic). */
export interface ChartPoint { x: number; y: number }

/** A named line of points. */
export interface ChartSeries { name: string; color: string; points: ChartPoint[] }

/** A time-against-size chart. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** How tick labels and tooltips print values of each axis. */
  formatX?: (value: number) => string;
  formatY?: (value: number) => string;
  widthPx?: number;
  heightPx?: number;
}

/** One bar: a group (a scenario) and a member of it (a table size), with its value. */
export interface Bar { group: string; member: string; value: number }

/** A grouped bar chart on a logarithmic value axis (speedups: 1x is the reference line). */
export interface BarChartOptions {
  title: string;
  yLabel: string;
  bars: Bar[];
  /** Colour of each member (e.g. one per table size), in legend order. */
  members: { name: string; color: string }[];
  formatValue?: (value: number) => string;
  widthPx?: number;
  heightPx?: number;
}

/** Colours that stay apart in print and for the common colour-vision deficiencies. */
export const PALETTE = ['#d95f02', '#1b9e77', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];

/**
 * Escapes text for XML character data and attribute values.
 *
 * @example
 * escapeXml('a < b & "c"') // 'a &lt; b &amp; &quot;c&quot;'
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    // Control characters are not allowed in XML 1.0 at all.
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

const num = (v: number): string => (Math.round(v * 10) / 10).toString();

/** A logarithmic axis: the domain in data units and where its ticks go. */
interface LogAxis { lo: number; hi: number; ticks: number[] }

/**
 * A log axis that covers `values` with some margin, ticks at 1, 2 and 5 times the powers of ten inside it
 * (only the powers of ten when that makes too many).
 */
export function logAxis(values: readonly number[], maxTicks = 8): LogAxis {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  let lo = positive.length ? Math.min(...positive) : 1;
  let hi = positive.length ? Math.max(...positive) : 10;
  // Pad by a quarter decade each side; a single value still gets an axis around it.
  lo /= 10 ** 0.25;
  hi *= 10 ** 0.25;
  const ticks = (steps: number[]): number[] => {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const s of steps) {
        const t = s * 10 ** e;
        if (t >= lo && t <= hi) out.push(Number(t.toPrecision(6)));
      }
    }
    return out;
  };
  let chosen = ticks([1, 2, 5]);
  if (chosen.length > maxTicks) chosen = ticks([1]);
  if (chosen.length > maxTicks) chosen = chosen.filter((_, i) => i % Math.ceil(chosen.length / maxTicks) === 0);
  return { lo, hi, ticks: chosen };
}

function scaleLog(axis: LogAxis, from: number, to: number): (v: number) => number {
  const a = Math.log10(axis.lo);
  const b = Math.log10(axis.hi);
  return (v) => from + ((Math.log10(v) - a) / (b - a)) * (to - from);
}

function header(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${num(width / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
}

/**
 * A log-log line chart, one line and one circle per point per series. Points with a non-positive value
 * cannot sit on a log axis and are left out (their absence is visible in the data table beside the chart).
 *
 * @example
 * const svg = lineChartSvg({ title: 'purge-type', xLabel: 'rows', yLabel: 'ms',
 *   series: [{ name: 'original', color: '#d95f02', points: [{ x: 5e5, y: 900 }, { x: 2e6, y: 3600 }] }] });
 */
export function lineChartSvg(options: LineChartOptions): string {
  const width = options.widthPx ?? 460;
  const height = options.heightPx ?? 300;
  const fx = options.formatX ?? String;
  const fy = options.formatY ?? String;
  const margin = { left: 68, right: 16, top: 34, bottom: 64 };
  const series = options.series.map((s) => ({ ...s, points: s.points.filter((p) => p.x > 0 && p.y > 0) }));
  const xAxis = logAxis(series.flatMap((s) => s.points.map((p) => p.x)), 6);
  const yAxis = logAxis(series.flatMap((s) => s.points.map((p) => p.y)), 5);
  const x = scaleLog(xAxis, margin.left, width - margin.right);
  const y = scaleLog(yAxis, height - margin.bottom, margin.top);
  const out = header(width, height, options.title);
  const plotBottom = height - margin.bottom;
  out.push(`<g class="axes" stroke="#999999" stroke-width="1">`,
    `<line x1="${margin.left}" y1="${plotBottom}" x2="${width - margin.right}" y2="${plotBottom}"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${plotBottom}"/>`, `</g>`);
  for (const t of xAxis.ticks) {
    out.push(`<line x1="${num(x(t))}" y1="${margin.top}" x2="${num(x(t))}" y2="${plotBottom}" stroke="#eeeeee"/>`,
      `<text x="${num(x(t))}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(fx(t))}</text>`);
  }
  for (const t of yAxis.ticks) {
    out.push(`<line x1="${margin.left}" y1="${num(y(t))}" x2="${width - margin.right}" y2="${num(y(t))}" stroke="#eeeeee"/>`,
      `<text x="${margin.left - 6}" y="${num(y(t) + 4)}" text-anchor="end">${escapeXml(fy(t))}</text>`);
  }
  out.push(`<text x="${num((margin.left + width - margin.right) / 2)}" y="${plotBottom + 34}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(14 ${num((margin.top + plotBottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<g class="series" data-series="${escapeXml(s.name)}" stroke="${escapeXml(s.color)}" fill="${escapeXml(s.color)}">`);
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke-width="2" points="${pts.map((p) => `${num(x(p.x))},${num(y(p.y))}`).join(' ')}"/>`);
    }
    for (const p of pts) {
      out.push(`<circle class="point" cx="${num(x(p.x))}" cy="${num(y(p.y))}" r="4" data-series="${escapeXml(s.name)}" ` +
        `data-x="${p.x}" data-y="${p.y}"><title>${escapeXml(`${s.name}: ${fy(p.y)} at ${fx(p.x)}`)}</title></circle>`);
    }
    out.push(`</g>`);
    const lx = margin.left + i * 150;
    out.push(`<g class="legend"><rect x="${lx}" y="${height - 18}" width="12" height="12" fill="${escapeXml(s.color)}"/>` +
      `<text x="${lx + 16}" y="${height - 8}">${escapeXml(s.name)}</text></g>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/**
 * Grouped bars on a log value axis with a reference line at 1; each bar carries its value as a label.
 *
 * @example
 * const svg = barChartSvg({ title: 'speedup', yLabel: 'times faster', members: [{ name: '2m', color: '#1b9e77' }],
 *   bars: [{ group: 'purge-type', member: '2m', value: 35 }] });
 */
export function barChartSvg(options: BarChartOptions): string {
  const fv = options.formatValue ?? ((v: number) => `${v}`);
  const groups = [...new Set(options.bars.map((b) => b.group))];
  const members = options.members.filter((m) => options.bars.some((b) => b.member === m.name));
  const width = options.widthPx ?? Math.max(480, 170 + groups.length * (22 * Math.max(1, members.length) + 26));
  const height = options.heightPx ?? 380;
  // The right margin leaves room for the last group's slanted label.
  const margin = { left: 60, right: 110, top: 34, bottom: 140 };
  const axis = logAxis([1, ...options.bars.map((b) => b.value)], 8);
  const y = scaleLog(axis, height - margin.bottom, margin.top);
  const base = y(1);
  const plotBottom = height - margin.bottom;
  const out = header(width, height, options.title);
  for (const t of axis.ticks) {
    out.push(`<line x1="${margin.left}" y1="${num(y(t))}" x2="${width - margin.right}" y2="${num(y(t))}" stroke="#eeeeee"/>`,
      `<text x="${margin.left - 6}" y="${num(y(t) + 4)}" text-anchor="end">${escapeXml(fv(t))}</text>`);
  }
  out.push(`<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${plotBottom}" stroke="#999999"/>`,
    `<line class="reference" x1="${margin.left}" y1="${num(base)}" x2="${width - margin.right}" y2="${num(base)}" stroke="#333333" stroke-dasharray="4 3"/>`,
    `<text transform="translate(14 ${num((margin.top + plotBottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  const groupWidth = (width - margin.left - margin.right) / Math.max(1, groups.length);
  const barWidth = Math.min(22, (groupWidth - 10) / Math.max(1, members.length));
  groups.forEach((g, gi) => {
    const gx = margin.left + gi * groupWidth + (groupWidth - barWidth * members.length) / 2;
    out.push(`<g class="group" data-group="${escapeXml(g)}">`);
    members.forEach((m, mi) => {
      const bar = options.bars.find((b) => b.group === g && b.member === m.name);
      if (!bar || !(bar.value > 0)) return;
      const top = Math.min(y(bar.value), base);
      const h = Math.max(1, Math.abs(y(bar.value) - base));
      const bx = gx + mi * barWidth;
      out.push(`<rect class="bar" x="${num(bx)}" y="${num(top)}" width="${num(barWidth - 2)}" height="${num(h)}" ` +
        `fill="${escapeXml(m.color)}" data-group="${escapeXml(g)}" data-member="${escapeXml(m.name)}" data-value="${bar.value}">` +
        `<title>${escapeXml(`${g} at ${m.name}: ${fv(bar.value)}`)}</title></rect>`,
      `<text x="${num(bx + (barWidth - 2) / 2)}" y="${num(bar.value >= 1 ? top - 3 : top + h + 11)}" text-anchor="middle" font-size="9">${escapeXml(fv(bar.value))}</text>`);
    });
    const cx = margin.left + gi * groupWidth + groupWidth / 2;
    out.push(`<text transform="translate(${num(cx)} ${plotBottom + 10}) rotate(40)" text-anchor="start">${escapeXml(g)}</text>`, `</g>`);
  });
  members.forEach((m, i) => {
    const lx = margin.left + i * 90;
    out.push(`<g class="legend"><rect x="${lx}" y="${height - 18}" width="12" height="12" fill="${escapeXml(m.color)}"/>` +
      `<text x="${lx + 16}" y="${height - 8}">${escapeXml(m.name)}</text></g>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
