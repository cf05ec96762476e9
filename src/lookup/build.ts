import type pg from 'pg';
import { backendPid, cancellableQuery, withClient, withTransaction, type Database } from '../db/connection.js';
import { CancelledError, LockNotAcquiredError, toSyncLookupError } from '../db/errors.js';
import { LOOKUP_TABLE, STAGED_TICK } from '../schema/sync-lookup.js';
import type { ModelDefinition, ModelRegistry } from './registry.js';
import { assertSourceTables, tockClock } from './source.js';
import {
  deleteTombstonedRows, insertLookupRows, insertLookupRowsInTickOrder, lastBuildTick, prepareLookupSession, pruneTombstones, publishStagedRows,
  recordBuildTick, releaseBuildLock, tryBuildLock, upsertLookupRows, type SourceCursor, type SqlQuery,
} from './sql.js';

/*
 * The incremental build (SYSTEM.md §1):
 *
 *   1. take the build advisory lock (one build at a time, so published end ticks only grow);
 *   2. since := last recorded lookup_end_tick - 1 (or -1 before the first build);
 *   3. tock the clock (short autocommit statement) → end tick E; it waits for writers holding the old tick,
 *      so every source row with tick < E is committed and visible from now on;
 *   4. build transaction: delete lookup rows of tombstones in (since, E); per model, upsert every source
 *      row with since < tick < E, in (tick, id) keyset chunks, at tick -2 (staged); prune applied tombstones;
 *   5. publish transaction: move every -2 row to E and insert (since, E) into sync_lookup_ticks.
 *
 * A pull never sees a -2 row (`tick > since >= -1`) and never misses one: the rows and the ticks row that
 * advertises E become visible in the same commit, and a later build publishes at a larger tick.
 * Crash anywhere: before 4 commits nothing changed; between 4 and 5 staged rows remain but no ticks row,
 * so the next build starts from the same `since`, re-stages those rows and its publish (`WHERE tick = -2`)
 * moves the leftovers too. A build covers source ticks in (since, E); the next one starts at E - 1.
 *
 * The first build on an EMPTY lookup takes a shortcut: one transaction inserts every model's rows at E
 * directly and records (-1, E). Nothing can be seen half-done (one commit), and it spares the initial load
 * a second full rewrite of every row (the publish UPDATE would write each row and all its index entries again).
 */

/** Progress of a build. */
export type BuildEvent =
  | { type: 'build_start'; sinceTick: number; endTick: number; initial: boolean }
  | { type: 'model_start'; model: string }
  | { type: 'model_chunk'; model: string; rows: number; totalRows: number }
  | { type: 'model_done'; model: string; rows: number; durationMs: number }
  | { type: 'tombstones'; deleted: number }
  | { type: 'publish'; rows: number; endTick: number };

/** Options of `buildLookup`. */
export interface BuildOptions {
  registry: ModelRegistry;
  /** Source rows per upsert statement. Default 20 000. */
  chunkRows?: number;
  /** `lock_timeout` for the clock tock, which waits for in-flight source writers. Default 30 000 ms. */
  tockLockTimeoutMs?: number;
  /**
   * Initial build only (empty lookup): drop the lookup's secondary indexes for the load and recreate them
   * from their exact definitions afterwards, in the same transaction. Much faster for millions of rows, but
   * holds an ACCESS EXCLUSIVE lock on sync_lookup until it commits: for seeding, not for a live server.
   */
  bulkLoad?: boolean;
  /**
   * Initial build only: write the rows as a table that grew through years of incremental builds holds
   * them: record types interleaved in the heap (in source-tick order) and each row at its source tick,
   * instead of one model after another at the end tick. The generator uses it so that purges and pulls
   * are measured on a realistic table (SYSTEM.md §3); one statement, sorted in memory.
   */
  history?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

/** Rows a build wrote for one model. */
export interface ModelBuildResult {
  model: string;
  rows: number;
  durationMs: number;
}

/** What `buildLookup` did (the `--json` shape of `sync-lookup build`). */
export interface BuildResult {
  /** Source ticks covered: `(sinceTick, endTick)`. */
  sinceTick: number;
  /** The tick the rows were published at (`sync_lookup_ticks.lookup_end_tick`). */
  endTick: number;
  /** True for the first build (it recorded `source_start_tick = -1`). */
  initial: boolean;
  /** The initial build on an empty lookup, written directly at the end tick in one transaction. */
  direct: boolean;
  rows: number;
  /** Lookup rows removed because their source rows were hard-deleted. */
  deleted: number;
  /** Rows moved from -2 to the end tick (includes leftovers of an interrupted build). */
  published: number;
  durationMs: number;
  models: ModelBuildResult[];
}

async function run<R extends pg.QueryResultRow>(db: Database, client: pg.ClientBase, pid: number, q: SqlQuery, signal?: AbortSignal): Promise<pg.QueryResult<R>> {
  return cancellableQuery<R>(db, client, pid, q.text, q.values, signal);
}

/**
 * Runs one incremental build (see the comment at the top of this module) and reports rows per model.
 * Throws LockNotAcquiredError when another build runs.
 *
 * @example
 * const r = await buildLookup(db, { registry: builtinRegistry() });
 * console.log(r.endTick, r.models);
 */
export async function buildLookup(db: Database, options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const emit = options.onEvent ?? (() => {});
  const chunkRows = options.chunkRows ?? 20_000;
  const models = options.registry.models;
  const types = models.map((m) => m.name);
  return withClient(db, { purpose: 'build', lockTimeoutMs: options.tockLockTimeoutMs ?? 30_000 }, async (client) => {
    await prepareLookupSession(client);
    await assertSourceTables(client, models);
    if (!(await tryBuildLock(client))) {
      throw new LockNotAcquiredError('build_running', 'another sync-lookup build is running (it holds the build advisory lock); try again when it ends');
    }
    try {
      const pid = await backendPid(client);
      const last = await client.query<{ end_tick: string }>(lastBuildTick().text);
      const lastEnd = last.rows[0] ? Number(last.rows[0].end_tick) : null;
      const sinceTick = lastEnd === null ? -1 : lastEnd - 1;
      const empty = lastEnd === null && !(await client.query(`SELECT 1 FROM ${LOOKUP_TABLE} LIMIT 1`)).rowCount;
      const endTick = await tockClock(client).catch((err: unknown) => { throw toSyncLookupError(err, { step: 'tock' }); });
      emit({ type: 'build_start', sinceTick, endTick, initial: lastEnd === null });
      const results: ModelBuildResult[] = [];
      let deleted = 0;
      let published = 0;

      if (empty) {
        await withTransaction(client, async () => {
          const restore = options.bulkLoad ? await dropSecondaryIndexes(client) : [];
          if (options.history) {
            const t0 = Date.now();
            // The sort of every row happens in memory where it fits (a wide-row sort spilling to disk is slower).
            await client.query(`SELECT set_config('work_mem', '2GB', true)`);
            const r = await run<{ record_type: string; rows: number }>(db, client, pid, insertLookupRowsInTickOrder(models, { beforeTick: endTick }), options.signal);
            const counts = new Map(r.rows.map((x) => [x.record_type, x.rows]));
            for (const model of models) {
              const rows = counts.get(model.name) ?? 0;
              results.push({ model: model.name, rows, durationMs: Date.now() - t0 });
              emit({ type: 'model_done', model: model.name, rows, durationMs: Date.now() - t0 });
            }
          } else {
            for (const model of models) {
              checkAborted(options.signal);
              emit({ type: 'model_start', model: model.name });
              const t0 = Date.now();
              const r = await run(db, client, pid, insertLookupRows(model, { lookupTick: endTick, beforeTick: endTick }), options.signal);
              results.push({ model: model.name, rows: r.rowCount ?? 0, durationMs: Date.now() - t0 });
              emit({ type: 'model_done', model: model.name, rows: r.rowCount ?? 0, durationMs: Date.now() - t0 });
            }
          }
          for (const sql of restore) {
            checkAborted(options.signal);
            await run(db, client, pid, { text: sql, values: [] }, options.signal);
          }
          await run(db, client, pid, pruneTombstones({ types, beforeTick: endTick }), options.signal);
          await run(db, client, pid, recordBuildTick({ sourceStartTick: -1, lookupEndTick: endTick }), options.signal);
        });
        published = results.reduce((n, r) => n + r.rows, 0);
      } else {
        await withTransaction(client, async () => {
          const del = await run(db, client, pid, deleteTombstonedRows({ types, sinceTick, beforeTick: endTick }), options.signal);
          deleted = del.rowCount ?? 0;
          emit({ type: 'tombstones', deleted });
          for (const model of models) results.push(await stageModel(db, client, pid, model, { sinceTick, endTick, chunkRows, ...(options.signal ? { signal: options.signal } : {}), emit }));
          await run(db, client, pid, pruneTombstones({ types, beforeTick: endTick }), options.signal);
        });
        // The publish is short and must not be left undone by a Ctrl-C that arrives now: no signal here.
        await withTransaction(client, async () => {
          const pub = await run(db, client, pid, publishStagedRows(endTick));
          published = pub.rowCount ?? 0;
          await run(db, client, pid, recordBuildTick({ sourceStartTick: sinceTick, lookupEndTick: endTick }));
        });
      }
      emit({ type: 'publish', rows: published, endTick });
      return {
        sinceTick, endTick, initial: lastEnd === null, direct: empty, rows: results.reduce((n, r) => n + r.rows, 0), deleted, published,
        durationMs: Date.now() - started, models: results,
      };
    } finally {
      await releaseBuildLock(client).catch(() => {});
    }
  });
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('cancelled: the build was interrupted; nothing was published');
}

async function stageModel(
  db: Database, client: pg.ClientBase, pid: number, model: ModelDefinition,
  o: { sinceTick: number; endTick: number; chunkRows: number; signal?: AbortSignal; emit: (e: BuildEvent) => void },
): Promise<ModelBuildResult> {
  const t0 = Date.now();
  o.emit({ type: 'model_start', model: model.name });
  let total = 0;
  let after: SourceCursor | undefined;
  for (;;) {
    checkAborted(o.signal);
    const q = upsertLookupRows(model, {
      lookupTick: STAGED_TICK, sinceTick: o.sinceTick, beforeTick: o.endTick, limit: o.chunkRows, ...(after ? { after } : {}),
    });
    const { rows: [r] } = await run<{ rows: number; last_tick: string | null; last_id: string | null }>(db, client, pid, q, o.signal);
    const n = r?.rows ?? 0;
    total += n;
    if (n > 0) o.emit({ type: 'model_chunk', model: model.name, rows: n, totalRows: total });
    if (!r || r.last_tick === null || r.last_id === null || n < o.chunkRows) break;
    after = { tick: r.last_tick, id: r.last_id };
  }
  const durationMs = Date.now() - t0;
  o.emit({ type: 'model_done', model: model.name, rows: total, durationMs });
  return { model: model.name, rows: total, durationMs };
}

/**
 * Drops sync_lookup's indexes other than the primary key and returns the statements that recreate them
 * exactly (constraints through `pg_get_constraintdef`, plain indexes through `pg_get_indexdef`).
 */
async function dropSecondaryIndexes(client: pg.ClientBase): Promise<string[]> {
  // A partitioned lookup (migrate --layout partitioned) keeps its indexes: pg_get_indexdef prints a
  // partitioned index as `ON ONLY`, which would recreate it without its partitions' indexes.
  const { rows: [kind] } = await client.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE oid = $1::regclass`, [LOOKUP_TABLE]);
  if (kind?.relkind !== 'r') return [];
  const { rows } = await client.query<{ drop: string; create: string }>(
    `SELECT CASE WHEN con.oid IS NOT NULL
                 THEN format('ALTER TABLE %s DROP CONSTRAINT %I', i.indrelid::regclass, con.conname)
                 ELSE format('DROP INDEX %s', i.indexrelid::regclass) END AS drop,
            CASE WHEN con.oid IS NOT NULL
                 THEN format('ALTER TABLE %s ADD CONSTRAINT %I %s', i.indrelid::regclass, con.conname, pg_get_constraintdef(con.oid))
                 ELSE pg_get_indexdef(i.indexrelid) END AS create
       FROM pg_index i
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND i.indisvalid
      ORDER BY i.indexrelid`, [LOOKUP_TABLE]);
  for (const r of rows) await client.query(r.drop);
  // The rebuilt indexes sort 2 M+ keys each: give the sort memory for this transaction only when the
  // server's setting is smaller (PostgreSQL's default is 64 MB).
  await client.query(`SELECT set_config('maintenance_work_mem', '512MB', true)
                       FROM pg_settings WHERE name = 'maintenance_work_mem' AND setting::bigint < 524288`);
  return rows.map((r) => r.create);
}

/** Options of `watchBuild`. */
export interface WatchOptions extends BuildOptions {
  /** Pause between builds. */
  intervalMs: number;
  /** Called after each build. */
  onBuild?: (result: BuildResult) => void;
  /** Called when a round is skipped because another build holds the build lock. */
  onSkip?: (error: LockNotAcquiredError) => void;
}

/**
 * Builds every `intervalMs` until `signal` aborts; resolves with the number of builds run. A round in
 * which another build (or a rebuild) holds the build lock is skipped, not fatal.
 *
 * @example
 * await watchBuild(db, { registry, intervalMs: 5000, signal, onBuild: (r) => log(r) });
 */
export async function watchBuild(db: Database, options: WatchOptions): Promise<number> {
  let builds = 0;
  while (!options.signal?.aborted) {
    try {
      const result = await buildLookup(db, options);
      builds++;
      options.onBuild?.(result);
    } catch (err) {
      if (!(err instanceof LockNotAcquiredError) || err.code !== 'build_running') throw err;
      options.onSkip?.(err);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.intervalMs);
      options.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  return builds;
}
