import type pg from 'pg';
import { LockNotAcquiredError, SqlState, isPgError } from '../db/errors.js';
import type { MigrationEvent } from './events.js';

/** How `withLockRetries` spaces its attempts. */
export interface LockRetryOptions {
  /** `lock_timeout` of each attempt, growing; the last value repeats. Default 100, 200, 400, 800, 1 600, 3 000 ms. */
  lockTimeoutsMs?: number[];
  /** Attempts in all. Default 10. */
  attempts?: number;
  /** Pause before attempt n is `baseSleepMs * n` plus jitter. Default 200 ms. */
  baseSleepMs?: number;
  onEvent?: (event: MigrationEvent) => void;
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUTS = [100, 200, 400, 800, 1600, 3000];

/**
 * Runs `attempt` in a transaction whose `lock_timeout` is short, retrying with backoff when a lock is
 * not granted in time (GitLab's `with_lock_retries`): DDL waiting for a strong lock must not queue
 * behind a long transaction while every later query queues behind it.
 *
 * @example
 * await withLockRetries(client, async (c) => c.query('alter table sync_lookup add column x int'));
 */
export async function withLockRetries<T>(
  client: pg.ClientBase, attempt: (client: pg.ClientBase) => Promise<T>, options: LockRetryOptions = {},
): Promise<T> {
  const timeouts = options.lockTimeoutsMs ?? DEFAULT_TIMEOUTS;
  const attempts = options.attempts ?? 10;
  for (let n = 1; ; n++) {
    const lockTimeoutMs = timeouts[Math.min(n, timeouts.length) - 1]!;
    await client.query('begin');
    try {
      await client.query(`select set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
      const result = await attempt(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      const retryable = isPgError(err) && (err.code === SqlState.lockNotAvailable || err.code === SqlState.deadlockDetected);
      if (!retryable) throw err;
      if (n >= attempts) {
        throw new LockNotAcquiredError('lock_timeout',
          `could not take the locks needed after ${attempts} attempts (last lock_timeout ${lockTimeoutMs} ms): ` +
          'another session holds a conflicting lock; see pg_stat_activity / pg_locks', { attempts, lockTimeoutMs }, { cause: err });
      }
      const sleepMs = (options.baseSleepMs ?? 200) * n + Math.floor(Math.random() * 100);
      options.onEvent?.({ type: 'lock_retry', attempt: n, attempts, lockTimeoutMs, sleepMs });
      if (options.signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, sleepMs));
    }
  }
}
