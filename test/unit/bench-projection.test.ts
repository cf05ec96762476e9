import { describe, expect, it } from 'vitest';
import { fitCosts, powerLaw, projectResults } from '../../src/bench/projection.js';
import type { ScenarioResult } from '../../src/bench/types.js';

function result(name: ScenarioResult['name'], rows: number, ours: { ms: number; pages: number; rows: number }, base: { ms: number; pages: number }): ScenarioResult {
  return {
    name, title: name, rows, size: rows, baseline_ms: base.ms, ms: ours.ms, speedup: base.ms / ours.ms, rows_affected: ours.rows,
    baseline_plan: null, plan: null, baseline_runs_ms: [], runs_ms: [], pages_read: ours.pages, pages_dirtied: 0, wal_bytes: 0,
    baseline_pages_read: base.pages, baseline_pages_dirtied: 0, baseline_wal_bytes: 0, extra: { baseline_rows_affected: ours.rows },
  };
}

describe('bench --project', () => {
  it('recovers the cost per page and per row of an exact model, and extrapolates each input along its growth', () => {
    // ours: 0.01 ms a page + 0.002 ms a row, pages and rows grow with the table; original: 0.005 ms a page, every page of the table.
    const sizes = [1e6, 4e6, 10e6];
    const results = sizes.map((n) => {
      const pages = n / 100;
      const rows = n / 100;
      return result('purge-type', n, { ms: 0.01 * pages + 0.002 * rows, pages, rows }, { ms: 0.005 * (n / 50) + 0.002 * rows, pages: n / 50 });
    });
    const p = projectResults(results, 58e6);
    const s = p.scenarios[0]!;
    expect(s.inputs.ours!.ms_per_page + s.inputs.ours!.ms_per_row * 1).toBeGreaterThan(0);
    expect(s.ms).toBeCloseTo(0.01 * 580_000 + 0.002 * 580_000, 0);
    expect(s.fit_error).toBeLessThan(0.01);
    expect(s.baseline_ms).toBeCloseTo(0.005 * 1_160_000 + 0.002 * 580_000, -1);
    expect(p.note).toMatch(/^a projection, not a measurement/);
  });

  it('keeps a fixed quantity fixed and reports a poor fit as a large fit_error', () => {
    const fixed = [1e6, 4e6, 10e6].map((n, i) => result('purge-fixed-type', n, { ms: [5, 9, 4][i]!, pages: 5000, rows: 5000 }, { ms: n / 1e5, pages: n / 100 }));
    const s = projectResults(fixed, 58e6).scenarios[0]!;
    expect(s.inputs.ours!.pages_read).toBe(5000);
    expect(s.fit_error!).toBeGreaterThan(0.3);
  });

  it('needs two sizes, and page counts', () => {
    const one = projectResults([result('purge-type', 1e6, { ms: 10, pages: 10, rows: 10 }, { ms: 20, pages: 20 })], 58e6);
    expect(one.scenarios[0]!.ms).toBeNull();
    expect(powerLaw([{ x: 1, y: 3 }, { x: 4, y: 12 }])(16)).toBeCloseTo(48, 6);
    expect(fitCosts([{ size: 1, ms: 2, pages: 1, rows: 0 }, { size: 2, ms: 4, pages: 2, rows: 0 }])).toEqual({ perPage: 2, perRow: 0 });
  });
});
