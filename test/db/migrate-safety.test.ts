import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { CancelledError, LockNotAcquiredError } from '../../src/db/errors.js';
import { createIndexConcurrently, findIndex } from '../../src/migrate/concurrent-index.js';
import type { MigrationEvent } from '../../src/migrate/events.js';
import { sqlMigration } from '../../src/migrate/migration.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

async function connect(t: TestDatabase): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url });
  await c.connect();
  return c;
}

async function fill(t: TestDatabase, rows: number): Promise<void> {
  await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
    select 'r' || g, (array['notes','vitals','encounters','lab_tests'])[1 + g % 4], '{"a":1}', g, 'p' || (g % 5000)
      from generate_series(1, $1) g`, [rows]);
  await t.query('analyze sync_lookup');
}

const baselineOnly = () => builtinMigrations().filter((m) => m.name === '0001_baseline');

describe.runIf(hasServer())('migrate safety', () => {
  it('serialises two concurrent runs with the advisory lock; a third gives up after its timeout', async () => {
    const t = await createTestDatabase();
    const slow = sqlMigration({ name: '0003_slow', sql: 'select pg_sleep(1.5)' });
    const all = [...builtinMigrations(), slow];
    const events: MigrationEvent[] = [];
    const first = migrate(t.db, { migrations: all });
    await new Promise((r) => setTimeout(r, 300));
    const second = migrate(t.db, { migrations: all, onEvent: (e) => events.push(e) });
    const third = migrate(t.db, { migrations: all, advisoryLockTimeoutMs: 200 }).catch((e: unknown) => e);
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(a.applied.map((m) => m.name)).toEqual(['0001_baseline', '0002_sync_lookup_record_type_index', '0003_deployment_shape', '0004_sync_lookup_needs_rebuild_index', '0003_slow']);
    expect(b.applied).toEqual([]);
    expect(events[0]).toMatchObject({ type: 'advisory_lock_wait' });
    expect(c).toBeInstanceOf(LockNotAcquiredError);
    expect((c as Error).message).toMatch(/another migrate run \(backend pid \d+\) holds the migration lock/);
    const { rows } = await t.query('select count(*)::int as n from sync_lookup_tool.migrations');
    expect(rows[0]!.n).toBe(5);
  });

  it('retries DDL whose lock is held by another session, then succeeds once it is released', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const holder = await connect(t);
    await holder.query('begin; lock table sync_lookup in access share mode');
    setTimeout(() => { void holder.query('commit').then(() => holder.end()); }, 1200);
    const events: MigrationEvent[] = [];
    const ddl = sqlMigration({ name: '0003_add_column', sql: 'alter table sync_lookup add column note text' });
    const r = await migrate(t.db, { migrations: [...builtinMigrations(), ddl], onEvent: (e) => events.push(e) });
    expect(r.applied.map((m) => m.name)).toEqual(['0003_add_column']);
    expect(events.filter((e) => e.type === 'lock_retry').length).toBeGreaterThanOrEqual(1);
  });

  it('gives up with a clear error when the lock never comes, leaving the ledger unchanged', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const holder = await connect(t);
    await holder.query('begin; lock table sync_lookup in access share mode');
    const ddl = sqlMigration({ name: '0003_add_column', sql: 'alter table sync_lookup add column note text' });
    const err = await migrate(t.db, {
      migrations: [...builtinMigrations(), ddl], lockRetries: { attempts: 3, lockTimeoutsMs: [50], baseSleepMs: 10 },
    }).catch((e: unknown) => e);
    await holder.query('rollback');
    await holder.end();
    expect(err).toBeInstanceOf(LockNotAcquiredError);
    expect((err as Error).message).toMatch(/after 3 attempts/);
    const { rows } = await t.query(`select count(*)::int as n from sync_lookup_tool.migrations where name = '0003_add_column'`);
    expect(rows[0]!.n).toBe(0);
  });

  it('repairs an INVALID index left by a cancelled concurrent build on the next migrate', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: baselineOnly() });
    await fill(t, 20_000);
    // An open transaction with a snapshot makes the concurrent build wait after it created the (invalid) index.
    const old = await connect(t);
    await old.query('begin isolation level repeatable read; select count(*) from sync_lookup_ticks');
    const controller = new AbortController();
    const events: MigrationEvent[] = [];
    const run = migrate(t.db, {
      migrations: builtinMigrations(), signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'index_progress' && e.progress.waitingOn) controller.abort();
      },
    }).catch((e: unknown) => e);
    const err = await run;
    await old.query('rollback');
    await old.end();
    expect(err).toBeInstanceOf(CancelledError);
    const waiting = events.find((e) => e.type === 'index_progress' && e.progress.waitingOn !== null);
    expect(waiting).toMatchObject({ progress: { waitingOn: { pid: expect.any(Number) } } });
    const client = await connect(t);
    const leftover = await findIndex(client, { schema: 'public', name: 'sync_lookup_record_type_updated_at_sync_tick' });
    expect(leftover?.valid).toBe(false);
    const { rows } = await client.query(`select name from sync_lookup_tool.migrations order by name`);
    expect(rows.map((r) => r.name)).toEqual(['0001_baseline']);

    const again: MigrationEvent[] = [];
    const r = await migrate(t.db, { migrations: builtinMigrations(), onEvent: (e) => again.push(e) });
    expect(r.applied.map((m) => m.name)).toEqual(['0002_sync_lookup_record_type_index', '0003_deployment_shape', '0004_sync_lookup_needs_rebuild_index']);
    expect(again).toContainEqual({ type: 'invalid_index_dropped', index: 'public.sync_lookup_record_type_updated_at_sync_tick' });
    const repaired = await findIndex(client, { schema: 'public', name: 'sync_lookup_record_type_updated_at_sync_tick' });
    expect(repaired?.valid).toBe(true);
    await client.end();
  });

  it('quotes hostile index names: they are created literally and nothing else runs', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: baselineOnly() });
    const hostile = `x"; drop table sync_lookup_ticks; --`;
    const client = await connect(t);
    const r = await createIndexConcurrently(t.db, client, { table: 'sync_lookup', name: hostile, columns: ['patient_id'] });
    await client.end();
    expect(r.status).toBe('built');
    const { rows } = await t.query(`select to_regclass('sync_lookup_ticks') is not null as ticks,
      exists(select 1 from pg_class where relname = $1) as idx`, [hostile]);
    expect(rows[0]).toEqual({ ticks: true, idx: true });
    await expect(createIndexConcurrently(t.db, await connect(t), { table: 'sync_lookup', name: 'i', columns: ['no"col'] }))
      .rejects.toThrow(/column "no"col" does not exist/);
  });

  it('builds the record_type index without blocking inserts on a 1 M-row table', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: baselineOnly() });
    await fill(t, 1_000_000);
    const writer = await connect(t);
    let stop = false;
    let maxStallMs = 0;
    let inserts = 0;
    const writing = (async () => {
      while (!stop) {
        const started = performance.now();
        await writer.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
          values ('w' || $1::int, 'notes', '{}', 2000000 + $1::int)`, [inserts]);
        maxStallMs = Math.max(maxStallMs, performance.now() - started);
        inserts++;
      }
    })();
    const progress: MigrationEvent[] = [];
    const started = performance.now();
    await migrate(t.db, { migrations: builtinMigrations(), onEvent: (e) => { if (e.type === 'index_progress') progress.push(e); } });
    const buildMs = performance.now() - started;
    stop = true;
    await writing;
    await writer.end();
    console.info(`pg${t.major}: concurrent index build ${Math.round(buildMs)} ms, ${inserts} inserts, longest insert ${maxStallMs.toFixed(1)} ms`);
    // Writers keep going while the index builds: the longest single insert is a small fraction of the build.
    expect(inserts).toBeGreaterThan(50);
    expect(maxStallMs).toBeLessThan(buildMs / 4);
    expect(progress.length).toBeGreaterThan(0);
    const { rows } = await t.query(`select count(*)::int as n from sync_lookup where record_type = 'notes'`);
    expect(rows[0]!.n).toBe(250_000 + inserts);
  });
});
