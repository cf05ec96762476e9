import { buildLookup } from '../lookup/build.js';
import {
  SEED_ORIGINAL_SQL, backfillInitialSyncLookupTick, rebuildForPrescriptionsChange, resyncPatientProgramRegistrations,
} from '../maintenance/seed-migrations.js';
import { restoreTypeRows, saveTypeRows, timed, type BenchData } from './dataset.js';
import { originalBackfill, restampSourceSql } from './originals.js';
import type { Scenario, Variant } from './scenario.js';
import { percentile, startTraffic, type Traffic, type TrafficFigures } from './traffic.js';

/*
 * The seed's upgrade: its four migrations as the origin ran them (in the downtime window, one after
 * another, on the table without the record_type index) against sync-lookup's plan for the same upgrade.
 *
 * What must stay in the window, and why (UPGRADE_PLAN): only migration 4. The new server version reads the
 * initial (-1, end) row of sync_lookup_ticks as soon as it serves, so it must exist before then; it is four
 * index probes and one insert. Everything else runs online afterwards, while facilities sync:
 * - migration 3's purge of encounter_medications: a legacy type, never pulled (pulls ask for registered types
 *   only), so its rows can go at any time after the window;
 * - migrations 1 and 2 (resync) and migration 3's rebuild: they publish in short batches at fresh ticks under
 *   the build lock, so a pull sees each row old or new, never missing, and builds wait at most one batch;
 * - the record_type index those need is built CONCURRENTLY before the upgrade (scenario add-record-type-index).
 */

/** Each step of sync-lookup's plan for the seed's upgrade: where it runs and why. */
export const UPGRADE_PLAN = [
  { step: 'migration 4: backfillInitialSyncLookupTick', where: 'window',
    why: 'the new version reads the initial (-1, end) ticks row as soon as it serves; four index probes and one insert' },
  { step: 'record_type index (migration 0002)', where: 'before',
    why: 'CREATE INDEX CONCURRENTLY before the upgrade: writes never wait (see add-record-type-index)' },
  { step: 'migrations 1 and 2: resyncPatientProgramRegistrations', where: 'online',
    why: 'republishes in short batches at fresh ticks under the build lock; pulls see each row old or new, never missing' },
  { step: 'migration 3: rebuildForPrescriptionsChange (purge encounter_medications, rebuild prescriptions)', where: 'online',
    why: 'encounter_medications is a legacy type, never pulled; the rebuild publishes only changed rows, in batches' },
] as const;

/** The types the upgrade touches. */
export const UPGRADE_TYPES = {
  resync: ['patient_program_registrations', 'patient_program_registration_conditions'],
  purge: ['encounter_medications'],
  rebuild: ['prescriptions', 'encounter_prescriptions'],
};

/** How long the fleet pulls on an idle server before the online part (the idle p99's sample). */
export const IDLE_MS = 3_000;

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

function trafficExtra(online: TrafficFigures, idle: TrafficFigures): Record<string, number | null> {
  return {
    pull_p50_ms: round(percentile(online.pullMs, 50)), pull_p99_ms: round(percentile(online.pullMs, 99)),
    pull_max_ms: round(percentile(online.pullMs, 100)), pulls: online.pullMs.length,
    idle_pull_p99_ms: round(percentile(idle.pullMs, 99)), idle_pulls: idle.pullMs.length,
    longest_write_stall_ms: round(online.longestWriteMs), idle_longest_write_ms: round(idle.longestWriteMs),
    build_lag_max_ms: round(online.buildLagMaxMs), unseen_writes: online.unseenWrites,
  };
}

/** Untimed setup the scenario shares with rebuild-type and backfill-initial-tick (scenarios.ts). */
export interface UpgradeHooks {
  /** Saves what `before` restores: migration 3's stale prescriptions and the initial ticks row. */
  prepare(d: BenchData): Promise<void>;
  /** Puts migration 3's "prescriptions changes" in place before each run. */
  before(d: BenchData): Promise<void>;
}

function upgradeBase(hooks: UpgradeHooks): Pick<Variant, 'prepare' | 'before' | 'restore'> {
  return {
    async prepare(d) {
      await saveTypeRows(d, 'resync_types', UPGRADE_TYPES.resync);
      await saveTypeRows(d, 'purge_type', UPGRADE_TYPES.purge);
      await hooks.prepare(d);
    },
    before: (d) => hooks.before(d),
    async restore(d) {
      await restoreTypeRows(d, 'resync_types', UPGRADE_TYPES.resync);
      await restoreTypeRows(d, 'purge_type', UPGRADE_TYPES.purge);
      await d.control.query(`delete from sync_lookup_ticks where source_start_tick = -1`);
      await d.control.query(`insert into sync_lookup_ticks (source_start_tick, lookup_end_tick)
        select source_start_tick, lookup_end_tick from sync_lookup_bench.saved_initial_tick on conflict do nothing`);
    },
  };
}

/** The original: the four migrations in the window, one after another, then the build that re-materialises the rows (online). */
function originalUpgrade(base: Pick<Variant, 'prepare' | 'before' | 'restore'>): Variant {
  return {
    ...base, index: 'absent', vacuum: true,
    plan: async () => 'in the window, one after another: ' +
      'migration 1 and 2: DELETE … WHERE record_type IN (…) on the table without a record_type index, re-stamp both sources; ' +
      'migration 3: DELETE … WHERE record_type = \'encounter_medications\', re-stamp prescriptions and encounter_prescriptions; ' +
      'migration 4: count(*) and two MAX() over the whole table; then the build re-materialises the rows',
    async run(d) {
      await d.control.query(`delete from sync_lookup_ticks where source_start_tick = -1`);
      let affected = 0;
      const window = await timed(async () => {
        for (let m = 1; m <= 2; m++) {
          affected += (await d.control.query(SEED_ORIGINAL_SQL.resyncPatientProgramRegistrations)).rowCount ?? 0;
          for (const t of UPGRADE_TYPES.resync) await d.control.query(restampSourceSql(t));
        }
        affected += (await d.control.query(SEED_ORIGINAL_SQL.rebuildForPrescriptionsChange)).rowCount ?? 0;
        for (const t of UPGRADE_TYPES.rebuild) await d.control.query(restampSourceSql(t));
        affected += await originalBackfill(d.control);
      });
      const online = await timed(() => buildLookup(d.db, { registry: d.registry, acceptShapeChange: true }));
      return { ms: window.ms, rowsAffected: affected + online.value.rows, extra: { window_ms: round(window.ms)!, online_ms: round(online.ms)! } };
    },
  };
}

/** Ours: migration 4 in the window; the rest online while the fleet pulls and the writer writes. */
function ourUpgrade(base: Pick<Variant, 'prepare' | 'before' | 'restore'>): Variant {
  return {
    ...base, index: 'present', vacuum: true,
    plan: async () => UPGRADE_PLAN.map((p) => `${p.where}: ${p.step} (${p.why})`).join('; '),
    async run(d) {
      await d.control.query(`delete from sync_lookup_ticks where source_start_tick = -1`);
      const signal = d.signal ? { signal: d.signal } : {};
      const window = await timed(() => backfillInitialSyncLookupTick(d.control));
      const traffic = startTraffic(d.db, d.registry, d.signal);
      let idle: TrafficFigures;
      let onlineFigures: TrafficFigures;
      let affected = window.value.inserted ? 1 : 0;
      let onlineMs: number;
      try {
        await new Promise((r) => setTimeout(r, IDLE_MS));
        idle = snapshotWindow(traffic);
        const online = await timed(async () => {
          for (let m = 1; m <= 2; m++) affected += (await resyncPatientProgramRegistrations(d.control, { registry: d.registry, vacuum: false, ...signal })).rows_affected;
          const r = await rebuildForPrescriptionsChange(d.control, { registry: d.registry, vacuum: false, ...signal });
          affected += r.purge.rows_affected + r.rebuild.rows_affected;
        });
        onlineMs = online.ms;
      } finally {
        onlineFigures = await traffic.stop();
      }
      return {
        ms: window.ms, rowsAffected: affected,
        extra: { window_ms: round(window.ms)!, online_ms: round(onlineMs)!, ...trafficExtra(onlineFigures, idle) },
      };
    },
  };
}

/** Ends the idle sample and starts the online one (the traffic keeps running). */
function snapshotWindow(traffic: Traffic): TrafficFigures {
  const figures = traffic.peek();
  traffic.mark();
  return figures;
}

/**
 * The `upgrade` scenario (see the module comment).
 *
 * @example
 * const s = upgradeScenario({ prepare, before });
 */
export function upgradeScenario(hooks: UpgradeHooks): Scenario {
  const base = upgradeBase(hooks);
  return {
    name: 'upgrade',
    title: 'the seed\'s four migrations: in the downtime window as the origin ran them vs sync-lookup\'s plan (migration 4 in the window, the rest online while facilities pull and a writer writes)',
    touches: [...UPGRADE_TYPES.resync, ...UPGRADE_TYPES.purge, ...UPGRADE_TYPES.rebuild],
    baseline: originalUpgrade(base),
    ours: ourUpgrade(base),
  };
}
