import type pg from 'pg';
import { applySessionSettings, type Database } from '../db/connection.js';
import { quoteIdent } from '../db/quote.js';
import { buildLookup } from '../lookup/build.js';
import { pullChanges } from '../lookup/pull.js';
import { pullChunkQuery, upsertLookupRows } from '../lookup/sql.js';
import { createIndexSql } from '../db/index-ddl.js';
import { createIndexConcurrently } from '../migrate/concurrent-index.js';
import { planPurge, purgeRecordTypes } from '../maintenance/purge.js';
import { planRebuild } from '../maintenance/rebuild.js';
import { archiveRecordTypes } from '../maintenance/archive.js';
import { restoreRecordTypes } from '../maintenance/restore.js';
import { convertLayout } from '../maintenance/convert.js';
import { finishConversion } from '../maintenance/convert-end.js';
import type { OperationResult } from '../maintenance/job.js';
import {
  BACKFILL_SQL, SEED_ORIGINAL_SQL, backfillInitialSyncLookupTick, rebuildForPrescriptionsChange, resyncPatientProgramRegistrations,
} from '../maintenance/seed-migrations.js';
import { LOOKUP_TABLE, RECORD_TYPE_INDEX, STAGED_TICK, TICKS_TABLE } from '../schema/sync-lookup.js';
import {
  FIXED_TYPE, analyzeLookup, countTypeRows, restoreTypeRows, saveTypeRows, setRecordTypeIndex, timed, vacuumLookup,
  type BenchData,
} from './dataset.js';
import { originalBackfill, originalPurgeSql, restampSourceSql } from './originals.js';
import { dryRunPlan, statementPlan, statementsPlan } from './plans.js';
import type { ScenarioName } from './options.js';
import type { RunOutcome, Scenario, Variant } from './scenario.js';
import { BENCH_SCHEMA } from './target.js';
import { upgradeScenario } from './upgrade.js';
import { percentile } from './traffic.js';
import { TRAFFIC_MARK } from './work.js';

/** The ~1 % type `purge-type` removes: the legacy model migration 3 removed. */
export const PURGE_TYPE = 'encounter_medications';
/** The two types the seed's migrations 1 and 2 fully resync. */
export const RESYNC_TYPES = ['patient_program_registrations', 'patient_program_registration_conditions'];
/** The types migration 3 re-materialises after purging {@link PURGE_TYPE}. */
export const REBUILD_TYPES = ['prescriptions', 'encounter_prescriptions'];
/** Rows of the most recent changes `pull-incremental` reads. */
export const INCREMENTAL_PULL_ROWS = 10_000;
/** Rows per pull chunk (the id cursor's page). */
export const PULL_CHUNK_ROWS = 5_000;

// ---------------------------------------------------------------------------------------------------
// Purges

function originalPurge(type: string, key: string): Variant {
  return {
    index: 'absent', vacuum: true,
    prepare: async (d) => { await saveTypeRows(d, key, [type]); },
    plan: (d) => statementPlan(d.control, originalPurgeSql([type])),
    async run(d) {
      const { ms, value } = await timed(() => d.control.query(originalPurgeSql([type])));
      return { ms, rowsAffected: value.rowCount ?? 0 };
    },
    restore: async (d) => { await restoreTypeRows(d, key, [type]); },
  };
}

/** Our operation's figures that the report keeps beside the wall time. */
function operationExtra(r: OperationResult): RunOutcome['extra'] {
  return { operation_ms: r.operation_ms, analyze_ms: r.analyze_ms, batches: r.batches, strategy: r.strategy };
}

function ourPurge(type: string, key: string, dataset: 'plain' | 'partitioned' = 'plain'): Variant {
  return {
    dataset, index: dataset === 'plain' ? 'present' : 'any',
    // TRUNCATE of a partition leaves no dead tuples: nothing to vacuum (reported as 0 below).
    vacuum: dataset === 'plain',
    prepare: async (d) => { await saveTypeRows(d, key, [type]); },
    plan: async (d) => dryRunPlan(await planPurge(d.db, { types: [type], registry: d.registry })),
    async run(d) {
      // Wall time of the library call on an open connection, as a user's migration makes it (job record,
      // locks and checks included), with the ANALYZE it decides on and without its VACUUM. The original
      // runs on the same open connection.
      const { ms, value } = await timed(() => purgeRecordTypes(d.control, { types: [type], registry: d.registry, vacuum: false,
        ...(d.signal ? { signal: d.signal } : {}) }));
      return { ms, rowsAffected: value.rows_deleted, extra: { ...operationExtra(value), ...(dataset === 'partitioned' ? { vacuum_ms: 0 } : {}) } };
    },
    restore: async (d) => { await restoreTypeRows(d, key, [type]); },
  };
}

const purgeType: Scenario = {
  name: 'purge-type',
  title: `purge a ~1 % record type (${PURGE_TYPE}) from the plain table`,
  baseline: originalPurge(PURGE_TYPE, 'purge_type'),
  ours: ourPurge(PURGE_TYPE, 'purge_type'),
  touches: [PURGE_TYPE],
};

const purgeTypePartitioned: Scenario = {
  name: 'purge-type-partitioned',
  title: `purge ${PURGE_TYPE}: original DELETE on the plain table vs ours on the table partitioned by record_type`,
  baseline: originalPurge(PURGE_TYPE, 'purge_type'),
  ours: ourPurge(PURGE_TYPE, 'purge_type', 'partitioned'),
  touches: [PURGE_TYPE],
};

// Archive and restore on the partitioned layout (issue 15): the type's own partition is detached into the
// tool's schema and attached back; no original form (there was no archive).
const archiveTypePartitioned: Scenario = {
  name: 'archive-type-partitioned',
  title: `archive ${PURGE_TYPE} on the table partitioned by record_type (detach its partition; restored after each run)`,
  ours: {
    dataset: 'partitioned', index: 'any',
    async run(d) {
      const { ms, value } = await timed(() => archiveRecordTypes(d.control, { types: [PURGE_TYPE], registry: d.registry, vacuum: false,
        ...(d.signal ? { signal: d.signal } : {}) }));
      return { ms, rowsAffected: value.rows, extra: { switch_ms: value.switch_ms ?? 0, strategy: value.strategy } };
    },
    restore: async (d) => { await restoreRecordTypes(d.control, { types: [PURGE_TYPE], vacuum: false }); },
  },
};

// Online conversion under sync traffic (issue 15): a writer and a pull loop run while the plain table is converted
// to the partitioned layout and the conversion finished; restored by converting back (untimed).

/** Pulls of every type since `sinceTick` in a loop until stopped; each pull's wall time, and the pulls that failed. */
function pullLoop(d: BenchData, sinceTick: number): { stop(): Promise<{ times: number[]; errors: string[] }> } {
  let stopped = false;
  const times: number[] = [];
  const errors: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      try {
        times.push((await timed(() => pullAll(d, { sinceTick, types: d.registry.names }))).ms);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  })();
  return { async stop() { stopped = true; await loop; return { times, errors }; } };
}

const p99 = (xs: number[]) => percentile(xs, 99) ?? 0;

/** Ids the writer inserted during the last `convert` run (deleted by its restore). */
let convertWriterIds: string[] = [];

const convertScenario: Scenario = {
  name: 'convert',
  title: 'convert the plain table to the partitioned layout online while a writer and pulls run (restored by converting back)',
  ours: {
    index: 'present',
    async run(d) {
      const since = await recentChanges(d, INCREMENTAL_PULL_ROWS);
      const idle = pullLoop(d, since);
      await new Promise((r) => setTimeout(r, 3000));
      const { times: idleTimes } = await idle.stop();
      const writer = startWriter(d.db);
      await writer.ready;
      const busy = pullLoop(d, since);
      const converted = await timed(async () => {
        const r = await convertLayout(d.db, { to: 'partitioned', registry: d.registry, ...(d.signal ? { signal: d.signal } : {}) });
        await finishConversion(d.db);
        return r;
      }).finally(() => Promise.all([busy.stop(), writer.stop()]));
      const { ms, value } = converted;
      const [{ times: busyTimes, errors }, writes] = await Promise.all([busy.stop(), writer.stop()]);
      convertWriterIds = writes.insertedIds;
      return {
        ms, rowsAffected: value.rows_copied,
        extra: {
          rows_per_s: Math.round(value.rows_copied / Math.max(0.001, (value.phases_ms.copy ?? ms) / 1000)),
          longest_write_stall_ms: value.longest_write_stall_ms, writer_max_ms: Math.round(writes.maxStallMs),
          pull_p99_ms: Math.round(p99(busyTimes)), idle_pull_p99_ms: Math.round(p99(idleTimes)), verified: value.verified,
          // A failed pull is a finding, not a crash of the bench: counted and its first message kept.
          pull_errors: errors.length, pull_error: errors[0] ?? null,
        },
      };
    },
    async restore(d) {
      await convertLayout(d.db, { to: 'plain', registry: d.registry });
      await finishConversion(d.db);
      await d.control.query(`delete from ${quoteIdent(LOOKUP_TABLE)} where id = any($1::bigint[])`, [convertWriterIds]);
      convertWriterIds = [];
    },
  },
};

const purgeFixedType: Scenario = {
  name: 'purge-fixed-type',
  title: `purge a type whose size stays fixed while the table grows (${FIXED_TYPE}: the growth check)`,
  baseline: originalPurge(FIXED_TYPE, 'fixed_type'),
  ours: ourPurge(FIXED_TYPE, 'fixed_type'),
  touches: [FIXED_TYPE],
};

// ---------------------------------------------------------------------------------------------------
// Migrations 1 + 2: fully resync two types

/**
 * The incremental build every scenario runs. Migration 3's scenario changes the prescriptions' `data` on purpose
 * (a model change), so the shape guard, which protects a deployment's rows from a wrong registry, is waived here.
 */
async function build(d: BenchData) {
  return buildLookup(d.db, { registry: d.registry, acceptShapeChange: true, ...(d.signal ? { signal: d.signal } : {}) });
}

const resyncTypes: Scenario = {
  name: 'resync-types',
  touches: RESYNC_TYPES,
  title: 'the seed\'s migrations 1 and 2 (fully resync patient_program_registrations and …_conditions), end to end',
  baseline: {
    index: 'absent', vacuum: true,
    prepare: async (d) => { await saveTypeRows(d, 'resync_types', RESYNC_TYPES); },
    plan: (d) => statementPlan(d.control, SEED_ORIGINAL_SQL.resyncPatientProgramRegistrations),
    async run(d) {
      let affected = 0;
      const { ms } = await timed(async () => {
        // Migration 1, then migration 2 (the same statements), then the build that re-materialises the rows.
        for (let migration = 1; migration <= 2; migration++) {
          affected += (await d.control.query(SEED_ORIGINAL_SQL.resyncPatientProgramRegistrations)).rowCount ?? 0;
          for (const t of RESYNC_TYPES) await d.control.query(restampSourceSql(t));
        }
        affected += (await build(d)).rows;
      });
      return { ms, rowsAffected: affected };
    },
    restore: async (d) => { await restoreTypeRows(d, 'resync_types', RESYNC_TYPES); },
  },
  ours: {
    index: 'present', vacuum: true,
    prepare: async (d) => { await saveTypeRows(d, 'resync_types', RESYNC_TYPES); },
    plan: async (d) => dryRunPlan(await planRebuild(d.db, { types: RESYNC_TYPES, registry: d.registry }, 'resync')),
    async run(d) {
      let affected = 0;
      const extra: Record<string, number> = { analyze_ms: 0, batches: 0 };
      const { ms } = await timed(async () => {
        for (let migration = 1; migration <= 2; migration++) {
          const r = await resyncPatientProgramRegistrations(d.control, { registry: d.registry, vacuum: false,
            ...(d.signal ? { signal: d.signal } : {}) });
          affected += r.rows_affected;
          extra.analyze_ms! += r.analyze_ms;
          extra.batches! += r.batches;
        }
        affected += (await build(d)).rows;
      });
      return { ms, rowsAffected: affected, extra };
    },
    restore: async (d) => { await restoreTypeRows(d, 'resync_types', RESYNC_TYPES); },
  },
};

/** Dead tuples left in the lookup (all partitions), as the statistics count them after this session's flush. */
async function deadTuplesLeft(d: BenchData): Promise<number> {
  await d.control.query('select pg_stat_force_next_flush()');
  await d.control.query('select pg_stat_clear_snapshot()');
  const { rows: [r] } = await d.control.query<{ n: string }>(
    `select coalesce(sum(n_dead_tup), 0)::text as n from pg_stat_user_tables where relid in (select $1::regclass union all select inhrelid from pg_inherits where inhparent = $1::regclass)`,
    [LOOKUP_TABLE]);
  return Number(r?.n ?? 0);
}

const resyncTypesPartitioned: Scenario = {
  name: 'resync-types-partitioned',
  touches: RESYNC_TYPES,
  title: 'migrations 1 and 2 end to end: the original on the plain table vs ours on the partitioned layout (each type\'s own partition refilled and swapped in)',
  baseline: resyncTypes.baseline!,
  ours: {
    ...resyncTypes.ours,
    dataset: 'partitioned', index: 'any', vacuum: false,
    async run(d, i) {
      const r = await resyncTypes.ours.run(d, i);
      // The swap leaves no dead version behind: nothing for VACUUM to do.
      return { ...r, extra: { ...r.extra, vacuum_ms: 0, dead_tuples_after: await deadTuplesLeft(d) } };
    },
  },
};

// ---------------------------------------------------------------------------------------------------
// Migration 3: purge encounter_medications, re-materialise prescriptions and encounter_prescriptions

/**
 * Saves the prescriptions' lookup rows as they were before "the prescriptions changes": their `data`
 * carries a field the new model no longer has. Restored before every run, so both forms must rewrite
 * every row of both types (as after a real model change), from the same starting rows.
 */
async function saveStalePrescriptions(d: BenchData): Promise<void> {
  const table = `${quoteIdent(BENCH_SCHEMA)}.${quoteIdent('saved_rebuild_stale')}`;
  const { rows: [exists] } = await d.control.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`, [`${BENCH_SCHEMA}.saved_rebuild_stale`]);
  if (exists?.ok) return;
  await d.control.query(`create table ${table} (like ${quoteIdent(LOOKUP_TABLE)})`);
  await d.control.query(`insert into ${table} select * from ${quoteIdent(LOOKUP_TABLE)} where record_type = any($1::text[])`, [REBUILD_TYPES]);
  await d.control.query(`update ${table} set data = (data::jsonb || '{"legacy_dose_text": "as prescribed before migration 3"}')::json`);
}

const rebuildVariantBase = {
  vacuum: true,
  async prepare(d: BenchData) {
    await saveTypeRows(d, 'purge_type', [PURGE_TYPE]);
    await saveStalePrescriptions(d);
  },
  async before(d: BenchData) {
    await restoreTypeRows(d, 'rebuild_stale', REBUILD_TYPES);
  },
  async restore(d: BenchData) {
    await restoreTypeRows(d, 'purge_type', [PURGE_TYPE]);
  },
};

const rebuildType: Scenario = {
  name: 'rebuild-type',
  touches: [PURGE_TYPE, ...REBUILD_TYPES],
  title: 'the seed\'s migration 3 (purge encounter_medications, rebuild prescriptions and encounter_prescriptions), end to end',
  baseline: {
    ...rebuildVariantBase,
    index: 'absent',
    plan: (d) => statementPlan(d.control, SEED_ORIGINAL_SQL.rebuildForPrescriptionsChange),
    async run(d) {
      let affected = 0;
      const { ms } = await timed(async () => {
        affected += (await d.control.query(SEED_ORIGINAL_SQL.rebuildForPrescriptionsChange)).rowCount ?? 0;
        for (const t of REBUILD_TYPES) await d.control.query(restampSourceSql(t));
        affected += (await build(d)).rows;
      });
      return { ms, rowsAffected: affected };
    },
  },
  ours: {
    ...rebuildVariantBase,
    index: 'present',
    plan: async (d) => `purge ${dryRunPlan(await planPurge(d.db, { types: [PURGE_TYPE], registry: d.registry }))}; ` +
      `rebuild ${dryRunPlan(await planRebuild(d.db, { types: REBUILD_TYPES, registry: d.registry }))}`,
    async run(d) {
      let affected = 0;
      const signal = d.signal ? { signal: d.signal } : {};
      const { ms } = await timed(async () => {
        const r = await rebuildForPrescriptionsChange(d.control, { registry: d.registry, vacuum: false, ...signal });
        affected += r.purge.rows_affected + r.rebuild.rows_affected;
        affected += (await build(d)).rows;
      });
      return { ms, rowsAffected: affected };
    },
  },
};

// ---------------------------------------------------------------------------------------------------
// Migration 4: backfill the initial tick

const INITIAL_TICKS = `${quoteIdent(BENCH_SCHEMA)}.${quoteIdent('saved_initial_tick')}`;

const backfillBase = {
  async prepare(d: BenchData) {
    await d.control.query(`create table if not exists ${INITIAL_TICKS} (like ${quoteIdent(TICKS_TABLE)})`);
    const { rows: [n] } = await d.control.query<{ n: number }>(`select count(*)::int as n from ${INITIAL_TICKS}`);
    if (!n?.n) {
      await d.control.query(`insert into ${INITIAL_TICKS} (source_start_tick, lookup_end_tick)
                             select source_start_tick, lookup_end_tick from ${quoteIdent(TICKS_TABLE)} where source_start_tick = -1`);
    }
  },
  async before(d: BenchData) {
    await d.control.query(`delete from ${quoteIdent(TICKS_TABLE)} where source_start_tick = -1`);
  },
  async restore(d: BenchData) {
    await d.control.query(`delete from ${quoteIdent(TICKS_TABLE)} where source_start_tick = -1`);
    await d.control.query(`insert into ${quoteIdent(TICKS_TABLE)} (source_start_tick, lookup_end_tick)
                           select source_start_tick, lookup_end_tick from ${INITIAL_TICKS} on conflict do nothing`);
  },
};

const backfillInitialTick: Scenario = {
  name: 'backfill-initial-tick',
  title: 'the seed\'s migration 4 (record the initial sync_lookup_ticks row)',
  baseline: {
    ...backfillBase,
    index: 'absent',
    plan: (d) => statementsPlan(d.control, SEED_ORIGINAL_SQL.backfillInitialSyncLookupTick.map((sql) => ({ sql }))),
    async run(d) {
      const { ms, value } = await timed(() => originalBackfill(d.control));
      return { ms, rowsAffected: value };
    },
  },
  ours: {
    ...backfillBase,
    index: 'present',
    async plan(d) {
      const { rows: [first] } = await d.control.query<{ end_tick: string }>(BACKFILL_SQL.firstBuild);
      return statementsPlan(d.control, [{ sql: BACKFILL_SQL.firstBuild }, { sql: BACKFILL_SQL.hasRows },
        { sql: BACKFILL_SQL.maxBelow, params: [first?.end_tick ?? '0'] }]);
    },
    async run(d) {
      const { ms, value } = await timed(() => backfillInitialSyncLookupTick(d.control));
      return { ms, rowsAffected: value.inserted ? 1 : 0 };
    },
  },
};

const upgrade = upgradeScenario({
  async prepare(d) {
    await saveStalePrescriptions(d);
    await backfillBase.prepare(d);
  },
  before: (d) => rebuildVariantBase.before(d),
});

// ---------------------------------------------------------------------------------------------------
// Adding the record_type index while sync traffic writes

/** Writes like sync traffic (an insert and an update of lookup rows, in turn) until stopped; records each write's latency. */
function startWriter(db: Database): { ready: Promise<void>; stop(): Promise<{ writes: number; maxStallMs: number; insertedIds: string[] }>; mark(): void; sinceMark(): number } {
  let stopped = false;
  let writes = 0;
  let maxSinceMark = 0;
  const insertedIds: string[] = [];
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => { readyResolve = r; });
  const loop = (async () => {
    const lease = await db.acquire();
    try {
      // No lock_timeout: a blocked write waits as long as the build blocks it, and that wait is the stall.
      await applySessionSettings(lease.client, { purpose: 'bench-writer', lockTimeoutMs: 0, statementTimeoutMs: 0 });
      const { rows: [range] } = await lease.client.query<{ lo: string; hi: string }>(
        `select min(id)::text as lo, max(id)::text as hi from ${quoteIdent(LOOKUP_TABLE)}`);
      const lo = Number(range?.lo ?? 1);
      const span = Math.max(1, Number(range?.hi ?? 1) - lo);
      readyResolve();
      for (let i = 0; !stopped; i++) {
        const started = performance.now();
        if (i % 2 === 0) {
          const { rows } = await lease.client.query<{ id: string }>(
            `insert into ${quoteIdent(LOOKUP_TABLE)} (record_id, record_type, data, updated_at_sync_tick, patient_id)
             values ('bench-writer-' || gen_random_uuid(), 'notes', '{"written_by": "bench writer"}', $1, null) returning id::text ${TRAFFIC_MARK}`, [STAGED_TICK]);
          insertedIds.push(rows[0]!.id);
        } else {
          // Same values: a real row version is written (and must be indexed), the data stays as it was.
          await lease.client.query(`update ${quoteIdent(LOOKUP_TABLE)} set updated_at_by_field_sum = updated_at_by_field_sum where id = $1 ${TRAFFIC_MARK}`,
            [lo + ((i * 7919) % span)]);
        }
        maxSinceMark = Math.max(maxSinceMark, performance.now() - started);
        writes++;
      }
    } finally {
      await lease.release();
    }
  })();
  loop.catch(() => readyResolve());
  return {
    ready,
    mark() { maxSinceMark = 0; writes = 0; },
    sinceMark: () => maxSinceMark,
    async stop() {
      stopped = true;
      await loop;
      return { writes, maxStallMs: maxSinceMark, insertedIds };
    },
  };
}

function indexBuildVariant(concurrent: boolean): Variant {
  return {
    index: 'absent',
    plan: async () => concurrent
      ? 'CREATE INDEX CONCURRENTLY (runner): writes go on; two table scans and waits for older transactions'
      : 'CREATE INDEX: SHARE lock, every write waits until the whole build ends',
    async run(d) {
      const writer = startWriter(d.db);
      await writer.ready;
      // Let the writer settle, then count only what happens while the index builds.
      await new Promise((r) => setTimeout(r, 200));
      writer.mark();
      const lease = await d.db.acquire();
      let ms: number;
      try {
        await applySessionSettings(lease.client, { purpose: 'bench-index', lockTimeoutMs: 0, statementTimeoutMs: 0 });
        ms = concurrent
          ? (await timed(() => createIndexConcurrently(d.db, lease.client, RECORD_TYPE_INDEX, d.signal ? { signal: d.signal } : {}))).ms
          : (await timed(() => lease.client.query(createIndexSql(RECORD_TYPE_INDEX, false)))).ms;
      } finally {
        await lease.release();
      }
      const stall = writer.sinceMark();
      const { writes, insertedIds } = await writer.stop();
      await d.control.query(`delete from ${quoteIdent(LOOKUP_TABLE)} where id = any($1::bigint[]) ${TRAFFIC_MARK}`, [insertedIds]);
      return { ms, rowsAffected: null, extra: { longest_write_stall_ms: Math.round(stall * 10) / 10, writes_during_build: writes } };
    },
    async restore(d) {
      await setRecordTypeIndex(d, 'absent');
      await vacuumLookup(d);
      await analyzeLookup(d);
    },
  };
}

const addRecordTypeIndex: Scenario = {
  name: 'add-record-type-index',
  title: `build ${RECORD_TYPE_INDEX.name} while a writer inserts and updates lookup rows`,
  baseline: indexBuildVariant(false),
  ours: indexBuildVariant(true),
};

// ---------------------------------------------------------------------------------------------------
// Pulls

/**
 * Re-stamps a deterministic `percent` of every model's source rows (a hash of the id and `salt`, so both
 * forms of a scenario touch the same rows and each run other ones); the next build picks them up.
 */
async function touchSourceRows(d: BenchData, percent: number, salt: string): Promise<number> {
  let touched = 0;
  const per = Math.max(1, Math.round(10_000 / percent));
  for (const m of d.registry.models) {
    const r = await d.control.query(`update ${quoteIdent(m.name)} set updated_at = updated_at
       where (hashtext(id::text || $1) & 2147483647) % $2 < 100`, [salt, per]);
    touched += r.rowCount ?? 0;
  }
  return touched;
}

/**
 * Makes the table's most recent changes: re-stamps ~`rows` source rows and builds, so they are published
 * at one fresh tick; returns the tick before it (a facility's `since`). The seeded table was published
 * by one initial build, at one tick: without this there would be no "recent changes" to pull.
 */
async function recentChanges(d: BenchData, rows: number): Promise<number> {
  const { rows: [last] } = await d.control.query<{ t: string | null }>(`select max(lookup_end_tick)::text as t from ${quoteIdent(TICKS_TABLE)}`);
  await touchSourceRows(d, Math.min(100, (100 * rows) / Math.max(1, d.rows)), 'recent');
  await build(d);
  return Number(last?.t ?? -1);
}

/** A facility and the patients it syncs (those with encounters there): what an initial pull asks for. */
async function facilityScope(d: BenchData): Promise<{ facility: string; patients: string[] }> {
  const { rows: [f] } = await d.control.query<{ id: string }>(
    `select facility_id::text as id from encounters where facility_id is not null group by 1 order by count(*) desc, 1 limit 1`);
  const facility = f?.id ?? '';
  const { rows } = await d.control.query<{ id: string }>(
    `select distinct patient_id::text as id from encounters where facility_id::text = $1 and patient_id is not null`, [facility]);
  return { facility, patients: rows.map((r) => r.id) };
}

/** A whole pull through the lookup engine's snapshot reader (id-cursor chunks); returns the rows read. */
async function pullAll(d: BenchData, options: { sinceTick: number; types: string[]; patients?: string[]; facilities?: string[] }): Promise<number> {
  let total = 0;
  for await (const chunk of pullChanges(d.db, { registry: d.registry, ...options, chunkRows: PULL_CHUNK_ROWS,
    ...(d.signal ? { signal: d.signal } : {}) })) {
    total += chunk.rows.length;
  }
  return total;
}

function pullVariant(index: 'absent' | 'present', kind: 'incremental' | 'initial'): Variant {
  let scope: { sinceTick: number; types: string[]; patients?: string[]; facilities?: string[] } | undefined;
  const resolve = async (d: BenchData) => {
    // Each form makes its own recent changes (the same source rows) just before it runs, so later
    // operations' fresh ticks never add to what it pulls.
    if (kind === 'incremental') return { sinceTick: await recentChanges(d, INCREMENTAL_PULL_ROWS), types: d.registry.names };
    const { facility, patients } = await facilityScope(d);
    return { sinceTick: -1, types: d.registry.names, patients, facilities: [facility] };
  };
  return {
    index,
    async prepare(d) { scope = await resolve(d); },
    async plan(d) {
      const q = pullChunkQuery({ ...(scope ?? (await resolve(d))), limit: PULL_CHUNK_ROWS });
      return statementPlan(d.control, q.text, q.values);
    },
    async run(d) {
      const s = scope ?? (await resolve(d));
      const { ms, value } = await timed(() => pullAll(d, s));
      return { ms, rowsAffected: value, extra: { patients: s.patients?.length ?? null, since_tick: s.sinceTick } };
    },
  };
}

const pullIncremental: Scenario = {
  name: 'pull-incremental',
  title: `pull the ${INCREMENTAL_PULL_ROWS.toLocaleString('en-US')} most recent changes (all types), in ${PULL_CHUNK_ROWS}-row id-cursor chunks; original = the table without the record_type index`,
  baseline: pullVariant('absent', 'incremental'),
  ours: pullVariant('present', 'incremental'),
};

const pullInitial: Scenario = {
  name: 'pull-initial',
  title: 'initial pull of everything one facility syncs (its patients, rows without a patient); original = the table without the record_type index',
  baseline: pullVariant('absent', 'initial'),
  ours: pullVariant('present', 'initial'),
};

// ---------------------------------------------------------------------------------------------------
// Incremental build after 1 % of source rows changed

function buildVariant(index: 'absent' | 'present'): Variant {
  return {
    index, vacuum: true,
    async plan(d) {
      const model = d.registry.get('survey_response_answers');
      const q = upsertLookupRows(model, { lookupTick: STAGED_TICK, sinceTick: 0, beforeTick: 1, limit: 20_000 });
      return statementPlan(d.control, q.text, q.values);
    },
    async before(d, run) {
      // 1 % of every model's source rows, a different sample per run (the same for both forms).
      await touchSourceRows(d, 1, `build-${run}`);
    },
    async run(d) {
      const { ms, value } = await timed(() => build(d));
      return { ms, rowsAffected: value.rows };
    },
  };
}

const incrementalBuild: Scenario = {
  name: 'incremental-build',
  title: 'incremental build after 1 % of source rows changed; original = the table without the record_type index (its upkeep cost)',
  baseline: buildVariant('absent'),
  ours: buildVariant('present'),
};

/**
 * Every scenario but `seed` (which the runner handles: it needs a database of its own), by name.
 *
 * @example
 * SCENARIOS.get('purge-type')?.title
 */
export const SCENARIOS: ReadonlyMap<ScenarioName, Scenario> = new Map([
  upgrade, purgeType, purgeTypePartitioned, archiveTypePartitioned, convertScenario, purgeFixedType, resyncTypes, resyncTypesPartitioned, rebuildType, backfillInitialTick, addRecordTypeIndex,
  pullIncremental, pullInitial, incrementalBuild,
].map((s) => [s.name, s] as const));

/** The title of the `seed` scenario. */
export const SEED_TITLE = 'seed throughput: generate source rows, COPY them, initial build and ANALYZE';

/** Row counts of the scenario's types, for a restore check. */
export async function typeCounts(client: pg.ClientBase): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [PURGE_TYPE, FIXED_TYPE, ...RESYNC_TYPES, ...REBUILD_TYPES]) out[t] = await countTypeRows(client, [t]);
  return out;
}
