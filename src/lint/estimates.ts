import { buildTimeModel, indexSizeModel, type KeyColumn } from '../inspect/index-size.js';
import type { TableModel } from './schema/model.js';
import { typeWidth, type TableSize } from './sizes.js';

/*
 * Time ranges from stated rates, since a linter measures nothing: a full read of a table at a
 * sequential read rate between a cold disk and a warm cache, and an index build by `index estimate`'s
 * own models (B-tree size from the key columns' widths and distinct counts, build time from a read and
 * an n·log n sort) fed with the same stated rates instead of a measured sample.
 */

/** Stated rates (defaults; configurable): MB/s of sequential read, and sort cost per key. */
export interface Rates { readMBps: [number, number]; sortUsPerKey: number }

/** 50 MB/s (a cold disk) to 500 MB/s (a warm cache); 1 µs per key sorted. */
export const DEFAULT_RATES: Rates = { readMBps: [50, 500], sortUsPerKey: 1 };

const BLCKSZ = 8192;
const MB = 1024 * 1024;

/** Milliseconds to read `bytes` sequentially, slowest and fastest. */
export function readTimeMs(bytes: number, rates: Rates): { minMs: number; maxMs: number } {
  return { minMs: Math.round((bytes / (rates.readMBps[1] * MB)) * 1000), maxMs: Math.round((bytes / (rates.readMBps[0] * MB)) * 1000) };
}

const FIXED: Record<string, { typlen: number; typalign: string }> = {
  int2: { typlen: 2, typalign: 's' }, int4: { typlen: 4, typalign: 'i' }, int8: { typlen: 8, typalign: 'd' },
  float4: { typlen: 4, typalign: 'i' }, float8: { typlen: 8, typalign: 'd' }, bool: { typlen: 1, typalign: 'c' },
  date: { typlen: 4, typalign: 'i' }, timestamp: { typlen: 8, typalign: 'd' }, timestamptz: { typlen: 8, typalign: 'd' },
  uuid: { typlen: 16, typalign: 'c' },
};

/** An index build's predicted size and write-blocking time (without CONCURRENTLY). */
export interface IndexBuildEstimate { indexBytes: number; minMs: number; maxMs: number }

/**
 * Size and build time of a B-tree on `columns` of `table`, by `index estimate`'s models (`indexSizeModel`,
 * `buildTimeModel`) with stated rates in place of its measured sample.
 */
export function indexBuildEstimate(table: TableModel | undefined, size: TableSize, columns: string[], unique: boolean, rates: Rates): IndexBuildEstimate {
  const keys: KeyColumn[] = [];
  for (const name of columns) {
    const col = table?.columns.find((c) => c.name === name);
    const stats = size.columns[name];
    // A column neither the schema nor the statistics know is taken as variable-width (the 32-byte guess).
    const type = col?.type ?? 'text';
    const fixed = FIXED[type.replace(/\(.*$/, '')];
    keys.push({
      name, type, avgWidth: stats?.avgWidth ?? typeWidth(type), nullFrac: stats?.nullFrac ?? 0,
      distinct: stats?.distinct ?? size.rows, deduplicatable: !type.startsWith('numeric') && !type.startsWith('float'),
      typlen: fixed?.typlen ?? -1, typalign: fixed?.typalign ?? 'i', freqs: [],
    });
  }
  const model = indexSizeModel({ rows: size.rows, indexedRows: size.rows, keys, unique, deduplication: !unique, fillfactor: 90 });
  const tablePages = Math.max(1, Math.ceil(size.bytes / BLCKSZ));
  const rowsPerPage = size.rows / tablePages;
  const at = (mbps: number) => buildTimeModel(
    // The rates stand in for `index estimate`'s measured sample of 1 000 pages.
    { pages: 1000, readMs: (1000 * BLCKSZ * 1000) / (mbps * MB), rows: Math.max(2, Math.round(1000 * rowsPerPage)), sortMs: (1000 * rowsPerPage * rates.sortUsPerKey) / 1000 },
    { tablePages, indexedRows: size.rows, indexBytes: model.estimatedBytes, concurrently: false }) ?? 0;
  return { indexBytes: model.estimatedBytes, minMs: at(rates.readMBps[1]), maxMs: at(rates.readMBps[0]) };
}
