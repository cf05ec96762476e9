import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { churnSourceRows } from '../../src/datagen/churn.js';
import { seedDatabase } from '../../src/datagen/seed.js';
import { buildLookup } from '../../src/lookup/build.js';
import { pullChanges } from '../../src/lookup/pull.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { verifyLookup } from '../../src/lookup/verify.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const registry = builtinRegistry();

async function seeded(rows: number, seed: number): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await seedDatabase(t.db, { rows, seed, registry });
  return t;
}

/** Waits until the build's backend waits on a lock, then returns its pid. */
async function blockedBuildPid(t: TestDatabase): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await t.query<{ pid: number }>(
      `select pid from pg_stat_activity where application_name = 'sync-lookup:build' and wait_event_type = 'Lock' and datname = current_database()`);
    if (rows[0]) return rows[0].pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the build never blocked');
}

/** Opens a session that holds `lockSql` in an open transaction. */
async function holdLock(t: TestDatabase, lockSql: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url });
  await c.connect();
  await c.query('begin');
  await c.query(lockSql);
  return c;
}

async function snapshot(t: TestDatabase): Promise<{ rows: string; ticks: string; staged: number }> {
  const { rows: [s] } = await t.query<{ rows: string; ticks: string; staged: number }>(
    `select (select md5(string_agg(record_type || record_id || updated_at_sync_tick || data::text, '|' order by record_type, record_id)) from sync_lookup) as rows,
            (select string_agg(source_start_tick || ':' || lookup_end_tick, ',' order by lookup_end_tick) from sync_lookup_ticks) as ticks,
            (select count(*)::int from sync_lookup where updated_at_sync_tick = -2) as staged`);
  return s!;
}

describe.runIf(hasServer())('lookup build under concurrency and crashes', () => {
  it('a pull running while builds publish never returns a staged row and never misses a change', async () => {
    const t = await seeded(1500, 11);
    const replica = new Map<string, string>();
    let since = -1;
    let stop = false;
    let pulls = 0;
    let pulledRows = 0;
    const pullOnce = async () => {
      let until: number | null = null;
      for await (const chunk of pullChanges(t.db, { registry, sinceTick: since, chunkRows: 173 })) {
        until = chunk.untilTick;
        for (const r of chunk.rows) {
          expect(Number(r.updated_at_sync_tick)).toBeGreaterThan(since);
          expect(Number(r.updated_at_sync_tick)).not.toBe(-2);
          replica.set(`${r.record_type}:${r.record_id}`, JSON.stringify(r.data));
          pulledRows++;
        }
      }
      if (until !== null) since = until;
      pulls++;
    };
    const puller = (async () => { while (!stop) await pullOnce(); })();
    const writer = (async () => {
      for (let round = 0; round < 6; round++) {
        await churnSourceRows(t.db, { registry, fraction: 0.05, seed: `w${round}`, mix: { update: 0.6, insert: 0.3, softDelete: 0.1, hardDelete: 0 } });
        await buildLookup(t.db, { registry, chunkRows: 50 });
      }
    })();
    await writer;
    stop = true;
    await puller;
    await pullOnce(); // everything published before this pull started must now be in the replica
    expect(pulls).toBeGreaterThan(3);
    expect(pulledRows).toBeGreaterThan(1500);
    const { rows } = await t.query<{ k: string; d: string }>(`select record_type || ':' || record_id as k, data::text as d from sync_lookup`);
    const missing = rows.filter((r) => replica.get(r.k) !== JSON.stringify(JSON.parse(r.d)));
    expect(missing).toEqual([]);
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
  });

  it('a build killed while staging publishes nothing and the next build converges', async () => {
    const t = await seeded(1500, 12);
    await churnSourceRows(t.db, { registry, fraction: 0.1, seed: 'k1' });
    const before = await snapshot(t);
    // vital_logs comes late in the registry: the build stages the earlier models, then waits on this lock.
    const blocker = await holdLock(t, 'lock table vital_logs in access exclusive mode');
    const build = buildLookup(t.db, { registry, chunkRows: 40 }).then(() => 'finished', (e: Error) => e);
    const pid = await blockedBuildPid(t);
    const { rows: [staging] } = await t.query<{ n: number }>(`select count(*)::int as n from pg_locks where pid = $1 and relation = 'sync_lookup'::regclass`, [pid]);
    expect(staging!.n).toBeGreaterThan(0); // it had written to sync_lookup
    await t.query('select pg_terminate_backend($1)', [pid]);
    const outcome = await build;
    expect(outcome).toBeInstanceOf(Error);
    await blocker.query('rollback');
    await blocker.end();
    expect(await snapshot(t)).toEqual(before); // nothing staged, nothing published, no ticks row
    const v = await verifyLookup(t.db, { registry });
    expect(v.ok).toBe(true);
    expect(v.models.reduce((n, m) => n + m.pending, 0)).toBeGreaterThan(0);

    const r = await buildLookup(t.db, { registry });
    expect(r.rows).toBeGreaterThan(0);
    const after = await verifyLookup(t.db, { registry });
    expect(after.ok).toBe(true);
    expect(after.models.reduce((n, m) => n + m.pending, 0)).toBe(0);
  });

  it('a build killed while publishing leaves staged rows no pull returns; the next build publishes them', async () => {
    const t = await seeded(1500, 13);
    await churnSourceRows(t.db, { registry, fraction: 0.1, seed: 'k2' });
    const { rows: [last] } = await t.query<{ e: number }>(`select max(lookup_end_tick)::int as e from sync_lookup_ticks`);
    // SHARE lets the build read the ticks table but blocks its publish transaction's INSERT.
    const blocker = await holdLock(t, 'lock table sync_lookup_ticks in share mode');
    const build = buildLookup(t.db, { registry }).then(() => 'finished', (e: Error) => e);
    const pid = await blockedBuildPid(t);
    await t.query('select pg_terminate_backend($1)', [pid]);
    expect(await build).toBeInstanceOf(Error);
    await blocker.query('rollback');
    await blocker.end();

    const stranded = await snapshot(t);
    expect(stranded.staged).toBeGreaterThan(0); // the build transaction committed, its publish did not
    expect(stranded.ticks.split(',')).toHaveLength(1);
    for await (const chunk of pullChanges(t.db, { registry, sinceTick: -1, chunkRows: 500 })) {
      expect(chunk.untilTick).toBe(last!.e);
      expect(chunk.rows.every((r) => Number(r.updated_at_sync_tick) > 0)).toBe(true);
    }
    const v = await verifyLookup(t.db, { registry });
    expect(v.ok).toBe(false);
    expect(v.problems.staged?.count).toBe(stranded.staged);

    const r = await buildLookup(t.db, { registry });
    expect(r.sinceTick).toBe(last!.e - 1); // same start as the failed build
    expect(r.published).toBeGreaterThanOrEqual(stranded.staged);
    expect((await snapshot(t)).staged).toBe(0);
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
  });

  it('the clock tock waits for writers still holding the old tick', async () => {
    const t = await seeded(200, 14);
    const writer = new pg.Client({ connectionString: t.url });
    await writer.connect();
    await writer.query('begin');
    await writer.query(`update notes set content = 'slow writer' where id = (select id from notes order by id limit 1)`);
    const { rows: [w] } = await writer.query<{ tick: number }>(`select updated_at_sync_tick::int as tick from notes where content = 'slow writer'`);
    let done = false;
    const build = buildLookup(t.db, { registry }).then((r) => { done = true; return r; });
    await blockedBuildPid(t);
    expect(done).toBe(false);
    await writer.query('commit');
    await writer.end();
    const r = await build;
    expect(r.endTick).toBeGreaterThan(w!.tick);
    expect(r.rows).toBe(1); // the slow writer's row made it into this build
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
  });
});
