import pg from 'pg';
import {
  applySessionSettings, backendPid, cancellableQuery, databaseFromPool, type Database, type Lease,
} from '../db/connection.js';
import { CancelledError, ConfigError, SqlState, isPgError, toSyncLookupError } from '../db/errors.js';

/**
 * What maintenance functions accept as "the database": our `Database` seam, a `pg.Pool`, or a single
 * connected `pg` client (for example the one a user's umzug/Knex/Sequelize migration hands out).
 *
 * @example
 * await purgeRecordTypes(pool, { types: ['encounter_medications'] });
 */
export type MaintenanceTarget = Database | pg.Pool | pg.ClientBase;

function isDatabase(t: MaintenanceTarget): t is Database {
  return typeof (t as Database).acquire === 'function' && typeof (t as Database).close === 'function';
}

function isPool(t: MaintenanceTarget): t is pg.Pool {
  return t instanceof pg.Pool || (typeof (t as unknown as pg.Pool).connect === 'function' && 'totalCount' in t);
}

/**
 * One connection doing maintenance work, in one of two modes:
 * - `batches`: every batch is its own short transaction (the normal mode);
 * - `caller_transaction`: the caller's client is already inside a transaction (a migration run by a tool
 *   that wraps each migration in one); batches become savepoints of that transaction, nothing commits
 *   before the caller does, and VACUUM (which cannot run inside a transaction) is skipped.
 */
export interface WorkSession {
  client: pg.ClientBase;
  db: Database;
  pid: number;
  mode: 'batches' | 'caller_transaction';
  /** Runs `sql` so that aborting `signal` cancels it on the server (when a second connection can be had). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], signal?: AbortSignal): Promise<pg.QueryResult<R>>;
  /**
   * Runs `fn` as one short unit with its own `lock_timeout`: a transaction, or a savepoint in
   * `caller_transaction` mode. Rolled back on any error.
   */
  unit<T>(lockTimeoutMs: number, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A Database over one caller-owned client: hands out that client, never closes it. */
function singleClientDatabase(client: pg.ClientBase): Database {
  let leased = false;
  return {
    label: 'client',
    async acquire(): Promise<Lease> {
      // A second connection (to cancel a running batch) cannot be had from one client; cancellation then
      // happens between batches, which are short by design.
      if (leased) throw new ConfigError('single_client', 'only one connection is available from a plain client');
      leased = true;
      return { client, release: async () => { leased = false; } };
    },
    async close() {},
  };
}

/**
 * Opens a work session on `target` with sync-lookup's session settings (`application_name`,
 * `lock_timeout`, no `statement_timeout`); on a caller's client the previous settings are restored on close.
 *
 * @example
 * const s = await openWorkSession(pool, 'purge');
 * try { await s.unit(2000, () => s.query('delete …')); } finally { await s.close(); }
 */
export async function openWorkSession(target: MaintenanceTarget, purpose: string, lockTimeoutMs = 2000): Promise<WorkSession> {
  let db: Database;
  let lease: Lease;
  let restore: (() => Promise<void>) | undefined;
  if (isDatabase(target) || isPool(target)) {
    db = isDatabase(target) ? target : databaseFromPool(target);
    lease = await db.acquire();
    try {
      await applySessionSettings(lease.client, { purpose, lockTimeoutMs, statementTimeoutMs: 0 });
    } catch (err) {
      await lease.release();
      throw toSyncLookupError(err);
    }
  } else {
    db = singleClientDatabase(target);
    lease = await db.acquire();
    const { rows: [saved] } = await target.query<{ an: string; lt: string; st: string }>(
      `select current_setting('application_name') as an, current_setting('lock_timeout') as lt,
              current_setting('statement_timeout') as st`);
    restore = async () => {
      await target.query(
        `select set_config('application_name', $1, false), set_config('lock_timeout', $2, false),
                set_config('statement_timeout', $3, false)`, [saved!.an, saved!.lt, saved!.st]).catch(() => {});
    };
  }
  const client = lease.client;
  // Outside a transaction block every statement is its own transaction, so now() (the transaction's
  // start) equals statement_timestamp(); inside one opened earlier they differ.
  const { rows: [tx] } = await client.query<{ inside: boolean }>(`select now() <> statement_timestamp() as inside`);
  const mode: WorkSession['mode'] = tx?.inside ? 'caller_transaction' : 'batches';
  // A caller's client gets our settings too (restored on close); inside the caller's transaction only
  // per-savepoint local settings are used, which end with that transaction.
  if (mode === 'batches' && restore) await applySessionSettings(client, { purpose, lockTimeoutMs, statementTimeoutMs: 0 });
  const pid = await backendPid(client);
  let savepoints = 0;
  return {
    client, db, pid, mode,
    query(sql, params = [], signal) {
      return cancellableQuery(db, client, pid, sql, params, signal);
    },
    async unit(unitLockTimeoutMs, fn) {
      if (mode === 'caller_transaction') {
        const name = `sync_lookup_batch_${++savepoints}`;
        await client.query(`savepoint ${name}`);
        try {
          await client.query(`select set_config('lock_timeout', $1, true)`, [`${unitLockTimeoutMs}ms`]);
          const result = await fn();
          await client.query(`release savepoint ${name}`);
          return result;
        } catch (err) {
          await client.query(`rollback to savepoint ${name}`).catch(() => {});
          throw err;
        }
      }
      await client.query('begin');
      try {
        await client.query(`select set_config('lock_timeout', $1, true)`, [`${unitLockTimeoutMs}ms`]);
        const result = await fn();
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw err;
      }
    },
    async close() {
      await restore?.();
      await lease.release();
    },
  };
}

/** True for the errors a batch retries after a pause: a lock not granted in time, a deadlock, a serialization failure. */
export function isRetryableLockError(err: unknown): boolean {
  const e = isPgError(err) ? err : (err as { cause?: unknown } | null)?.cause;
  return isPgError(e) && (e.code === SqlState.lockNotAvailable || e.code === SqlState.deadlockDetected ||
    e.code === SqlState.serializationFailure);
}

/** Throws CancelledError when `signal` is aborted (checked between batches). */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(`${what} was cancelled`);
}

/** Sleeps `ms`, waking early (and throwing) when `signal` aborts. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Declares a `WITH HOLD` cursor and materialises it in one short transaction (a savepoint inside a
 * caller's transaction). `cursor_tuple_fraction = 1` makes the planner plan for reading every row, as
 * a materialised cursor does: with the default 0.1 a cursor over `… WHERE record_type = ANY($1) ORDER BY id`
 * gets a fast-start walk of the primary key, that is, a read of the whole table.
 *
 * @example
 * await declareHeldCursor(session, 'c', 'DECLARE "c" SCROLL CURSOR WITH HOLD FOR SELECT …', [types]);
 */
export async function declareHeldCursor(session: WorkSession, declareSql: string, params: unknown[], signal?: AbortSignal): Promise<void> {
  await session.unit(60_000, async () => {
    await session.client.query(`select set_config('cursor_tuple_fraction', '1', true)`);
    await session.query(declareSql, params, signal);
  });
}
