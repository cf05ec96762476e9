import { roundSig } from './stats.js';
import type { ScenarioResult } from './types.js';

/*
 * `bench --project SIZE`: a projection, labelled as one. For each scenario and form, the measured time is fitted
 * as a cost per page read plus a cost per row touched over the sizes that ran (least squares, no intercept):
 *
 *   ms ≈ ms_per_page × pages_read + ms_per_row × rows
 *
 * and each input is extrapolated to SIZE along its own measured growth (a power law in the table size, so a
 * quantity that stays fixed stays fixed and one that grows with the table grows with it). The fit's error on
 * the measured sizes is reported beside the prediction: a large one says the model does not describe the
 * scenario (e.g. time dominated by something neither pages nor rows count, such as waits or fixed overhead).
 * Pure functions: tested without a server.
 */

/** The fitted inputs of one form. */
export interface FormFit {
  ms: number;
  ms_per_page: number;
  ms_per_row: number;
  /** Inputs extrapolated to the projected size. */
  pages_read: number;
  rows: number;
  /** Largest |fitted − measured| / measured over the sizes that ran. */
  fit_error: number;
}

/** One scenario's projection (the JSON contract: `ms`, `baseline_ms`, inputs, `fit_error`). */
export interface ScenarioProjection {
  name: string;
  ms: number | null;
  baseline_ms: number | null;
  fit_error: number | null;
  baseline_fit_error: number | null;
  inputs: { ours: FormFit | null; baseline: FormFit | null; sizes: number[] };
}

/** The top-level `projection` of `bench --project SIZE`. */
export interface Projection {
  size: number;
  /** Says what this is: a model fitted on the sizes that ran, not a measurement. */
  note: string;
  scenarios: ScenarioProjection[];
}

interface Point { size: number; ms: number; pages: number; rows: number }

/** Least-squares power law y = k·x^e through positive points; a constant when fewer than two distinct x. */
export function powerLaw(points: readonly { x: number; y: number }[]): (x: number) => number {
  const ok = points.filter((p) => p.x > 0 && p.y > 0);
  if (!ok.length) return () => 0;
  const xs = ok.map((p) => Math.log(p.x));
  const ys = ok.map((p) => Math.log(p.y));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const e = sxx === 0 ? 0 : xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / sxx;
  return (x) => Math.exp(my + e * (Math.log(x) - mx));
}

/** Non-negative least squares of ms on (pages, rows), no intercept; falls back to one input when the other would go negative. */
export function fitCosts(points: readonly Point[]): { perPage: number; perRow: number } {
  const spp = points.reduce((a, p) => a + p.pages * p.pages, 0);
  const srr = points.reduce((a, p) => a + p.rows * p.rows, 0);
  const spr = points.reduce((a, p) => a + p.pages * p.rows, 0);
  const spm = points.reduce((a, p) => a + p.pages * p.ms, 0);
  const srm = points.reduce((a, p) => a + p.rows * p.ms, 0);
  const det = spp * srr - spr * spr;
  if (det > 1e-9 * spp * srr) {
    const perPage = (spm * srr - srm * spr) / det;
    const perRow = (srm * spp - spm * spr) / det;
    if (perPage >= 0 && perRow >= 0) return { perPage, perRow };
  }
  const pageOnly = spp > 0 ? { perPage: spm / spp, perRow: 0 } : { perPage: 0, perRow: 0 };
  const rowOnly = srr > 0 ? { perPage: 0, perRow: srm / srr } : pageOnly;
  const sse = (f: { perPage: number; perRow: number }) => points.reduce((a, p) => a + (f.perPage * p.pages + f.perRow * p.rows - p.ms) ** 2, 0);
  return sse(pageOnly) <= sse(rowOnly) ? pageOnly : rowOnly;
}

function fitForm(points: Point[], size: number): FormFit | null {
  if (points.length < 2 || new Set(points.map((p) => p.size)).size < 2) return null;
  const { perPage, perRow } = fitCosts(points);
  const pages = powerLaw(points.map((p) => ({ x: p.size, y: p.pages })))(size);
  const rows = powerLaw(points.map((p) => ({ x: p.size, y: p.rows })))(size);
  const fitError = Math.max(...points.map((p) => Math.abs(perPage * p.pages + perRow * p.rows - p.ms) / p.ms));
  return {
    ms: roundSig(perPage * pages + perRow * rows, 3), ms_per_page: roundSig(perPage, 3), ms_per_row: roundSig(perRow, 3),
    pages_read: Math.round(pages), rows: Math.round(rows), fit_error: roundSig(fitError, 2),
  };
}

/**
 * The projection of every scenario to `size` lookup rows, from the results of two or more sizes. A form
 * without page counts (a server without pg_stat_statements) or with fewer than two sizes gets null.
 *
 * @example
 * const p = projectResults(report.scenarios, 58_000_000);
 * p.scenarios.find((s) => s.name === 'purge-type')?.ms
 */
export function projectResults(results: readonly ScenarioResult[], size: number): Projection {
  const scenarios: ScenarioProjection[] = [];
  for (const name of [...new Set(results.map((r) => r.name))]) {
    const mine = results.filter((r) => r.name === name);
    const points = (form: 'ours' | 'baseline'): Point[] => mine.flatMap((r) => {
      const ms = form === 'ours' ? r.ms : r.baseline_ms;
      const pages = form === 'ours' ? r.pages_read : r.baseline_pages_read;
      const rows = form === 'ours' ? r.rows_affected : Number(r.extra.baseline_rows_affected ?? r.rows_affected ?? 0);
      return ms !== null && ms > 0 && pages !== null ? [{ size: r.rows, ms, pages, rows: rows ?? 0 }] : [];
    });
    const ours = fitForm(points('ours'), size);
    const baseline = fitForm(points('baseline'), size);
    scenarios.push({
      name, ms: ours?.ms ?? null, baseline_ms: baseline?.ms ?? null, fit_error: ours?.fit_error ?? null,
      baseline_fit_error: baseline?.fit_error ?? null, inputs: { ours, baseline, sizes: mine.map((r) => r.rows) },
    });
  }
  return {
    size,
    note: `a projection, not a measurement: each form's time fitted as cost per page read + cost per row over the sizes that ran ` +
      `(${[...new Set(results.map((r) => r.size))].join(', ')} rows), pages and rows extrapolated along their measured growth; ` +
      'fit_error is the largest relative error of that fit on the measured sizes',
    scenarios,
  };
}
