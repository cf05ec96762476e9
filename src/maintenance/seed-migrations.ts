import { LOOKUP_TABLE, TICKS_TABLE } from '../schema/sync-lookup.js';
import type { OperationResult } from './job.js';
import { purgeRecordTypes, type PurgeOptions } from './purge.js';
import { rebuildRecordTypes, resyncRecordTypes, type RebuildOptions } from './rebuild.js';
import { openWorkSession, type MaintenanceTarget } from './session.js';

/*
 * The seed's four slow migrations, as library calls a migration (ours, umzug, Knex, Sequelize) can make
 * with a pg client or pool. `examples/seed-migrations/` has each as a runnable migration file.
 */

/** The seed's original statements, for comparison (benchmarks run them as the baseline). */
export const SEED_ORIGINAL_SQL = {
  /** Migrations 1 and 2 (`fullyResyncPatientProgramRegistrations…`). */
  resyncPatientProgramRegistrations:
    `DELETE FROM ${LOOKUP_TABLE} WHERE record_type IN ('patient_program_registrations', 'patient_program_registration_conditions')`,
  /** Migration 3 (`RebuildLookupTableForPrescriptionsChanges`). */
  rebuildForPrescriptionsChange: `DELETE FROM ${LOOKUP_TABLE} WHERE record_type = 'encounter_medications'`,
  /** Migration 4 (`backfillInitialSyncLookupTick`): emptiness by count, then the two maxima. */
  backfillInitialSyncLookupTick: [
    `SELECT count(*) = 0 AS empty FROM ${LOOKUP_TABLE}`,
    `SELECT MAX(updated_at_sync_tick) FROM ${LOOKUP_TABLE}`,
    `SELECT MAX(updated_at_sync_tick) FROM ${LOOKUP_TABLE} WHERE updated_at_sync_tick < (SELECT MIN(lookup_end_tick) FROM ${TICKS_TABLE})`,
  ],
} as const;

/** The record types of the seed's migrations 1 and 2. */
export const PATIENT_PROGRAM_REGISTRATION_TYPES = ['patient_program_registrations', 'patient_program_registration_conditions'];

/**
 * Migrations 1 and 2: every facility re-pulls every patient program registration and condition, and the
 * lookup matches their sources, without rewriting the source rows (see `resyncRecordTypes`).
 *
 * @example
 * // in an umzug/Sequelize migration
 * up: async () => { await resyncPatientProgramRegistrations(pool); }
 */
export async function resyncPatientProgramRegistrations(
  target: MaintenanceTarget, options: Omit<RebuildOptions, 'types' | 'repull'> = {},
): Promise<OperationResult> {
  return resyncRecordTypes(target, { ...options, types: PATIENT_PROGRAM_REGISTRATION_TYPES });
}

/** What migration 3's helper did: the purge, then the rebuild. */
export interface PrescriptionsChangeResult {
  purge: OperationResult;
  rebuild: OperationResult;
  duration_ms: number;
  vacuum_ms: number;
}

/**
 * Migration 3: remove the legacy `encounter_medications` rows and re-materialise `prescriptions` and
 * `encounter_prescriptions` from their (changed) sources: only rows that differ get a fresh tick, so
 * facilities download exactly the corrections. Pass `repull: true` to make them download everything again.
 *
 * @example
 * const r = await rebuildForPrescriptionsChange(pool);
 * console.log(r.purge.rows_deleted, r.rebuild.rows_updated);
 */
export async function rebuildForPrescriptionsChange(
  target: MaintenanceTarget, options: Omit<RebuildOptions, 'types'> & Pick<PurgeOptions, 'registry'> = {},
): Promise<PrescriptionsChangeResult> {
  const purge = await purgeRecordTypes(target, { ...options, types: ['encounter_medications'] });
  // The migration exists because the prescriptions' derivation changed: their `data` may change shape on purpose.
  const rebuild = await rebuildRecordTypes(target, { acceptShapeChange: true, ...options, types: ['prescriptions', 'encounter_prescriptions'] });
  return { purge, rebuild, duration_ms: purge.duration_ms + rebuild.duration_ms, vacuum_ms: purge.vacuum_ms + rebuild.vacuum_ms };
}

/** What migration 4's helper did. */
export interface BackfillInitialTickResult {
  /** True when it inserted the `(-1, end)` row. */
  inserted: boolean;
  /** Why it did or did not. */
  reason: string;
  /** The initial build's end tick it recorded (or found). */
  lookup_end_tick: number | null;
  duration_ms: number;
  /** The statements it ran, in order (each an O(1) index probe). */
  statements: string[];
}

/** Migration 4's statements: an index probe each, never a count or a scan. */
export const BACKFILL_SQL = {
  /** The earliest build: the first row of the ticks table's primary key. */
  firstBuild: `SELECT source_start_tick::text AS start, lookup_end_tick::text AS end_tick FROM ${TICKS_TABLE} ORDER BY lookup_end_tick LIMIT 1`,
  /** Emptiness by EXISTS: stops at the first row, where `count(*) = 0` reads them all. */
  hasRows: `SELECT EXISTS (SELECT 1 FROM ${LOOKUP_TABLE}) AS has_rows`,
  /** The highest published tick below the first recorded build: one backward step on the tick index. */
  maxBelow: `SELECT updated_at_sync_tick::text AS tick FROM ${LOOKUP_TABLE} WHERE updated_at_sync_tick < $1::bigint ORDER BY updated_at_sync_tick DESC LIMIT 1`,
  /** The highest tick overall (no build recorded yet). */
  maxAll: `SELECT updated_at_sync_tick::text AS tick FROM ${LOOKUP_TABLE} ORDER BY updated_at_sync_tick DESC LIMIT 1`,
  insert: `INSERT INTO ${TICKS_TABLE} (source_start_tick, lookup_end_tick) VALUES (-1, $1::bigint) ON CONFLICT (lookup_end_tick) DO NOTHING`,
} as const;

/**
 * Migration 4: records the initial build `(-1, end)` in `sync_lookup_ticks` for a lookup that was built
 * before the ticks table existed. The end tick is the highest lookup tick below the first recorded build
 * (or the highest overall when none is recorded). Emptiness is tested with EXISTS and both maxima come
 * from the tick index (`ORDER BY … DESC LIMIT 1`, a backward index scan): O(1), whatever the table size.
 * Idempotent: when the earliest recorded build already is the initial one, it does nothing.
 *
 * @example
 * const r = await backfillInitialSyncLookupTick(client);
 * if (r.inserted) console.log('initial build recorded at', r.lookup_end_tick);
 */
export async function backfillInitialSyncLookupTick(target: MaintenanceTarget): Promise<BackfillInitialTickResult> {
  const session = await openWorkSession(target, 'backfill-initial-tick');
  const started = performance.now();
  const statements: string[] = [];
  const q = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => {
    statements.push(sql);
    return (await session.query<R>(sql, params)).rows;
  };
  const done = (inserted: boolean, reason: string, tick: number | null): BackfillInitialTickResult =>
    ({ inserted, reason, lookup_end_tick: tick, duration_ms: Math.round(performance.now() - started), statements });
  try {
    return await session.unit(5000, async () => {
      const [first] = await q<{ start: string; end_tick: string }>(BACKFILL_SQL.firstBuild);
      if (first && Number(first.start) === -1) return done(false, 'the initial build is already recorded', Number(first.end_tick));
      const [has] = await q<{ has_rows: boolean }>(BACKFILL_SQL.hasRows);
      if (!has?.has_rows) return done(false, 'sync_lookup is empty: the first build will record the initial tick', null);
      const [max] = first ? await q<{ tick: string }>(BACKFILL_SQL.maxBelow, [first.end_tick]) : await q<{ tick: string }>(BACKFILL_SQL.maxAll);
      const tick = max ? Number(max.tick) : null;
      if (tick === null || tick < 0) return done(false, 'no published lookup row predates the first recorded build', null);
      await q(BACKFILL_SQL.insert, [tick]);
      return done(true, `recorded the initial build at lookup tick ${tick}`, tick);
    });
  } finally {
    await session.close();
  }
}
