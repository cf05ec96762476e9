import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { CancelledError, ConfigError, LockNotAcquiredError } from '../../src/db/errors.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { listJobs, lockRecordTypes } from '../../src/maintenance/jobs.js';
import { planPurge, purgeRecordTypes } from '../../src/maintenance/purge.js';
import type { Layout } from '../../src/schema/partitioned.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const TYPES = ['encounters', 'notes', 'encounter_medications', 'patient_program_registrations'];

/** Interleaved lookup rows: type i gets every (i+1)-th slot pattern; counts are returned per type. */
async function fill(t: TestDatabase, rows: number): Promise<Record<string, number>> {
  await t.query(
    `insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
     select 'r' || g, (array['encounters','notes','notes','encounters','notes','encounter_medications','notes','patient_program_registrations'])[1 + g % 8],
            json_build_object('n', g), 100 + g / 500, 'p' || (g % 97)
       from generate_series(1, $1::int) g`, [rows]);
  const { rows: counts } = await t.query<{ record_type: string; n: number }>(
    `select record_type, count(*)::int as n from sync_lookup group by 1`);
  return Object.fromEntries(counts.map((c) => [c.record_type, c.n]));
}

async function setup(layout: Layout, rows = 8000): Promise<{ t: TestDatabase; counts: Record<string, number> }> {
  const t = await createTestDatabase();
  await migrate(t.db, { migrations: builtinMigrations({ layout, partitionTypes: TYPES }) });
  return { t, counts: await fill(t, rows) };
}

async function countOf(t: TestDatabase, type: string): Promise<number> {
  const { rows } = await t.query<{ n: number }>(`select count(*)::int as n from sync_lookup where record_type = $1`, [type]);
  return rows[0]!.n;
}

describe.runIf(hasServer())('purge', () => {
  for (const layout of ['plain', 'partitioned'] as const) {
    it(`removes exactly the named types on the ${layout} layout, with strategy, vacuum and analyze reports`, async () => {
      const { t, counts } = await setup(layout);
      const progress: number[] = [];
      const r = await purgeRecordTypes(t.db, { force: true,
        types: ['encounter_medications', 'patient_program_registrations', 'encounter_medications'], batchMs: 20, initialBatchRows: 200,
        onProgress: (p) => progress.push(p.rows_done),
      });
      const expected = counts.encounter_medications! + counts.patient_program_registrations!;
      expect(r.record_types).toEqual(['encounter_medications', 'patient_program_registrations']);
      expect(r.rows_deleted).toBe(expected);
      expect(r.rows_affected).toBe(expected);
      expect(await countOf(t, 'encounter_medications')).toBe(0);
      expect(await countOf(t, 'patient_program_registrations')).toBe(0);
      expect(await countOf(t, 'notes')).toBe(counts.notes);
      expect(await countOf(t, 'encounters')).toBe(counts.encounters);
      expect(r.strategy).toBe(layout === 'plain' ? 'keyset_batches' : 'partition_truncate');
      expect(r.duration_ms).toBe(r.operation_ms + r.analyze_ms);
      if (layout === 'plain') {
        expect(r.vacuum.ran).toBe(true);
        expect(r.dead_tuples_before).toBeGreaterThanOrEqual(expected);
        expect(r.dead_tuples_after).toBeLessThan(r.dead_tuples_before!);
        expect(progress.length).toBeGreaterThan(0);
        // 2 000 of 8 000 rows: beyond autovacuum's analyze threshold (50 + 10 %), so ANALYZE ran.
        expect(r.analyze.ran).toBe(true);
      } else {
        expect(r.vacuum.ran).toBe(false);
        expect(r.strategies.map((s) => s.partition)).toEqual(['sync_lookup_p_encounter_medications', 'sync_lookup_p_patient_program_registrations']);
      }
      const jobs = await listJobs(t.db, { all: true });
      expect(jobs[0]).toMatchObject({ id: r.job_id, status: 'done', rows_done: expected, operation: 'purge' });
    });
  }

  it('leaves ANALYZE to autovacuum when the change is within its threshold, and says so', async () => {
    const { t } = await setup('plain', 8000);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) values ('x1', 'tiny', '{}', 5), ('x2', 'tiny', '{}', 5)`);
    await t.query('analyze sync_lookup');
    const r = await purgeRecordTypes(t.db, { force: true, types: ['tiny'], vacuum: false });
    expect(r.rows_deleted).toBe(2);
    expect(r.analyze.ran).toBe(false);
    expect(r.analyze.reason).toMatch(/within autovacuum's analyze threshold/);
    expect(r.vacuum).toMatchObject({ ran: false, vacuum_ms: 0 });
  });

  it('purges a type that shares the default partition with keyset batches', async () => {
    const { t } = await setup('partitioned', 2000);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
                   select 'z' || g, case when g % 2 = 0 then 'legacy_a' else 'legacy_b' end, '{}', 7 from generate_series(1, 300) g`);
    const r = await purgeRecordTypes(t.db, { force: true, types: ['legacy_a'], batchMs: 5, initialBatchRows: 100 });
    expect(r.strategy).toBe('keyset_batches');
    expect(r.strategies[0]!.partition).toBe('sync_lookup_p_default');
    expect(r.rows_deleted).toBe(150);
    expect(await countOf(t, 'legacy_b')).toBe(150);
    expect(r.vacuum.targets).toEqual(['public.sync_lookup_p_default']);
  });

  it('refuses unknown and hostile names with exit-2 errors listing known types, touching nothing', async () => {
    const { t, counts } = await setup('plain', 800);
    for (const bad of [['nope'], ["notes'; drop table sync_lookup; --"], ['notes', 'Robert"); drop table x']]) {
      const err = await purgeRecordTypes(t.db, { force: true, types: bad }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('unknown_record_type');
      expect((err as Error).message).toMatch(/known: .*encounter_medications.*notes/);
    }
    expect(await purgeRecordTypes(t.db, { force: true, types: ['a\u0000b'] }).catch((e: unknown) => (e as ConfigError).code)).toBe('invalid_record_type');
    expect(await purgeRecordTypes(t.db, { force: true, types: [] }).catch((e: unknown) => (e as ConfigError).code)).toBe('no_record_types');
    expect(await countOf(t, 'notes')).toBe(counts.notes);
    expect(await listJobs(t.db, { all: true })).toEqual([]);
  });

  it('refuses to run without the record_type index, telling the user to migrate', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations(), to: '0001_baseline' });
    const err = await purgeRecordTypes(t.db, { force: true, types: ['notes'] }).catch((e: unknown) => e) as ConfigError;
    expect(err.code).toBe('record_type_index_missing');
    expect(err.message).toMatch(/sync-lookup migrate/);
  });

  it('a second operation on the same type refuses clearly while the first holds it', async () => {
    const { t } = await setup('plain', 800);
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      const unlock = await lockRecordTypes(holder, ['notes']);
      const err = await purgeRecordTypes(t.db, { force: true, types: ['encounters', 'notes'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockNotAcquiredError);
      expect((err as Error).message).toMatch(/record type "notes" is being changed by another operation/);
      await unlock();
    } finally {
      await holder.end();
    }
  });

  for (const path of ['one bounded batch', 'collected batches'] as const) {
    it(`rows a build publishes (or stages at -2) during the purge are swept (${path})`, async () => {
      const { t, counts } = await setup('plain', 8000);
      // A sync clock ahead of every row: the purge records it under the build lock and sweeps only above it (and -2).
      await t.query(`create schema if not exists sync_lookup_tool`);
      await t.query(`create table sync_lookup_tool.clock (singleton boolean primary key default true check (singleton), tick bigint not null)`);
      await t.query(`insert into sync_lookup_tool.clock values (true, 1000)`);
      let written: Promise<unknown> | undefined;
      let calls = 0;
      const r = await purgeRecordTypes(t.db, { force: true,
        types: ['notes'], vacuum: false, pauseMs: 300, ...(path === 'collected batches' ? { initialBatchRows: 500 } : {}),
        // After the first batch (one bounded batch), or after the first batch of the collected ids (the
        // bounded 500-row batch, then the collection, then this one): the rows are not in any collection.
        onProgress: () => {
          if (++calls < (path === 'one bounded batch' ? 1 : 2)) return;
          written ??= t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
                                values ('late-1', 'notes', '{}', 1001), ('late-2', 'notes', '{}', -2)`);
        },
      });
      await written;
      expect(r.rows_deleted).toBe(counts.notes! + 2);
      // The sweep's batches: one deleting each late row, one finding its range empty.
      if (path === 'one bounded batch') expect(r.batches).toBe(5);
      expect(await countOf(t, 'notes')).toBe(0);
      expect(await countOf(t, 'encounters')).toBe(counts.encounters);
    });
  }

  it('cancelled mid-job, then run again: resumes without redoing batches, losing or duplicating rows', async () => {
    const { t, counts } = await setup('plain', 8000);
    const controller = new AbortController();
    let batches = 0;
    const err = await purgeRecordTypes(t.db, { force: true,
      types: ['notes'], batchMs: 1, initialBatchRows: 100, vacuum: false, signal: controller.signal,
      onProgress: () => { if (++batches === 3) controller.abort(); },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const [job] = await listJobs(t.db);
    expect(job).toMatchObject({ status: 'interrupted', operation: 'purge', record_types: ['notes'] });
    const remaining = await countOf(t, 'notes');
    expect(remaining).toBe(counts.notes! - job!.rows_done);
    expect(remaining).toBeGreaterThan(0);
    const r = await purgeRecordTypes(t.db, { force: true, types: ['notes'], vacuum: false, resume: true });
    expect(r.resumed).toBe(true);
    expect(r.job_id).toBe(job!.id);
    expect(r.rows_deleted).toBe(counts.notes);
    expect(await countOf(t, 'notes')).toBe(0);
    expect(await countOf(t, 'encounters')).toBe(counts.encounters);
    expect(await listJobs(t.db)).toEqual([]);
  });

  it('a killed job (backend terminated) shows as interrupted and the same command finishes it', async () => {
    const { t, counts } = await setup('plain', 8000);
    let killed = false;
    const err = await purgeRecordTypes(t.db, { force: true,
      types: ['encounters'], batchMs: 1, initialBatchRows: 100, vacuum: false,
      onProgress: () => {
        if (killed) return;
        killed = true;
        void t.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sync-lookup:purge'`);
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const [job] = await listJobs(t.db);
    expect(job).toMatchObject({ status: 'interrupted', live: false });
    const r = await purgeRecordTypes(t.db, { force: true, types: ['encounters'], vacuum: false });
    expect(r.resumed).toBe(true);
    expect(r.rows_deleted).toBe(counts.encounters);
    expect(await countOf(t, 'encounters')).toBe(0);
  });

  it('--dry-run reports strategy, estimate, SQL and plans, and changes nothing', async () => {
    const { t, counts } = await setup('plain', 8000);
    await t.query('analyze sync_lookup');
    const plan = await planPurge(t.db, { types: ['encounter_medications'] });
    expect(plan).toMatchObject({ dry_run: true, strategy: 'keyset_batches', record_types: ['encounter_medications'] });
    expect(plan.estimated_rows).toBeGreaterThan(counts.encounter_medications! / 3);
    expect(plan.statements.map((s) => s.verdict)).toEqual(['ok', 'ok', 'ok']);
    expect(plan.statements[0]!.purpose).toMatch(/^first batch: up to 20000 rows/);
    expect(plan.statements[0]!.plan).toMatch(/sync_lookup_record_type_updated_at_sync_tick/);
    expect(plan.statements[1]!.plan).toMatch(/sync_lookup_record_type_updated_at_sync_tick/);
    expect(await countOf(t, 'encounter_medications')).toBe(counts.encounter_medications);
  });

  it('works on a plain pg client and on a pg pool (as a user migration would call it)', async () => {
    const { t, counts } = await setup('plain', 800);
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      const r = await purgeRecordTypes(client, { force: true, types: ['notes'] });
      expect(r.mode).toBe('batches');
      expect(r.rows_deleted).toBe(counts.notes);
      await client.query('begin');
      const r2 = await purgeRecordTypes(client, { force: true, types: ['encounters'] });
      expect(r2.mode).toBe('caller_transaction');
      expect(r2.vacuum.ran).toBe(false);
      await client.query('rollback');
      expect(await countOf(t, 'encounters')).toBe(counts.encounters);
    } finally {
      await client.end();
    }
    const pool = new pg.Pool({ connectionString: t.url, max: 3 });
    try {
      const r = await purgeRecordTypes(pool, { force: true, types: ['encounters'] });
      expect(r.rows_deleted).toBe(counts.encounters);
    } finally {
      await pool.end();
    }
  });
});
