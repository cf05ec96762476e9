import pg from 'pg';
import {
  applySessionSettings, backendPid, cancellableQuery, databaseFromPool, withSavepoint, withTransaction,
  type Database, type Lease, type SessionSettings,
} from './connection.js';
import { assertSessionPinned } from './advisory.js';
import { CancelledError, ConfigError, LockNotAcquiredError, SqlState, isPgError, toSyncLookupError } from './errors.js';

/*
 * The one session type for long work (migrate, build, verify, purge, rebuild): a connection with its pid
 * and deliberate settings, statements that a signal cancels on the server, short units with their own
 * lock_timeout, and one lock-retry loop.
 */

/**
 * What long operations accept as "the database": our `Database` seam, a `pg.Pool`, or a single connected
 * `pg` client (for example the one a user's umzug/Knex/Sequelize migration hands out).
 *
 * @example
 * await purgeRecordTypes(pool, { types: ['encounter_medications'] });
 */
export type SessionTarget = Database | pg.Pool | pg.ClientBase;

/**
 * One connection doing long work, in one of two modes:
 * - `batches`: every unit is its own short transaction (the normal mode);
 * - `caller_transaction`: the caller's client is already inside a transaction (a migration run by a tool
 *   that wraps each migration in one); units become savepoints of that transaction, nothing commits
 *   before the caller does, and VACUUM (which cannot run inside a transaction) is skipped.
 */
export interface Session {
  client: pg.ClientBase;
  /** Where a second connection comes from (to cancel a statement or watch its progress). */
  db: Database;
  /** The backend pid of `client`. */
  pid: number;
  mode: 'batches' | 'caller_transaction';
  /**
   * Runs `sql` so that aborting `signal` cancels it on the server (only while it is still the statement
   * running, and when a second connection can be had). Rejects with a SyncLookupError (CancelledError when cancelled).
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], signal?: AbortSignal): Promise<pg.QueryResult<R>>;
  /**
   * Runs `fn` as one short unit with its own `lock_timeout` (ms): a transaction, or a savepoint in
   * `caller_transaction` mode. Rolled back on any error.
   */
  unit<T>(lockTimeoutMs: number, fn: () => Promise<T>): Promise<T>;
  /** Restores a caller's client's settings, or gives the connection back. */
  close(): Promise<void>;
}

function isDatabase(t: SessionTarget): t is Database {
  return typeof (t as Database).acquire === 'function' && typeof (t as Database).close === 'function';
}

function isPool(t: SessionTarget): t is pg.Pool {
  return t instanceof pg.Pool || (typeof (t as unknown as pg.Pool).connect === 'function' && 'totalCount' in t);
}

/** A Database over one caller-owned client: hands out that client, never closes it. */
function singleClientDatabase(client: pg.ClientBase): Database {
  let leased = false;
  return {
    label: 'client',
    async acquire(): Promise<Lease> {
      // A second connection (to cancel a running statement) cannot be had from one client; cancellation
      // then happens between units, which are short by design.
      if (leased) throw new ConfigError('single_client', 'only one connection is available from a plain client');
      leased = true;
      return { client, release: async () => { leased = false; } };
    },
    async close() {},
  };
}

/**
 * Leases a connection of our own, proves its statements stay on one backend (a transaction-mode pooler is
 * refused before any setting or lock could leak onto a pooled backend), and applies `settings`.
 */
async function leaseWithSettings(db: Database, settings: SessionSettings, key: object): Promise<Lease> {
  const lease = await db.acquire();
  try {
    await assertSessionPinned(db, lease.client, key);
    await applySessionSettings(lease.client, settings);
  } catch (err) {
    await lease.release();
    throw toSyncLookupError(err);
  }
  return lease;
}

/**
 * Borrows a caller's client: its settings are saved (and restored by the returned function); ours are
 * applied only outside a transaction, since inside the caller's only per-unit local settings are used.
 */
async function borrowClient(client: pg.ClientBase, settings: SessionSettings): Promise<{ mode: Session['mode']; restore: () => Promise<void> }> {
  const { rows: [saved] } = await client.query<{ an: string; lt: string; st: string }>(
    `select current_setting('application_name') as an, current_setting('lock_timeout') as lt,
            current_setting('statement_timeout') as st`);
  // Outside a transaction block every statement is its own transaction, so now() (the transaction's
  // start) equals statement_timestamp(); inside one opened earlier they differ.
  const { rows: [tx] } = await client.query<{ inside: boolean }>(`select now() <> statement_timestamp() as inside`);
  const mode: Session['mode'] = tx?.inside ? 'caller_transaction' : 'batches';
  if (mode === 'batches') await applySessionSettings(client, settings);
  const restore = async () => {
    await client.query(
      `select set_config('application_name', $1, false), set_config('lock_timeout', $2, false),
              set_config('statement_timeout', $3, false)`, [saved!.an, saved!.lt, saved!.st]).catch(() => {});
  };
  return { mode, restore };
}

/**
 * Opens a session on `target` with `settings` (`application_name` from `purpose`, `lock_timeout`,
 * `statement_timeout`); on a caller's client the previous settings are restored on close.
 *
 * @example
 * const s = await openSession(pool, { purpose: 'purge', lockTimeoutMs: 2000, statementTimeoutMs: 0 });
 * try { await s.unit(2000, () => s.query('delete …')); } finally { await s.close(); }
 */
export async function openSession(target: SessionTarget, settings: SessionSettings): Promise<Session> {
  let db: Database;
  let lease: Lease;
  let mode: Session['mode'] = 'batches';
  let restore: (() => Promise<void>) | undefined;
  if (isDatabase(target) || isPool(target)) {
    db = isDatabase(target) ? target : databaseFromPool(target);
    lease = await leaseWithSettings(db, settings, target);
  } else {
    db = singleClientDatabase(target);
    lease = await db.acquire();
    ({ mode, restore } = await borrowClient(target, settings));
  }
  const client = lease.client;
  const pid = await backendPid(client);
  let savepoints = 0;
  return {
    client, db, pid, mode,
    query(sql, params = [], signal) {
      return cancellableQuery(db, client, pid, sql, params, signal);
    },
    unit(lockTimeoutMs, fn) {
      const body = async () => {
        await client.query(`select set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
        return fn();
      };
      return mode === 'caller_transaction' ? withSavepoint(client, `sync_lookup_batch_${++savepoints}`, body) : withTransaction(client, body);
    },
    async close() {
      await restore?.();
      await lease.release();
    },
  };
}

/**
 * Runs `fn` with a session opened on `target`; always closes it.
 *
 * @example
 * const n = await withSession(db, { purpose: 'verify' }, async (s) => (await s.query('select 1')).rowCount);
 */
export async function withSession<T>(target: SessionTarget, settings: SessionSettings, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = await openSession(target, settings);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** A unit's locks were not granted in time; it was rolled back and runs again after `sleep_ms`. */
export interface LockRetryEvent {
  type: 'lock_retry';
  attempt: number;
  attempts: number;
  lock_timeout_ms: number;
  sleep_ms: number;
}

/** How `withLockRetries` spaces its attempts and what it says when it gives up. */
export interface LockRetryPolicy {
  /** `lock_timeout` (ms) of each attempt; the last value repeats. */
  lockTimeoutsMs: readonly number[];
  /** Attempts in all. */
  attempts: number;
  /** The pause (ms) after failed attempt `attempt`. */
  sleepMs(attempt: number): number;
  /** The message of the LockNotAcquiredError thrown after the last attempt. */
  exhausted(attempts: number, lockTimeoutMs: number): string;
  /** Checked before every attempt (CancelledError) and wakes the pause. */
  signal?: AbortSignal | undefined;
  onRetry?: ((event: LockRetryEvent) => void) | undefined;
}

/**
 * Runs `fn` as a unit of `session` (see `Session.unit`) with a short `lock_timeout`, retrying after a pause
 * when its locks are not granted in time, a deadlock or a serialization failure rolled it back (GitLab's
 * `with_lock_retries`): work waiting for a strong lock must not queue every later query behind itself.
 * Throws LockNotAcquiredError `lock_timeout` after the last attempt, CancelledError when `signal` aborts.
 *
 * @example
 * await withLockRetries(session, () => session.query('alter table sync_lookup add column x int'), policy);
 */
export async function withLockRetries<T>(session: Session, fn: () => Promise<T>, policy: LockRetryPolicy): Promise<T> {
  const { lockTimeoutsMs: timeouts, attempts, signal } = policy;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal, 'the operation');
    const lockTimeoutMs = timeouts[Math.min(attempt, timeouts.length) - 1]!;
    try {
      return await session.unit(lockTimeoutMs, fn);
    } catch (err) {
      if (!isRetryableLockError(err)) throw err;
      if (attempt >= attempts) {
        throw new LockNotAcquiredError('lock_timeout', policy.exhausted(attempt, lockTimeoutMs),
          { attempts: attempt, lockTimeoutMs }, { cause: err });
      }
      const sleepMs = policy.sleepMs(attempt);
      policy.onRetry?.({ type: 'lock_retry', attempt, attempts, lock_timeout_ms: lockTimeoutMs, sleep_ms: sleepMs });
      await pause(sleepMs, signal);
    }
  }
}

/** True for the errors a unit retries after a pause: a lock not granted in time, a deadlock, a serialization failure. */
export function isRetryableLockError(err: unknown): boolean {
  const e = isPgError(err) ? err : (err as { cause?: unknown } | null)?.cause;
  return isPgError(e) && (e.code === SqlState.lockNotAvailable || e.code === SqlState.deadlockDetected ||
    e.code === SqlState.serializationFailure);
}

/** Throws CancelledError when `signal` is aborted (checked between units). */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(`${what} was cancelled`);
}

/** Sleeps `ms`, waking early (without throwing) when `signal` aborts. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  // An abort that came before the pause began fires no event: it would sleep the whole time.
  if (ms <= 0 || signal?.aborted) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}
