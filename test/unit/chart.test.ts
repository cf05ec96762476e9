import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import { barChartSvg, escapeXml, lineChartSvg, logAxis } from '../../src/bench/chart.js';
import { renderHtml, scenarioChartSvg, speedupChartSvg, timeGridSvg } from '../../src/bench/report.js';
import type { BenchReport, ScenarioResult } from '../../src/bench/types.js';

interface Element { name: string; attributes: Record<string, string> }

/** Parses XML with a conforming parser (throws on anything not well-formed) and returns its elements. */
function parseXml(xml: string): Element[] {
  const parser = new SaxesParser({ xmlns: false });
  const elements: Element[] = [];
  parser.on('error', (err) => { throw err; });
  parser.on('opentag', (tag) => {
    elements.push({ name: tag.name, attributes: Object.fromEntries(Object.entries(tag.attributes).map(([k, v]) => [k, String(v)])) });
  });
  parser.write(xml).close();
  return elements;
}

function result(name: ScenarioResult['name'], rows: number, baseline: number | null, ms: number): ScenarioResult {
  return {
    name, title: `${name} <&> "title"`, rows, size: Math.round(rows / 500_000) * 500_000, baseline_ms: baseline, ms, speedup: baseline === null ? null : baseline / ms,
    rows_affected: 10, baseline_plan: 'Seq Scan on sync_lookup (2.0 M rows)', plan: 'Index Scan using x', baseline_runs_ms: [],
    runs_ms: [ms], pages_read: 120, pages_dirtied: 60, wal_bytes: 500_000, baseline_pages_read: 9_000, baseline_pages_dirtied: 60,
    baseline_wal_bytes: 510_000, extra: {},
  };
}

const report: BenchReport = {
  postgres: '18.4',
  machine: { cpus: 2, cpu_model: 'Test CPU <x>', memory_bytes: 8 * 2 ** 30, os: 'Linux', arch: 'x64', node: '20', postgres_settings: { work_mem: '32MB' } },
  sizes: [500_000, 1_000_000, 2_000_000],
  repeat: 3, seed: 1, started_at: '2026-01-01T00:00:00.000Z', duration_ms: 1, databases: [], notes: ['a note & more'],
  scenarios: [
    result('purge-type', 500_012, 410, 12.5), result('purge-type', 1_000_003, 830, 24.1), result('purge-type', 2_000_101, 1650, 47.9),
    result('backfill-initial-tick', 500_012, 180, 0.42), result('backfill-initial-tick', 1_000_003, 360, 0.44),
    result('backfill-initial-tick', 2_000_101, 720, 0.45),
    result('seed', 500_012, null, 16_000), result('seed', 1_000_003, null, 33_000), result('seed', 2_000_101, null, 66_000),
  ],
};

describe('SVG charts', () => {
  it('escapes text for XML', () => {
    expect(escapeXml(`a < b & "c" 'd' >`)).toBe('a &lt; b &amp; &quot;c&quot; &apos;d&apos; &gt;');
    expect(escapeXml('bell\u0007')).toBe('bell');
  });

  it('puts log ticks at 1, 2, 5 × powers of ten around the data', () => {
    const axis = logAxis([500_000, 2_000_000]);
    expect(axis.lo).toBeLessThan(500_000);
    expect(axis.hi).toBeGreaterThan(2_000_000);
    expect(axis.ticks).toEqual([500_000, 1_000_000, 2_000_000]);
    expect(logAxis([0.4, 1700]).ticks.every((t) => /^[125]/.test(String(t)))).toBe(true);
  });

  it('draws a well-formed time chart with one circle per data point, holding its values', () => {
    const mine = report.scenarios.filter((r) => r.name === 'purge-type');
    const svg = scenarioChartSvg('purge-type', report.scenarios);
    const elements = parseXml(svg);
    expect(elements[0]!.name).toBe('svg');
    const circles = elements.filter((e) => e.name === 'circle');
    expect(circles).toHaveLength(mine.length * 2);
    for (const r of mine) {
      expect(circles).toContainEqual(expect.objectContaining({ attributes: expect.objectContaining({
        'data-series': 'original', 'data-x': String(r.rows), 'data-y': String(r.baseline_ms) }) }));
      expect(circles).toContainEqual(expect.objectContaining({ attributes: expect.objectContaining({
        'data-series': 'sync-lookup', 'data-x': String(r.rows), 'data-y': String(r.ms) }) }));
    }
    // Log scales: equal ratios are equal distances (0.5 M → 1 M → 2 M doubles each time).
    const xs = circles.filter((c) => c.attributes['data-series'] === 'sync-lookup').map((c) => Number(c.attributes.cx));
    expect(xs[1]! - xs[0]!).toBeCloseTo(xs[2]! - xs[1]!, 0);
    // Lower times sit lower on the chart (larger y in SVG coordinates).
    const ours = circles.find((c) => c.attributes['data-series'] === 'sync-lookup')!;
    const original = circles.find((c) => c.attributes['data-series'] === 'original' && c.attributes['data-x'] === ours.attributes['data-x'])!;
    expect(Number(ours.attributes.cy)).toBeGreaterThan(Number(original.attributes.cy));
  });

  it('leaves out a series without an original form and values a log axis cannot show', () => {
    const seed = parseXml(scenarioChartSvg('seed', report.scenarios)).filter((e) => e.name === 'circle');
    expect(seed.map((c) => c.attributes['data-series'])).toEqual(['sync-lookup', 'sync-lookup', 'sync-lookup']);
    const svg = lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', color: '#000', points: [{ x: 1, y: 0 }, { x: 2, y: 3 }] }] });
    expect(parseXml(svg).filter((e) => e.name === 'circle')).toHaveLength(1);
  });

  it('draws a well-formed speedup chart with one bar per scenario and size that has an original form', () => {
    const elements = parseXml(speedupChartSvg(report));
    const bars = elements.filter((e) => e.name === 'rect' && e.attributes.class === 'bar');
    const expected = report.scenarios.filter((r) => r.speedup !== null);
    expect(bars).toHaveLength(expected.length);
    for (const r of expected) {
      const bar = bars.find((b) => b.attributes['data-group'] === r.name && b.attributes['data-member'] === `${r.size / 1e6 >= 1 ? `${r.size / 1e6}m` : `${r.size / 1e3}k`}`);
      expect(bar, `${r.name} at ${r.size}`).toBeDefined();
      expect(Number(bar!.attributes['data-value'])).toBeCloseTo(r.speedup!, 1);
    }
    // Taller bar for the larger speedup: backfill (~1600x) over purge (~34x) at 2 M.
    const height = (name: string) => Number(bars.find((b) => b.attributes['data-group'] === name && b.attributes['data-member'] === '2m')!.attributes.height);
    expect(height('backfill-initial-tick')).toBeGreaterThan(height('purge-type'));
  });

  it('draws bars below the 1x line for a slowdown', () => {
    const svg = barChartSvg({ title: 't', yLabel: 'x', members: [{ name: 'a', color: '#111' }],
      bars: [{ group: 'g', member: 'a', value: 0.5 }, { group: 'h', member: 'a', value: 4 }] });
    const elements = parseXml(svg);
    const ref = elements.find((e) => e.attributes.class === 'reference')!;
    const [slow, fast] = elements.filter((e) => e.attributes.class === 'bar');
    expect(Number(slow!.attributes.y)).toBeCloseTo(Number(ref.attributes.y1), 0);
    expect(Number(fast!.attributes.y) + Number(fast!.attributes.height)).toBeCloseTo(Number(ref.attributes.y1), 0);
  });

  it('combines every scenario chart into one well-formed SVG', () => {
    const elements = parseXml(timeGridSvg(report));
    expect(elements.filter((e) => e.name === 'svg')).toHaveLength(1 + 3);
    expect(elements.filter((e) => e.name === 'circle')).toHaveLength(3 * 2 + 3 * 2 + 3);
  });

  it('embeds the charts in the HTML report with the text escaped', () => {
    const html = renderHtml(report);
    expect(html).toContain('Test CPU &lt;x&gt;');
    expect(html).toContain('a note &amp; more');
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).toHaveLength(1 + 3);
    for (const svg of svgs) parseXml(svg);
  });
});
