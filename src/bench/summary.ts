import type { RunOutcome, Scenario } from './scenario.js';
import { logLogSlope, median, roundSig, speedup } from './stats.js';
import type { ExtraValue, ScenarioResult } from './types.js';
import type { Work } from './work.js';

/*
 * From measured runs to the JSON contract: medians, speedups, merged extras, growth exponents.
 * Pure, so the contract's shape is tested without a server.
 */

/** What the runner measured for one form of a scenario at one size. */
export interface Samples {
  /** The plan in words (null when the form has none). */
  plan: string | null;
  runs: RunOutcome[];
  /** The post-operation VACUUM after each run, when the form asks for one. */
  vacuumMs: number[];
  /** The untimed restore after each run. */
  restoreMs: number[];
  /** Heap pages holding the touched rows before the first run, when the scenario touches rows. */
  holdingPages?: number;
}

/** Median of one work counter across runs; null when any run could not count it. */
function workMedian(s: Samples | undefined, key: keyof Work): number | null {
  const values = s?.runs.map((r) => r.work?.[key] ?? null) ?? [];
  if (!values.length || values.some((v) => v === null)) return null;
  return Math.round(median(values as number[]));
}

/**
 * Median of each numeric extra across runs, the last value of anything else; keys get `prefix`.
 *
 * @example
 * mergeExtras([{ ms: 1, rowsAffected: 1, extra: { a: 3 } }, { ms: 2, rowsAffected: 1, extra: { a: 5 } }], 'baseline_')
 * // { baseline_a: 4 }
 */
export function mergeExtras(runs: RunOutcome[], prefix: string): Record<string, ExtraValue> {
  const out: Record<string, ExtraValue> = {};
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.extra ?? {})))];
  for (const k of keys) {
    const values = runs.map((r) => r.extra?.[k]).filter((v) => v !== undefined);
    const numbers = values.filter((v): v is number => typeof v === 'number');
    out[`${prefix}${k}`] = numbers.length === values.length && numbers.length ? roundSig(median(numbers), 4) : values[values.length - 1] ?? null;
  }
  return out;
}

/**
 * One scenario at one size as the JSON contract has it: medians of each form, the speedup, rows
 * affected, plans, every run, and the extras (ours as they are, the original's prefixed `baseline_`).
 *
 * @example
 * const r = summarise(scenario, 1_000_000, 1_000_211, originalSamples, ourSamples);
 */
export function summarise(scenario: Pick<Scenario, 'name' | 'title'>, size: number, rows: number, base: Samples | undefined, ours: Samples): ScenarioResult {
  const baseMs = base?.runs.length ? median(base.runs.map((r) => r.ms)) : null;
  const ms = median(ours.runs.map((r) => r.ms));
  const affected = ours.runs.map((r) => r.rowsAffected).filter((n): n is number => n !== null);
  const baseAffected = base?.runs.map((r) => r.rowsAffected).filter((n): n is number => n !== null) ?? [];
  const extra: Record<string, ExtraValue> = { ...mergeExtras(ours.runs, '') };
  if (ours.vacuumMs.length && extra.vacuum_ms === undefined) extra.vacuum_ms = roundSig(median(ours.vacuumMs), 4);
  if (base) Object.assign(extra, mergeExtras(base.runs, 'baseline_'));
  if (base?.vacuumMs.length) extra.baseline_vacuum_ms = roundSig(median(base.vacuumMs), 4);
  if (baseAffected.length) extra.baseline_rows_affected = median(baseAffected);
  const restores = [...(base?.restoreMs ?? []), ...ours.restoreMs];
  if (restores.length) extra.restore_ms = roundSig(median(restores), 4);
  const top = hoist(extra);
  const sp = speedup(baseMs, ms);
  return {
    name: scenario.name, title: scenario.title, rows, size,
    baseline_ms: baseMs === null ? null : roundSig(baseMs, 4),
    ms: roundSig(ms, 4),
    speedup: sp === null ? null : roundSig(sp, 3),
    rows_affected: affected.length ? median(affected) : null,
    baseline_plan: base?.plan ?? null,
    plan: ours.plan,
    baseline_runs_ms: base?.runs.map((r) => roundSig(r.ms, 4)) ?? [],
    runs_ms: ours.runs.map((r) => roundSig(r.ms, 4)),
    pages_read: workMedian(ours, 'pagesRead'),
    pages_dirtied: workMedian(ours, 'pagesDirtied'),
    wal_bytes: workMedian(ours, 'walBytes'),
    baseline_pages_read: workMedian(base, 'pagesRead'),
    baseline_pages_dirtied: workMedian(base, 'pagesDirtied'),
    baseline_wal_bytes: workMedian(base, 'walBytes'),
    ...(ours.holdingPages !== undefined ? { pages_holding_rows: ours.holdingPages } : {}),
    ...top,
    extra,
  };
}

/** Scenario figures the JSON contract puts at the top level of a scenario (and their `baseline_` twins). */
export const TOP_LEVEL_FIGURES = [
  'longest_write_stall_ms', 'window_ms', 'online_ms', 'pull_p50_ms', 'pull_p99_ms', 'idle_pull_p99_ms', 'build_lag_max_ms',
] as const;

/** Moves the contract's top-level figures out of `extra` (in place), returning them. */
function hoist(extra: Record<string, ExtraValue>): Record<string, ExtraValue> {
  const top: Record<string, ExtraValue> = {};
  for (const key of TOP_LEVEL_FIGURES.flatMap((k) => [k, `baseline_${k}`])) {
    if (key in extra) { top[key] = extra[key]!; delete extra[key]; }
  }
  return top;
}

/**
 * Adds each scenario's growth exponents (log-log slope of median time against rows, across sizes) to
 * every one of its results, in place. Only meaningful with two or more sizes.
 *
 * @example
 * applySlopes(results); results[0].slope // 0.04
 */
export function applySlopes(results: ScenarioResult[]): void {
  for (const name of new Set(results.map((r) => r.name))) {
    const mine = results.filter((r) => r.name === name);
    const slope = logLogSlope(mine.map((r) => ({ x: r.rows, y: r.ms })));
    const base = mine.every((r) => r.baseline_ms !== null) ? logLogSlope(mine.map((r) => ({ x: r.rows, y: r.baseline_ms! }))) : null;
    for (const r of mine) {
      r.baseline_slope = base === null ? null : roundSig(base, 3);
      r.slope = slope === null ? null : roundSig(slope, 3);
    }
  }
}
