import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { pullSummary } from '../../src/lookup/pull.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { archiveRecordTypes, listArchives } from '../../src/maintenance/archive.js';
import { dropArchives, restoreRecordTypes } from '../../src/maintenance/restore.js';
import { withClient } from '../../src/db/connection.js';
import { convertLayout } from '../../src/maintenance/convert.js';
import { finishConversion } from '../../src/maintenance/convert-end.js';
import type { Layout } from '../../src/schema/partitioned.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const TYPES = ['encounters', 'notes', 'encounter_medications', 'patient_program_registrations'];
const registry = builtinRegistry();

async function setup(layout: Layout, rows = 20_000): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await migrate(t.db, { migrations: builtinMigrations({ layout, partitionTypes: TYPES }) });
  await t.query(
    `insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
     select 'r' || g, (array['encounters','notes','notes','encounters','notes','encounter_medications','notes','legacy_thing'])[1 + g % 8],
            json_build_object('n', g), 100 + g / 500, 'p' || (g % 97)
       from generate_series(1, $1::int) g`, [rows]);
  await t.query(`insert into sync_lookup_ticks values (-1, 1000)`);
  return t;
}

/** Every column of the type's rows, as text, in id order. */
async function rowsOf(t: TestDatabase, type: string): Promise<string[]> {
  const { rows } = await t.query<{ r: string }>(`select (l.*)::text as r from sync_lookup l where record_type = $1 order by id`, [type]);
  return rows.map((r) => r.r);
}

/** Pulls all the time until stopped; records each pull's start and the types it returned. */
function pullLoop(t: TestDatabase) {
  const pulls: { startedAt: number; types: Record<string, number> }[] = [];
  const errors: unknown[] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const startedAt = performance.now();
      try {
        const s = await pullSummary(t.db, { registry, sinceTick: -1, types: ['encounter_medications', 'notes'], chunkRows: 2000 });
        pulls.push({ startedAt, types: s.types });
      } catch (err) { errors.push(err); }
    }
  })();
  return { pulls, errors, stop: async () => { stop = true; await done; } };
}

describe.runIf(hasServer())('archive and restore', () => {
  for (const layout of ['plain', 'partitioned'] as const) {
    it(`round-trips a type on the ${layout} layout with pulls running: no pull after the archive sees it, restored rows identical`, async () => {
      const t = await setup(layout);
      const before = await rowsOf(t, 'encounter_medications');
      const notes = await rowsOf(t, 'notes');
      const loop = pullLoop(t);
      await new Promise((r) => setTimeout(r, 100));
      const a = await archiveRecordTypes(t.db, { types: ['encounter_medications'], registry, batchMs: 20, initialBatchRows: 300 });
      const archivedAt = performance.now();
      // Until two pulls that started after the archive have finished.
      while (loop.pulls.filter((p) => p.startedAt > archivedAt).length < 2) await new Promise((res) => setTimeout(res, 20));
      const gap = performance.now();
      const archives = await withClient(t.db, { purpose: 'test' }, (c) => listArchives(c));
      const r = await restoreRecordTypes(t.db, { types: ['encounter_medications'], batchMs: 20, initialBatchRows: 300 });
      await new Promise((res) => setTimeout(res, 100));
      await loop.stop();

      expect(loop.errors).toEqual([]);
      expect(a.strategy).toBe(layout === 'plain' ? 'batched_move' : 'detach');
      expect(r.strategy).toBe(layout === 'plain' ? 'batched_move' : 'attach');
      expect(a.rows).toBe(before.length);
      expect(r.rows).toBe(before.length);
      expect(r.superseded_rows).toBe(0);
      expect(archives).toEqual([expect.objectContaining({ record_type: 'encounter_medications', rows: before.length, complete: true })]);
      const inWindow = loop.pulls.filter((p) => p.startedAt > archivedAt && p.startedAt < gap);
      expect(inWindow.length).toBeGreaterThan(0);
      for (const p of inWindow) {
        expect(p.types.encounter_medications ?? 0).toBe(0);
        expect(p.types.notes).toBe(notes.length);
      }
      // Detach / attach: every pull saw the whole type or none of it (a pull is one snapshot, and both wait for pulls
      // in flight). A batched move is seen batch by batch, never a row twice.
      for (const p of loop.pulls) {
        if (layout === 'partitioned') expect([0, before.length]).toContain(p.types.encounter_medications ?? 0);
        else expect(p.types.encounter_medications ?? 0).toBeLessThanOrEqual(before.length);
      }
      expect(await rowsOf(t, 'encounter_medications')).toEqual(before);
      expect(await rowsOf(t, 'notes')).toEqual(notes);
      expect(await withClient(t.db, { purpose: 'test' }, (c) => listArchives(c))).toEqual([]);
      const { rows: left } = await t.query(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'sync_lookup_tool' and relname like 'sync_lookup_p_%' and relkind in ('r','p')`);
      expect(left).toEqual([]);
    });
  }

  it('moves a type without its own partition in batches on the partitioned layout; a newer row written meanwhile wins over the archived one', async () => {
    const t = await setup('partitioned', 8000);
    const before = await rowsOf(t, 'legacy_thing');
    const a = await archiveRecordTypes(t.db, { types: ['legacy_thing'], registry, batchMs: 20, initialBatchRows: 100 });
    expect(a.strategy).toBe('batched_move');
    expect(a.rows).toBe(before.length);
    expect(await rowsOf(t, 'legacy_thing')).toEqual([]);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) values ('r7', 'legacy_thing', '{"new":1}', 5000)`);
    const r = await restoreRecordTypes(t.db, { types: ['legacy_thing'] });
    expect(r.rows).toBe(before.length - 1);
    expect(r.superseded_rows).toBe(1);
    const after = await t.query<{ data: unknown }>(`select data from sync_lookup where record_id = 'r7' and record_type = 'legacy_thing'`);
    expect(after.rows).toEqual([{ data: { new: 1 } }]);
    expect((await rowsOf(t, 'legacy_thing')).length).toBe(before.length);
  });

  it('refuses live types without --force, a type archived twice, and restoring what is not archived; drops archives past retention', async () => {
    const t = await setup('plain', 4000);
    await expect(archiveRecordTypes(t.db, { types: ['notes'], registry })).rejects.toMatchObject({ code: 'live_type' });
    await expect(archiveRecordTypes(t.db, { types: ['notes'], registry, purgeGuards: { registry } })).rejects.toBeInstanceOf(ConfigError);
    expect(await rowsOf(t, 'notes')).toHaveLength(2000);
    await expect(restoreRecordTypes(t.db, { types: ['legacy_thing'] })).rejects.toMatchObject({ code: 'not_archived' });
    await archiveRecordTypes(t.db, { types: ['legacy_thing'], registry });
    await expect(archiveRecordTypes(t.db, { types: ['legacy_thing'], registry })).rejects.toMatchObject({ code: 'already_archived' });
    expect((await dropArchives(t.db, { olderThanDays: 1 })).dropped).toEqual([]);
    await t.query(`update sync_lookup_tool.archives set archived_at = now() - interval '2 days'`);
    const dry = await dropArchives(t.db, { olderThanDays: 1, dryRun: true });
    expect(dry.dropped.map((d) => d.record_type)).toEqual(['legacy_thing']);
    expect(await withClient(t.db, { purpose: 'test' }, (c) => listArchives(c))).toHaveLength(1);
    await dropArchives(t.db, { olderThanDays: 1 });
    expect(await withClient(t.db, { purpose: 'test' }, (c) => listArchives(c))).toEqual([]);
    const { rows } = await t.query(`select to_regclass('sync_lookup_tool.sync_lookup_p_legacy_thing') as t`);
    expect(rows[0]!.t).toBeNull();
  });

  it('refuses to archive or restore while a layout conversion waits for --finish (a detach is invisible to its change capture)', async () => {
    const t = await setup('plain', 4000);
    await archiveRecordTypes(t.db, { types: ['legacy_thing'], registry });
    await convertLayout(t.db, { to: 'partitioned', registry });
    await expect(archiveRecordTypes(t.db, { types: ['encounter_medications'], registry })).rejects.toMatchObject({ code: 'conversion_in_progress' });
    await expect(restoreRecordTypes(t.db, { types: ['legacy_thing'] })).rejects.toMatchObject({ code: 'conversion_in_progress' });
    await finishConversion(t.db);
    const r = await restoreRecordTypes(t.db, { types: ['legacy_thing'] });
    expect(r).toMatchObject({ strategy: 'batched_move', rows: 500, layout: 'partitioned' });
    expect(await rowsOf(t, 'legacy_thing')).toHaveLength(500);
  });
});
