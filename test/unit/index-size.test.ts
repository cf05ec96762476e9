import { describe, expect, it } from 'vitest';
import { buildTimeModel, indexSizeModel, type KeyColumn, type SizeModelInput } from '../../src/inspect/index-size.js';

// Saved inputs: key columns as pg_stats and pg_type describe them on the synthetic lookup of the db tests.
const int4Key: KeyColumn = { name: 'id', type: 'integer', avgWidth: 4, nullFrac: 0, distinct: 1_000_000, deduplicatable: true, typlen: 4, typalign: 'i', freqs: [] };
const recordType: KeyColumn = {
  name: 'record_type', type: 'text', avgWidth: 12, nullFrac: 0, distinct: 20, deduplicatable: true, typlen: -1, typalign: 'i',
  freqs: Array.from({ length: 20 }, () => 0.05),
};
const base = { rows: 1_000_000, indexedRows: 1_000_000, unique: false, deduplication: true, fillfactor: 90 };

describe('B-tree size model', () => {
  it('lays out a unique int4 index the way nbtsort.c builds it', () => {
    const m = indexSizeModel({ ...base, unique: true, deduplication: false, keys: [int4Key] });
    // Tuple: 8-byte header + 4-byte int, MAXALIGNed to 16; +4 for the line pointer.
    expect(m.keyTupleBytes).toBe(16);
    expect(m.leafBytesPerRow).toBe(20);
    // Leaf page: 8192 - 24 (header) - 16 (special) = 8152, less 10 % fillfactor (819.2), the high key (20)
    // and half a tuple (10): 7302.8 bytes for 20 M bytes of tuples.
    expect(m.leafPages).toBe(Math.ceil(20_000_000 / 7302.8));
    // Pivots of 20 bytes fill 70 % of 8152: fanout 285, so 2739 leaves need 10 + 1 internal pages.
    expect(m.internalPages).toBe(11);
    expect(m.estimatedBytes).toBe((m.leafPages + 11 + 1) * 8192);
    expect(m).toMatchObject({ distinctKeys: 1_000_000, distinctSource: 'unique' });
  });

  it('with deduplication, 20 repeated keys cost ~6 bytes a row (one TID each) instead of a tuple each', () => {
    const dedup = indexSizeModel({ ...base, keys: [recordType] });
    const plain = indexSizeModel({ ...base, deduplication: false, keys: [recordType] });
    // A short text of 12 bytes: unaligned after the 8-byte header, 20 → MAXALIGN 24.
    expect(plain.keyTupleBytes).toBe(24);
    expect(plain.leafBytesPerRow).toBe(28);
    expect(dedup.leafBytesPerRow).toBeGreaterThan(6);
    expect(dedup.leafBytesPerRow).toBeLessThan(7);
    expect(dedup.estimatedBytes).toBeLessThan(plain.estimatedBytes / 3);
    expect(dedup).toMatchObject({ distinctKeys: 20, distinctSource: 'pg_stats' });
  });

  it('a partial index holds only its rows; NULLs count as one more key', () => {
    const full = indexSizeModel({ ...base, keys: [recordType] });
    const half = indexSizeModel({ ...base, indexedRows: 500_000, keys: [recordType] });
    expect(half.leafPages / full.leafPages).toBeCloseTo(0.5, 1);
    const withNulls = indexSizeModel({ ...base, keys: [{ ...recordType, nullFrac: 0.2, freqs: recordType.freqs.map((f) => f * 0.8) }] });
    expect(withNulls.distinctKeys).toBe(21);
  });

  it('several columns take their distinct combinations from the sample, capped at the rows', () => {
    const input: SizeModelInput = { ...base, keys: [recordType, { ...int4Key, name: 'tick' }], sampledDistinct: 250_000 };
    expect(indexSizeModel(input)).toMatchObject({ distinctKeys: 250_000, distinctSource: 'sample' });
    expect(indexSizeModel({ ...input, sampledDistinct: 5_000_000 }).distinctKeys).toBe(1_000_000);
    // Fewer rows per key leaves less to deduplicate: the index grows.
    expect(indexSizeModel(input).estimatedBytes).toBeGreaterThan(indexSizeModel({ ...input, sampledDistinct: 20 }).estimatedBytes);
  });
});

describe('B-tree size model from a row sample (partial indexes, several columns)', () => {
  const facility: KeyColumn = { name: 'facility_id', type: 'text', avgWidth: 3, nullFrac: 0, distinct: 30, deduplicatable: true, typlen: -1, typalign: 'i', freqs: [] };

  it('sizes a partial index by its own rows: the predicate applied once, its excluded rows not counted', () => {
    // WHERE facility_id IS NOT NULL on a 90 %-NULL column: 100 k of 1 M rows, 30 keys of ~3 333 rows each, no NULL group.
    const groups = Array.from({ length: 30 }, () => ({ rows: 100_000 / 30, nulls: [false] }));
    const m = indexSizeModel({ ...base, indexedRows: 100_000, keys: [facility], sampledDistinct: 30, sampledGroups: groups });
    expect(m).toMatchObject({ distinctKeys: 30, distinctSource: 'sample' });
    // ~6 bytes a row (one TID in a posting list), for the 100 k indexed rows only.
    expect(m.leafBytesPerRow).toBeGreaterThan(6);
    expect(m.leafBytesPerRow).toBeLessThan(7);
    const full = indexSizeModel({ ...base, keys: [facility], sampledDistinct: 30, sampledGroups: groups.map((g) => ({ ...g, rows: g.rows * 10 })) });
    expect(m.leafPages / full.leafPages).toBeCloseTo(0.1, 1);
  });

  it('keys the sample saw often keep their own sizes; the other rows share the other keys', () => {
    const input: SizeModelInput = { ...base, keys: [recordType, { ...int4Key, name: 'tick' }], sampledDistinct: 500_000 };
    const even = indexSizeModel(input);
    // Half the rows in 10 big keys (~6 bytes a row in posting lists); the other half has 499 990 keys, one
    // row each (a 24-byte tuple and its line pointer): ~17 bytes a row, against 22 in 2-row posting lists for all.
    const skewed = indexSizeModel({ ...input, sampledGroups: Array.from({ length: 10 }, () => ({ rows: 50_000, nulls: [false, false] })) });
    expect(skewed.leafBytesPerRow).toBeGreaterThan(16.5);
    expect(skewed.leafBytesPerRow).toBeLessThan(17.5);
    expect(even.leafBytesPerRow).toBeCloseTo(22, 0);
    // A NULL key leaves its column out of the tuple.
    const nullKey = indexSizeModel({ ...input, sampledDistinct: 1, sampledGroups: [{ rows: 1_000_000, nulls: [true, false] }] });
    const plainKey = indexSizeModel({ ...input, sampledDistinct: 1, sampledGroups: [{ rows: 1_000_000, nulls: [false, false] }] });
    expect(nullKey.estimatedBytes).toBeLessThanOrEqual(plainKey.estimatedBytes);
  });
});

describe('build time model', () => {
  const measured = { pages: 4096, readMs: 40, rows: 300_000, sortMs: 60 };
  const build = { tablePages: 40_960, indexedRows: 3_000_000, indexBytes: 4096 * 8192, concurrently: false };

  it('is null without a measurement', () => {
    expect(buildTimeModel({ pages: 0, readMs: null, rows: 0, sortMs: null }, build)).toBeNull();
    expect(buildTimeModel({ ...measured, sortMs: null }, build)).toBeNull();
  });

  it('scales the read linearly, the sort as n log n, and writes the index at the read rate', () => {
    // Read: 10× the pages → 400 ms. Sort: 10× the rows × log2(3 M)/log2(300 k) → 600 × 1.1789. Write: 4096 pages → 40 ms.
    const sort = 60 * 10 * (Math.log2(3_000_000) / Math.log2(300_000));
    expect(buildTimeModel(measured, build)).toBe(Math.round(400 + sort + 40));
    // CONCURRENTLY: a second read of the table and a sort of TIDs.
    expect(buildTimeModel(measured, { ...build, concurrently: true })).toBe(Math.round(800 + 1.3 * sort + 40));
  });
});
