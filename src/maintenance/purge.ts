import { unlessUnlockFailed } from '../db/advisory.js';
import type pg from 'pg';
import { quoteIdent, quoteQualified, type QualifiedName } from '../db/quote.js';
import type { ModelRegistry } from '../lookup/registry.js';
import { detectLayout, typePartitions, type Layout, type TypePartition } from '../schema/partitioned.js';
import { hasColumn } from '../db/catalog.js';
import { ConfigError } from '../db/errors.js';
import type { Host } from '../lookup/host.js';
import { resolveHost } from '../lookup/hosts/index.js';
import { releaseBuildLock, tryBuildLock } from '../lookup/sql.js';
import { LOOKUP_TABLE, presentTypes } from '../schema/sync-lookup.js';
import { dryRunReport, type DryRunReport, type PlannedStatement } from './dry-run.js';
import { batchTuning, type BatchTuning } from './batches.js';
import { runJob, type JobHandle, type JobSpec, type OperationOptions, type OperationResult, type TypeStrategy } from './job.js';
import { knownLookupTypes, liveLookupTypes } from './models.js';
import { normalizeTypes, requireKnown, requireRecordTypeIndex } from './record-types.js';
import { rebuildRecordTypes } from './rebuild.js';
import { declareHeldCursor, openWorkSession, type MaintenanceTarget, type WorkSession } from './session.js';

/** Options of `purgeRecordTypes`. */
export interface PurgeOptions extends OperationOptions {
  /** The model registry whose names count as known types (default: the built-in one). */
  registry?: ModelRegistry;
  /**
   * Purge a type that is still registered (a live type), then rebuild it from its sources, as one resumable
   * unit: the model is queued with the host's rebuild queue first, so even an interruption before the rebuild
   * leaves the next build to restore it. Without it (or `force`) a live type is refused.
   */
  thenRebuild?: boolean;
  /** Purge a live type without rebuilding it (it is still queued with the host's rebuild queue). */
  force?: boolean;
  /** Types with no rows in sync_lookup are skipped instead of refused (re-runnable migrations). */
  ifPresent?: boolean;
  /** The deployment's conventions; default: the host recorded in the database, else detected. */
  host?: Host;
}

const LOOKUP: QualifiedName = { schema: 'public', name: LOOKUP_TABLE };
const T = quoteIdent(LOOKUP_TABLE);

/** The statements purge runs, with `$n` parameters (shown by --dry-run and documented). */
export const PURGE_SQL = {
  /** Materialised once (WITH HOLD): the ids of the types' rows, read through the record_type index. */
  collect: (cursor: string) =>
    `DECLARE ${quoteIdent(cursor)} SCROLL CURSOR WITH HOLD FOR SELECT id FROM ${T} ` +
    'WHERE record_type = ANY($1::text[]) AND ($2::bigint IS NULL OR id > $2) ORDER BY id',
  /** One batch: primary-key lookups of ids collected above (record_type repeated so nothing else is ever hit). */
  deleteBatch: `DELETE FROM ${T} WHERE id = ANY($1::bigint[]) AND record_type = ANY($2::text[])`,
  /**
   * Plain layout: the rows' physical addresses instead of ids, so each batch goes straight to the heap (a TID
   * scan) without descending the primary key per row. A row updated after collection has moved (its old
   * address holds a dead version that the DELETE skips); the sweep below removes it.
   */
  collectTids: (cursor: string) =>
    `DECLARE ${quoteIdent(cursor)} SCROLL CURSOR WITH HOLD FOR SELECT ctid::text AS id FROM ${T} ` +
    'WHERE record_type = ANY($1::text[]) AND ($2::tid IS NULL OR ctid > $2::tid) ORDER BY ctid',
  deleteTids: `DELETE FROM ${T} WHERE ctid = ANY($1::tid[]) AND record_type = ANY($2::text[])`,
  /**
   * The first batch, for types the planner expects to fit in one: up to `$2` rows through the record_type
   * index (a bitmap scan: heap pages in physical order, each read once). No collection pass before it.
   */
  firstBatchTids: `DELETE FROM ${T} WHERE record_type = ANY($1::text[]) ` +
    `AND ctid = ANY(ARRAY(SELECT ctid FROM ${T} WHERE record_type = ANY($1::text[]) LIMIT $2))`,
  firstBatch: `DELETE FROM ${T} WHERE record_type = ANY($1::text[]) ` +
    `AND id = ANY(ARRAY(SELECT id FROM ${T} WHERE record_type = ANY($1::text[]) LIMIT $2))`,
  /**
   * Rows of the types that appeared after the ids were collected (a build still writing the type), within
   * the tick range `[$3, $4]`: when the collection was made under the build lock, only ticks above the clock
   * at that moment (and the staged tick −2) can hold such rows, so the sweep is a range scan of the index
   * that never steps over the entries of the rows just deleted (each of which would cost a heap visit).
   */
  sweep: `DELETE FROM ${T} WHERE record_type = ANY($1::text[]) AND updated_at_sync_tick BETWEEN $3::bigint AND $4::bigint ` +
    `AND id = ANY(ARRAY(SELECT id FROM ${T} WHERE record_type = ANY($1::text[]) AND updated_at_sync_tick BETWEEN $3::bigint AND $4::bigint LIMIT $2))`,
  sweepProbe: `SELECT EXISTS (SELECT 1 FROM ${T} WHERE record_type = ANY($1::text[]) AND updated_at_sync_tick BETWEEN $2::bigint AND $3::bigint) AS found`,
  /** The planner's row estimate for the types (the record_type index's statistics; no rows read). */
  estimate: `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${T} WHERE record_type = ANY($1::text[])`,
  truncate: (partition: QualifiedName) => `TRUNCATE ${quoteQualified(partition)}`,
  /**
   * A partition's rows as the statistics have them (reltuples from its last ANALYZE or VACUUM, else the live-row
   * counter every insert and delete keeps): an estimate read from the catalog, never from the partition.
   */
  partitionRows: `SELECT (CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE greatest(pg_stat_get_live_tuples(c.oid), 0) END)::bigint::text AS n ` +
    'FROM pg_class c WHERE c.oid = $1::regclass',
} as const;

/** The partition that holds exactly this one type, if any. */
function ownPartition(parts: TypePartition[], type: string): TypePartition | undefined {
  return parts.find((p) => !p.isDefault && p.types.length === 1 && p.types[0] === type);
}

async function purgeStrategies(session: WorkSession, types: string[], layout: Layout): Promise<TypeStrategy[]> {
  const parts = layout === 'partitioned' ? await typePartitions(session.client) : [];
  return types.map((type): TypeStrategy => {
    const own = ownPartition(parts, type);
    if (own) {
      return {
        record_type: type, strategy: 'partition_truncate', partition: own.table.name,
        reason: `${type} has its own partition ${own.table.name}: TRUNCATE it (no row-by-row delete, no dead tuples, no VACUUM needed)`,
      };
    }
    const holder = parts.find((p) => p.types.includes(type)) ?? parts.find((p) => p.isDefault);
    return {
      record_type: type, strategy: 'keyset_batches', partition: holder?.table.name ?? null,
      reason: (holder ? `${type} shares partition ${holder.table.name} with other types, so it cannot be truncated: ` : '') +
        'ids collected once through the record_type index, then deleted in short primary-key batches ' +
        '(each batch reads only the rows it deletes, whatever the table size)',
    };
  });
}

/** The purge's guards on its input (normalised, live types need `thenRebuild` or `force`, unknown types refused); also `purge --archive`'s. */
export async function validatePurge(session: WorkSession, input: string[], options: PurgeOptions): Promise<string[]> {
  let types = normalizeTypes(input);
  const registered = new Set(knownLookupTypes(options.registry));
  const liveTypes = new Set(liveLookupTypes(options.registry));
  if (options.ifPresent) {
    const inTable = new Set(await presentTypes(session.client));
    types = types.filter((t) => inTable.has(t));
    if (!types.length) return [];
  }
  const live = types.filter((t) => liveTypes.has(t));
  if (live.length && !options.thenRebuild && !options.force) {
    throw new ConfigError('live_type',
      `${live.map((t) => JSON.stringify(t)).join(', ')} ${live.length > 1 ? 'are' : 'is a'} registered model${live.length > 1 ? 's' : ''} (live): ` +
      'a build only reads source rows changed since the last one, so purged rows of a live type would never come back. ' +
      'Use --then-rebuild to purge and rebuild from the sources, or --force to purge and leave the rebuild to the host\'s rebuild queue; ' +
      'to remove a model that no longer syncs, leave it out of the registry (--models). Nothing was deleted', { live });
  }
  // A removed model is purged precisely because it is no longer registered: types present in the table count as known.
  // The table's types are listed only when a name is not registered (the skip scan steps over the index
  // entries of every type, dead ones included, which costs heap visits right after a large delete).
  if (types.every((t) => registered.has(t))) return types;
  requireKnown(types, new Set([...registered, ...(await presentTypes(session.client))]));
  return types;
}

/** Flagged rows (`needs_rebuild`) of these types, through the partial index hosts keep on them; 0 without the column. */
async function flaggedRows(client: pg.ClientBase, types: string[]): Promise<number> {
  if (!(await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild'))) return 0;
  const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${T} WHERE record_type = ANY($1::text[]) AND needs_rebuild`, [types]);
  return rows[0]?.n ?? 0;
}

/** Before the first delete (or archive): live types go to the host's rebuild queue. */
export async function preparePurge(h: JobHandle, types: string[], options: PurgeOptions): Promise<void> {
  await h.phase('queue', async () => {
    const live = types.filter((t) => liveLookupTypes(options.registry).includes(t));
    if (live.length) {
      const host = options.host ?? (await resolveHost(h.session.client)).host;
      await h.session.unit(h.tuning.lockTimeoutMs, async () => { for (const t of live) await host.queueModel(h.session.client, t); });
      h.emit({ type: 'phase', phase: 'queue', detail: `queued ${live.join(', ')} for a rebuild with the ${host.name} host's rebuild queue (${host.description.rebuildQueue})` });
    }
  });
}

async function runPurge(h: JobHandle, types: string[], strategies: TypeStrategy[]): Promise<void> {
  const parts = h.layout === 'partitioned' ? await typePartitions(h.session.client) : [];
  for (const s of strategies.filter((x) => x.strategy === 'partition_truncate')) {
    const part = ownPartition(parts, s.record_type)!;
    await h.phase(`truncate:${s.record_type}`, async () => {
      await h.batch(async () => {
        // ACCESS EXCLUSIVE on this partition only (pulls of other types are not affected), taken first so a
        // busy partition fails fast under lock_timeout and is retried. No count(*): it would read the whole
        // partition, the one cost TRUNCATE avoids, so the rows reported are the statistics' estimate.
        await h.session.query(`LOCK TABLE ${quoteQualified(part.table)} IN ACCESS EXCLUSIVE MODE`, [], h.signal);
        const { rows } = await h.session.query<{ n: string }>(PURGE_SQL.partitionRows, [quoteQualified(part.table)], h.signal);
        await h.session.query(PURGE_SQL.truncate(part.table), [], h.signal);
        const n = Number(rows[0]?.n ?? 0);
        return { rows: n, after: null, counts: { deleted: n } };
      });
    });
  }
  const batched = strategies.filter((x) => x.strategy === 'keyset_batches').map((x) => x.record_type);
  if (!batched.length) return;
  await h.phase('delete', async () => {
    // Types that fit one batch (by the planner's estimate) are deleted by one bounded statement first: the
    // collection pass would visit every row's heap page once more for nothing. When it deletes fewer rows
    // than its bound, it deleted every row of the types its snapshot saw, and only the sweep remains.
    if (h.cursor.after === null && !h.cursor.state.firstBatchTried) {
      const cap = oneBatchRows(h);
      // The estimate comes from a sample (±10–20 % for a 1 % type); the bound, not the estimate, keeps the batch short.
      const estimated = await estimateRows(h.session, batched);
      if (estimated <= cap * 1.25) {
        await h.setTotal(h.rowsDone + Math.round(estimated));
        let complete = false;
        await underBuildLock(h, async () => {
          h.cursor.state.firstBatchTried = true;
          const r = await h.batch(async () => {
            const d = await h.session.query(h.layout === 'plain' ? PURGE_SQL.firstBatchTids : PURGE_SQL.firstBatch, [batched, cap], h.signal);
            return { rows: d.rowCount ?? 0, after: null, counts: { deleted: d.rowCount ?? 0 } };
          });
          complete = r.rows < cap;
        });
        if (complete) return;
      }
    }
    const cursorName = `sync_lookup_purge_${h.jobId}`;
    const byTid = h.layout === 'plain';
    await underBuildLock(h, () =>
      declareHeldCursor(h.session, (byTid ? PURGE_SQL.collectTids : PURGE_SQL.collect)(cursorName), [batched, h.cursor.after], h.signal));
    try {
      const moved = await h.session.query(`MOVE FORWARD ALL IN ${quoteIdent(cursorName)}`);
      await h.session.query(`MOVE ABSOLUTE 0 IN ${quoteIdent(cursorName)}`);
      await h.setTotal(h.rowsDone + (moved.rowCount ?? 0));
      for (;;) {
        const { rows } = await h.session.query<{ id: string }>(`FETCH FORWARD ${h.sizer.rows} FROM ${quoteIdent(cursorName)}`);
        if (!rows.length) break;
        const ids = rows.map((r) => r.id);
        await h.batch(async () => {
          const r = await h.session.query(byTid ? PURGE_SQL.deleteTids : PURGE_SQL.deleteBatch, [ids, batched], h.signal);
          return { rows: r.rowCount ?? 0, after: ids[ids.length - 1]!, counts: { deleted: r.rowCount ?? 0 } };
        });
      }
    } finally {
      await h.session.client.query(`CLOSE ${quoteIdent(cursorName)}`).catch(() => {});
    }
  });
  await h.phase('sweep', async () => {
    const from = h.cursor.state.sweepAboveTick;
    // Collected under the build lock at clock tick T: a row of the types written since has a tick above T
    // (builds and rebuild batches publish at a tick they advance the clock to, under that lock) or the
    // staged tick −2 (a rebuild inside a caller's transaction). Otherwise: every tick.
    const ranges: Array<[string, string]> = typeof from === 'number'
      ? [[String(from + 1), MAX_TICK], [MIN_TICK, '-1']]
      : [[MIN_TICK, MAX_TICK]];
    for (const [lo, hi] of ranges) {
      // Usually there is nothing to sweep: a read-only probe (no transaction to commit, no job update) says so.
      const { rows: [any] } = await h.session.query<{ found: boolean }>(PURGE_SQL.sweepProbe, [batched, lo, hi], h.signal);
      if (!any?.found) continue;
      for (;;) {
        const r = await h.batch(async () => {
          const d = await h.session.query(PURGE_SQL.sweep, [batched, h.sizer.rows, lo, hi], h.signal);
          return { rows: d.rowCount ?? 0, after: null, counts: { deleted: d.rowCount ?? 0 } };
        });
        if (r.rows === 0) break;
      }
    }
  });
}

const MIN_TICK = '-9223372036854775808';
const MAX_TICK = '9223372036854775807';

/**
 * Rows one batch may hold before anything is measured: `batchMs` at 100 rows/ms, the rate of a purge whose
 * every row sits on its own heap page with full-page writes on this project's 2-core machine (70–100 rows/ms;
 * clustered rows go much faster). Never fewer than the first-batch size, and exactly it when the caller chose it.
 */
function oneBatchRows(h: JobHandle): number {
  return firstBatchRows(h.tuning);
}

function firstBatchRows(tuning: BatchTuning): number {
  if (tuning.initialRowsChosen) return tuning.initialRows;
  return Math.max(tuning.initialRows, Math.min(tuning.maxRows, tuning.batchMs * 100));
}

/** `oneBatchRows` from the options alone (for --dry-run, before any job exists). */
function planFirstBatchRows(options: PurgeOptions): number {
  return firstBatchRows(batchTuning(options));
}

async function estimateRows(session: WorkSession, types: string[]): Promise<number> {
  const { rows } = await session.client.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(PURGE_SQL.estimate, [types]);
  return rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? Number.POSITIVE_INFINITY;
}

/** The host clock's tick, or null without a clock (nothing then bounds new rows' ticks). */
async function clockTick(client: pg.ClientBase, requested?: Host): Promise<number | null> {
  const host = requested ?? (await resolveHost(client)).host;
  const ready = await host.assertReady(client).then(() => true, () => false);
  return ready ? host.currentTick(client) : null;
}

/**
 * Runs `fn` (the collection, or the one-statement delete) holding the build lock when it is free, and records
 * the clock's tick of that moment in the job (once, at the first collection: a resumed job keeps it), so the
 * sweep need only look above it. A running build is not waited for: the sweep then looks at every tick.
 */
async function underBuildLock(h: JobHandle, fn: () => Promise<void>): Promise<void> {
  const first = !('sweepAboveTick' in h.cursor.state);
  const locked = h.session.mode === 'batches' && first && (await tryBuildLock(h.session.client));
  try {
    if (first) h.cursor.state.sweepAboveTick = locked ? await clockTick(h.session.client) : null;
    await fn();
  } finally {
    if (locked) await releaseBuildLock(h.session.client).catch(unlessUnlockFailed);
  }
}

async function purgeRelations(h: JobHandle, _types: string[], strategies: TypeStrategy[]): Promise<{ analyze: QualifiedName[]; vacuum: QualifiedName[] }> {
  if (h.layout === 'plain') return { analyze: [LOOKUP], vacuum: [LOOKUP] };
  const parts = await typePartitions(h.session.client);
  const rel = (name: string | null) => parts.find((p) => p.table.name === name)?.table;
  const truncated = strategies.filter((s) => s.strategy === 'partition_truncate').map((s) => rel(s.partition)).filter((x): x is QualifiedName => !!x);
  const batched = strategies.filter((s) => s.strategy === 'keyset_batches').map((s) => rel(s.partition)).filter((x): x is QualifiedName => !!x);
  const uniq = (l: QualifiedName[]) => [...new Map(l.map((r) => [r.name, r])).values()];
  return { analyze: uniq([...truncated, ...batched]), vacuum: uniq(batched) };
}

/** The job spec of purge (used by `purgeRecordTypes` and the seed-migration helpers). */
export function purgeSpec(options: PurgeOptions = {}): JobSpec {
  return {
    operation: 'purge',
    key: {},
    validate: (session, types) => validatePurge(session, types, options),
    strategies: purgeStrategies,
    async run(h, types, strategies) {
      await preparePurge(h, types, options);
      await runPurge(h, types, strategies);
    },
    changedRelations: purgeRelations,
  };
}

/**
 * Removes every lookup row of the given record types (a model that was removed or renamed), in time
 * proportional to those rows, not to the table: on the plain layout the ids are collected once through
 * the record_type index and deleted in short primary-key batches; on the partitioned layout a type with
 * its own partition is TRUNCATEd. Resumable, cancellable, followed by ANALYZE (when the change passes
 * autovacuum's threshold) and VACUUM (unless `vacuum: false`).
 *
 * @example
 * const r = await purgeRecordTypes(db, { types: ['encounter_medications'], onProgress: (p) => log(p.rows_done) });
 * console.log(r.rows_deleted, r.strategy, r.vacuum_ms);
 */
export async function purgeRecordTypes(target: MaintenanceTarget, options: PurgeOptions): Promise<PurgeResult> {
  const { types, flagged } = await purgeInputs(target, options);
  if (options.ifPresent && !types?.length) return { ...skippedPurge(options.types ?? []), rebuild: null };
  if (flagged) options.onEvent?.({ type: 'warning', message: `${flagged} of the rows to purge are flagged needs_rebuild; they are purged too` });
  const purged = await runJob(target, purgeSpec(options), { ...options, ...(types ? { types } : {}) });
  const result: PurgeResult = {
    ...purged, flagged_rows_removed: flagged, skipped_types: (options.types ?? []).filter((t) => !purged.record_types.includes(t)), rebuild: null,
  };
  const live = purged.record_types.filter((t) => liveLookupTypes(options.registry).includes(t));
  if (options.thenRebuild && live.length) {
    const { host, ...rest } = options;
    result.rebuild = await rebuildRecordTypes(target, { ...rest, ...(host ? { host } : {}), types: live, dequeue: true });
  }
  return result;
}

/** The result of a purge with nothing to do (`ifPresent` and none of the types has rows). */
function skippedPurge(types: string[]): Omit<PurgeResult, 'rebuild'> {
  return {
    operation: 'purge', record_types: [], skipped_types: types, flagged_rows_removed: 0, layout: 'plain', mode: 'batches', job_id: 0, resumed: false, strategy: 'none', strategies: [],
    rows_affected: 0, rows_deleted: 0, rows_inserted: 0, rows_updated: 0, batches: 0, operation_ms: 0, analyze_ms: 0, duration_ms: 0,
    analyze: { ran: false, policy: 'never', reason: 'nothing to purge: none of the types has rows (--if-present)', ms: 0, changed_rows: 0, threshold_rows: 0, targets: [] },
    vacuum: { ran: false, reason: 'nothing to purge', sql: null, vacuum_ms: 0, dead_tuples_before: null, dead_tuples_after: null, targets: [] },
    vacuum_ms: 0, dead_tuples_before: null, dead_tuples_after: null,
  };
}

/** What `purgeRecordTypes` did: the purge job's result, the types skipped by `ifPresent`, and the rebuild that followed (`thenRebuild`). */
export interface PurgeResult extends OperationResult {
  /** Types skipped because `ifPresent` found no rows of them. */
  skipped_types: string[];
  /** Rows flagged `needs_rebuild` among those purged (counted before the purge). */
  flagged_rows_removed: number;
  /** The rebuild of the live types that followed (`thenRebuild`), or null. */
  rebuild: OperationResult | null;
}

/** The types to purge (with `ifPresent`, those that have rows) and how many of their rows are flagged `needs_rebuild`. */
async function purgeInputs(target: MaintenanceTarget, options: PurgeOptions): Promise<{ types: string[] | undefined; flagged: number }> {
  if (!options.types?.length) return { types: options.types, flagged: 0 };
  const session = await openWorkSession(target, 'purge');
  try {
    const types = options.ifPresent ? await validatePurge(session, options.types, options) : normalizeTypes(options.types);
    return { types, flagged: types.length ? await flaggedRows(session.client, types) : 0 };
  } finally {
    await session.close();
  }
}

/**
 * What `purge` would do: strategy per type, estimated rows and time, the SQL, and the plans.
 *
 * @example
 * const plan = await planPurge(db, { types: ['encounter_medications'] });
 */
export async function planPurge(target: MaintenanceTarget, options: PurgeOptions): Promise<DryRunReport> {
  const session = await openWorkSession(target, 'purge-dry-run');
  try {
    await requireRecordTypeIndex(session.client);
    const layout = (await detectLayout(session.client)) as Layout;
    const types = await validatePurge(session, options.types ?? [], options);
    const strategies = await purgeStrategies(session, types, layout);
    const batched = strategies.filter((s) => s.strategy === 'keyset_batches').map((s) => s.record_type);
    const statements: PlannedStatement[] = [];
    for (const s of strategies.filter((x) => x.strategy === 'partition_truncate')) {
      statements.push({ purpose: `truncate the partition of ${s.record_type}`, sql: PURGE_SQL.truncate({ schema: 'public', name: s.partition! }), params: [], explain: false });
    }
    if (batched.length) {
      const cap = planFirstBatchRows(options);
      statements.push({
        purpose: `first batch: up to ${cap} rows by one bounded DELETE through the record_type index (when the estimate fits one batch; no collection then)`,
        sql: layout === 'plain' ? PURGE_SQL.firstBatchTids : PURGE_SQL.firstBatch, params: [batched, cap], explain: true,
      });
    }
    if (batched.length && layout === 'plain') {
      statements.push(
        { purpose: 'collect the addresses (ctid) of the rows to delete (once, through the record_type index)', sql: PURGE_SQL.collectTids('c').replace(/^DECLARE .* FOR /, ''), params: [batched, null], explain: true },
        { purpose: 'delete one batch by address (TID scan)', sql: PURGE_SQL.deleteTids, params: [await sampleIds(session.client, batched, 'ctid::text'), batched], explain: true },
      );
    } else if (batched.length) {
      statements.push(
        { purpose: 'collect the ids of the rows to delete (once, through the record_type index)', sql: PURGE_SQL.collect('c').replace(/^DECLARE .* FOR /, ''), params: [batched, null], explain: true },
        { purpose: 'delete one batch by primary key', sql: PURGE_SQL.deleteBatch, params: [await sampleIds(session.client, batched, 'id'), batched], explain: true },
      );
    }
    return await dryRunReport(session, {
      operation: 'purge', types, layout, strategies, statements, rowsPerSecond: 50_000,
      estimateSql: `SELECT 1 FROM ${T} WHERE record_type = ANY($1::text[])`, estimateParams: [types],
    });
  } finally {
    await session.close();
  }
}

async function sampleIds(client: pg.ClientBase, types: string[], column: 'id' | 'ctid::text'): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(`SELECT ${column} AS id FROM ${T} WHERE record_type = ANY($1::text[]) LIMIT 1000`, [types]);
  return rows.map((r) => r.id);
}
