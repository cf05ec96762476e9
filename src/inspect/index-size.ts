/*
 * The B-tree size model of `index estimate`, pure: from what the statistics say about the key columns to
 * pages, laid out the way nbtsort.c builds them (see estimate.ts for the method); and the build-time model
 * from a measured read and sort of a sample of the table.
 */

/** What the estimate used about one key column. */
export interface EstimateColumn {
  name: string;
  type: string;
  /** Average stored width in bytes (pg_stats avg_width). */
  avgWidth: number;
  nullFrac: number;
  /** Distinct values (pg_stats n_distinct, made absolute). */
  distinct: number;
  /** Whether B-tree deduplication can merge equal values of this type ("equal image" equality). */
  deduplicatable: boolean;
}

const BLCKSZ = 8192;
const PAGE_USABLE = BLCKSZ - 24 - 16; // page header, B-tree special space
const MAXALIGN = (n: number) => Math.ceil(n / 8) * 8;
const ALIGN = { c: 1, s: 2, i: 4, d: 8 } as Record<string, number>;


/** One key column as the size model needs it: what pg_stats says, and how its type is stored. */
export interface KeyColumn extends EstimateColumn {
  /** `pg_type.typlen`: -1 for a varlena. */
  typlen: number;
  /** `pg_type.typalign`: c, s, i or d. */
  typalign: string;
  /** `pg_stats.most_common_freqs`, empty when none. */
  freqs: number[];
}

/** What the size model needs: the rows, the keys and the index's options. */
export interface SizeModelInput {
  rows: number;
  /** Rows the index holds (fewer than `rows` for a partial index). */
  indexedRows: number;
  keys: KeyColumn[];
  unique: boolean;
  deduplication: boolean;
  fillfactor: number;
  /**
   * Distinct keys among the indexed rows from a row sample of the table: needed for several columns (not
   * unique) and for a partial index, whose rows the statistics do not describe apart from the others.
   */
  sampledDistinct?: number;
  /** Keys the sample saw often, with their rows scaled to the index: sized on their own. */
  sampledGroups?: SampledGroup[];
}

/** A key a row sample saw often: its rows in the whole index, and which of its columns are NULL. */
export interface SampledGroup {
  rows: number;
  nulls: boolean[];
}

/** The predicted layout of the index. */
export interface SizeModel {
  distinctKeys: number;
  distinctSource: 'pg_stats' | 'sample' | 'unique';
  /** Bytes of one index tuple holding one key (before posting lists), line pointer excluded. */
  keyTupleBytes: number;
  /** Leaf bytes per row after deduplication, line pointers included. */
  leafBytesPerRow: number;
  leafPages: number;
  internalPages: number;
  /** Leaf and internal pages and the metapage. */
  estimatedBytes: number;
}

/**
 * Predicts a B-tree's pages from its keys' statistics.
 *
 * @example
 * indexSizeModel({ rows: 1e6, indexedRows: 1e6, unique: true, deduplication: false, fillfactor: 90,
 *   keys: [{ name: 'id', type: 'integer', avgWidth: 4, nullFrac: 0, distinct: 1e6, deduplicatable: true, typlen: 4, typalign: 'i', freqs: [] }] })
 */
export function indexSizeModel(input: SizeModelInput): SizeModel {
  const { keys, indexedRows, deduplication } = input;
  const keyTuple = tupleBytes(keys, false);
  const { groups, distinctKeys, distinctSource } = keyGroups(input, keyTuple, tupleBytes(keys, true));
  let leafBytes = 0;
  for (const g of groups) leafBytes += g.count * groupBytes(g.size, g.tuple, deduplication);
  // A build fills each leaf page to the fillfactor and ends it with a high key; a posting tuple that
  // does not fit leaves its space at the end of the page (half a tuple on average).
  const avgTuple = deduplication ? Math.min(812, leafBytes / Math.max(1, groups.reduce((a, g) => a + g.count * Math.max(1, Math.ceil(g.size / maxTids(g.tuple))), 0))) : keyTuple + 4;
  const leafCapacity = PAGE_USABLE - (BLCKSZ * (100 - input.fillfactor)) / 100 - (keyTuple + 4) - avgTuple / 2;
  const leafPages = Math.max(1, Math.ceil(leafBytes / leafCapacity));
  // Internal levels: pivot tuples are truncated to the leading key (plus a heap TID when keys repeat).
  const pivot = MAXALIGN(8 + (keys[0]?.avgWidth ?? 8)) + (deduplication ? 8 : 0) + 4;
  const fanout = Math.max(2, Math.floor((PAGE_USABLE * 0.7) / pivot));
  let internalPages = 0;
  for (let level = leafPages; level > 1; level = Math.ceil(level / fanout)) internalPages += Math.ceil(level / fanout);
  return {
    distinctKeys, distinctSource, keyTupleBytes: keyTuple,
    leafBytesPerRow: indexedRows > 0 ? leafBytes / indexedRows : 0,
    leafPages, internalPages, estimatedBytes: (leafPages + internalPages + 1) * BLCKSZ,
  };
}

/**
 * One key tuple: header, (null bitmap when any key is null), columns aligned in order, MAXALIGN. With
 * `nulls`, exactly those columns are NULL; otherwise those that mostly are.
 */
function tupleBytes(keys: KeyColumn[], withNulls: boolean, nulls?: boolean[]): number {
  let off = withNulls ? 16 : 8;
  for (const [i, c] of keys.entries()) {
    if (withNulls && (nulls ? nulls[i] : c.nullFrac >= 0.5)) continue;
    // Short varlenas (under 127 bytes) are stored unaligned with a 1-byte header.
    const align = c.typlen === -1 && c.avgWidth < 127 ? 1 : ALIGN[c.typalign] ?? 1;
    off = Math.ceil(off / align) * align + c.avgWidth;
  }
  return MAXALIGN(off);
}

interface KeyGroup { size: number; count: number; tuple: number }

/** How many rows share each key: groups of sizes, each with a count of such groups. */
function keyGroups(input: SizeModelInput, keyTuple: number, nullTuple: number):
  { groups: KeyGroup[]; distinctKeys: number; distinctSource: SizeModel['distinctSource'] } {
  const { rows, indexedRows, keys } = input;
  if (input.unique) return { groups: [{ size: 1, count: indexedRows, tuple: keyTuple }], distinctKeys: indexedRows, distinctSource: 'unique' };
  if (keys.length === 1 && input.sampledDistinct === undefined) {
    const c = keys[0]!;
    const scale = indexedRows / Math.max(1, rows);
    const groups = c.freqs.map((f) => ({ size: f * rows * scale, count: 1, tuple: keyTuple }));
    const restRows = Math.max(0, rows * (1 - c.nullFrac - c.freqs.reduce((a, b) => a + b, 0))) * scale;
    const restDistinct = Math.max(1, c.distinct - c.freqs.length);
    if (restRows > 0) groups.push({ size: restRows / restDistinct, count: restDistinct, tuple: keyTuple });
    // NULLs are equal to each other for deduplication: one large group.
    if (c.nullFrac > 0) groups.push({ size: c.nullFrac * rows * scale, count: 1, tuple: nullTuple });
    return { groups, distinctKeys: Math.round(c.distinct + (c.nullFrac > 0 ? 1 : 0)), distinctSource: 'pg_stats' };
  }
  return sampledKeyGroups(input, keyTuple, nullTuple);
}

/**
 * Key groups from a row sample: the keys it saw often at their own sizes, the other rows spread evenly
 * over the other distinct keys.
 */
function sampledKeyGroups(input: SizeModelInput, keyTuple: number, nullTuple: number):
  { groups: KeyGroup[]; distinctKeys: number; distinctSource: SizeModel['distinctSource'] } {
  const { indexedRows, keys } = input;
  const frequent = input.sampledGroups ?? [];
  const distinctKeys = Math.max(frequent.length, Math.min(indexedRows, input.sampledDistinct ?? indexedRows));
  const groups: KeyGroup[] = frequent.map((g) => ({ size: g.rows, count: 1, tuple: g.nulls.some(Boolean) ? tupleBytes(keys, true, g.nulls) : keyTuple }));
  const restRows = Math.max(0, indexedRows - frequent.reduce((a, g) => a + g.rows, 0));
  const restKeys = Math.max(1, distinctKeys - frequent.length);
  const anyNull = 1 - keys.reduce((p, c) => p * (1 - c.nullFrac), 1);
  const tuple = keyTuple + anyNull * (nullTuple - keyTuple);
  if (restRows > 0) groups.push({ size: restRows / restKeys, count: restKeys, tuple });
  return { groups, distinctKeys, distinctSource: 'sample' };
}

/** Heap TIDs one posting tuple holds during a build (nbtsort.c caps posting tuples at BLCKSZ/10 - 4 bytes). */
function maxTids(tuple: number): number {
  return Math.max(1, Math.floor((MAXALIGN(Math.floor(BLCKSZ / 10) - 7) - 4 - tuple) / 6));
}

/** Leaf bytes (line pointers included) of one key's rows: plain tuples, or posting lists with deduplication. */
function groupBytes(size: number, tuple: number, dedup: boolean): number {
  if (size <= 0) return 0;
  if (!dedup) return size * (tuple + 4);
  const perGroup = (k: number): number => {
    if (k <= 1) return k * (tuple + 4);
    const m = maxTids(tuple);
    const full = Math.floor(k / m);
    const rest = k - full * m;
    const posting = (n: number) => MAXALIGN(tuple + 6 * n) + 4;
    return full * posting(m) + (rest >= 2 ? posting(rest) : rest === 1 ? tuple + 4 : 0);
  };
  // Fractional group sizes: between the two integer sizes around them.
  const lo = Math.floor(size);
  const frac = size - lo;
  return (1 - frac) * perGroup(lo) + frac * perGroup(lo + 1);
}

/** A measured read of `pages` table pages and sort of their `rows` keys (null times: not measured). */
export interface MeasuredRates { pages: number; readMs: number | null; rows: number; sortMs: number | null }

/**
 * Scales a sample's read and sort times to the whole build: the table read, an n·log n sort, the index
 * written at the read rate; CONCURRENTLY adds a second read and a sort of TIDs. Null without a measurement.
 */
export function buildTimeModel(measured: MeasuredRates, build: { tablePages: number; indexedRows: number; indexBytes: number; concurrently: boolean }): number | null {
  if (measured.readMs === null || measured.sortMs === null || measured.pages <= 0) return null;
  const readMs = measured.readMs * (build.tablePages / measured.pages);
  const n = Math.max(2, measured.rows);
  const sortMs = measured.sortMs * (build.indexedRows / n) * (Math.log2(Math.max(2, build.indexedRows)) / Math.log2(n));
  // Writing the index: its pages at the rate the table's pages were read.
  const writeMs = (measured.readMs / measured.pages) * (build.indexBytes / BLCKSZ);
  // CONCURRENTLY adds a validation pass: a second read of the table and a sort of the new index's TIDs
  // (cheaper than the key sort: fixed-width TIDs).
  return Math.round(build.concurrently ? 2 * readMs + 1.3 * sortMs + writeMs : readMs + sortMs + writeMs);
}
