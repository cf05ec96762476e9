import { parseRowCount } from '../datagen/rows.js';
import { ConfigError } from '../db/errors.js';

/**
 * The benchmark's scenarios, by their contract names (`bench --scenarios`, the JSON `name` field).
 * `purge-type-partitioned` and `purge-fixed-type` are additions beside the list: the purge on the
 * partitioned layout and the purge of a type whose size stays fixed while the table grows (the growth check).
 */
export const SCENARIO_NAMES = [
  'upgrade',
  'purge-type',
  'purge-type-partitioned',
  'archive-type-partitioned',
  'convert',
  'purge-fixed-type',
  'resync-types',
  'resync-types-partitioned',
  'rebuild-type',
  'backfill-initial-tick',
  'add-record-type-index',
  'pull-incremental',
  'pull-initial',
  'incremental-build',
  'seed',
] as const;

/** One of {@link SCENARIO_NAMES}. */
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** The seed's slow operations, the ones `sync-lookup demo` shows side by side. */
export const DEMO_SCENARIOS: readonly ScenarioName[] = [
  'upgrade', 'purge-type', 'resync-types', 'rebuild-type', 'backfill-initial-tick', 'add-record-type-index',
];

/** Smallest table the scenarios make sense on (a ~1 % type must still have rows). */
export const MIN_BENCH_ROWS = 2_000;

/**
 * Parses one benchmark table size (the lookup engine's row-count syntax: `20000`, `250k`, `1.5m`) and
 * refuses tables too small for the scenarios. Throws ConfigError naming the option and the bad value.
 *
 * @example
 * parseBenchRows('250k') // 250000
 */
export function parseBenchRows(text: string, option = '--rows'): number {
  const value = parseRowCount(text, option);
  if (value < MIN_BENCH_ROWS) {
    throw new ConfigError('invalid_rows', `${option}: ${JSON.stringify(text)} is too small; use at least ${MIN_BENCH_ROWS} rows`,
      { option, value: text, minimum: MIN_BENCH_ROWS });
  }
  return value;
}

/**
 * Parses a comma-separated list of row counts, sorted ascending without duplicates.
 *
 * @example
 * parseRowList('1m,500k,2m') // [500000, 1000000, 2000000]
 */
export function parseRowList(text: string, option = '--rows'): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) {
    throw new ConfigError('invalid_rows', `${option}: ${JSON.stringify(text)} has an empty entry (use e.g. 500k,1m,2m)`,
      { option, value: text });
  }
  return [...new Set(parts.map((p) => parseBenchRows(p, option)))].sort((a, b) => a - b);
}

/**
 * Parses `--scenarios a,b`, naming every unknown name at once and listing the valid ones.
 *
 * @example
 * parseScenarioList('purge-type,seed') // ['purge-type', 'seed']
 */
export function parseScenarioList(text: string, option = '--scenarios'): ScenarioName[] {
  const names = text.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !(SCENARIO_NAMES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length) {
    const what = names.length === 0 ? `${option} is empty` :
      `unknown scenario${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')}`;
    throw new ConfigError('unknown_scenario', `${what}; valid scenarios: ${SCENARIO_NAMES.join(', ')}`,
      { unknown, valid: [...SCENARIO_NAMES] });
  }
  // Keep the registry's order: it is the order that needs the fewest index builds and drops.
  return SCENARIO_NAMES.filter((n) => names.includes(n));
}

/** Formats a row count the way the options accept it: 500k, 1m, 1.5m, 20000. */
export function formatRowCount(rows: number): string {
  if (rows >= 1_000_000 && rows % 100_000 === 0) return `${rows / 1_000_000}m`;
  if (rows >= 1_000 && rows % 1_000 === 0) return `${rows / 1_000}k`;
  return String(rows);
}
