import type pg from 'pg';
import { applySessionSettings, backendPid, cancellableQuery, type Database } from '../db/connection.js';
import { MigrationError } from '../db/errors.js';
import { createIndexSql, dropIndexSql, type IndexSpec } from '../db/index-ddl.js';
import { readIndexBuilds } from '../db/index-progress.js';
import { quoteIdent, quoteQualified, type QualifiedName } from '../db/quote.js';
import type { MigrationEvent } from './events.js';
import type { ConcurrentIndexDdl } from './sql-file.js';

/** Options of a concurrent build. */
export interface ConcurrentIndexOptions {
  /** `lock_timeout` while the build waits for old transactions to end; default 15 minutes. 0 waits forever. */
  lockTimeoutMs?: number;
  /** How often progress is read on the second connection; default 500 ms. */
  progressIntervalMs?: number;
  signal?: AbortSignal;
  onEvent?: (event: MigrationEvent) => void;
}

/** What a concurrent build did. */
export interface IndexBuildResult {
  index: string;
  status: 'built' | 'rebuilt_invalid' | 'exists';
  durationMs: number;
  bytes: number;
}

interface ExistingIndex { valid: boolean; ready: boolean; table: string; columns: string[]; unique: boolean }

/** Looks an index up by schema and name; `valid` false marks the leftover of a failed concurrent build. */
export async function findIndex(client: pg.ClientBase, ref: QualifiedName): Promise<ExistingIndex | undefined> {
  const { rows } = await client.query<{ valid: boolean; ready: boolean; table: string; columns: string[]; unique: boolean }>(
    `select i.indisvalid as valid, i.indisready as ready, t.relname as table, i.indisunique as unique,
            array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, ord)
                    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord) as columns
       from pg_index i
       join pg_class c on c.oid = i.indexrelid
       join pg_namespace n on n.oid = c.relnamespace
       join pg_class t on t.oid = i.indrelid
      where n.nspname = $1 and c.relname = $2`, [ref.schema, ref.name]);
  return rows[0];
}

/**
 * Builds an index without blocking writes: drops an INVALID leftover of the same name first (never
 * trusting `IF NOT EXISTS`), runs with `statement_timeout = 0` and a long `lock_timeout`, reports
 * progress from `pg_stat_progress_create_index` on a second connection, and checks the result is valid.
 * `client` must not be inside a transaction.
 *
 * @example
 * await createIndexConcurrently(db, client, { table: 'sync_lookup', name: 'sync_lookup_record_type', columns: ['record_type'] });
 */
export async function createIndexConcurrently(
  db: Database, client: pg.ClientBase, spec: IndexSpec, options: ConcurrentIndexOptions = {},
): Promise<IndexBuildResult> {
  const ref = { schema: spec.schema ?? 'public', name: spec.name };
  const label = `${ref.schema}.${ref.name}`;
  const emit = options.onEvent ?? (() => {});
  const started = Date.now();
  const pid = await backendPid(client);
  const existing = await findIndex(client, ref);
  let status: IndexBuildResult['status'] = 'built';
  if (existing?.valid) {
    if (existing.table !== spec.table || existing.columns.join(',') !== spec.columns.join(',') || existing.unique !== !!spec.unique) {
      throw new MigrationError('index_conflict',
        `index ${label} already exists on ${existing.table} (${existing.columns.join(', ')}), not on ${spec.table} (${spec.columns.join(', ')})`,
        { index: label, existing });
    }
    emit({ type: 'index_exists', index: label });
    return { index: label, status: 'exists', durationMs: 0, bytes: await indexBytes(client, ref) };
  }
  await withLongWaits(client, options, async () => {
    if (existing && (await dropInvalidLeftover(db, client, pid, ref, options))) status = 'rebuilt_invalid';
    await monitoredQuery(db, client, pid, label, createIndexSql(spec), options);
  });
  await assertValid(client, ref);
  const durationMs = Date.now() - started;
  const bytes = await indexBytes(client, ref);
  emit({ type: 'index_build_done', index: label, durationMs, bytes });
  return { index: label, status, durationMs, bytes };
}

/**
 * Runs a `CREATE [UNIQUE] INDEX CONCURRENTLY` / `DROP INDEX CONCURRENTLY` / `REINDEX … CONCURRENTLY`
 * statement of a user's file the way `createIndexConcurrently` runs the built-in ones: no statement
 * timeout, the long lock timeout for waiting on old transactions, an INVALID leftover of the same name
 * (or a REINDEX's `_ccnew`/`_ccold` leftovers) dropped first, also under `IF NOT EXISTS`, progress, and a
 * check afterwards. Throws MigrationError `index_invalid` when the statement left an INVALID index.
 *
 * @example
 * await runConcurrentIndexStatement(db, client, 'CREATE INDEX CONCURRENTLY i ON t (x)', ddl, { onEvent });
 */
export async function runConcurrentIndexStatement(
  db: Database, client: pg.ClientBase, sql: string, ddl: ConcurrentIndexDdl, options: ConcurrentIndexOptions = {},
): Promise<void> {
  const pid = await backendPid(client);
  if (ddl.kind === 'create') {
    const ref = ddl.name === null ? null : await indexRef(client, ddl.schema, ddl.table, ddl.name);
    const existing = ref ? await findIndex(client, ref) : undefined;
    if (ref && existing?.valid && ddl.ifNotExists) {
      // IF NOT EXISTS goes by name only: an index of that name elsewhere is a conflict, as for the built-in builds.
      const label = `${ref.schema}.${ref.name}`;
      if (existing.table !== ddl.table || existing.unique !== ddl.unique || (ddl.columns && existing.columns.join(',') !== ddl.columns.join(','))) {
        throw new MigrationError('index_conflict', `index ${label} already exists on ${existing.table} (${existing.columns.join(', ')})` +
          `${existing.unique ? ', unique' : ''}, which is not what ${sql.trim().slice(0, 80)} asks for; rename one of them`, { index: label, existing });
      }
      options.onEvent?.({ type: 'index_exists', index: label });
      return;
    }
    await withLongWaits(client, options, async () => {
      if (ref && existing && !existing.valid) await dropInvalidLeftover(db, client, pid, ref, options);
      await monitoredQuery(db, client, pid, ref ? `${ref.schema}.${ref.name}` : ddl.table, sql, options);
    });
    if (ref) await assertValid(client, ref);
    return;
  }
  if (ddl.kind === 'drop') {
    await withLongWaits(client, options, () => cancellableQuery(db, client, pid, sql, [], options.signal));
    const { rows: [left] } = await client.query<{ name: string | null }>(`select to_regclass($1)::text as name`,
      [quoteQualifiedOrName(ddl.schema, ddl.name)]);
    if (left?.name) throw new MigrationError('index_invalid', `index ${left.name} is still there after ${sql.trim().slice(0, 60)}`, { index: left.name });
    return;
  }
  await reindexConcurrently(db, client, pid, sql, ddl, options);
}

/** REINDEX … CONCURRENTLY: drops leftovers of an earlier failed one in scope first, then fails loudly on new ones. */
async function reindexConcurrently(
  db: Database, client: pg.ClientBase, pid: number, sql: string, ddl: ConcurrentIndexDdl & { kind: 'reindex' }, options: ConcurrentIndexOptions,
): Promise<void> {
  const scope = ddl.target === 'index' || ddl.target === 'table' ? quoteQualifiedOrName(ddl.schema, ddl.name ?? '') : ddl.name;
  await withLongWaits(client, options, async () => {
    for (const ref of await reindexLeftovers(client, ddl.target, scope)) await dropInvalidLeftover(db, client, pid, ref, options);
    await monitoredQuery(db, client, pid, scope ?? 'database', sql, options);
  });
  const left = await reindexLeftovers(client, ddl.target, scope);
  if (left.length) {
    const names = left.map((r) => `${r.schema}.${r.name}`);
    throw new MigrationError('index_invalid',
      `${sql.trim().slice(0, 60)} left INVALID index(es) ${names.join(', ')}; re-run migrate to drop them and reindex again`, { indexes: names });
  }
}

/** INVALID indexes named like a REINDEX CONCURRENTLY leftover (`…_ccnew`, `…_ccold`) on the statement's tables. */
async function reindexLeftovers(client: pg.ClientBase, target: string, scope: string | null): Promise<QualifiedName[]> {
  const { rows } = await client.query<QualifiedName>(
    `select n.nspname as schema, c.relname as name from pg_index i
       join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
      where not i.indisvalid and c.relname ~ '_cc(new|old)[0-9]*$'
        and case $1 when 'index' then i.indrelid = (select indrelid from pg_index where indexrelid = to_regclass($2))
                    when 'table' then i.indrelid = to_regclass($2)
                    when 'schema' then n.nspname = $2
                    else n.nspname not in ('pg_catalog', 'information_schema') end`, [target, scope]);
  return rows;
}

/** `schema.name` quoted for to_regclass, or the bare quoted name (resolved by search_path). */
function quoteQualifiedOrName(schema: string | null, name: string): string {
  return schema === null ? quoteIdent(name) : quoteQualified({ schema, name });
}

/** Where an index of a statement lives: the schema of its table (which the statement may leave to search_path). */
async function indexRef(client: pg.ClientBase, schema: string | null, table: string, name: string): Promise<QualifiedName | null> {
  const { rows: [t] } = await client.query<{ schema: string }>(
    `select n.nspname as schema from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass($1)`,
    [quoteQualifiedOrName(schema, table)]);
  return t ? { schema: t.schema, name } : null;
}

/** Runs `fn` with `statement_timeout = 0` and the long `lock_timeout`, then puts the session's settings back. */
async function withLongWaits<T>(client: pg.ClientBase, options: ConcurrentIndexOptions, fn: () => Promise<T>): Promise<T> {
  const { rows: [settings] } = await client.query<{ lt: string; st: string }>(
    `select current_setting('lock_timeout') as lt, current_setting('statement_timeout') as st`);
  await client.query(`select set_config('statement_timeout', '0', false), set_config('lock_timeout', $1, false)`,
    [`${options.lockTimeoutMs ?? 15 * 60_000}ms`]);
  try {
    return await fn();
  } finally {
    await client.query(`select set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)`,
      [settings!.st, settings!.lt]);
  }
}

/**
 * Drops an INVALID index left by a failed build; refuses when another backend is building it right now
 * (an index under construction is INVALID too). True when it dropped one.
 */
async function dropInvalidLeftover(
  db: Database, client: pg.ClientBase, pid: number, ref: QualifiedName, options: ConcurrentIndexOptions,
): Promise<boolean> {
  const label = `${ref.schema}.${ref.name}`;
  const { rows: [building] } = await client.query<{ pid: number }>(
    `select p.pid from pg_stat_progress_create_index p where p.index_relid = to_regclass($1) and p.pid <> pg_backend_pid()`,
    [quoteQualified(ref)]);
  if (building) {
    throw new MigrationError('index_being_built', `index ${label} is INVALID because backend pid ${building.pid} is building it now; wait for that build, then run migrate again`,
      { index: label, pid: building.pid });
  }
  await cancellableQuery(db, client, pid, dropIndexSql(ref), [], options.signal);
  options.onEvent?.({ type: 'invalid_index_dropped', index: label });
  return true;
}

/** Runs a build statement with progress events read on a second connection. */
async function monitoredQuery(db: Database, client: pg.ClientBase, pid: number, label: string, sql: string, options: ConcurrentIndexOptions): Promise<void> {
  options.onEvent?.({ type: 'index_build_start', index: label, sql });
  const stopMonitor = monitorBuild(db, pid, label, options);
  try {
    await cancellableQuery(db, client, pid, sql, [], options.signal);
  } finally {
    await stopMonitor();
  }
}

async function assertValid(client: pg.ClientBase, ref: QualifiedName): Promise<void> {
  const built = await findIndex(client, ref);
  if (!built?.valid) {
    const label = `${ref.schema}.${ref.name}`;
    throw new MigrationError('index_invalid', `index ${label} was built but is not valid; re-run to rebuild it`, { index: label });
  }
}

async function indexBytes(client: pg.ClientBase, ref: QualifiedName): Promise<number> {
  const { rows } = await client.query<{ b: string }>(
    `select pg_relation_size(c.oid)::text as b from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2`, [ref.schema, ref.name]);
  return Number(rows[0]?.b ?? 0);
}

/** Polls the build's progress on its own connection until stopped; monitoring failures never fail the build. */
function monitorBuild(db: Database, pid: number, index: string, options: ConcurrentIndexOptions): () => Promise<void> {
  if (!options.onEvent) return async () => {};
  let stopped = false;
  const loop = (async () => {
    const lease = await db.acquire().catch(() => undefined);
    if (!lease) return;
    try {
      await applySessionSettings(lease.client, { purpose: 'index-progress', lockTimeoutMs: 1000, statementTimeoutMs: 5000 });
      while (!stopped) {
        const [progress] = await readIndexBuilds(lease.client, { pid }).catch(() => []);
        if (progress && !stopped) options.onEvent?.({ type: 'index_progress', index, progress });
        await new Promise((r) => setTimeout(r, options.progressIntervalMs ?? 500));
      }
    } finally {
      await lease.release();
    }
  })();
  return async () => { stopped = true; await loop; };
}
