import pg from 'pg';
import { ConfigError, SqlState, SyncLookupError, isPgError, toSyncLookupError } from './errors.js';

/** Session settings every sync-lookup connection sets deliberately (via `set_config`). */
export interface SessionSettings {
  /** Shown as `sync-lookup:<purpose>` in `pg_stat_activity`. */
  purpose: string;
  /** `lock_timeout`; 0 waits forever. Default 5 000 ms. */
  lockTimeoutMs?: number;
  /** `statement_timeout`; 0 never times out. Default 0: bulk work is bounded by batches, not by the server. */
  statementTimeoutMs?: number;
}

/** A connected client and the way to give it back. */
export interface Lease {
  client: pg.ClientBase;
  release(): Promise<void>;
}

/**
 * The seam between sync-lookup and a PostgreSQL server: hands out clients. Long operations take
 * several at once (one does the work, another watches or cancels it).
 *
 * @example
 * const db = databaseFromUrl(process.env.DATABASE_URL!);
 * await withClient(db, { purpose: 'status' }, (c) => c.query('select 1'));
 */
export interface Database {
  /** A redacted description for messages (no password). */
  readonly label: string;
  acquire(): Promise<Lease>;
  /** Releases pooled resources; a no-op where there are none. */
  close(): Promise<void>;
}

/**
 * Validates a connection string and describes it without its password. `source` names where the URL came
 * from in error messages (default `DATABASE_URL`; the CLI passes `--database-url` when the flag gave it).
 *
 * @example
 * parseDatabaseUrl('postgres://u:p@h:5432/db').label // 'postgres://u@h:5432/db'
 */
export function parseDatabaseUrl(url: string, source = 'DATABASE_URL'): { url: string; label: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('invalid_database_url', `${source} is not a valid URL: ${JSON.stringify(redact(url))}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError('invalid_database_url',
      `${source} must start with postgres:// or postgresql://, got ${JSON.stringify(parsed.protocol)}`);
  }
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new ConfigError('invalid_database_url', `${source} names no host: ${JSON.stringify(redact(url))}`);
  }
  if (parsed.port && !/^\d+$/.test(parsed.port)) {
    throw new ConfigError('invalid_database_url', `${source} has an invalid port: ${JSON.stringify(parsed.port)}`);
  }
  return { url, label: redact(url) };
}

function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1@');
}

/**
 * A Database that opens one new `pg.Client` per lease from a connection string; `options.source` names
 * the URL's origin in a validation error (see `parseDatabaseUrl`).
 *
 * @example
 * const db = databaseFromUrl('postgres://postgres@localhost/sync');
 */
export function databaseFromUrl(url: string, options: { source?: string } = {}): Database {
  const { label } = parseDatabaseUrl(url, options.source);
  return {
    label,
    async acquire() {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
      // An idle client whose server goes away emits 'error'; without a listener that crashes the process.
      client.on('error', () => {});
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => {});
        throw connectionError(err, label);
      }
      return { client, release: () => client.end().catch(() => {}) };
    },
    async close() {},
  };
}

/**
 * A Database over a caller's `pg.Pool`, for use inside an application's own migrations.
 *
 * @example
 * const db = databaseFromPool(pool);
 */
export function databaseFromPool(pool: pg.Pool, label = 'pool'): Database {
  return {
    label,
    async acquire() {
      const client = await pool.connect().catch((err: unknown) => { throw connectionError(err, label); });
      // A client that was cancelled or left settings behind must not go back to the pool as is.
      return { client, release: async () => client.release(true) };
    },
    async close() {},
  };
}

/** Turns a failed connect into a one-line error that names the problem. */
export function connectionError(err: unknown, label: string): SyncLookupError {
  if (isPgError(err)) {
    if (err.code === SqlState.invalidPassword || err.code === SqlState.invalidAuthorization) {
      return new ConfigError('authentication_failed', `cannot log in to ${label}: ${err.message}`, { sqlstate: err.code });
    }
    if (err.code === SqlState.invalidCatalogName) {
      return new ConfigError('database_not_found', `cannot connect to ${label}: ${err.message}`, { sqlstate: err.code });
    }
  }
  const code = (err as { code?: string } | undefined)?.code;
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the server running on that host and port?)',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
  };
  const reason = (code && reasons[code]) ?? (err instanceof Error ? err.message : String(err));
  return new SyncLookupError('connection_failed', `cannot connect to ${label}: ${reason}`, code ? { errno: code } : {},
    { cause: err });
}

/**
 * Applies session settings with `set_config` (values as parameters, never spliced into SQL).
 *
 * @example
 * await applySessionSettings(client, { purpose: 'migrate', lockTimeoutMs: 2000 });
 */
export async function applySessionSettings(client: pg.ClientBase, settings: SessionSettings, local = false): Promise<void> {
  await client.query(
    `select set_config('application_name', $1, $4), set_config('lock_timeout', $2, $4),
            set_config('statement_timeout', $3, $4)`,
    [`sync-lookup:${settings.purpose}`, `${settings.lockTimeoutMs ?? 5000}ms`, `${settings.statementTimeoutMs ?? 0}ms`, local],
  );
}

/**
 * Runs `fn` with a client that has the given session settings; always releases it.
 *
 * @example
 * const n = await withClient(db, { purpose: 'status' }, async (c) => (await c.query('select 1')).rowCount);
 */
export async function withClient<T>(db: Database, settings: SessionSettings, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const lease = await db.acquire();
  try {
    await applySessionSettings(lease.client, settings);
    return await fn(lease.client);
  } finally {
    await lease.release();
  }
}

/**
 * Runs `fn` inside BEGIN/COMMIT on `client`, rolling back on any error.
 *
 * @example
 * await withTransaction(client, (c) => c.query('delete from sync_lookup where id = $1', [id]));
 */
export async function withTransaction<T>(client: pg.ClientBase, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/**
 * Runs `fn` inside a savepoint of the transaction `client` is in, rolling back to it on any error.
 * `name` is one of ours (a plain identifier, not quoted).
 *
 * @example
 * await withSavepoint(client, 'sync_lookup_batch_1', () => client.query('delete from sync_lookup where id = $1', [id]));
 */
export async function withSavepoint<T>(client: pg.ClientBase, name: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  await client.query(`savepoint ${name}`);
  try {
    const result = await fn(client);
    await client.query(`release savepoint ${name}`);
    return result;
  } catch (err) {
    await client.query(`rollback to savepoint ${name}`).catch(() => {});
    throw err;
  }
}

/** The server process id of a client's session. */
export async function backendPid(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return rows[0]!.pid;
}

/**
 * Cancels the statement running in backend `pid` from a separate connection (the client running it
 * is busy and cannot send anything itself).
 *
 * @example
 * signal.addEventListener('abort', () => void cancelBackend(db, pid));
 */
export async function cancelBackend(db: Database, pid: number, statement?: string): Promise<boolean> {
  return withClient(db, { purpose: 'cancel' }, async (c) => {
    // With `statement`, only while that statement is still the one running (kysely's check): an abort that
    // arrives as it finishes must not cancel the next statement of the same session.
    const { rows } = await c.query<{ ok: boolean }>(
      `select pg_cancel_backend(pid) as ok from pg_stat_activity
        where pid = $1 and ($2::text is null or (state = 'active' and left(query, 500) = left($2, 500)))`, [pid, statement ?? null]);
    return rows[0]?.ok ?? false;
  });
}

/**
 * Runs one statement on `client` so that aborting `signal` cancels it on the server.
 * Rejects with CancelledError when cancelled.
 *
 * @example
 * await cancellableQuery(db, client, pid, 'create index concurrently …', [], signal);
 */
export async function cancellableQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  db: Database, client: pg.ClientBase, pid: number, sql: string, params: unknown[] = [], signal?: AbortSignal,
): Promise<pg.QueryResult<R>> {
  if (signal?.aborted) throw toSyncLookupError(signal.reason ?? new Error('cancelled'));
  const onAbort = () => { void cancelBackend(db, pid, sql).catch(() => {}); };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await client.query<R>(sql, params);
  } catch (err) {
    throw toSyncLookupError(err, { sql: sql.slice(0, 500) });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The server's version as "18.4" and its number (180004). */
export async function serverVersion(client: pg.ClientBase): Promise<{ version: string; num: number }> {
  const { rows } = await client.query<{ v: string; n: string }>(
    `select current_setting('server_version') as v, current_setting('server_version_num') as n`);
  return { version: rows[0]!.v.split(' ')[0]!, num: Number(rows[0]!.n) };
}
