import type { LockRetryEvent } from '../db/session.js';

/** Progress of a record-type operation: rows done / total, rate and ETA. */
export interface MaintenanceProgress {
  type: 'progress';
  operation: string;
  /** The phase in progress: `collect`, `delete`, `truncate:<type>`, `upsert:<type>`, `stale:<type>`, … */
  phase: string;
  rows_done: number;
  rows_total: number | null;
  rows_per_s: number;
  eta_ms: number | null;
  batches: number;
  /** The current (adaptive) batch size in rows. */
  batch_rows: number;
}

/** Everything a record-type operation reports while it works; the CLI renders these. */
export type MaintenanceEvent =
  | MaintenanceProgress
  | { type: 'job_started'; job_id: number; operation: string; record_types: string[]; strategy: string }
  | { type: 'job_resumed'; job_id: number; operation: string; record_types: string[]; rows_done: number; phase: string }
  | { type: 'phase'; phase: string; detail: string }
  | LockRetryEvent
  | { type: 'analyze'; ran: boolean; target: string; ms: number; reason: string }
  | { type: 'vacuum_start'; target: string; sql: string }
  | { type: 'vacuum_done'; target: string; ms: number; dead_tuples_before: number; dead_tuples_after: number }
  | { type: 'warning'; message: string };
