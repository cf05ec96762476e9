import { describe, expect, it } from 'vitest';
import { renderMarkdown, renderTextTable } from '../../src/bench/report.js';
import { applySlopes, mergeExtras, summarise, type Samples } from '../../src/bench/summary.js';
import type { BenchReport } from '../../src/bench/types.js';

const scenario = { name: 'purge-type' as const, title: 'purge a ~1 % record type' };

function samples(ms: number[], extra: Record<string, number | string>[] = [], plan = 'Seq Scan on sync_lookup (2.0 M rows)'): Samples {
  return {
    plan, vacuumMs: [300, 320, 310], restoreMs: [900, 950], holdingPages: 18_542,
    runs: ms.map((m, i) => ({ ms: m, rowsAffected: 20_000, ...(extra[i] ? { extra: extra[i] } : {}),
      work: { pagesRead: Math.round(m * 100), pagesDirtied: 18_500 + i, walBytes: 150_000_000 + i } })),
  };
}

describe('the JSON contract of one scenario result', () => {
  it('reports medians, the speedup, plans, every run and prefixed extras (golden)', () => {
    const r = summarise(scenario, 2_000_000, 2_000_101,
      samples([1650.4, 1700, 1600]),
      samples([48.123, 52, 47.9], [{ analyze_ms: 3, strategy: 'keyset_batches' }, { analyze_ms: 5, strategy: 'keyset_batches' }, { analyze_ms: 4, strategy: 'keyset_batches' }],
        'keyset batches: Index Scan using sync_lookup_record_type_updated_at_sync_tick'));
    expect(r).toEqual({
      name: 'purge-type',
      title: 'purge a ~1 % record type',
      rows: 2_000_101,
      size: 2_000_000,
      baseline_ms: 1650,
      ms: 48.12,
      speedup: 34.3,
      rows_affected: 20_000,
      baseline_plan: 'Seq Scan on sync_lookup (2.0 M rows)',
      plan: 'keyset batches: Index Scan using sync_lookup_record_type_updated_at_sync_tick',
      baseline_runs_ms: [1650, 1700, 1600],
      runs_ms: [48.12, 52, 47.9],
      // Work: medians over the runs, ours and the original's; the pages holding the rows, counted before the first run.
      pages_read: 4812, pages_dirtied: 18_501, wal_bytes: 150_000_001,
      baseline_pages_read: 165_040, baseline_pages_dirtied: 18_501, baseline_wal_bytes: 150_000_001,
      pages_holding_rows: 18_542,
      extra: {
        analyze_ms: 4, strategy: 'keyset_batches', vacuum_ms: 310, baseline_vacuum_ms: 310, baseline_rows_affected: 20_000, restore_ms: 925,
      },
    });
    // Contract field names, exactly (slope fields are added for multi-size runs only).
    expect(Object.keys(r)).toEqual(expect.arrayContaining(['name', 'rows', 'baseline_ms', 'ms', 'speedup', 'rows_affected', 'baseline_plan', 'plan', 'extra']));
    expect(r).not.toHaveProperty('slope');
  });

  it('has null original fields for a throughput-only scenario', () => {
    const r = summarise({ name: 'seed', title: 'seed' }, 1_000_000, 1_000_000, undefined, { plan: null, runs: [{ ms: 30_000, rowsAffected: 1_000_000 }], vacuumMs: [], restoreMs: [] });
    expect(r).toMatchObject({ baseline_ms: null, speedup: null, baseline_plan: null, plan: null, baseline_runs_ms: [], ms: 30_000 });
  });

  it('keeps a vacuum figure the operation reported itself (a TRUNCATE needs none)', () => {
    const ours = samples([5], [{ vacuum_ms: 0 }]);
    expect(summarise(scenario, 1, 1, undefined, ours).extra.vacuum_ms).toBe(0);
  });

  it('takes medians of numeric extras and the last value of others', () => {
    expect(mergeExtras([{ ms: 1, rowsAffected: 1, extra: { a: 3, s: 'x' } }, { ms: 2, rowsAffected: 1, extra: { a: 5, s: 'y' } }], 'baseline_'))
      .toEqual({ baseline_a: 4, baseline_s: 'y' });
  });
});

describe('growth exponents', () => {
  it('adds both slopes to every result of a scenario', () => {
    const flat = [500_000, 1_000_000, 2_000_000].map((rows) =>
      summarise(scenario, rows, rows, samples([rows / 1000, rows / 1000, rows / 1000]), samples([40, 40, 40])));
    applySlopes(flat);
    for (const r of flat) {
      expect(r.baseline_slope).toBeCloseTo(1, 2);
      expect(r.slope).toBeCloseTo(0, 2);
    }
  });
});

describe('text renderings', () => {
  const r = summarise(scenario, 2_000_000, 2_000_101, samples([1650, 1700, 1600]), samples([48, 52, 47.9]));
  const report: BenchReport = {
    postgres: '18.4', machine: { cpus: 2, cpu_model: 'cpu', memory_bytes: 2 ** 33, os: 'Linux', arch: 'x64', node: '20', postgres_settings: {} },
    sizes: [2_000_000], repeat: 3, seed: 1, started_at: '', duration_ms: 0, databases: [], notes: [], scenarios: [r],
  };
  it('renders the Markdown table with times, speedup and plans', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('| purge-type | 2,000,101 | 1.65 s | 48.0 ms | 34x |');
    expect(md).toContain('Seq Scan on sync_lookup (2.0 M rows)');
    expect(md).not.toContain('## Growth');
  });
  it('renders the terminal table: operation, times, speedup, both plans', () => {
    const text = renderTextTable(report.scenarios);
    const [header, row] = text.trimEnd().split('\n');
    expect(header).toMatch(/^operation\s+rows\s+original\s+ours\s+speedup\s+original plan\s+our plan$/);
    expect(row).toMatch(/^purge-type\s+2m\s+1\.65 s\s+48\.0 ms\s+34x\s+Seq Scan on sync_lookup \(2\.0 M rows\)\s+Seq Scan/);
  });
});
