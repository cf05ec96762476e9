import type { ScenarioName } from './options.js';

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
  /** Scenario-specific figures: `max_write_stall_ms`, `vacuum_ms`, `rows_per_s`, … */
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
  /** Notes worth reading beside the figures (e.g. a scenario that could not run and why). */
  notes: string[];
}
