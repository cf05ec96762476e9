import type { ScenarioName } from './options.js';
import type { Projection } from './projection.js';

/** A JSON-safe scenario-specific figure (`extra` of a scenario result). */
export type ExtraValue = number | string | boolean | null | number[];

/** The machine a benchmark ran on (so numbers can be compared with care). */
export interface MachineInfo {
  cpus: number;
  cpu_model: string;
  memory_bytes: number;
  os: string;
  arch: string;
  node: string;
  /** Server settings that move these figures most. */
  postgres_settings: Record<string, string>;
}

/**
 * One scenario at one table size: the contract of `bench --json` (SYSTEM.md section 4: names are
 * stable, fields may be added).
 */
export interface ScenarioResult {
  name: ScenarioName;
  /** What the scenario does, in words. */
  title: string;
  /** Lookup rows in the table when the scenario ran. */
  rows: number;
  /** The size asked for with `--rows` (the generator lands near it). */
  size: number;
  /** Median of the original form's runs; null for a scenario without one (`seed`). */
  baseline_ms: number | null;
  /** Median of our form's runs. */
  ms: number;
  /** baseline_ms / ms. */
  speedup: number | null;
  rows_affected: number | null;
  /** The plan the original form used, in words (from the diagnostics plan reader). */
  baseline_plan: string | null;
  plan: string | null;
  /** Every run, in order (the medians come from these). */
  baseline_runs_ms: number[];
  runs_ms: number[];
  /** Growth exponents across sizes (log-log slope of time against rows); only in multi-size runs. */
  baseline_slope?: number | null;
  slope?: number | null;
  /** Shared buffers our form hit or read (8 kB pages), median over runs; null when the server cannot count them. */
  pages_read: number | null;
  /** Shared buffers our form dirtied. */
  pages_dirtied: number | null;
  /** WAL our form wrote, in bytes (full-page images included). */
  wal_bytes: number | null;
  baseline_pages_read: number | null;
  baseline_pages_dirtied: number | null;
  baseline_wal_bytes: number | null;
  /** Heap pages holding the rows the operation touches, before it ran (the physical limit); absent where no rows are touched. */
  pages_holding_rows?: number;
  /** `add-record-type-index` and `upgrade`: the longest single write while the index built / the online part ran. */
  longest_write_stall_ms?: number;
  baseline_longest_write_stall_ms?: number;
  /** `upgrade`: time in the downtime window (ours; the original's four migrations in `baseline_window_ms`). */
  window_ms?: number;
  baseline_window_ms?: number;
  /** `upgrade`: time of the part that runs online, while the fleet pulls and the writer writes. */
  online_ms?: number;
  /** `upgrade`: the fleet's pull latencies during the online part, and the p99 of the same pulls on an idle server. */
  pull_p50_ms?: number;
  pull_p99_ms?: number;
  idle_pull_p99_ms?: number;
  /** `upgrade`: longest time from a source write to its appearance in a pull during the online part. */
  build_lag_max_ms?: number;
  /** Scenario-specific figures: `vacuum_ms`, `rows_per_s`, … */
  extra: Record<string, ExtraValue>;
}

/** The whole benchmark result (`bench --json`, `results.json`). */
export interface BenchReport {
  /** Server version, e.g. "18.4". */
  postgres: string;
  machine: MachineInfo;
  /** Table sizes asked for, ascending. */
  sizes: number[];
  repeat: number;
  /** Generator seed. */
  seed: number;
  started_at: string;
  duration_ms: number;
  /** Databases the benchmark worked in (bench-owned, see docs/bench.md). */
  databases: string[];
  scenarios: ScenarioResult[];
  /** `bench --project SIZE`: each scenario's time predicted at SIZE from the sizes that ran (a projection, labelled as one). */
  projection?: Projection;
  /** Notes worth reading beside the figures (e.g. a scenario that could not run and why). */
  notes: string[];
}
