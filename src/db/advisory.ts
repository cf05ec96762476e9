import type pg from 'pg';
import { backendPid, type Database, type Lease } from './connection.js';
import { ConfigError, SyncLookupError } from './errors.js';

/*
 * Session-level advisory locks (migrate, build, per-record-type jobs) and the one thing that breaks them: a
 * pooler in transaction mode (PgBouncer `pool_mode = transaction`), which runs consecutive statements of
 * one client connection on different server backends. A lock taken there stays on a pooled backend that
 * an application uses next, and the unlock runs elsewhere and returns false; session settings
 * (`statement_timeout = 0`, `lock_timeout`) leak the same way, and `pg_cancel_backend(pid)` would hit an
 * application's query. So every session of long work first proves that its statements stay on one backend,
 * and refuses otherwise; every unlock checks its result.
 */

/** Who holds an advisory lock, as `pg_stat_activity` shows it. */
export interface AdvisoryLockHolder {
  pid: number;
  applicationName: string | null;
  state: string | null;
  /** Seconds since the state last changed (how long it has been idle, for an idle holder). */
  stateAgeS: number | null;
  /** The holder's current or last statement (first 200 characters). */
  query: string | null;
}

const verified = new WeakMap<object, true>();

/**
 * Proves that `client`'s statements run on one server backend, before any session setting or lock is
 * placed: while a second connection from `db` holds a transaction open (which pins a pooler's server
 * connection to it), `client` runs a few statements. A direct or session-pooled connection always answers
 * with its own backend pid; a transaction-mode pooler hands the second connection `client`'s last backend,
 * or moves `client` to another. Throws ConfigError `transaction_pooler` naming the fix. Checked once per `key`
 * (the Database or pool). Inconclusive, and so not refused, when no second connection or server backend comes
 * within 2 s (a caller's pool or a session-mode pool at its size limit: neither moves statements).
 *
 * @example
 * await assertSessionPinned(db, lease.client, db);
 */
export async function assertSessionPinned(db: Database, client: pg.ClientBase, key: object = db): Promise<void> {
  if (verified.has(key)) return;
  const first = await backendPid(client);
  const other = await secondConnection(db);
  if (!other) return;
  const seen: number[] = [];
  let otherPid: number | undefined;
  try {
    // A session-mode pool at its size limit queues the second connection's BEGIN: inconclusive, and fine.
    const began = await settle(2000, other.client.query('begin').then(() => backendPid(other.client)));
    if (began.value === undefined) {
      // Refused outright (PgBouncer in statement mode allows no transaction block): no direct connection does that.
      if (began.error) throw poolerError(db, `a second connection could not open a transaction (${began.error.message})`, [first]);
      return;
    }
    otherPid = began.value;
    for (let i = 0; i < 3; i++) {
      // Our own backend never waits for another connection's transaction; a pool's last free server connection does.
      const pid = (await settle(5000, backendPid(client))).value;
      if (pid === undefined) throw poolerError(db, `one connection's statement waited for a server connection while another held a transaction`, [first, otherPid]);
      seen.push(pid);
    }
  } finally {
    // A BEGIN still queued must not have a ROLLBACK queued behind it: closing the connection ends both.
    if (otherPid !== undefined) await other.client.query('rollback').catch(() => {});
    await other.release();
  }
  const moved = seen.find((p) => p !== first);
  if (otherPid === first || moved !== undefined) {
    throw poolerError(db, otherPid === first ? `two connections ran on the same server backend (pid ${first})`
      : `one connection's statements ran on backends ${first} and ${moved}`, [first, otherPid, ...seen]);
  }
  verified.set(key, true);
}

function poolerError(db: Database, what: string, pids: (number | undefined)[]): ConfigError {
  return new ConfigError('transaction_pooler',
    `${db.label} leads through a connection pooler in transaction mode (or statement mode): ${what}` +
    '; session-level advisory locks and settings do not survive between statements there. Point sync-lookup at PostgreSQL ' +
    'directly, or at a session-mode pool (PgBouncer: a database entry with pool_mode=session); applications keep the pooled URL',
    { pids });
}

/**
 * A second connection for the probe, or undefined when none comes within 2 s (a caller's pool with all its
 * connections in use must not hang the session; a late one is given back at once).
 */
async function secondConnection(db: Database): Promise<Lease | undefined> {
  const pending = db.acquire();
  const got = await within(2000, pending.catch(() => undefined));
  if (!got) void pending.then((late) => late.release(), () => {});
  return got;
}

/** `p`'s value, or undefined when it takes longer than `ms` (or fails). */
async function within<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
  return (await settle(ms, p)).value;
}

interface Settled<T> { value?: T; error?: Error }

/** `p`'s value or error, or neither when it takes longer than `ms`. */
async function settle<T>(ms: number, p: Promise<T>): Promise<Settled<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Settled<T>>((resolve) => { timer = setTimeout(() => resolve({}), ms); });
  try {
    return await Promise.race([p.then((value) => ({ value }), (e: unknown) => ({ error: e instanceof Error ? e : new Error(String(e)) })), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The advisory lock key (`hashtextextended(key, 0)`) as pg_locks shows it, in the connected database. */
const HOLDER_SQL = `
  select l.pid, a.application_name, a.state, left(a.query, 200) as query,
         extract(epoch from now() - a.state_change)::float8 as state_age_s
    from pg_locks l left join pg_stat_activity a on a.pid = l.pid
   where l.locktype = 'advisory' and l.granted and l.objsubid = 1
     and l.database = (select oid from pg_database where datname = current_database())
     and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)
   limit 1`;

/**
 * The backend holding the advisory lock of `key`, or null.
 *
 * @example
 * const holder = await advisoryLockHolder(client, 'sync-lookup:migrate');
 */
export async function advisoryLockHolder(client: pg.ClientBase, key: string): Promise<AdvisoryLockHolder | null> {
  const { rows: [r] } = await client.query<{ pid: number; application_name: string | null; state: string | null; query: string | null; state_age_s: number | null }>(HOLDER_SQL, [key]);
  return r ? { pid: r.pid, applicationName: r.application_name, state: r.state, stateAgeS: r.state_age_s === null ? null : Math.round(r.state_age_s), query: r.query } : null;
}

/**
 * What is seen of a holder, for messages: `backend pid 123 (application_name "api", idle for 42 s, last query "select 1")`.
 *
 * @example
 * describeHolder(holder)
 */
export function describeHolder(h: AdvisoryLockHolder): string {
  const parts = [
    `application_name ${JSON.stringify(h.applicationName ?? '')}`,
    ...(h.state ? [`${h.state}${h.stateAgeS !== null ? ` for ${h.stateAgeS} s` : ''}`] : []),
    ...(h.query ? [`${h.state === 'active' ? 'running' : 'last query'} ${JSON.stringify(h.query.replace(/\s+/g, ' ').slice(0, 80))}`] : []),
  ];
  return `backend pid ${h.pid} (${parts.join(', ')})`;
}

/**
 * Takes the session-level advisory lock of `key` without waiting; false when another session holds it.
 *
 * @example
 * if (!(await tryAdvisoryLock(client, 'sync-lookup:build'))) …
 */
export async function tryAdvisoryLock(client: pg.ClientBase, key: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [key]);
  return !!rows[0]?.ok;
}

/**
 * Releases the session-level advisory lock of `key`, checking PostgreSQL's answer: `pg_advisory_unlock`
 * returns false when this backend does not hold it (the statements moved to another backend, or it was
 * never taken here). Throws SyncLookupError `advisory_unlock_failed` naming who holds it now, if anyone.
 *
 * @example
 * await advisoryUnlock(client, 'sync-lookup:migrate', 'the migration lock');
 */
export async function advisoryUnlock(client: pg.ClientBase, key: string, what: string): Promise<void> {
  const { rows } = await client.query<{ ok: boolean; pid: number }>(
    'select pg_advisory_unlock(hashtextextended($1, 0)) as ok, pg_backend_pid() as pid', [key]);
  if (rows[0]?.ok) return;
  const holder = await advisoryLockHolder(client, key);
  throw new SyncLookupError('advisory_unlock_failed',
    `${what} was not held by this connection's backend (pid ${rows[0]?.pid}) when it was released` +
    (holder ? `; ${describeHolder(holder)} holds it now` : '; no backend holds it now') +
    ': the connection\'s statements ran on more than one backend (a transaction-mode pooler); connect directly or through a session-mode pool',
    { key, pid: rows[0]?.pid ?? null, holder });
}

/**
 * For an unlock in a `finally`: ignores a failure of the connection (the server drops a session's locks
 * with it) but rethrows `advisory_unlock_failed`, which must never pass silently.
 *
 * @example
 * finally { await releaseBuildLock(client).catch(unlessUnlockFailed); }
 */
export function unlessUnlockFailed(err: unknown): void {
  if (err instanceof SyncLookupError && err.code === 'advisory_unlock_failed') throw err;
}
