import { unlessUnlockFailed } from '../db/advisory.js';
import type pg from 'pg';
import { LockNotAcquiredError } from '../db/errors.js';
import { quoteIdent, type QualifiedName } from '../db/quote.js';
import { builtinRegistry, type ModelDefinition, type ModelRegistry } from '../lookup/registry.js';
import { hasColumn } from '../db/catalog.js';
import { assertDataShapes, assertPublishable } from '../lookup/guards.js';
import { applyHost, type Host } from '../lookup/host.js';
import { resolveHost } from '../lookup/hosts/index.js';
import { sourceIdType } from '../lookup/source.js';
import { clearStaging, markStaging } from '../lookup/staging.js';
import {
  LOOKUP_WRITE_COLUMNS, castableIdType, prepareLookupSession, releaseBuildLock, selectLookupRows, tryBuildLock, type SourceCursor, type SqlQuery,
} from '../lookup/sql.js';
import { detectLayout, typePartitions, type Layout } from '../schema/partitioned.js';
import { LOOKUP_TABLE, STAGED_TICK } from '../schema/sync-lookup.js';
import { dryRunReport, type DryRunReport, type PlannedStatement } from './dry-run.js';
import { runJob, type JobHandle, type JobSpec, type OperationOptions, type OperationResult, type TypeStrategy } from './job.js';
import { modelsWithSources } from './models.js';
import { normalizeTypes, requireRecordTypeIndex } from './record-types.js';
import { shadowResync } from './shadow.js';
import { declareHeldCursor, openWorkSession, pause, throwIfAborted, type MaintenanceTarget, type WorkSession } from './session.js';

/*
 * Rebuild re-materialises one model's lookup rows from its source table, in place:
 *
 *   upsert phase: walk the source in (updated_at_sync_tick, id) keyset batches (the source's tick index;
 *     the lookup engine's own `selectLookupRows` builds each row). Each batch joins its rows to the existing
 *     lookup rows through the unique (record_id, record_type) index and writes only rows that are new or
 *     differ (with `repull`: every row). Unchanged rows are not written at all: no dead tuples, no index
 *     churn, and facilities re-pull nothing they already hold. Written rows get a fresh tick: each batch
 *     takes the build lock, advances the sync clock (the build's own "tock", so every source write with a
 *     lower tick is committed), upserts at that tick and commits, so a pull sees each row old or new, never
 *     missing (rows are updated, not deleted and re-inserted, and keep their ids, so an id-cursor pull in
 *     progress never skips one), and no published end tick can overtake them. Builds wait at most one batch.
 *   stale phase: lookup rows of the type whose source row is gone, collected once by an anti-join over the
 *     record_type index and the source's primary key, deleted in batches (re-checked in each batch).
 *
 * Inside a caller's transaction (a migration tool that wraps migrations in one) no tick can be published
 * safely before the caller commits, so changed rows are staged at tick -2 instead and the next build
 * publishes them (the build's own protocol); they are invisible to pulls from the caller's commit until
 * that build, seconds later.
 */

/** Options of `rebuildRecordTypes`. */
export interface RebuildOptions extends OperationOptions {
  /** Give every row a fresh tick, so every facility pulls every record of these types again. Default false. */
  repull?: boolean;
  /** The model registry (default: the built-in one). */
  registry?: ModelRegistry;
  /** How long a batch waits for a running build to release the build lock before giving up. Default 120 000 ms. */
  buildLockWaitMs?: number;
  /** The deployment's conventions; default: the host recorded in the database, else detected (see resolveHost). */
  host?: Host;
  /** Rewrite `data` even where its key set differs from the existing rows' (otherwise ConfigError `data_shape_change`). */
  acceptShapeChange?: boolean;
  /** Remove the types from the host's rebuild queue once rebuilt (a live purge queued them: `purge --then-rebuild`). */
  dequeue?: boolean;
}

/** What a rebuild job works with: the host, the registry with its conventions, whether the lookup has flags. */
interface RebuildContext {
  host: Host;
  registry: ModelRegistry;
  flags: boolean;
}

async function rebuildContext(client: pg.ClientBase, options: RebuildOptions): Promise<RebuildContext> {
  const host = options.host ?? (await resolveHost(client)).host;
  await host.assertReady(client);
  return {
    host, registry: applyHost(options.registry ?? builtinRegistry(), host),
    flags: await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild'),
  };
}

const T = quoteIdent(LOOKUP_TABLE);
const COMPARED = LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type' && c !== 'updated_at_sync_tick');

/**
 * One upsert batch of a rebuild: the source rows after `after` (up to `limit`) as lookup rows at `tick`,
 * written only where new or different (all of them with `repull`). Returns one row
 * `{ read, inserted, updated, last_tick, last_id }`. With `flags` (a lookup with `needs_rebuild`) a flagged row
 * counts as different, and every written row's flag is cleared (a stub with NULL data is healed).
 *
 * @example
 * const q = rebuildBatchQuery(model, { tick: 1234, repull: false, limit: 1000 });
 */
export function rebuildBatchQuery(model: ModelDefinition, options: { tick: number; repull: boolean; limit: number; after?: SourceCursor; flags?: boolean }): SqlQuery {
  const src = selectLookupRows(model, { lookupTick: options.tick, limit: options.limit, ...(options.after ? { after: options.after } : {}) });
  const repull = `$${src.values.length + 1}::boolean`;
  const cols = LOOKUP_WRITE_COLUMNS.join(', ');
  // Rows built by json_build_object are compared as jsonb: the host's builder may order keys differently.
  const json = model.dataBuilder === 'json_build_object' ? 'jsonb' : 'text';
  const differs = `(${COMPARED.map((c) => (c === 'data' ? `l.data::${json}` : `l.${c}`)).join(', ')}) IS DISTINCT FROM ` +
    `(${COMPARED.map((c) => (c === 'data' ? `src.data::${json}` : `src.${c}`)).join(', ')})${options.flags ? ' OR l.needs_rebuild' : ''}` +
    // A row published below its source's tick (tick_behind_source): a facility past that tick never gets the change.
    ` OR l.updated_at_sync_tick < src.source_tick`;
  const clear = options.flags ? ['needs_rebuild = false'] : [];
  const updates = [...LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type').map((c) => `${c} = EXCLUDED.${c}`), ...clear].join(', ');
  const sets = [...LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type').map((c) => `${c} = c.${c}`), ...clear].join(', ');
  // Existing rows are changed by a plain UPDATE joined on the unique key (one heap update and its index
  // entries per row); INSERT … ON CONFLICT DO UPDATE would first attempt a speculative insertion and lock
  // the conflicting row (an extra probe and WAL record per row, ~5 % of a rebuild's time). Only rows with
  // no lookup row go through the INSERT (ON CONFLICT kept for a row that appeared meanwhile).
  const text = `WITH src AS MATERIALIZED (
${src.text}
), changed AS MATERIALIZED (
  SELECT src.*, l.id IS NULL AS is_new FROM src
    LEFT JOIN ${T} AS l ON l.record_id = src.record_id AND l.record_type = src.record_type
   WHERE ${repull} OR l.id IS NULL OR ${differs}
), upd AS (
  UPDATE ${T} AS l SET ${sets}
    FROM changed AS c
   WHERE NOT c.is_new AND l.record_id = c.record_id AND l.record_type = c.record_type
  RETURNING 1
), ins AS (
  INSERT INTO ${T} (${cols})
  SELECT ${cols} FROM changed WHERE is_new
  ON CONFLICT (record_id, record_type) DO UPDATE SET ${updates}
  RETURNING 1
)
SELECT (SELECT count(*) FROM src)::int AS read,
       (SELECT count(*) FROM ins)::int AS inserted,
       (SELECT count(*) FROM upd)::int AS updated,
       last.source_tick::text AS last_tick, last.source_id::text AS last_id
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT source_tick, source_id FROM src ORDER BY source_tick DESC, source_id DESC LIMIT 1) AS last ON true`;
  return { text, values: [...src.values, options.repull] };
}

const MAX_TICK = '9223372036854775807';

/** The source key type record ids are compared as through the primary key (uuid, integer, bigint ids); undefined: as text. */
function typedKey(model: ModelDefinition, idType: string): string | undefined {
  return model.recordId === undefined && ['uuid', 'integer', 'bigint'].includes(idType) ? idType : undefined;
}

/**
 * The stale-row statements for a model (collect once; delete one re-checked batch). `idType` is the type
 * the batch's record ids are compared as (see castableIdType); undefined compares the record id's text.
 */
export function staleRowsSql(model: ModelDefinition, idType: string | undefined): { collect: (cursor: string) => string; deleteBatch: string } {
  const src = quoteIdent(model.name);
  const recordId = `(${model.recordId ?? 's.id'})::text`;
  // A source filter over the source row alone also decides which rows exist (one over join aliases cannot be checked here).
  const filter = model.filter && !model.joins?.length ? ` AND (${model.filter})` : '';
  // The source's primary key answers "does this id still exist" when the lookup's text id is cast to its type.
  const exists = idType
    ? `EXISTS (SELECT 1 FROM ${src} AS s WHERE s.id = x.record_id::${idType}${filter})`
    : `EXISTS (SELECT 1 FROM ${src} AS s WHERE ${recordId} = x.record_id${filter})`;
  return {
    // $3: only rows below this tick (a repull rewrote every row with a source at or above it); NULL: every row.
    collect: (cursor) =>
      `DECLARE ${quoteIdent(cursor)} SCROLL CURSOR WITH HOLD FOR SELECT l.id, l.record_id FROM ${T} AS l ` +
      `WHERE l.record_type = $1::text AND ($2::bigint IS NULL OR l.id > $2) ` +
      `AND l.updated_at_sync_tick < coalesce($3::bigint, ${MAX_TICK}) ` +
      `AND NOT EXISTS (SELECT 1 FROM ${src} AS s WHERE ${recordId} = l.record_id${filter}) ORDER BY l.id`,
    deleteBatch: `DELETE FROM ${T} AS l USING unnest($1::bigint[], $2::text[]) AS x(id, record_id)
 WHERE l.id = x.id AND l.record_type = $3::text AND l.record_id = x.record_id AND NOT ${exists}`,
  };
}

async function withBuildLock<T>(h: JobHandle, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    if (await tryBuildLock(h.session.client)) break;
    if (Date.now() > deadline) {
      throw new LockNotAcquiredError('build_running',
        `a build held the build lock for more than ${waitMs} ms; the rebuild job is resumable: run it again`, { waitMs });
    }
    if (attempt === 1 || attempt % 20 === 0) {
      h.emit({ type: 'lock_retry', attempt, attempts: Math.ceil(waitMs / 100), lock_timeout_ms: 0, sleep_ms: 100 });
    }
    await pause(100, h.signal);
    throwIfAborted(h.signal, 'the rebuild');
  }
  try {
    return await fn();
  } finally {
    await releaseBuildLock(h.session.client).catch(unlessUnlockFailed);
  }
}

async function rebuildStrategies(session: WorkSession, types: string[], layout: Layout, repull = false): Promise<TypeStrategy[]> {
  const parts = layout === 'partitioned' ? await typePartitions(session.client) : [];
  return types.map((type): TypeStrategy => {
    const part = parts.find((p) => p.types.includes(type)) ?? parts.find((p) => p.isDefault);
    // Every row gets rewritten by a repull: with a partition of its own, a fresh one filled sequentially and
    // swapped in writes each row once and leaves no dead tuples (a rebuild without repull writes only changed rows, in place).
    if (repull && part && !part.isDefault && part.types.length === 1 && session.mode === 'batches') {
      return {
        record_type: type, strategy: 'shadow_swap', partition: part.table.name,
        reason: `${type} has its own partition ${part.table.name}: a fresh partition is filled from the source at one fresh tick ` +
          '(under the build lock), indexed, then swapped in by DETACH + ATTACH in one short transaction; facilities see the old rows ' +
          'until the swap and the new ones after it, never a half-built type; no dead tuples, no VACUUM',
      };
    }
    return {
      record_type: type, strategy: 'in_place_upsert', partition: part?.table.name ?? null,
      reason: 'source read in (tick, id) keyset batches; only new or changed rows written, in place, at a fresh tick per batch ' +
        '(rows keep their ids; a pull sees each row old or new, never missing); rows whose source is gone removed in batches' +
        (part ? `; dead tuples confined to partition ${part.table.name}, which alone is vacuumed` : ''),
    };
  });
}

function rebuildSpec(options: RebuildOptions, operation: 'rebuild' | 'resync'): JobSpec {
  const repull = operation === 'resync' || !!options.repull;
  let context: RebuildContext | undefined;
  return {
    operation,
    key: { repull },
    async validate(session, input) {
      const types = normalizeTypes(input);
      context = await rebuildContext(session.client, options);
      const models = await modelsWithSources(session.client, types, context.registry);
      await assertPublishable(session.client, context.host, { tick: (await context.host.currentTick(session.client)) + 1, what: `${operation} ${types.join(', ')}` });
      if (!options.acceptShapeChange) await assertDataShapes(session.client, models);
      return types;
    },
    strategies: (session, types, layout) => rebuildStrategies(session, types, layout, repull),
    async run(h, types, strategies) {
      await prepareLookupSession(h.session.client);
      const ctx = context ??= await rebuildContext(h.session.client, options);
      const models = types.map((t) => ctx.registry.get(t));
      const { rows: est } = await h.session.client.query<{ n: string }>(
        `select coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint::text as n from unnest($1::text[]) t(name) join pg_class c on c.oid = to_regclass(format('%I', t.name))`,
        [types]);
      if (h.rowsTotal === null) await h.setTotal(Number(est[0]?.n ?? 0));
      for (const model of models) {
        if (strategies.find((s) => s.record_type === model.name)?.strategy === 'shadow_swap' && ctx.host.jobPublish === 'tick') {
          await h.phase(`swap:${model.name}`, () => swapPhase(h, ctx, model, options.buildLockWaitMs ?? 120_000));
          continue;
        }
        await h.phase(`upsert:${model.name}`, () => upsertPhase(h, ctx, model, repull, options.buildLockWaitMs ?? 120_000));
        await h.phase(`stale:${model.name}`, () => stalePhase(h, model, repull));
      }
      if (options.dequeue) await h.session.unit(h.tuning.lockTimeoutMs, () => ctx.host.dequeueModels(h.session.client, types));
    },
    async changedRelations(h, allTypes, strategies) {
      const lookup: QualifiedName = { schema: 'public', name: LOOKUP_TABLE };
      if (h.layout === 'plain') return { analyze: [lookup], vacuum: [lookup] };
      const parts = await typePartitions(h.session.client);
      // A swapped-in partition was analyzed before the swap and has no dead tuples.
      const types = allTypes.filter((t) => strategies.find((s) => s.record_type === t)?.strategy !== 'shadow_swap');
      const rels = [...new Map(types.map((t) => parts.find((p) => p.types.includes(t)) ?? parts.find((p) => p.isDefault))
        .filter((p) => !!p).map((p) => [p!.table.name, p!.table])).values()];
      return { analyze: rels, vacuum: rels };
    },
  };
}

async function upsertPhase(h: JobHandle, ctx: RebuildContext, model: ModelDefinition, repull: boolean, buildLockWaitMs: number): Promise<void> {
  for (;;) {
    const after = h.cursor.after ? (JSON.parse(h.cursor.after) as SourceCursor) : undefined;
    const limit = h.sizer.rows;
    const one = async (tick: number) => h.batch(async () => {
      if (tick === STAGED_TICK) await markStaging(h.session.client, `${h.session.mode === 'caller_transaction' ? 'a migration\'s ' : ''}rebuild of ${model.name}`);
      const q = rebuildBatchQuery(model, { tick, repull, limit, flags: ctx.flags, ...(after ? { after } : {}) });
      const { rows: [r] } = await h.session.query<{ read: number; inserted: number; updated: number; last_tick: string | null; last_id: string | null }>(
        q.text, q.values, h.signal);
      const read = r?.read ?? 0;
      // Nothing staged by this batch: no record of staging may outlive it (it would claim a host builder's rows).
      if (tick === STAGED_TICK && !(r?.inserted ?? 0) && !(r?.updated ?? 0)) await clearStaging(h.session.client);
      return {
        rows: read, read,
        after: r?.last_tick != null && r.last_id != null ? JSON.stringify({ tick: r.last_tick, id: r.last_id }) : h.cursor.after,
        counts: { inserted: r?.inserted ?? 0, updated: r?.updated ?? 0 },
      };
    });
    const r = h.session.mode === 'caller_transaction'
      ? await one(STAGED_TICK)
      : await withBuildLock(h, buildLockWaitMs, async () => {
        const foreign = await ctx.host.foreignBuilder(h.session.client, [model.name]);
        if (foreign) throw new LockNotAcquiredError('host_builder_running', `paused: the host's own builder is at work (${foreign}); the job is resumable: run it again`);
        const tick = await ctx.host.tock(h.session.client);
        await assertPublishable(h.session.client, ctx.host, { tick, what: `rebuild ${model.name}` });
        // Saved with the batch: the stale phase of a repull looks only below the phase's first tick.
        const key = firstTickKey(model);
        if (typeof h.cursor.state[key] !== 'number') h.cursor.state[key] = tick;
        if (ctx.host.jobPublish === 'tick') return one(tick);
        const staged = await one(STAGED_TICK);
        await publishStaged(h, ctx.host, model.name, tick);
        return staged;
      });
    if (r.read < limit) return;
  }
}

/** A shadow swap (see shadow.ts) under the build lock, counted as one batch of the job. */
async function swapPhase(h: JobHandle, ctx: RebuildContext, model: ModelDefinition, buildLockWaitMs: number): Promise<void> {
  const part = (await typePartitions(h.session.client)).find((p) => !p.isDefault && p.types.length === 1 && p.types[0] === model.name);
  if (!part) throw new LockNotAcquiredError('partition_changed', `${model.name} no longer has a partition of its own; run the resync again`);
  const written = await withBuildLock(h, buildLockWaitMs, () => shadowResync(h, ctx.host, model, part));
  await h.batch(async () => ({ rows: written, after: null, counts: { inserted: written } }));
}

/**
 * The publish transaction of a `staged` host's job batch: this type's staged rows (the batch's, and any an
 * interrupted run left) move to the host's publish tick, recorded with a ticks row.
 */
async function publishStaged(h: JobHandle, host: Host, type: string, coveredBefore: number): Promise<void> {
  const { rows: [staged] } = await h.session.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${T} WHERE updated_at_sync_tick = $1::bigint AND record_type = $2::text) AS any`, [STAGED_TICK, type]);
  if (!staged?.any) return; // the batch changed nothing: no tick to publish
  await h.session.unit(h.tuning.lockTimeoutMs, async () => {
    const endTick = await host.publishTick(h.session.client, coveredBefore);
    await assertPublishable(h.session.client, host, { tick: endTick, what: `publish ${type}` });
    await h.session.query(`UPDATE ${T} SET updated_at_sync_tick = $1::bigint WHERE updated_at_sync_tick = $2::bigint AND record_type = $3::text`,
      [endTick, STAGED_TICK, type]);
    await host.recordPublish(h.session.client, endTick);
    await clearStaging(h.session.client);
  });
}

function firstTickKey(model: ModelDefinition): string {
  return `firstTick:${model.name}`;
}

async function stalePhase(h: JobHandle, model: ModelDefinition, repull: boolean): Promise<void> {
  const idType = await sourceIdType(h.session.client, model.name);
  const typed = typedKey(model, idType);
  const sql = staleRowsSql(model, typed);
  const valid = (id: string) => !typed || castableIdType(typed, [id]) !== undefined;
  const cursor = `sync_lookup_stale_${h.jobId}`;
  // After a repull every lookup row whose source row exists was rewritten at a tick at or above the phase's
  // first tick T (the keyset read every source row, including rows written meanwhile: they land at ticks
  // ahead of it), so a row without a source can only be below T: the anti-join reads those rows only, not
  // every row of the type twice (its new and its dead version). A source row hard-deleted after its row was
  // rewritten leaves a tombstone that the next build applies, as for any delete.
  const first = h.cursor.state[firstTickKey(model)];
  const below = repull && typeof first === 'number' ? String(first) : null;
  await declareHeldCursor(h.session, sql.collect(cursor), [model.name, h.cursor.after, below], h.signal);
  try {
    for (;;) {
      const { rows } = await h.session.query<{ id: string; record_id: string }>(`FETCH FORWARD ${h.sizer.rows} FROM ${quoteIdent(cursor)}`);
      if (!rows.length) return;
      // An id that cannot even be cast to the source's id type has no source row: delete it without the cast.
      const castable = rows.filter((r) => valid(r.record_id));
      const hopeless = rows.filter((r) => !valid(r.record_id));
      await h.batch(async () => {
        let deleted = 0;
        if (castable.length) {
          deleted += (await h.session.query(sql.deleteBatch, [castable.map((r) => r.id), castable.map((r) => r.record_id), model.name], h.signal)).rowCount ?? 0;
        }
        if (hopeless.length) {
          deleted += (await h.session.query(`DELETE FROM ${T} WHERE id = ANY($1::bigint[]) AND record_type = $2::text`,
            [hopeless.map((r) => r.id), model.name], h.signal)).rowCount ?? 0;
        }
        return { rows: deleted, after: rows[rows.length - 1]!.id, counts: { deleted } };
      });
    }
  } finally {
    await h.session.client.query(`CLOSE ${quoteIdent(cursor)}`).catch(() => {});
  }
}

/**
 * Re-materialises the lookup rows of these record types from their source tables, in place (see the
 * module comment): new and changed rows are written at a fresh tick, unchanged rows are left alone
 * (with `repull`, every row gets a fresh tick so every facility pulls it again), rows whose source is gone
 * are removed. Resumable, cancellable, builds wait at most one batch, pulls never miss a row.
 *
 * @example
 * const r = await rebuildRecordTypes(pool, { types: ['prescriptions', 'encounter_prescriptions'] });
 * console.log(r.rows_inserted, r.rows_updated, r.rows_deleted);
 */
export async function rebuildRecordTypes(target: MaintenanceTarget, options: RebuildOptions): Promise<OperationResult> {
  return runJob(target, rebuildSpec(options, 'rebuild'), options);
}

/**
 * The intent of the seed's `fullyResync…` migrations: every facility re-pulls every record of these
 * types, and the lookup matches the sources. Done on the lookup alone (a rebuild with repull): source
 * rows are not rewritten, because pulls read only `sync_lookup` and a fresh lookup tick is exactly what
 * makes a facility pull a row again (docs/maintenance.md explains when this is not enough).
 *
 * @example
 * await resyncRecordTypes(db, { types: ['patient_program_registrations', 'patient_program_registration_conditions'] });
 */
export async function resyncRecordTypes(target: MaintenanceTarget, options: Omit<RebuildOptions, 'repull'>): Promise<OperationResult> {
  return runJob(target, rebuildSpec({ ...options, repull: true }, 'resync'), options);
}

/**
 * What `rebuild` (or `resync`) would do: strategy per type, estimated rows and time, the SQL and the plans.
 *
 * @example
 * const plan = await planRebuild(db, { types: ['prescriptions'], repull: true });
 */
export async function planRebuild(target: MaintenanceTarget, options: RebuildOptions, operation: 'rebuild' | 'resync' = 'rebuild'): Promise<DryRunReport> {
  const repull = operation === 'resync' || !!options.repull;
  const session = await openWorkSession(target, `${operation}-dry-run`);
  try {
    await requireRecordTypeIndex(session.client);
    await prepareLookupSession(session.client);
    const { registry, flags } = await rebuildContext(session.client, options);
    const layout = (await detectLayout(session.client)) as Layout;
    const types = normalizeTypes(options.types ?? []);
    const models = await modelsWithSources(session.client, types, registry);
    const strategies = await rebuildStrategies(session, types, layout, repull);
    const statements: PlannedStatement[] = [];
    for (const model of models) {
      const q = rebuildBatchQuery(model, { tick: 0, repull, limit: 1000, flags });
      statements.push({ purpose: `${model.name}: one upsert batch (1 000 source rows, keyset on the source's tick index)`, sql: q.text, params: q.values, explain: true });
      const idType = await sourceIdType(session.client, model.name);
      const stale = staleRowsSql(model, typedKey(model, idType));
      statements.push({ purpose: `${model.name}: collect rows whose source is gone (once)`, sql: stale.collect('c').replace(/^DECLARE .* FOR /, ''), params: [model.name, null, null], explain: true });
    }
    const estimateSql = models.map((m) => `SELECT 1 FROM ${quoteIdent(m.name)}`).join(' UNION ALL ');
    return await dryRunReport(session, {
      operation, types, layout, strategies, statements, rowsPerSecond: 20_000, estimateSql, estimateParams: [],
    });
  } finally {
    await session.close();
  }
}
