import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { CancelledError, ConfigError } from '../../src/db/errors.js';
import { pullChunkQuery } from '../../src/lookup/sql.js';
import { buildLookup } from '../../src/lookup/build.js';
import { REPAIRS, verifyLookup } from '../../src/lookup/verify.js';
import { listJobs } from '../../src/maintenance/jobs.js';
import { planRebuild, rebuildRecordTypes, resyncRecordTypes } from '../../src/maintenance/rebuild.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { COUNTS, lookupCounts, seedSmall, verifyProblems } from './maintenance-fixtures.js';

async function ticks(t: TestDatabase, type: string): Promise<Map<string, number>> {
  const { rows } = await t.query<{ record_id: string; tick: string }>(
    `select record_id, updated_at_sync_tick::text as tick from sync_lookup where record_type = $1`, [type]);
  return new Map(rows.map((r) => [r.record_id, Number(r.tick)]));
}

/** Changes sources behind the lookup's back (triggers off, as a data migration might): the lookup goes stale. */
async function driftSources(t: TestDatabase): Promise<void> {
  await t.query(`alter table prescriptions disable trigger user`);
  await t.query(`update prescriptions set notes = 'changed by a migration' where id in (select id from prescriptions order by id limit 10)`);
  await t.query(`delete from prescriptions where id in (select id from prescriptions order by id desc limit 7)`);
  await t.query(`insert into prescriptions (id, patient_id, dose_amount, updated_at_sync_tick) select md5('new' || g)::uuid, md5('patients1')::uuid, '5', 0 from generate_series(1, 4) g`);
  await t.query(`alter table prescriptions enable trigger user`);
}

describe.runIf(hasServer())('rebuild and resync', () => {
  for (const layout of ['plain', 'partitioned'] as const) {
    it(`rebuild (${layout}): writes only what differs, removes rows whose source is gone, verify passes`, async () => {
      const t = await createTestDatabase();
      const reg = await seedSmall(t, layout);
      expect(await verifyProblems(t, reg)).toEqual({});
      const noop = await rebuildRecordTypes(t.db, { types: ['prescriptions'], registry: reg });
      expect(noop).toMatchObject({ rows_inserted: 0, rows_updated: 0, rows_deleted: 0, strategy: 'in_place_upsert', layout });
      expect(noop.vacuum.ran).toBe(false);

      await driftSources(t);
      expect(Object.keys(await verifyProblems(t, reg, ['prescriptions'])).sort())
        .toEqual(['prescriptions:data_differs', 'prescriptions:extra', 'prescriptions:missing']);
      const before = await ticks(t, 'prescriptions');
      const r = await rebuildRecordTypes(t.db, { types: ['prescriptions', 'prescriptions'], registry: reg, batchMs: 10, initialBatchRows: 100 });
      expect(r).toMatchObject({ record_types: ['prescriptions'], rows_inserted: 4, rows_updated: 10, rows_deleted: 7, resumed: false });
      expect(r.rows_affected).toBe(21);
      expect(await verifyProblems(t, reg)).toEqual({});
      const after = await ticks(t, 'prescriptions');
      const maxBefore = Math.max(...before.values());
      let kept = 0;
      let fresh = 0;
      for (const [id, tick] of after) {
        if (before.get(id) === tick) kept++;
        else { expect(tick).toBeGreaterThan(maxBefore); fresh++; }
      }
      expect(fresh).toBe(14);
      expect(kept).toBe(COUNTS.prescriptions! - 10 - 7);
      if (layout === 'partitioned') expect(r.vacuum.targets).toEqual(['public.sync_lookup_p_prescriptions']);
    });
  }

  it('the command verify names for each kind of difference repairs it', async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t);
    await t.query(`update sync_lookup set patient_id = 'wrong' where record_type = 'prescriptions' and id in (select id from sync_lookup where record_type = 'prescriptions' order by id limit 3)`);
    // Four notes changed (stamped at the clock's tick, above 0) and built; then their lookup rows fall below that tick.
    const { rows: changed } = await t.query<{ id: string }>(`update notes set content = content || '!' where id in (select id from notes order by id limit 4) returning id::text`);
    await buildLookup(t.db, { registry: reg });
    await t.query(`update sync_lookup set updated_at_sync_tick = 0 where record_type = 'notes' and record_id = any($1::text[])`, [changed.map((r) => r.id)]);
    const before = await verifyLookup(t.db, { registry: reg });
    expect(before.problems.filters_differ).toMatchObject({ count: 3, repair: REPAIRS.filters_differ });
    expect(before.problems.tick_behind_source).toMatchObject({ count: 4, repair: REPAIRS.tick_behind_source });
    expect(before.models.find((m) => m.model === 'prescriptions')!.differences).toEqual([{ column: 'patient_id', rows: 3 }]);
    for (const [kind, types] of [['filters_differ', ['prescriptions']], ['tick_behind_source', ['notes']]] as const) {
      expect(REPAIRS[kind]).toMatch(/^sync-lookup rebuild/);
      await rebuildRecordTypes(t.db, { types: [...types], registry: reg, vacuum: false });
    }
    expect((await verifyLookup(t.db, { registry: reg })).ok).toBe(true);
  });

  for (const layout of ['plain', 'partitioned'] as const) {
    it(`resync (${layout}): every row of the types gets a fresh tick, sources untouched, verify passes`, async () => {
      const t = await createTestDatabase();
      const reg = await seedSmall(t, layout);
      const types = ['patient_program_registrations', 'patient_program_registration_conditions'];
      const total = COUNTS.patient_program_registrations! + COUNTS.patient_program_registration_conditions!;
      const { rows: [src] } = await t.query<{ s: string }>(`select sum(updated_at_sync_tick)::text as s from patient_program_registrations`);
      const { rows: ids } = await t.query<{ id: string; record_id: string }>(`select id::text, record_id from sync_lookup where record_type = any($1) order by 1`, [types]);
      const { rows: [top] } = await t.query<{ m: string }>(`select max(updated_at_sync_tick)::text as m from sync_lookup`);
      const { rows: [published] } = await t.query<{ m: string }>(`select max(lookup_end_tick)::text as m from sync_lookup_ticks`);
      const r = await resyncRecordTypes(t.db, { types, registry: reg });
      expect(r.operation).toBe('resync');
      const { rows: stale } = await t.query(`select 1 from sync_lookup where record_type = any($1) and updated_at_sync_tick <= $2`, [types, top!.m]);
      expect(stale).toEqual([]);
      const { rows: [src2] } = await t.query<{ s: string }>(`select sum(updated_at_sync_tick)::text as s from patient_program_registrations`);
      expect(src2!.s).toBe(src!.s);
      expect(await verifyProblems(t, reg)).toEqual({});
      const { rows: ids2 } = await t.query<{ id: string; record_id: string }>(`select id::text, record_id from sync_lookup where record_type = any($1) order by 1`, [types]);
      if (layout === 'plain') {
        expect(r.rows_updated).toBe(total);
        expect(r.rows_inserted + r.rows_deleted).toBe(0);
        expect(ids2).toEqual(ids);
        expect(r.vacuum.ran).toBe(true);
        return;
      }
      // Partitioned: each type's own partition was refilled and swapped in. New ids, all above the old ones (an id-cursor
      // pull in progress meets every new row after its cursor), the same records, at one tick above every published end tick.
      expect(r.strategies.map((s) => s.strategy)).toEqual(['shadow_swap', 'shadow_swap']);
      expect(r.rows_inserted).toBe(total);
      expect(ids2.map((x) => x.record_id).sort()).toEqual(ids.map((x) => x.record_id).sort());
      expect(Math.min(...ids2.map((x) => Number(x.id)))).toBeGreaterThan(Math.max(...ids.map((x) => Number(x.id))));
      const { rows: tickRows } = await t.query<{ tick: string }>(
        `select distinct updated_at_sync_tick::text as tick from sync_lookup where record_type = any($1)`, [types]);
      for (const x of tickRows) expect(Number(x.tick)).toBeGreaterThan(Number(published!.m));
      // The swapped-in tables carry the partitions' names, bounds and every index; no dead tuples, nothing left behind.
      const { rows: parts } = await t.query<{ name: string; bound: string; indexes: number }>(
        `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound,
                (select count(*)::int from pg_index i where i.indrelid = c.oid) as indexes
           from pg_class c where c.relname = any($1) and c.relispartition order by 1`,
        [['sync_lookup_p_patient_program_registration_conditions', 'sync_lookup_p_patient_program_registrations']]);
      const { rows: [other] } = await t.query<{ indexes: number }>(
        `select count(*)::int as indexes from pg_index where indrelid = 'sync_lookup_p_notes'::regclass`);
      expect(parts.map((x) => [x.name, x.bound, x.indexes])).toEqual([
        ['sync_lookup_p_patient_program_registration_conditions', "FOR VALUES IN ('patient_program_registration_conditions')", other!.indexes],
        ['sync_lookup_p_patient_program_registrations', "FOR VALUES IN ('patient_program_registrations')", other!.indexes],
      ]);
      const { rows: dead } = await t.query<{ n: number }>(
        `select coalesce(sum(n_dead_tup), 0)::int as n from pg_stat_user_tables where relname like 'sync_lookup_p_patient_program%'`);
      expect(dead[0]!.n).toBe(0);
      const { rows: leftovers } = await t.query(`select relname from pg_class where relname like 'sync_lookup%shadow%'`);
      expect(leftovers).toEqual([]);
      expect(r.vacuum.ran).toBe(false);
      // Again (the seed's migrations 1 and 2 resync the same types twice): the same again, index names kept.
      const { rows: names } = await t.query(`select indexrelid::regclass::text as name from pg_index where indrelid = 'sync_lookup_p_patient_program_registrations'::regclass order by 1`);
      const again = await resyncRecordTypes(t.db, { types, registry: reg });
      expect(again.rows_inserted).toBe(total);
      expect(await verifyProblems(t, reg)).toEqual({});
      expect((await t.query(`select indexrelid::regclass::text as name from pg_index where indrelid = 'sync_lookup_p_patient_program_registrations'::regclass order by 1`)).rows).toEqual(names);
      expect((await t.query(`select conname from pg_constraint where conname = 'sync_lookup_shadow_type'`)).rows).toEqual([]);
    });
  }

  it('resync (repull) after sources drifted: rewrites every row with a source, removes rows whose source is gone, verify passes', async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t, 'plain');
    await driftSources(t);
    const r = await resyncRecordTypes(t.db, { types: ['prescriptions'], registry: reg, batchMs: 10, initialBatchRows: 100 });
    // The stale phase of a repull looks only below its first tick: the 7 rows whose source is gone are there.
    expect(r).toMatchObject({ rows_inserted: 4, rows_updated: COUNTS.prescriptions! - 7, rows_deleted: 7 });
    expect(await verifyProblems(t, reg)).toEqual({});
  });

  for (const layout of ['plain', 'partitioned'] as const) it(`concurrent pulls during a resync (${layout}) never miss a row and never see a staged one`, async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t, layout);
    const types = ['notes', 'encounters'];
    const expected = COUNTS.notes! + COUNTS.encounters!;
    const puller = new pg.Client({ connectionString: t.url });
    await puller.connect();
    let done = false;
    let pulls = 0;
    const seen: number[] = [];
    const pulling = (async () => {
      while (!done) {
        // A complete initial pull, chunked by the id cursor, as a facility does it.
        let afterId: string | undefined;
        let n = 0;
        for (;;) {
          const q = pullChunkQuery({ sinceTick: -1, types, limit: 500, ...(afterId ? { afterId } : {}) });
          const { rows } = await puller.query<{ id: string; updated_at_sync_tick: string }>(q.text, q.values);
          for (const row of rows) expect(Number(row.updated_at_sync_tick)).toBeGreaterThanOrEqual(0);
          n += rows.length;
          if (rows.length < 500) break;
          afterId = rows[rows.length - 1]!.id;
        }
        seen.push(n);
        pulls++;
      }
    })();
    try {
      const r = await resyncRecordTypes(t.db, { types, registry: reg, batchMs: 5, initialBatchRows: 100 });
      expect(r.batches).toBeGreaterThan(layout === 'plain' ? 3 : 1);
    } finally {
      done = true;
      await pulling;
      await puller.end();
    }
    expect(pulls).toBeGreaterThan(2);
    // A pull that straddles a swap meets the type's rows twice (old ids before its cursor, new ids after it); never fewer.
    expect(Math.min(...seen)).toBe(expected);
    if (layout === 'plain') expect(new Set(seen)).toEqual(new Set([expected]));
    expect(await verifyProblems(t, reg)).toEqual({});
  });

  it('a resync cancelled mid-way resumes without losing or duplicating rows', async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t, 'plain');
    const controller = new AbortController();
    let events = 0;
    const err = await resyncRecordTypes(t.db, {
      types: ['notes'], registry: reg, batchMs: 1, initialBatchRows: 100, signal: controller.signal,
      onProgress: () => { if (++events === 3) controller.abort(); },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const [job] = await listJobs(t.db);
    expect(job).toMatchObject({ status: 'interrupted', operation: 'resync' });
    const r = await resyncRecordTypes(t.db, { types: ['notes'], registry: reg, batchMs: 50 });
    expect(r.resumed).toBe(true);
    expect(r.rows_updated).toBe(COUNTS.notes);
    const counts = await lookupCounts(t);
    expect(counts.notes).toBe(COUNTS.notes);
    const { rows } = await t.query(`select record_id from sync_lookup where record_type = 'notes' group by 1 having count(*) > 1`);
    expect(rows).toEqual([]);
    expect(await verifyProblems(t, reg)).toEqual({});
  });

  it('refuses unknown types, types without a source table and hostile names (exit 2), touching nothing', async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t, 'plain', { ...COUNTS, notes: 10, encounters: 10 });
    for (const types of [['nope'], ["prescriptions'; drop table sync_lookup; --"]]) {
      const err = await rebuildRecordTypes(t.db, { types, registry: reg }).catch((e: unknown) => e) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.code).toBe('unknown_record_type');
      expect(err.message).toMatch(/known: .*prescriptions/);
    }
    await t.query('drop table encounter_medications');
    const err = await resyncRecordTypes(t.db, { types: ['encounter_medications'], registry: reg }).catch((e: unknown) => e) as ConfigError;
    expect(err.code).toBe('no_source_table');
    expect(err.message).toMatch(/use purge/);
    expect(await listJobs(t.db, { all: true })).toEqual([]);
  });

  it('--dry-run shows the in-place strategy, the batch SQL and index-backed plans', async () => {
    const t = await createTestDatabase();
    const reg = await seedSmall(t, 'plain');
    await t.query('analyze');
    const plan = await planRebuild(t.db, { types: ['prescriptions'], registry: reg });
    expect(plan.strategy).toBe('in_place_upsert');
    expect(plan.statements).toHaveLength(2);
    expect(plan.statements[0]!.sql).toMatch(/ON CONFLICT \(record_id, record_type\)/);
    expect(plan.statements.every((s) => s.verdict !== 'fail')).toBe(true);
  });
});
