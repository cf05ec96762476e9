import type pg from 'pg';
import { applySessionSettings, backendPid, cancellableQuery, type Database } from '../db/connection.js';
import { MigrationError } from '../db/errors.js';
import { createIndexSql, dropIndexSql, type IndexSpec } from '../db/index-ddl.js';
import { readIndexBuilds } from '../db/index-progress.js';
import type { QualifiedName } from '../db/quote.js';
import type { MigrationEvent } from './events.js';

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
  const { rows: [settings] } = await client.query<{ lt: string; st: string }>(
    `select current_setting('lock_timeout') as lt, current_setting('statement_timeout') as st`);
  await client.query(`select set_config('statement_timeout', '0', false), set_config('lock_timeout', $1, false)`,
    [`${options.lockTimeoutMs ?? 15 * 60_000}ms`]);
  try {
    if (existing) {
      await cancellableQuery(db, client, pid, dropIndexSql(ref), [], options.signal);
      emit({ type: 'invalid_index_dropped', index: label });
      status = 'rebuilt_invalid';
    }
    const sql = createIndexSql(spec);
    emit({ type: 'index_build_start', index: label, sql });
    const stopMonitor = monitorBuild(db, pid, label, options);
    try {
      await cancellableQuery(db, client, pid, sql, [], options.signal);
    } finally {
      await stopMonitor();
    }
  } finally {
    await client.query(`select set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)`,
      [settings!.st, settings!.lt]);
  }
  const built = await findIndex(client, ref);
  if (!built?.valid) {
    throw new MigrationError('index_invalid', `index ${label} was built but is not valid; re-run to rebuild it`, { index: label });
  }
  const durationMs = Date.now() - started;
  const bytes = await indexBytes(client, ref);
  emit({ type: 'index_build_done', index: label, durationMs, bytes });
  return { index: label, status, durationMs, bytes };
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
