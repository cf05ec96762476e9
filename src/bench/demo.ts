import { databaseFromUrl } from '../db/connection.js';
import { toSyncLookupError } from '../db/errors.js';
import { runDoctor } from '../inspect/doctor.js';
import { escapeXml } from './chart.js';
import { DEMO_SCENARIOS, MIN_BENCH_ROWS } from './options.js';
import { runBench, type BenchEvent } from './runner.js';
import type { BenchReport } from './types.js';

/**
 * `sync-lookup demo`: the seed's problem and its solution in one command. It is the benchmark's
 * scenarios at one size (the same code: one scenario implementation, two front ends), restricted to the
 * seed's slow operations, followed by a short doctor summary of the database it ran on.
 */

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Connection string of the server (the user's, or the embedded one). */
  url: string;
  external: boolean;
  force?: boolean;
  /** Lookup rows to seed. Default 1 000 000. */
  rows?: number;
  /** Runs per form; the median is shown. Default 3. */
  repeat?: number;
  seed?: number;
  databasePrefix?: string;
  signal?: AbortSignal;
  onEvent?: (event: BenchEvent) => void;
}

/** What the demo found: the side-by-side results and the doctor's summary lines. */
export interface DemoResult {
  report: BenchReport;
  /** A few lines from `doctor` on the demo database; empty when it could not run. */
  doctor: { severity: string; message: string; fix: string | null }[];
  /** Why the doctor summary is missing, when it is. */
  doctorError: string | null;
  /** How many findings of each severity doctor made. */
  doctorCounts: { error: number; warning: number; info: number };
  /** The database doctor was asked about (the largest size's); null when none was seeded. */
  doctorDatabase: string | null;
}

/** Default size of the demo's table. */
export const DEMO_ROWS = 1_000_000;

/**
 * The demo's two table sizes: a quarter of `rows` and `rows` (the charts need more than one point).
 *
 * @example
 * demoSizes(1_000_000) // [250000, 1000000]
 */
export function demoSizes(rows: number): number[] {
  return [Math.max(MIN_BENCH_ROWS, Math.round(rows / 4 / 1000) * 1000), rows].filter((n, i, all) => all.indexOf(n) === i);
}

/**
 * Runs the demo: seeds (or reuses) bench-owned databases of a quarter of `rows` and of `rows` lookup rows, runs each of the seed's
 * slow operations in its original form and ours, then asks `doctor` about the table.
 *
 * @example
 * const { report, doctor } = await runDemo({ url, external: false });
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const report = await runBench({
    url: options.url, external: options.external, sizes: demoSizes(options.rows ?? DEMO_ROWS), scenarios: DEMO_SCENARIOS,
    repeat: options.repeat ?? 3, seed: options.seed ?? 1,
    ...(options.force ? { force: true } : {}), ...(options.databasePrefix ? { databasePrefix: options.databasePrefix } : {}),
    ...(options.signal ? { signal: options.signal } : {}), ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  let doctor: DemoResult['doctor'] = [];
  let doctorError: string | null = null;
  let doctorCounts: DemoResult['doctorCounts'] = { error: 0, warning: 0, info: 0 };
  const name = report.databases[report.databases.length - 1] ?? null;
  if (name) {
    options.onEvent?.({ type: 'info', text: `asking doctor about ${name} …` });
    const u = new URL(options.url);
    u.pathname = `/${encodeURIComponent(name)}`;
    try {
      const r = await runDoctor(databaseFromUrl(u.toString()), { minStatsAgeS: 7 * 86_400 });
      doctorCounts = { error: r.counts.error, warning: r.counts.warning, info: r.counts.info };
      doctor = r.findings.filter((f) => f.check !== 'sizes').slice(0, 6).map((f) => ({ severity: f.severity, message: f.message, fix: f.fix }));
      const sizes = r.tables.find((t) => t.name === 'sync_lookup');
      if (sizes) {
        doctor.unshift({ severity: 'info', fix: null,
          message: `sync_lookup: ~${Math.round(sizes.rows).toLocaleString('en-US')} rows, ${(sizes.heapBytes / 2 ** 20).toFixed(0)} MB heap, ` +
            `${(sizes.indexBytes / 2 ** 20).toFixed(0)} MB in ${sizes.indexes.length} indexes` });
      }
    } catch (err) {
      doctorError = toSyncLookupError(err).message;
    }
  }
  return { report, doctor, doctorError, doctorCounts, doctorDatabase: name };
}

/** The doctor summary as an HTML section (for the demo's report). */
export function doctorHtml(result: DemoResult): string {
  if (result.doctorError) return `<h2>Doctor</h2><p>doctor could not run: ${escapeXml(result.doctorError)}</p>`;
  if (!result.doctor.length) return '';
  return `<h2>Doctor</h2><ul>${result.doctor.map((f) => `<li><b>${escapeXml(f.severity)}</b>: ${escapeXml(f.message)}` +
    `${f.fix ? `<br><code>${escapeXml(f.fix)}</code>` : ''}</li>`).join('')}</ul>`;
}
