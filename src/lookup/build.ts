import { unlessUnlockFailed } from '../db/advisory.js';
import type pg from 'pg';
import { withTransaction, type Database } from '../db/connection.js';
import { withSession, type Session } from '../db/session.js';
import { CancelledError, LockNotAcquiredError, toSyncLookupError } from '../db/errors.js';
import { LOOKUP_TABLE, STAGED_TICK } from '../schema/sync-lookup.js';
import type { ModelDefinition, ModelRegistry } from './registry.js';
import { hasColumn } from '../db/catalog.js';
import { assertDataShapes, assertPublishable } from './guards.js';
import { applyHost, type Host } from './host.js';
import { resolveHost } from './hosts/index.js';
import { assertSourceTables, sourceIdType } from './source.js';
import { clearStaging, markStaging } from './staging.js';
import {
  castableIdType, flaggedRecordIds, healFlaggedRows, insertLookupRows, insertLookupRowsInTickOrder, prepareLookupSession, publishStagedRows,
  releaseBuildLock, upsertLookupRows, waitBuildLock, type SourceCursor, type SqlQuery,
} from './sql.js';

/*
 * The incremental build (SYSTEM.md §1), on any host (the host seam supplies the clock, `since`, the ledger,
 * delete signals and the rebuild queue; see host.ts):
 *
 *   1. take the build advisory lock (one sync-lookup build at a time) and refuse while the host's own builder
 *      is at work (it would interleave its staged rows and end ticks with ours);
 *   2. since := the host's last covered tick (null before the first build);
 *   3. tock the host's clock (short autocommit statements) → E: every source row with tick < E is committed
 *      and visible from now on; refuse (nothing written) when E is not above the last published end tick;
 *   4. build transaction: apply hard deletes (tombstones); per model, upsert every source row with
 *      since < tick < E (every row for a model queued for a whole rebuild), in (tick, id) keyset chunks, at
 *      tick -2 (staged); then the flag pass: flagged rows (`needs_rebuild`) re-derived in place, keeping their
 *      tick, or deleted when their source is gone; dequeue the rebuilt models;
 *   5. publish transaction: the host's publish tick P (> every end tick before, checked), every -2 row moved
 *      to P, the build recorded in the host's ledger.
 *
 * A pull never sees a -2 row (`tick > since >= -1`) and never misses one: the rows and the ticks row that
 * advertises P become visible in the same commit, and a later build publishes at a larger tick.
 * Crash anywhere: before 4 commits nothing changed; between 4 and 5 staged rows remain but no ticks row,
 * so the next build starts from the same `since`, re-stages those rows and its publish (`WHERE tick = -2`)
 * moves the leftovers too.
 *
 * The first build on an EMPTY lookup takes a shortcut: one transaction inserts every model's rows at P
 * directly and records the build. Nothing can be seen half-done (one commit), and it spares the initial load
 * a second full rewrite of every row (the publish UPDATE would write each row and all its index entries again).
 */

/** Progress of a build. */
export type BuildEvent =
  | { type: 'build_start'; sinceTick: number; endTick: number; initial: boolean; host: string }
  | { type: 'model_start'; model: string }
  | { type: 'model_chunk'; model: string; rows: number; totalRows: number }
  | { type: 'model_done'; model: string; rows: number; durationMs: number | null }
  | { type: 'tombstones'; deleted: number }
  | { type: 'flags'; model: string; healed: number; deleted: number }
  | { type: 'publish'; rows: number; endTick: number };

/** Options of `buildLookup`. */
export interface BuildOptions {
  registry: ModelRegistry;
  /** The deployment's conventions; default: the host recorded in the database, else detected (see resolveHost). */
  host?: Host;
  /** Source rows per upsert statement. Default 20 000. */
  chunkRows?: number;
  /** `lock_timeout` for the clock tock, which waits for in-flight source writers. Default 30 000 ms. */
  tockLockTimeoutMs?: number;
  /**
   * How long to wait for the build lock while another build or a rebuild/resync batch holds it. A rebuild
   * holds it one batch at a time, so a build waits about one batch. Default 30 000 ms.
   */
  buildLockWaitMs?: number;
  /** Write `data` even where its key set differs from the existing rows' (otherwise ConfigError `data_shape_change`). */
  acceptShapeChange?: boolean;
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
  /** This model's own time; null when one statement wrote every model's rows (`history`): there is none. */
  durationMs: number | null;
}

/** What `buildLookup` did (the `--json` shape of `sync-lookup build`). */
export interface BuildResult {
  /** The host whose protocol the build followed. */
  host: string;
  /** Source ticks covered: `(sinceTick, coveredBefore)`; -1 for the initial build. */
  sinceTick: number;
  /** The build covered source ticks below this (the clock's tock). */
  coveredBefore: number;
  /** The tick the rows were published at (`sync_lookup_ticks.lookup_end_tick`). */
  endTick: number;
  /** True for the first build. */
  initial: boolean;
  /** The initial build on an empty lookup, written directly at the end tick in one transaction. */
  direct: boolean;
  rows: number;
  /** Lookup rows removed because their source rows were hard-deleted (tombstones). */
  deleted: number;
  /** Flagged rows (`needs_rebuild`) re-derived in place, and flagged rows deleted because their source is gone. */
  flagsHealed: number;
  flagsDeleted: number;
  /** Models re-derived whole because they were queued for a rebuild. */
  rebuiltModels: string[];
  /** Rows moved from -2 to the end tick (includes leftovers of an interrupted build). */
  published: number;
  durationMs: number;
  models: ModelBuildResult[];
}

async function run<R extends pg.QueryResultRow>(session: Session, q: SqlQuery, signal?: AbortSignal): Promise<pg.QueryResult<R>> {
  return session.query<R>(q.text, q.values, signal);
}

/** What one build works with, gathered before it writes anything. */
interface BuildPlan {
  session: Session;
  client: pg.ClientBase;
  host: Host;
  models: ModelDefinition[];
  since: number | null;
  coveredBefore: number;
  queued: string[];
  flags: boolean;
  options: BuildOptions;
  emit: (event: BuildEvent) => void;
}

/**
 * Runs one incremental build (see the comment at the top of this module) and reports rows per model.
 * Throws LockNotAcquiredError when another build runs (ours or the host's own), ConfigError (exit 2,
 * nothing written) when the clock is behind the published ticks or `data` would change shape.
 *
 * @example
 * const r = await buildLookup(db, { registry: builtinRegistry() });
 * console.log(r.endTick, r.models);
 */
export async function buildLookup(db: Database, options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const emit = options.onEvent ?? (() => {});
  return withSession(db, { purpose: 'build', lockTimeoutMs: options.tockLockTimeoutMs ?? 30_000 }, async (session) => {
    const { client } = session;
    await prepareLookupSession(client);
    const host = options.host ?? (await resolveHost(client)).host;
    await host.assertReady(client);
    const models = applyHost(options.registry, host).models;
    await assertSourceTables(client, models);
    const waitMs = options.buildLockWaitMs ?? 30_000;
    if (!(await waitBuildLock(client, waitMs))) {
      throw new LockNotAcquiredError('build_running',
        `another sync-lookup build held the build advisory lock for more than ${waitMs} ms; try again when it ends`, { waitMs });
    }
    try {
      await waitForHostBuilder(client, host, waitMs, options.signal);
      const since = await host.since(client);
      // Read-only checks before the clock moves: the next tick must lie above every published end tick.
      await assertPublishable(client, host, { tick: (await host.currentTick(client)) + 1, what: 'build' });
      const empty = since === null && !(await client.query(`SELECT 1 FROM ${LOOKUP_TABLE} LIMIT 1`)).rowCount;
      if (!empty && !options.acceptShapeChange) await assertDataShapes(client, models);
      const queued = (await host.queuedModels(client)).filter((m) => options.registry.has(m));
      const coveredBefore = await host.tock(client).catch((err: unknown) => { throw toSyncLookupError(err, { step: 'tock' }); });
      await assertPublishable(client, host, { tick: coveredBefore, what: 'build' });
      emit({ type: 'build_start', sinceTick: since ?? -1, endTick: coveredBefore, initial: since === null, host: host.name });
      const plan: BuildPlan = {
        session, client, host, models, since, coveredBefore, queued,
        flags: await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild'), options, emit,
      };
      const done = empty ? await initialBuild(plan) : await incrementalBuild(plan);
      emit({ type: 'publish', rows: done.published, endTick: done.endTick });
      return { sinceTick: since ?? -1, coveredBefore, ...done, initial: since === null, direct: empty, host: host.name, durationMs: Date.now() - started };
    } finally {
      await releaseBuildLock(client).catch(unlessUnlockFailed);
    }
  });
}

/**
 * Waits (up to `waitMs`, polling) while the host's own builder is at work, then refuses naming what it saw: our
 * staged rows would interleave with its own, and its end tick with ours.
 */
async function waitForHostBuilder(client: pg.ClientBase, host: Host, waitMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const foreign = await host.foreignBuilder(client);
    if (!foreign) return;
    if (Date.now() > deadline) {
      throw new LockNotAcquiredError('host_builder_running', `not building while the host's own builder works: ${foreign}; waited ${waitMs} ms`, { waitMs });
    }
    checkAborted(signal);
    await new Promise((r) => setTimeout(r, 250));
  }
}

type BuildOutcome = Omit<BuildResult, 'host' | 'sinceTick' | 'coveredBefore' | 'initial' | 'direct' | 'durationMs'>;

/** The first build on an empty lookup: every model inserted at the publish tick in one transaction. */
async function initialBuild(b: BuildPlan): Promise<BuildOutcome> {
  const { session, client, models, options, emit } = b;
  const results: ModelBuildResult[] = [];
  let endTick = 0;
  await withTransaction(client, async () => {
    endTick = await b.host.publishTick(client, b.coveredBefore);
    await assertPublishable(client, b.host, { tick: endTick });
    const restore = options.bulkLoad ? await dropSecondaryIndexes(client) : [];
    if (options.history) {
      // The sort of every row happens in memory where it fits (a wide-row sort spilling to disk is slower).
      await client.query(`SELECT set_config('work_mem', '2GB', true)`);
      const r = await run<{ record_type: string; rows: number }>(session, insertLookupRowsInTickOrder(models, { beforeTick: b.coveredBefore }), options.signal);
      const counts = new Map(r.rows.map((x) => [x.record_type, x.rows]));
      const durationMs = null; // one statement wrote every model: no model has a time of its own
      for (const model of models) {
        const rows = counts.get(model.name) ?? 0;
        results.push({ model: model.name, rows, durationMs });
        emit({ type: 'model_done', model: model.name, rows, durationMs });
      }
    } else {
      for (const model of models) {
        checkAborted(options.signal);
        emit({ type: 'model_start', model: model.name });
        const t0 = Date.now();
        const r = await run(session, insertLookupRows(model, { lookupTick: endTick, beforeTick: b.coveredBefore }), options.signal);
        results.push({ model: model.name, rows: r.rowCount ?? 0, durationMs: Date.now() - t0 });
        emit({ type: 'model_done', model: model.name, rows: r.rowCount ?? 0, durationMs: Date.now() - t0 });
      }
    }
    for (const sql of restore) {
      checkAborted(options.signal);
      await run(session, { text: sql, values: [] }, options.signal);
    }
    await b.host.applyDeletes(client, { types: models.map((m) => m.name), since: -1, before: b.coveredBefore });
    await b.host.dequeueModels(client, b.queued);
    await b.host.recordBuild(client, { since: null, coveredBefore: b.coveredBefore, endTick });
  });
  const rows = results.reduce((n, r) => n + r.rows, 0);
  return { endTick, rows, deleted: 0, flagsHealed: 0, flagsDeleted: 0, rebuiltModels: b.queued, published: rows, models: results };
}

/** Stage (build transaction), then publish (publish transaction). */
async function incrementalBuild(b: BuildPlan): Promise<BuildOutcome> {
  const { client, models } = b;
  const since = b.since ?? -1;
  const results: ModelBuildResult[] = [];
  let deleted = 0;
  let flagsHealed = 0;
  let flagsDeleted = 0;
  await withTransaction(client, async () => {
    deleted = await b.host.applyDeletes(client, { types: models.map((m) => m.name), since, before: b.coveredBefore });
    b.emit({ type: 'tombstones', deleted });
    for (const model of models) {
      const whole = b.queued.includes(model.name);
      results.push(await stageModel(b, model, { sinceTick: whole ? -1 : since }));
    }
    if (b.flags) {
      for (const model of models) {
        const r = await healFlags(b, model);
        flagsHealed += r.healed;
        flagsDeleted += r.deleted;
      }
    }
    await b.host.dequeueModels(client, b.queued);
    await markStaging(client, 'build');
  });
  // The publish is short and must not be left undone by a Ctrl-C that arrives now: no signal here.
  let endTick = 0;
  let published = 0;
  await withTransaction(client, async () => {
    endTick = await b.host.publishTick(client, b.coveredBefore);
    await assertPublishable(client, b.host, { tick: endTick, sourceStartTick: b.since });
    published = (await run(b.session, publishStagedRows(endTick))).rowCount ?? 0;
    await b.host.recordBuild(client, { since: b.since, coveredBefore: b.coveredBefore, endTick });
    await clearStaging(client);
  });
  return {
    endTick, rows: results.reduce((n, r) => n + r.rows, 0), deleted, flagsHealed, flagsDeleted, rebuiltModels: b.queued, published, models: results,
  };
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('cancelled: the build was interrupted; nothing was published');
}

async function stageModel(b: BuildPlan, model: ModelDefinition, o: { sinceTick: number }): Promise<ModelBuildResult> {
  const t0 = Date.now();
  const chunkRows = b.options.chunkRows ?? 20_000;
  b.emit({ type: 'model_start', model: model.name });
  let total = 0;
  let after: SourceCursor | undefined;
  for (;;) {
    checkAborted(b.options.signal);
    const q = upsertLookupRows(model, {
      lookupTick: STAGED_TICK, sinceTick: o.sinceTick, beforeTick: b.coveredBefore, limit: chunkRows, clearFlags: b.flags, ...(after ? { after } : {}),
    });
    const { rows: [r] } = await run<{ rows: number; last_tick: string | null; last_id: string | null }>(b.session, q, b.options.signal);
    const n = r?.rows ?? 0;
    total += n;
    if (n > 0) b.emit({ type: 'model_chunk', model: model.name, rows: n, totalRows: total });
    if (!r || r.last_tick === null || r.last_id === null || n < chunkRows) break;
    after = { tick: r.last_tick, id: r.last_id };
  }
  const durationMs = Date.now() - t0;
  b.emit({ type: 'model_done', model: model.name, rows: total, durationMs });
  return { model: model.name, rows: total, durationMs };
}

/** The flag pass for one model: flagged rows re-derived in place (tick kept) or deleted, in chunks. */
async function healFlags(b: BuildPlan, model: ModelDefinition): Promise<{ healed: number; deleted: number }> {
  const total = { healed: 0, deleted: 0 };
  const idType = await sourceIdType(b.client, model.name);
  for (;;) {
    checkAborted(b.options.signal);
    const { rows } = await run<{ record_id: string }>(b.session, flaggedRecordIds(model.name, 5000), b.options.signal);
    if (!rows.length) break;
    const ids = rows.map((r) => r.record_id);
    const cast = castableIdType(idType, ids);
    const q = healFlaggedRows(model, { ids, ...(cast && model.recordId === undefined ? { idType: cast } : {}) });
    const { rows: [r] } = await run<{ healed: number; deleted: number }>(b.session, q, b.options.signal);
    total.healed += r?.healed ?? 0;
    total.deleted += r?.deleted ?? 0;
    if ((r?.healed ?? 0) + (r?.deleted ?? 0) === 0) break; // nothing changed: never loop on the same rows
  }
  if (total.healed || total.deleted) b.emit({ type: 'flags', model: model.name, ...total });
  return total;
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
      if (!(err instanceof LockNotAcquiredError) || (err.code !== 'build_running' && err.code !== 'host_builder_running')) throw err;
      options.onSkip?.(err);
    }
    await new Promise<void>((resolve) => {
      // The abort listener goes when the pause ends either way: one left per round would pile up for days.
      const done = () => { clearTimeout(timer); options.signal?.removeEventListener('abort', done); resolve(); };
      const timer = setTimeout(done, options.intervalMs);
      options.signal?.addEventListener('abort', done, { once: true });
    });
  }
  return builds;
}
