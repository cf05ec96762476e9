import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../../src/bench/html.js';
import { SCENARIO_NAMES } from '../../src/bench/options.js';
import type { BenchReport, ScenarioResult } from '../../src/bench/types.js';

/*
 * The demo's report as a browser lays it out: rendered by headless Chromium (Debian package `chromium`, installed
 * by .ci/run) in a 1 280-pixel-wide window, the page's own script reports what the layout engine measured.
 */

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

/** A long plan without spaces: what pushed the old report off the page. */
const LONG_PLAN = 'Index Scan using sync_lookup_record_type_updated_at_sync_tick_on_a_very_long_partition_name_'.repeat(12);

function result(name: ScenarioResult['name'], rows: number, k: number): ScenarioResult {
  return {
    name, title: `${name}: what it does, in words that are long enough to wrap over two lines of the table cell`, rows, size: rows,
    baseline_ms: 1200 * k, ms: 40 * k, speedup: 30, rows_affected: 20_000 * k, baseline_plan: LONG_PLAN, plan: `${LONG_PLAN} (ok)`,
    baseline_runs_ms: [1200 * k], runs_ms: [40 * k], pages_read: 19_000 * k, pages_dirtied: 18_500 * k, wal_bytes: 150 * 2 ** 20 * k,
    baseline_pages_read: 37_000 * k, baseline_pages_dirtied: 18_500 * k, baseline_wal_bytes: 150 * 2 ** 20 * k, pages_holding_rows: 18_542 * k,
    ...(name === 'upgrade' ? { window_ms: 4, baseline_window_ms: 190_000 * k, online_ms: 9_000 * k, pull_p50_ms: 2, pull_p99_ms: 12, idle_pull_p99_ms: 9, longest_write_stall_ms: 15, build_lag_max_ms: 700 } : {}),
    extra: { vacuum_ms: 800, restore_ms: 900, strategy: 'keyset_batches_with_a_long_name_that_does_not_break_'.repeat(4) },
  };
}

const report: BenchReport = {
  postgres: '18.4',
  machine: { cpus: 2, cpu_model: 'AMD EPYC', memory_bytes: 24 * 2 ** 30, os: 'Linux', arch: 'x64', node: '20', postgres_settings: { shared_buffers: '1GB' } },
  sizes: [1_000_000, 4_000_000], repeat: 3, seed: 1, started_at: '2026-01-01T00:00:00.000Z', duration_ms: 1, databases: [],
  notes: [`a note with a long path ${'/very/long/path'.repeat(30)}`],
  scenarios: SCENARIO_NAMES.flatMap((n) => [result(n, 1_000_000, 1), result(n, 4_000_000, 4)]),
};

/** Loads the page in headless Chromium at `width` px and returns what its script measured. */
async function layout(html: string, width: number): Promise<{ scroll: number; inner: number; details: number; open: number; first: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'report-layout-'));
  dirs.push(dir);
  const probe = `<script>window.addEventListener('load', () => { const b = document.body; const d = document.querySelectorAll('details');
    b.dataset.scroll = String(document.documentElement.scrollWidth); b.dataset.inner = String(window.innerWidth);
    b.dataset.details = String(d.length); b.dataset.open = String([...d].filter((x) => x.open).length);
    b.dataset.first = document.querySelector('h1').nextElementSibling.className; });</script>`;
  const file = path.join(dir, 'index.html');
  await writeFile(file, html.replace('</body>', `${probe}</body>`));
  const { stdout } = await run(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', `--window-size=${width},900`,
    '--virtual-time-budget=2000', '--dump-dom', `file://${file}`], { timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
  const attr = (name: string) => stdout.match(new RegExp(`data-${name}="([^"]*)"`))?.[1] ?? '';
  return { scroll: Number(attr('scroll')), inner: Number(attr('inner')), details: Number(attr('details')), open: Number(attr('open')), first: attr('first') };
}

describe.runIf(existsSync(CHROMIUM) || process.env.CI)('the HTML report in a browser', () => {
  it('fits a 1 280-pixel-wide window without horizontal scrolling, headline first, one folded plan per scenario', async () => {
    const page = await layout(renderHtml(report, { title: 'sync-lookup demo' }), 1280);
    expect(page.inner).toBe(1280);
    expect(page.scroll).toBeLessThanOrEqual(page.inner);
    expect(page.first).toBe('headline');
    expect(page.details).toBe(SCENARIO_NAMES.length);
    expect(page.open).toBe(0);
  }, 90_000);

  it('the check itself: a page wider than the window is caught', async () => {
    const page = await layout('<!doctype html><html><body><h1>x</h1><p class="headline">h</p><div style="width:1600px">wide</div></body></html>', 1280);
    expect(page.scroll).toBeGreaterThan(1280);
  }, 90_000);
});
