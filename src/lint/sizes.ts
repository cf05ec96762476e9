import { ConfigError } from '../db/errors.js';
import type { StatsExport, TableStats } from '../inspect/stats.js';
import type { TableModel } from './schema/model.js';

/*
 * What the linter knows about table sizes: a live database's or a stats export's row estimates, pages
 * and column widths, or `--assume-rows`. A table none of them names has an unknown size: said so, never
 * taken as small.
 */

/** One column's statistics as the estimates use them. */
export interface ColumnSize { avgWidth: number; nullFrac: number; distinct: number | null }

/** The size of one table and where it comes from. */
export interface TableSize {
  rows: number;
  /** Heap bytes: measured, or rows × an estimated row width (`bytesEstimated`). */
  bytes: number;
  bytesEstimated: boolean;
  source: 'database' | 'stats' | 'assumed';
  columns: Record<string, ColumnSize>;
}

/** Sizes by `schema.name`. */
export type SizeMap = Map<string, TableSize>;

/** Sizes from a stats export (a file, or a live database's export). */
export function sizesFromStats(doc: StatsExport, source: 'database' | 'stats'): SizeMap {
  const out: SizeMap = new Map();
  for (const t of doc.tables) out.set(`${t.schema}.${t.name}`, tableSize(t, source));
  return out;
}

function tableSize(t: TableStats, source: 'database' | 'stats'): TableSize {
  const columns: Record<string, ColumnSize> = {};
  for (const c of t.columns) {
    if (c.avgWidth !== null) columns[c.name] = { avgWidth: c.avgWidth, nullFrac: c.nullFrac ?? 0, distinct: c.distinct };
  }
  return { rows: t.rows, bytes: t.bytes, bytesEstimated: false, source, columns };
}

/**
 * Parses `--assume-rows` values: `TABLE=N` or `schema.table=N`; N may use `_` or `,` separators and a
 * k/M/G suffix. ConfigError naming every bad value.
 *
 * @example
 * parseAssumeRows(['sync_lookup=58M']) // Map { 'public.sync_lookup' => 58000000 }
 */
export function parseAssumeRows(values: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const bad: string[] = [];
  for (const v of values) {
    const eq = v.lastIndexOf('=');
    const name = v.slice(0, eq).trim();
    const num = v.slice(eq + 1).trim().replace(/[_,]/g, '');
    const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(num);
    if (eq <= 0 || !m || !name) { bad.push(v); continue; }
    const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
    out.set(name.includes('.') ? name : `public.${name}`, Math.round(Number(m[1]) * scale));
  }
  if (bad.length) throw new ConfigError('invalid_assume_rows', `--assume-rows takes TABLE=N (e.g. sync_lookup=58000000): ${bad.join(', ')}`, { values: bad });
  return out;
}

/** Typical stored widths by type, for a row width when no statistics exist (varlena: a guess, said so). */
const TYPE_WIDTHS: Record<string, number> = {
  int2: 2, int4: 4, int8: 8, float4: 4, float8: 8, bool: 1, date: 4, timestamp: 8, timestamptz: 8, time: 8,
  uuid: 16, oid: 4, numeric: 10, inet: 10, interval: 16,
};
const VARLENA_GUESS = 32;

/** Average stored width of a column of `type` (`varchar(255)` → a 32-byte guess). */
export function typeWidth(type: string): number {
  return TYPE_WIDTHS[type.replace(/\(.*$/, '')] ?? VARLENA_GUESS;
}

/** An assumed row count, with bytes from the columns' types (24-byte tuple header + 4-byte line pointer). */
export function assumedSize(rows: number, table: TableModel | undefined, known: TableSize | undefined): TableSize {
  if (known && known.rows > 0) {
    // Scale the measured table to the assumed rows: same bytes per row.
    return { ...known, rows, bytes: Math.round((known.bytes / known.rows) * rows), bytesEstimated: true, source: 'assumed' };
  }
  const width = 28 + (table?.columns ?? []).reduce((a, c) => a + typeWidth(c.type), 0);
  return { rows, bytes: Math.round(rows * (table ? width : 100) / 0.9), bytesEstimated: true, source: 'assumed', columns: known?.columns ?? {} };
}

/** The snake_case JSON `stats export` writes, read back (keys to camelCase). ConfigError when it is not one. */
export function readStatsDocument(json: unknown, source: string): StatsExport {
  const camel = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(camel);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), camel(x)]));
  };
  const doc = camel(json) as Partial<StatsExport>;
  if (doc.format !== 'sync-lookup-stats' || !Array.isArray(doc.tables)) {
    throw new ConfigError('invalid_stats', `${source} is not a sync-lookup stats export (sync-lookup stats export > stats.json)`);
  }
  return doc as StatsExport;
}
