import { describe, expect, it } from 'vitest';
import { churnSourceRows } from '../../src/datagen/churn.js';
import { seedDatabase } from '../../src/datagen/seed.js';
import { buildLookup } from '../../src/lookup/build.js';
import { pullSummary } from '../../src/lookup/pull.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { verifyLookup } from '../../src/lookup/verify.js';
import { convertLayout } from '../../src/maintenance/convert.js';
import { finishConversion, planConvert, rollbackConversion } from '../../src/maintenance/convert-end.js';
import { withClient } from '../../src/db/connection.js';
import { detectLayout } from '../../src/schema/partitioned.js';
import { createOrigin, originRegistry } from './origin-fixture.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const registry = builtinRegistry();
/** The types the writer churns; the others must come through the conversion untouched. */
const CHURNED = ['notes', 'encounters', 'vitals'];
const STABLE = ['patients', 'users', 'reference_data', 'survey_response_answers'];

/** id → the row's text (every column), for the given types. */
async function rowsById(t: TestDatabase, types?: string[]): Promise<Map<string, string>> {
  const { rows } = await t.query<{ id: string; r: string }>(
    `select id::text as id, (l.*)::text as r from sync_lookup l where $1::text[] is null or record_type = any($1::text[])`, [types ?? null]);
  return new Map(rows.map((r) => [r.id, r.r]));
}

async function layoutOf(t: TestDatabase): Promise<string> {
  return withClient(t.db, { purpose: 'test' }, (c) => detectLayout(c));
}

/** A build loop with a writer before each build, and a pull loop of the stable types; both run until stopped. */
function traffic(t: TestDatabase, stableCounts: Record<string, number>) {
  let stop = false;
  const errors: unknown[] = [];
  const stats = { builds: 0, pulls: 0, partial: [] as string[] };
  const writer = (async () => {
    for (let round = 0; !stop; round++) {
      try {
        await churnSourceRows(t.db, { registry, types: CHURNED, fraction: 0.01, seed: `c${round}`, mix: { update: 0.5, insert: 0.3, softDelete: 0.1, hardDelete: 0.1 } });
        await buildLookup(t.db, { registry });
        stats.builds++;
      } catch (err) { errors.push(err); }
    }
  })();
  const puller = (async () => {
    while (!stop) {
      try {
        const s = await pullSummary(t.db, { registry, sinceTick: -1, types: [...STABLE, ...CHURNED], chunkRows: 3000 });
        for (const type of STABLE) if ((s.types[type] ?? 0) !== stableCounts[type]) stats.partial.push(`${type}: ${s.types[type]} of ${stableCounts[type]}`);
        stats.pulls++;
      } catch (err) { errors.push(err); }
    }
  })();
  return { errors, stats, stop: async () => { stop = true; await Promise.all([writer, puller]); } };
}

describe.runIf(hasServer())('convert', () => {
  it('converts a seeded plain table to partitioned while builds, a writer and pulls run; rollback brings the plain table back with every row', async () => {
    const t = await createTestDatabase();
    await seedDatabase(t.db, { rows: 50_000, seed: 3, registry });
    const stable = await rowsById(t, STABLE);
    const { rows: counts } = await t.query<{ record_type: string; n: number }>(`select record_type, count(*)::int as n from sync_lookup group by 1`);
    const stableCounts = Object.fromEntries(counts.map((c) => [c.record_type, c.n]));
    const plan = await planConvert(t.db, { to: 'partitioned', registry });
    expect(plan).toMatchObject({ from_layout: 'plain', to_layout: 'partitioned', estimated_rows: expect.any(Number) });
    expect(plan.disk_needed_bytes).toBeGreaterThan(plan.table_bytes);

    const load = traffic(t, stableCounts);
    const events: string[] = [];
    const r = await convertLayout(t.db, { to: 'partitioned', registry, batchMs: 30, initialBatchRows: 2000, onEvent: (e) => events.push(e.type === 'phase' ? e.phase : e.type) });
    await new Promise((res) => setTimeout(res, 300));
    await load.stop();

    expect(load.errors).toEqual([]);
    expect(load.stats.partial).toEqual([]);
    expect(load.stats.pulls).toBeGreaterThan(2);
    expect(load.stats.builds).toBeGreaterThan(1);
    expect(r).toMatchObject({ from_layout: 'plain', layout: 'partitioned', verified: true });
    expect(r.rows_copied).toBeGreaterThanOrEqual(50_000 - 10);
    expect(r.changes_applied).toBeGreaterThan(0);
    expect(events).toEqual(expect.arrayContaining(['capture', 'copy', 'progress', 'index', 'verify', 'swapped']));
    expect(await layoutOf(t)).toBe('partitioned');
    await buildLookup(t.db, { registry });
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
    expect(await rowsById(t, STABLE)).toEqual(stable);

    // After the swap, writes go on (captured for a rollback); rolling back brings them to the plain table.
    const converted = traffic(t, stableCounts);
    await new Promise((res) => setTimeout(res, 500));
    const beforeRollback = rollbackConversion(t.db);
    const rb = await beforeRollback;
    await converted.stop();
    expect(converted.errors).toEqual([]);
    expect(rb).toMatchObject({ action: 'rollback', layout: 'plain', swapped_back: true, verified: true });
    expect(await layoutOf(t)).toBe('plain');
    await buildLookup(t.db, { registry });
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
    expect(await rowsById(t, STABLE)).toEqual(stable);
    const { rows: [seq] } = await t.query<{ next: string; max: string }>(`select nextval('sync_lookup_id_seq')::text as next, (select max(id) from sync_lookup)::text as max`);
    expect(BigInt(seq!.next)).toBeGreaterThan(BigInt(seq!.max));
    await expect(finishConversion(t.db)).rejects.toMatchObject({ code: 'no_conversion' });
  });

  it('keeps the origin host\'s names, triggers and sequence; a host trigger that flags rows during the copy is honoured', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, 1500);
    const origin = await originRegistry();
    await t.query(`create table lookup_audit (id bigint, op text);
      create function audit_lookup() returns trigger language plpgsql as $$ begin insert into lookup_audit values (new.id, tg_op); return null; end $$;
      create trigger sync_lookup_audit after insert on sync_lookup for each row execute function audit_lookup()`);
    const before = await rowsById(t);
    const { rows: ix } = await t.query<{ n: string }>(`select indexname as n from pg_indexes where tablename = 'sync_lookup' order by 1`);
    // During the copy, a migration-time write (syncTrigger disabled) flags existing rows and stubs a new one, and a
    // hard delete flags another: the host's own triggers write into sync_lookup.
    let flagging: Promise<unknown> | undefined;
    const flag = async () => {
      await t.query(`update local_system_facts set value = 'disabled' where key = 'syncTrigger'`);
      await t.query(`update patients set first_name = first_name || '!' where display_id in ('P000007', 'P001400')`);
      await t.query(`insert into patients (id, display_id, sex) values ('new-patient', 'P999999', 'male')`);
      await t.query(`delete from lab_requests where id = 'lab-3'`);
      await t.query(`update local_system_facts set value = 'enabled' where key = 'syncTrigger'`);
    };
    const r = await convertLayout(t.db, {
      to: 'partitioned', registry: origin, batchMs: 10, initialBatchRows: 300, pauseMs: 30,
      onEvent: (e) => { if (e.type === 'progress' && e.phase === 'copy' && !flagging) flagging = flag(); },
    });
    await flagging;
    expect(flagging).toBeDefined();
    expect(r).toMatchObject({ verified: true, layout: 'partitioned' });
    expect(r.changes_applied).toBeGreaterThanOrEqual(4);
    const { rows: flags } = await t.query<{ k: string; data: unknown; tick: string }>(
      `select record_type || ':' || record_id as k, data, updated_at_sync_tick::text as tick from sync_lookup where needs_rebuild order by 1`);
    expect(flags.map((f) => f.k)).toEqual([
      'lab_requests:lab-3', `patients:${(await t.query(`select id from patients where display_id = 'P000007'`)).rows[0]!.id}`,
      `patients:${(await t.query(`select id from patients where display_id = 'P001400'`)).rows[0]!.id}`, 'patients:new-patient',
    ].sort());
    expect(flags.find((f) => f.k === 'patients:new-patient')).toMatchObject({ data: null, tick: '0' });
    // Every other row: id, tick and every column unchanged.
    const after = await rowsById(t);
    const flaggedIds = new Set((await t.query<{ id: string }>(`select id::text as id from sync_lookup where needs_rebuild`)).rows.map((x) => x.id));
    for (const [id, row] of before) if (!flaggedIds.has(id)) expect(after.get(id)).toBe(row);
    expect(after.size).toBe(before.size + 1);
    // The host's index and constraint names, its trigger on sync_lookup, and the id sequence.
    const { rows: ix2 } = await t.query<{ n: string }>(`select indexname as n from pg_indexes where tablename = 'sync_lookup' order by 1`);
    expect(ix2).toEqual(ix);
    const auditBefore = Number((await t.query(`select count(*) as n from lookup_audit`)).rows[0]!.n);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) values ('x1', 'notes', '{}', 5)`);
    expect(Number((await t.query(`select count(*) as n from lookup_audit`)).rows[0]!.n)).toBe(auditBefore + 1);
    const { rows: [seq] } = await t.query<{ owner: string; id: string; max: string }>(
      `select pg_get_serial_sequence('sync_lookup', 'id') as owner, (select id::text from sync_lookup where record_id = 'x1') as id,
              (select max(id)::text from sync_lookup where record_id <> 'x1') as max`);
    expect(seq!.owner).toBe('public.sync_lookup_id_seq');
    expect(BigInt(seq!.id)).toBeGreaterThan(BigInt(seq!.max));
    const f = await finishConversion(t.db);
    expect(f).toMatchObject({ action: 'finish', layout: 'partitioned', dropped_table: 'sync_lookup_tool.sync_lookup_previous' });
    expect((await t.query(`select to_regclass('sync_lookup_tool.sync_lookup_previous') as t`)).rows[0]!.t).toBeNull();
    expect((await t.query(`select count(*)::int as n from pg_trigger where tgname like 'sync_lookup_convert%'`)).rows[0]!.n).toBe(0);
  });

  it('converts a partitioned table to plain and finishes while multi-chunk pulls of every type run: no pull fails or deadlocks', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: registry.names }) });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select 'r' || g, (array['notes','encounters','vitals','patients','users'])[1 + g % 5], json_build_object('n', g), g from generate_series(1, 30000) g`);
    await t.query(`insert into sync_lookup_ticks values (-1, 40000)`);
    const before = await rowsById(t);
    let stop = false;
    const errors: unknown[] = [];
    let pulls = 0;
    const puller = (async () => {
      while (!stop) {
        try {
          const s = await pullSummary(t.db, { registry, sinceTick: -1, types: ['notes', 'encounters', 'vitals', 'patients', 'users'], chunkRows: 700 });
          expect(s.rows).toBe(30000);
          pulls++;
        } catch (err) { errors.push(err); }
      }
    })();
    const r = await convertLayout(t.db, { to: 'plain', registry, batchMs: 20, initialBatchRows: 1000 });
    const f = await finishConversion(t.db);
    stop = true;
    await puller;
    expect(errors).toEqual([]);
    expect(pulls).toBeGreaterThan(2);
    expect(r).toMatchObject({ layout: 'plain', verified: true });
    expect(f.dropped_table).toBe('sync_lookup_tool.sync_lookup_previous');
    expect(await layoutOf(t)).toBe('plain');
    expect(await rowsById(t)).toEqual(before);
  });
});
