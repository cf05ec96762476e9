import { withLockRetries, type LockRetryEvent, type Session } from '../db/session.js';

/** How the runner spaces its lock-retry attempts (the loop itself is `withLockRetries` in db/session.ts). */
export interface LockRetryOptions {
  /** `lock_timeout` of each attempt, growing; the last value repeats. Default 100, 200, 400, 800, 1 600, 3 000 ms. */
  lockTimeoutsMs?: number[];
  /** Attempts in all. Default 10. */
  attempts?: number;
  /** Pause before attempt n is `baseSleepMs * n` plus jitter. Default 200 ms. */
  baseSleepMs?: number;
  onEvent?: (event: LockRetryEvent) => void;
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUTS = [100, 200, 400, 800, 1600, 3000];

/**
 * Runs `attempt` in a transaction of `session` whose `lock_timeout` is short and grows, retrying with
 * backoff when a lock is not granted in time: DDL waiting for a strong lock must not queue behind a long
 * transaction while every later query queues behind it. Throws LockNotAcquiredError after the last attempt.
 *
 * @example
 * await withMigrationLockRetries(session, () => session.client.query('alter table sync_lookup add column x int'));
 */
export function withMigrationLockRetries<T>(session: Session, attempt: () => Promise<T>, options: LockRetryOptions = {}): Promise<T> {
  const baseSleepMs = options.baseSleepMs ?? 200;
  return withLockRetries(session, attempt, {
    lockTimeoutsMs: options.lockTimeoutsMs ?? DEFAULT_TIMEOUTS,
    attempts: options.attempts ?? 10,
    sleepMs: (n) => baseSleepMs * n + Math.floor(Math.random() * 100),
    exhausted: (attempts, lockTimeoutMs) =>
      `could not take the locks needed after ${attempts} attempts (last lock_timeout ${lockTimeoutMs} ms): ` +
      'another session holds a conflicting lock; see pg_stat_activity / pg_locks',
    signal: options.signal,
    onRetry: options.onEvent,
  });
}
