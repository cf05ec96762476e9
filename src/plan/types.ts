/*
 * The shapes the plan reader works with: EXPLAIN's own JSON, what the classifier knows about the database,
 * and the verdicts it gives.
 */

/** One node of `EXPLAIN (FORMAT JSON)`, keys exactly as PostgreSQL prints them. */
export interface PlanNode {
  'Node Type': string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Operation'?: string;
  'Strategy'?: string;
  'Relation Name'?: string;
  'Schema'?: string;
  'Alias'?: string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  'Filter'?: string;
  'Startup Cost': number;
  'Total Cost': number;
  'Plan Rows': number;
  'Plan Width': number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  /** PostgreSQL 18: B-tree descents (more than 1 per loop for a skip scan or an `= ANY` list). */
  'Index Searches'?: number;
  'Heap Fetches'?: number;
  'Exact Heap Blocks'?: number;
  'Lossy Heap Blocks'?: number;
  'Sort Key'?: string[];
  'Sort Method'?: string;
  'Sort Space Used'?: number;
  'Sort Space Type'?: string;
  'Hash Batches'?: number;
  'Original Hash Batches'?: number;
  'Peak Memory Usage'?: number;
  'HashAgg Batches'?: number;
  'Disk Usage'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  'Temp Read Blocks'?: number;
  'Temp Written Blocks'?: number;
  'Plans'?: PlanNode[];
  [key: string]: unknown;
}

/** The document `EXPLAIN (FORMAT JSON)` returns: a one-element array. */
export type ExplainDocument = {
  'Plan': PlanNode;
  'Planning Time'?: number;
  'Execution Time'?: number;
  [key: string]: unknown;
}[];

/** What the classifier knows about one table a plan reads. */
export interface PlanTableInfo {
  schema: string;
  name: string;
  /** Row estimate (`reltuples`, or live tuples when the table was never analyzed). */
  rows: number;
  pages: number;
  bytes: number;
  /** Rows changed since the last (auto)analyze; null when unknown. */
  modsSinceAnalyze: number | null;
  lastAnalyzedAt: string | null;
  /** Column names (to keep suggested indexes to real columns). */
  columns: string[];
  /** Per column: absolute distinct count from `pg_stats` (negative `n_distinct` scaled by rows). */
  distinct: Record<string, number>;
}

/** What the classifier knows about one index. */
export interface PlanIndexInfo {
  schema: string;
  name: string;
  table: string;
  /** Key columns in order; an expression key is its text, e.g. `lower((email)::text)`. */
  columns: string[];
  include: string[];
  unique: boolean;
  primary: boolean;
  /** False for the leftover of a failed concurrent build. */
  valid: boolean;
  method: string;
  predicate: string | null;
  bytes: number;
  pages: number;
  /**
   * Entries of the index itself (`pg_class.reltuples` of the index; for a partial index, the rows its
   * predicate admits). Absent or negative when unknown (never vacuumed or analyzed).
   */
  entries?: number;
  /** Distinct values of the leading key column (from `pg_stats`), null when unknown. */
  leadingDistinct: number | null;
  definition: string;
}

/**
 * Everything the pure classifier needs to know about the database, keyed by the names EXPLAIN prints
 * (`Relation Name`, `Index Name`). Build it with {@link readPlanContext}, or by hand in tests.
 */
export interface PlanContext {
  /** `server_version_num`, e.g. 180004: skip scans exist from 180000. */
  serverVersionNum: number;
  tables: Record<string, PlanTableInfo>;
  indexes: Record<string, PlanIndexInfo>;
}

/** Tuning of the verdicts. */
export interface ClassifyOptions {
  /** A table with at least this many rows is large: reading all of it is a finding. Default 100 000. */
  largeTableRows?: number;
  /** The query reads the whole table by design (e.g. verify): an unfiltered full read is ok. */
  fullScanExpected?: boolean;
  /** Indexes to propose when one leading with the same column is missing. Default: the project's record_type index. */
  recommendedIndexes?: { schema?: string; table: string; name: string; columns: string[] }[];
  /** Leading-column distinct count up to which a PostgreSQL 18 skip scan is reported as a skip scan. Default 1 000. */
  skipScanMaxDistinct?: number;
}

/** Severity of a finding and of a verdict. */
export type Severity = 'ok' | 'warn' | 'fail';

/** What kind of access or problem a plan node shows. */
export type FindingKind =
  | 'seq_scan' | 'full_index_scan' | 'skip_scan' | 'index_range_scan' | 'index_scan' | 'bitmap_scan'
  | 'sort_spill' | 'hash_spill' | 'misestimate';

/** The classification of one plan node. */
export interface PlanFinding {
  /** Position in the tree: child indexes from the root, e.g. "0.1" (root is ""). */
  path: string;
  nodeType: string;
  kind: FindingKind;
  severity: Severity;
  relation: string | null;
  index: string | null;
  /** One line, in words. */
  reason: string;
  /** The exact statement or setting that fixes it, when there is one. */
  fix: string | null;
  evidence: Record<string, string | number | boolean | null>;
}

/** The verdict on one statement's plan. */
export interface PlanVerdict {
  verdict: Severity;
  /** One line: the worst finding's reason (or what the plan does, when ok). */
  reason: string;
  fix: string | null;
  /** The plan in a few words, for reports. */
  description: string;
  analyzed: boolean;
  findings: PlanFinding[];
}

/** One executed EXPLAIN. */
export interface ExplainResult {
  sql: string;
  params: unknown[];
  analyzed: boolean;
  plan: PlanNode;
  planningMs: number | null;
  executionMs: number | null;
  document: ExplainDocument;
}

/** Options of {@link explainStatement}. */
export interface ExplainOptions {
  /** Execute the statement (EXPLAIN ANALYZE, BUFFERS); it runs inside a transaction that is rolled back. */
  analyze?: boolean;
  /** Settings for this statement only (`set_config(name, value, true)`), e.g. `{ work_mem: '64kB' }`. */
  settings?: Record<string, string>;
  /** The client is already inside a transaction: use a savepoint instead of BEGIN/ROLLBACK. */
  inTransaction?: boolean;
}
