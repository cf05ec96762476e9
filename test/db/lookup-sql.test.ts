import { describe, expect, it } from 'vitest';
import { withClient } from '../../src/db/connection.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { setupSourceTables, tockClock } from '../../src/lookup/source.js';
import {
  deleteTombstonedRows, prepareLookupSession, publishStagedRows, pullChunkQuery, recordBuildTick, selectLookupRows,
  upsertLookupRows, verifyModelQuery,
} from '../../src/lookup/sql.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { STAGED_TICK } from '../../src/schema/sync-lookup.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

describe.runIf(hasServer())('lookup SQL builders', () => {
  it('stamp ticks by trigger, upsert staged rows, publish them, pull them and verify them', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const registry = builtinRegistry();
    await withClient(t.db, { purpose: 'test' }, async (c) => {
      await prepareLookupSession(c);
      await setupSourceTables(c, registry);
      await c.query(`insert into patients (id, first_name) values ('00000000-0000-4000-8000-000000000001', 'Ana')`);
      await c.query(`insert into encounters (id, patient_id, facility_id) values
        ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000f1')`);
      await c.query(`insert into notes (id, record_id, content) values ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000002', 'hello')`);
      await c.query(`update notes set content = 'hello again'`);
      const notes = registry.get('notes');
      const { rows: sel } = await c.query(selectLookupRows(notes, { lookupTick: 'source' }).text, selectLookupRows(notes, { lookupTick: 'source' }).values);
      expect(sel).toHaveLength(1);
      expect(sel[0]).toMatchObject({ record_type: 'notes', patient_id: '00000000-0000-4000-8000-000000000001', is_deleted: false });
      expect(sel[0].data.content).toBe('hello again');

      const end = await tockClock(c);
      for (const name of ['patients', 'encounters', 'notes']) {
        const q = upsertLookupRows(registry.get(name), { lookupTick: STAGED_TICK, sinceTick: -1, beforeTick: end, limit: 100 });
        const { rows: [r] } = await c.query(q.text, q.values);
        expect(r.rows).toBe(1);
        expect(r.last_id).toMatch(/^0000/);
        const again = upsertLookupRows(registry.get(name), { lookupTick: STAGED_TICK, sinceTick: -1, beforeTick: end, limit: 100,
          after: { tick: r.last_tick, id: r.last_id } });
        const { rows: [r2] } = await c.query(again.text, again.values);
        expect(r2).toEqual({ rows: 0, last_tick: null, last_id: null });
      }
      const pub = publishStagedRows(end);
      expect((await c.query(pub.text, pub.values)).rowCount).toBe(3);
      const tick = recordBuildTick({ sourceStartTick: -1, lookupEndTick: end });
      await c.query(tick.text, tick.values);

      const pull = pullChunkQuery({ sinceTick: -1, types: registry.names, patients: ['00000000-0000-4000-8000-000000000001'], limit: 10 });
      expect((await c.query(pull.text, pull.values)).rows.map((r) => r.record_type).sort()).toEqual(['encounters', 'notes', 'patients']);
      const none = pullChunkQuery({ sinceTick: -1, types: registry.names, patients: ['someone-else'], facilities: ['x'], limit: 10 });
      expect((await c.query(none.text, none.values)).rows).toEqual([]);

      for (const m of registry.models) {
        const v = verifyModelQuery(m, { builtBeforeTick: end });
        expect((await c.query(v.text, v.values)).rows).toEqual([]);
      }
      await c.query(`update notes set content = 'changed behind the lookup''s back'`);
      await c.query(`delete from patients`);
      const vn = verifyModelQuery(notes, { builtBeforeTick: end, tombstones: true });
      const note = ['00000000-0000-4000-8000-000000000003'];
      expect((await c.query(vn.text, vn.values)).rows).toEqual([{ problem: 'pending', count: '1', examples: note, sample: note }]);
      const vp = verifyModelQuery(registry.get('patients'), { builtBeforeTick: end, tombstones: true });
      expect((await c.query(vp.text, vp.values)).rows).toMatchObject([{ problem: 'pending', count: '1' }]);
      const end2 = await tockClock(c);
      const del = deleteTombstonedRows({ types: ['patients'], sinceTick: end - 1, beforeTick: end2 });
      expect((await c.query(del.text, del.values)).rowCount).toBe(1);
    });
  });
});
