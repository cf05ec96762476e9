import type { BenchData } from './dataset.js';
import type { ScenarioName } from './options.js';
import type { ExtraValue } from './types.js';
import type { Work } from './work.js';

/** What one timed run of a variant measured. */
export interface RunOutcome {
  /** What the issue counts: the operation and the ANALYZE it decides it needs; no post-operation VACUUM. */
  ms: number;
  rowsAffected: number | null;
  /** Scenario-specific figures of this run (medians are taken across runs). */
  extra?: Record<string, ExtraValue>;
  /** Pages and WAL of the run (the runner fills it in around `run`). */
  work?: Work;
}

/**
 * One form of an operation (the original or ours). The runner calls, for each size:
 * `prepare` once, `plan` once, then `repeat` times: `before` (untimed), `run` (timed by the variant
 * itself), the post-operation `VACUUM` (timed apart) when `vacuum` is set, and `restore` (untimed).
 */
export interface Variant {
  /** The dataset it runs on. Default `plain`. */
  dataset?: 'plain' | 'partitioned';
  /**
   * The record_type-led index state it needs: `absent` (the table as deployments had it), `present`
   * (after migration 0002), or `any`.
   */
  index: 'absent' | 'present' | 'any';
  /** VACUUM sync_lookup after each run, reported as `vacuum_ms`. */
  vacuum?: boolean;
  prepare?(data: BenchData): Promise<void>;
  /** The plan in words (EXPLAIN only, nothing executed). */
  plan?(data: BenchData): Promise<string | null>;
  before?(data: BenchData, run: number): Promise<void>;
  run(data: BenchData, run: number): Promise<RunOutcome>;
  restore?(data: BenchData): Promise<void>;
}

/** A benchmark scenario: its contract name, what it does, and its two forms. */
export interface Scenario {
  name: ScenarioName;
  title: string;
  /** The original form; absent for scenarios that only measure throughput (`seed`). */
  baseline?: Variant;
  ours: Variant;
  /** The record types whose rows the operation touches: their heap pages are counted before the first run (`pages_holding_rows`). */
  touches?: readonly string[];
}
