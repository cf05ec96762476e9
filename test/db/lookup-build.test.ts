import { describe, expect, it } from 'vitest';
import { withClient } from '../../src/db/connection.js';
import { LockNotAcquiredError } from '../../src/db/errors.js';
import { churnSourceRows } from '../../src/datagen/churn.js';
import { seedDatabase } from '../../src/datagen/seed.js';
import { buildLookup } from '../../src/lookup/build.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { tryBuildLock } from '../../src/lookup/sql.js';
import { REPAIRS, verifyLookup } from '../../src/lookup/verify.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const registry = builtinRegistry();

async function seeded(rows: number, seed: number | string = 1): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await seedDatabase(t.db, { rows, seed, registry });
  return t;
}

async function digest(t: TestDatabase, sql: string): Promise<string> {
  const { rows } = await t.query<{ d: string }>(`select md5(string_agg(x, '|' order by x)) as d from (${sql}) as q(x)`);
  return rows[0]!.d;
}

/** Source rows changed since the last build (the rows the next build must upsert). */
async function changedSourceRows(t: TestDatabase): Promise<number> {
  const union = registry.names.map((n) => `select count(*) as n from ${n} where updated_at_sync_tick >= (select max(lookup_end_tick) from sync_lookup_ticks)`).join(' union all ');
  return (await t.query<{ n: number }>(`select sum(n)::int as n from (${union}) as u`)).rows[0]!.n;
}

describe.runIf(hasServer())('lookup build, seed and verify', () => {
  it('seeds deterministically, records the initial build as (-1, end) and verifies clean', async () => {
    const a = await seeded(3000, 7);
    const b = await seeded(3000, 7);
    const c = await seeded(3000, 8);
    const lookupSql = `select record_type || record_id || data::text || coalesce(patient_id, '') || coalesce(facility_id, '') from sync_lookup`;
    expect(await digest(a, lookupSql)).toBe(await digest(b, lookupSql));
    expect(await digest(a, lookupSql)).not.toBe(await digest(c, lookupSql));

    const { rows: ticks } = await a.query(`select source_start_tick::int as s, lookup_end_tick::int as e from sync_lookup_ticks`);
    expect(ticks).toHaveLength(1);
    expect(ticks[0]!.s).toBe(-1);
    const { rows: [shape] } = await a.query<{ n: number; types: number; staged: number; tick_ok: boolean; fac: number; pat: number; bytes: number }>(
      `select count(*)::int as n, count(distinct record_type)::int as types, count(*) filter (where updated_at_sync_tick = -2)::int as staged,
              bool_and(updated_at_sync_tick between 0 and $1 - 1) as tick_ok, avg((facility_id is not null)::int)::float as fac,
              avg((patient_id is not null)::int)::float as pat, avg(octet_length(data::text))::int as bytes from sync_lookup`, [ticks[0]!.e]);
    expect(shape).toMatchObject({ types: 20, staged: 0, tick_ok: true });
    expect(shape!.n).toBeGreaterThan(2950);
    expect(shape!.n).toBeLessThan(3100);
    expect(shape!.fac).toBeGreaterThan(0.05);
    expect(shape!.fac).toBeLessThan(0.15);
    expect(shape!.pat).toBeGreaterThan(0.9);
    expect(shape!.bytes).toBeGreaterThan(350);
    expect(shape!.bytes).toBeLessThan(700);
    // The lookup heap holds types interleaved (as incremental builds leave it), at their source ticks.
    const { rows: [heap] } = await a.query<{ spread: number; ticks: number }>(
      `select (max((ctid::text::point)[0]) - min((ctid::text::point)[0])) / greatest(1, (select max((ctid::text::point)[0]) from sync_lookup)) as spread,
              count(distinct updated_at_sync_tick)::int as ticks
         from sync_lookup where record_type = 'patient_program_registrations'`);
    expect(heap!.spread).toBeGreaterThan(0.8);
    expect(heap!.ticks).toBeGreaterThan(10);
    // Interleaved, not clustered: the notes are spread over the whole tick range of the source.
    const { rows: [spread] } = await a.query<{ lo: number; hi: number; max: number }>(
      `select min(updated_at_sync_tick)::int as lo, max(updated_at_sync_tick)::int as hi, (select max(updated_at_sync_tick)::int from survey_response_answers) as max from notes`);
    expect(spread!.lo).toBeLessThan(spread!.max * 0.1);
    expect(spread!.hi).toBeGreaterThan(spread!.max * 0.9);

    const v = await verifyLookup(a.db, { registry });
    expect(v).toMatchObject({ ok: true, problems: {} });
    const again = await buildLookup(a.db, { registry });
    expect(again).toMatchObject({ rows: 0, deleted: 0, published: 0, initial: false, sinceTick: ticks[0]!.e - 1 });
  });

  it('keeps verify passing through random inserts, updates, soft and hard deletes (several seeds)', async () => {
    for (const seed of [1, 2, 3]) {
      const t = await seeded(2000, seed);
      let total = { updated: 0, inserted: 0, softDeleted: 0, hardDeleted: 0 };
      for (let round = 0; round < 3; round++) {
        const churn = await churnSourceRows(t.db, { registry, fraction: 0.08, seed: `${seed}-${round}` });
        total = { updated: total.updated + churn.updated, inserted: total.inserted + churn.inserted,
          softDeleted: total.softDeleted + churn.softDeleted, hardDeleted: total.hardDeleted + churn.hardDeleted };
        const before = await verifyLookup(t.db, { registry });
        expect(before.ok).toBe(true); // changes after the last build are pending, not problems
        expect(before.models.reduce((n, m) => n + m.pending, 0)).toBeGreaterThan(0);
        const changed = await changedSourceRows(t);
        const { rows: [gone] } = await t.query<{ n: number }>(
          `select count(*)::int as n from sync_lookup l where exists (select 1 from sync_lookup_tool.tombstones x where x.record_type = l.record_type and x.record_id = l.record_id)`);
        const r = await buildLookup(t.db, { registry, chunkRows: 97 });
        expect(r.rows).toBe(changed);
        expect(r.deleted).toBe(gone!.n);
        const after = await verifyLookup(t.db, { registry });
        expect(after.problems).toEqual({});
        expect(after.models.reduce((n, m) => n + m.pending, 0)).toBe(0);
      }
      expect(total.updated * total.inserted * total.softDeleted * total.hardDeleted).toBeGreaterThan(0);
      const { rows: [counts] } = await t.query<{ lookup: number; tombstones: number }>(
        `select (select count(*)::int from sync_lookup) as lookup, (select count(*)::int from sync_lookup_tool.tombstones) as tombstones`);
      expect(counts!.tombstones).toBe(0);
      const sources = await Promise.all(registry.names.map(async (n) => (await t.query(`select count(*)::int as n from ${n}`)).rows[0]!.n as number));
      expect(counts!.lookup).toBe(sources.reduce((a, b) => a + b, 0));
    }
  });

  it('verify finds missing, extra, differing and staged rows, with examples', async () => {
    const t = await seeded(1500, 4);
    const pick = async (type: string, offset: number) =>
      (await t.query<{ id: string }>(`select record_id as id from sync_lookup where record_type = $1 order by record_id offset $2 limit 1`, [type, offset])).rows[0]!.id;
    const missing = await pick('notes', 0);
    const differs = await pick('notes', 1);
    const filters = await pick('vitals', 0);
    const staged = await pick('encounters', 0);
    await t.query(`delete from sync_lookup where record_type = 'notes' and record_id = $1`, [missing]);
    await t.query(`update sync_lookup set data = '{"tampered": true}' where record_type = 'notes' and record_id = $1`, [differs]);
    await t.query(`update sync_lookup set patient_id = 'someone-else' where record_type = 'vitals' and record_id = $1`, [filters]);
    await t.query(`update sync_lookup set updated_at_sync_tick = -2 where record_type = 'encounters' and record_id = $1`, [staged]);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) values ('ghost', 'notes', '{}', 1), ('x', 'no_such_model', '{}', 1)`);
    const v = await verifyLookup(t.db, { registry });
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual({
      missing: { count: 1, examples: [`notes:${missing}`], repair: REPAIRS.missing },
      data_differs: { count: 1, examples: [`notes:${differs}`], repair: REPAIRS.data_differs },
      filters_differ: { count: 1, examples: [`vitals:${filters}`], repair: REPAIRS.filters_differ },
      staged: { count: 1, examples: [`encounters:${staged}`], repair: REPAIRS.staged },
      extra: { count: 1, examples: ['notes:ghost'], repair: REPAIRS.extra },
      unknown_type: { count: 1, examples: ['no_such_model:*'], repair: REPAIRS.unknown_type },
    });
    // Which columns differ, over the differing rows: every key of the tampered note's data, and the vitals' patient.
    expect(v.models.find((m) => m.model === 'vitals')!.differences).toEqual([{ column: 'patient_id', rows: 1 }]);
    expect(v.models.find((m) => m.model === 'notes')!.differences).toContainEqual({ column: 'data.tampered', rows: 1 });
    expect(v.models.find((m) => m.model === 'notes')!.problems).toMatchObject({ missing: { count: 1 }, extra: { count: 1 } });
    const onlyVitals = await verifyLookup(t.db, { registry, types: ['vitals'] });
    expect(Object.keys(onlyVitals.problems)).toEqual(['filters_differ']);
  });

  it('refuses to run two builds at once', async () => {
    const t = await seeded(300, 5);
    await withClient(t.db, { purpose: 'test' }, async (c) => {
      expect(await tryBuildLock(c)).toBe(true);
      // A build waits for the lock (a rebuild batch releases it soon); one that never comes is refused after the wait.
      const started = Date.now();
      await expect(buildLookup(t.db, { registry, buildLockWaitMs: 500 })).rejects.toBeInstanceOf(LockNotAcquiredError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    });
    await expect(buildLookup(t.db, { registry })).resolves.toMatchObject({ rows: 0 });
  });

  it('removes hard-deleted rows through tombstones and re-adds a record inserted again with the same id', async () => {
    const t = await seeded(500, 6);
    const { rows: [n] } = await t.query<{ id: string }>(`select id::text from notes order by id limit 1`);
    const row = (await t.query(`select * from notes where id = $1`, [n!.id])).rows[0]!;
    await t.query(`delete from notes where id = $1`, [n!.id]);
    let r = await buildLookup(t.db, { registry });
    expect(r).toMatchObject({ deleted: 1, rows: 0 });
    expect((await t.query(`select 1 from sync_lookup where record_type = 'notes' and record_id = $1`, [n!.id])).rowCount).toBe(0);
    // Delete and re-insert between two builds: the record must end up present.
    await t.query(`insert into notes (id, record_id, content) values ($1, $2, 'back')`, [n!.id, row.record_id]);
    await t.query(`delete from notes where id = $1`, [n!.id]);
    await t.query(`insert into notes (id, record_id, content) values ($1, $2, 'back again')`, [n!.id, row.record_id]);
    r = await buildLookup(t.db, { registry });
    expect(r.rows).toBe(1);
    const { rows: [l] } = await t.query(`select data from sync_lookup where record_type = 'notes' and record_id = $1`, [n!.id]);
    expect(l!.data.content).toBe('back again');
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
  });
});
