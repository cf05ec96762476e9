import { describe, expect, it } from 'vitest';
import { logLogSlope, median, roundSig, speedup } from '../../src/bench/stats.js';
import { MIN_BENCH_ROWS, SCENARIO_NAMES, formatRowCount, parseBenchRows, parseRowList, parseScenarioList } from '../../src/bench/options.js';
import { ConfigError } from '../../src/db/errors.js';

describe('median', () => {
  it('takes the middle value of an odd count and the mean of the middle two of an even count', () => {
    expect(median([30, 10, 20])).toBe(20);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });
  it('is not moved by one outlier (a run disturbed by a checkpoint)', () => {
    expect(median([100, 102, 9000])).toBe(102);
  });
  it('does not reorder its input', () => {
    const runs = [3, 1, 2];
    median(runs);
    expect(runs).toEqual([3, 1, 2]);
  });
  it('refuses an empty list', () => {
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('logLogSlope', () => {
  it('is 1 for time proportional to rows and 0 for constant time', () => {
    expect(logLogSlope([{ x: 5e5, y: 50 }, { x: 1e6, y: 100 }, { x: 2e6, y: 200 }])).toBeCloseTo(1, 10);
    expect(logLogSlope([{ x: 5e5, y: 7 }, { x: 1e6, y: 7 }, { x: 4e6, y: 7 }])).toBeCloseTo(0, 10);
  });
  it('recovers the exponent of a power law and fits noisy points by least squares', () => {
    const pts = [1e5, 3e5, 1e6, 3e6].map((x) => ({ x, y: 0.002 * x ** 1.5 }));
    expect(logLogSlope(pts)).toBeCloseTo(1.5, 10);
    // Two points one decade apart, one 10 % high: slope = log10(1.1 * 10) = 1.0414.
    expect(logLogSlope([{ x: 1, y: 1 }, { x: 10, y: 11 }])).toBeCloseTo(Math.log10(11), 10);
  });
  it('is null when it cannot be estimated', () => {
    expect(logLogSlope([{ x: 1e6, y: 5 }])).toBeNull();
    expect(logLogSlope([{ x: 1e6, y: 5 }, { x: 1e6, y: 9 }])).toBeNull();
    expect(logLogSlope([{ x: 1e6, y: 0 }, { x: 2e6, y: 9 }])).toBeNull();
  });
});

describe('speedup and rounding', () => {
  it('divides the original by ours', () => {
    expect(speedup(1200, 40)).toBe(30);
    expect(speedup(null, 40)).toBeNull();
    expect(speedup(1200, 0)).toBeNull();
  });
  it('rounds to significant figures', () => {
    expect(roundSig(1234.567, 3)).toBe(1230);
    expect(roundSig(0.0012345, 2)).toBe(0.0012);
    expect(roundSig(0)).toBe(0);
  });
});

describe('--rows and --scenarios', () => {
  it('parses counts with k and m suffixes, sorted and deduplicated', () => {
    expect(parseBenchRows('250k')).toBe(250_000);
    expect(parseBenchRows('1.5M')).toBe(1_500_000);
    expect(parseBenchRows('20000')).toBe(20_000);
    expect(parseRowList('2m,500k,1m,1m')).toEqual([500_000, 1_000_000, 2_000_000]);
    expect(formatRowCount(500_000)).toBe('500k');
    expect(formatRowCount(2_000_000)).toBe('2m');
    expect(formatRowCount(1_500_000)).toBe('1.5m');
  });
  it.each(['abc', '-5', '1e6', '10x', '1.5', '', ' , '])('rejects %j with a ConfigError naming the value', (bad) => {
    const attempt = () => parseRowList(bad);
    expect(attempt).toThrow(ConfigError);
    try { attempt(); } catch (err) {
      expect((err as ConfigError).code).toMatch(/^invalid_(rows|option)$/);
      expect((err as Error).message).toContain('--rows');
    }
  });
  it('rejects a table too small for a ~1 % type', () => {
    expect(() => parseBenchRows(String(MIN_BENCH_ROWS - 1))).toThrow(/too small/);
    expect(parseBenchRows(String(MIN_BENCH_ROWS))).toBe(MIN_BENCH_ROWS);
  });
  it('names every unknown scenario and lists the valid ones', () => {
    try {
      parseScenarioList('purge-type,purge-everything,nope');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toContain('"purge-everything"');
      expect(message).toContain('"nope"');
      for (const name of SCENARIO_NAMES) expect(message).toContain(name);
    }
    expect(() => parseScenarioList(',')).toThrow(/empty/);
  });
  it('keeps the registry order and takes a name once', () => {
    expect(parseScenarioList('seed,purge-type,seed')).toEqual(['purge-type', 'seed']);
  });
  it('contains the issue\'s contract names', () => {
    for (const name of ['purge-type', 'resync-types', 'rebuild-type', 'backfill-initial-tick', 'add-record-type-index',
      'pull-incremental', 'pull-initial', 'incremental-build', 'seed']) {
      expect(SCENARIO_NAMES).toContain(name);
    }
  });
});
