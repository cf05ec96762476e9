import type { IndexBuildProgress } from '../inspect/index-progress.js';

/** What the runner reports while it works; the CLI renders these (bar, plain lines or JSON). */
export type MigrationEvent =
  | { type: 'migration_start'; name: string; transactional: boolean }
  | { type: 'migration_done'; name: string; durationMs: number }
  | { type: 'migration_adopted'; name: string }
  | { type: 'lock_retry'; attempt: number; attempts: number; lockTimeoutMs: number; sleepMs: number }
  | { type: 'advisory_lock_wait'; holderPid: number | null }
  | { type: 'invalid_index_dropped'; index: string }
  | { type: 'index_exists'; index: string }
  | { type: 'index_build_start'; index: string; sql: string }
  | { type: 'index_progress'; index: string; progress: IndexBuildProgress }
  | { type: 'index_build_done'; index: string; durationMs: number; bytes: number };
