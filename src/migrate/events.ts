import type { AdvisoryLockHolder } from '../db/advisory.js';
import type { IndexBuildProgress } from '../db/index-progress.js';
import type { LockRetryEvent } from '../db/session.js';

/** What the runner reports while it works; the CLI renders these (bar, plain lines or JSON). */
export type MigrationEvent =
  | { type: 'migration_start'; name: string; transactional: boolean }
  | { type: 'migration_done'; name: string; durationMs: number }
  | { type: 'migration_adopted'; name: string }
  /** A table an earlier version kept in `public` moved into the tool's schema (rows kept). */
  | { type: 'tool_table_moved'; from: string; to: string; rows: number }
  /** A trigger a host's post-migration hook had put on one of the tool's tables, dropped (it reads columns the table lacks). */
  | { type: 'host_trigger_dropped'; trigger: string }
  | LockRetryEvent
  /** The migration lock is held; `holderIsMigrate` only when the holder's session is a sync-lookup migrate run. */
  | { type: 'advisory_lock_wait'; holderPid: number | null; holder: AdvisoryLockHolder | null; holderIsMigrate: boolean }
  | { type: 'invalid_index_dropped'; index: string }
  | { type: 'index_exists'; index: string }
  | { type: 'index_build_start'; index: string; sql: string }
  | { type: 'index_progress'; index: string; progress: IndexBuildProgress }
  | { type: 'index_build_done'; index: string; durationMs: number; bytes: number };
