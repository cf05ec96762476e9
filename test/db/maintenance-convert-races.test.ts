import { describe, expect, it } from 'vitest';
import { pullSummary } from '../../src/lookup/pull.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { archiveRecordTypes } from '../../src/maintenance/archive.js';
import { convertLayout } from '../../src/maintenance/convert.js';
import { finishConversion, rollbackConversion } from '../../src/maintenance/convert-end.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { partitionName } from '../../src/schema/partitioned.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

/* Concurrent maintenance a conversion must survive without losing, resurrecting or refusing data. */

const registry = builtinRegistry();

async function rowsById(t: TestDatabase): Promise<Map<string, string>> {
  const { rows } = await t.query<{ id: string; r: string }>(`select id::text as id, (l.*)::text as r from sync_lookup l`);
  return new Map(rows.map((r) => [r.id, r.r]));
}

async function partitionedTable(): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await migrate(t.db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: registry.names }) });
  await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
    select 'r' || g, (array['notes','encounters','vitals','patients','users'])[1 + g % 5], json_build_object('n', g), g from generate_series(1, 5000) g`);
  return t;
}

describe.runIf(hasServer())('convert under concurrent maintenance', () => {
  it('a partition truncated (purge) while the conversion is stopped at its verification: the resumed conversion applies it and swaps', async () => {
    const t = await partitionedTable();
    const stopAt = new AbortController();
    await expect(convertLayout(t.db, {
      to: 'plain', registry, batchMs: 20, initialBatchRows: 1000, signal: stopAt.signal,
      onEvent: (e) => { if (e.type === 'phase' && e.phase === 'verify') stopAt.abort(); },
    })).rejects.toMatchObject({ name: 'CancelledError' });
    expect((await t.query<{ phase: string }>(`select phase from sync_lookup_tool.conversion`)).rows[0]?.phase).toBe('verify');
    // What `purge notes` does on this layout: a TRUNCATE of the type's own partition (logged as a truncate marker).
    await t.query(`truncate ${partitionName('notes')}`);
    const expected = await rowsById(t);
    expect(expected.size).toBe(4000);
    const r = await convertLayout(t.db, { to: 'plain', registry, batchMs: 20 });
    expect(r).toMatchObject({ layout: 'plain', verified: true });
    expect(await rowsById(t)).toEqual(expected);
  });

  it('a partition created by migrate during the conversion and truncated by a purge while the swap waits: the purged rows do not come back', async () => {
    const t = await partitionedTable();
    const stopAt = new AbortController();
    await expect(convertLayout(t.db, {
      to: 'plain', registry, batchMs: 20, initialBatchRows: 1000, signal: stopAt.signal,
      onEvent: (e) => { if (e.type === 'phase' && e.phase === 'verify') stopAt.abort(); },
    })).rejects.toMatchObject({ name: 'CancelledError' });
    // A new model's partition (what `migrate` does for it), filled by its first build.
    await t.query(`create table sync_lookup_p_new_model partition of sync_lookup for values in ('new_model')`);
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select 'n' || g, 'new_model', '{}', 9000 + g from generate_series(1, 200) g`);
    // A pull holds a partition: the swap's first attempt times out; meanwhile `purge new_model` truncates its partition.
    const blocker = await t.db.acquire();
    const purger = await t.db.acquire();
    try {
      await blocker.client.query(`begin; lock table ${partitionName('users')} in access share mode`);
      let purge: Promise<unknown> | undefined;
      const r = await convertLayout(t.db, {
        to: 'plain', registry, batchMs: 20, swapLockTimeoutMs: 100,
        onEvent: (e) => {
          if (e.type === 'lock_retry' && !purge) {
            purge = (async () => {
              await purger.client.query(`truncate sync_lookup_p_new_model`);
              await blocker.client.query('commit');
            })();
          }
        },
      });
      await purge;
      expect(r).toMatchObject({ layout: 'plain', verified: true });
    } finally {
      await blocker.client.query('rollback').catch(() => {});
      await blocker.release();
      await purger.release();
    }
    const { rows: [n] } = await t.query<{ n: number }>(`select count(*)::int as n from sync_lookup where record_type = 'new_model'`);
    expect(n?.n).toBe(0);
    expect((await rowsById(t)).size).toBe(5000);
  });

  it('a partition created while the swap waits (after the verification): the swap refuses, writes nothing, and the next run verifies again and swaps', async () => {
    const t = await partitionedTable();
    const blocker = await t.db.acquire();
    const migrator = await t.db.acquire();
    try {
      await blocker.client.query(`begin; lock table ${partitionName('users')} in access share mode`);
      let migrateAndPurge: Promise<unknown> | undefined;
      await expect(convertLayout(t.db, {
        to: 'plain', registry, batchMs: 20, swapLockTimeoutMs: 100,
        onEvent: (e) => {
          if (e.type === 'lock_retry' && !migrateAndPurge) {
            migrateAndPurge = (async () => {
              await migrator.client.query(`create table sync_lookup_p_new_model partition of sync_lookup for values in ('new_model')`);
              await migrator.client.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) select 'n' || g, 'new_model', '{}', 9000 + g from generate_series(1, 200) g`);
              await migrator.client.query(`truncate sync_lookup_p_new_model`);
              await blocker.client.query('commit');
            })();
          }
        },
      })).rejects.toMatchObject({ name: 'CheckFailedError', code: 'partitions_changed' });
      await migrateAndPurge;
    } finally {
      await blocker.client.query('rollback').catch(() => {});
      await blocker.release();
      await migrator.release();
    }
    expect((await t.query<{ phase: string }>(`select phase from sync_lookup_tool.conversion`)).rows[0]?.phase).toBe('verify');
    const expected = await rowsById(t);
    const r = await convertLayout(t.db, { to: 'plain', registry, batchMs: 20 });
    expect(r).toMatchObject({ layout: 'plain', verified: true });
    expect(await rowsById(t)).toEqual(expected);
    expect(expected.size).toBe(5000);
  });

  it('a pull whose snapshot predates the swap reads the new table after it: it still returns the rows changed before its snapshot', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({}) });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select 'r' || g, (array['notes','encounters','vitals','patients','users'])[1 + g % 5], json_build_object('n', g), g from generate_series(1, 5000) g`);
    await t.query(`insert into sync_lookup_ticks values (-1, 99999)`);
    const stopAt = new AbortController();
    await expect(convertLayout(t.db, {
      to: 'partitioned', registry, batchMs: 20, initialBatchRows: 1000, signal: stopAt.signal,
      onEvent: (e) => { if (e.type === 'phase' && e.phase === 'verify') stopAt.abort(); },
    })).rejects.toMatchObject({ name: 'CancelledError' });
    // A build's change, committed (and logged) before the pull begins; the shadow gets it only at the swap's catch-up.
    await t.query(`update sync_lookup set data = '{"changed": true}', updated_at_sync_tick = 99998 where record_id = 'r10'`);
    const blocker = await t.db.acquire();
    try {
      // The pull takes its snapshot, then waits (here on the ticks table) before its first read of sync_lookup.
      await blocker.client.query(`begin; lock table sync_lookup_ticks in access exclusive mode`);
      const pull = pullSummary(t.db, { registry, sinceTick: 50000, types: ['notes', 'encounters', 'vitals', 'patients', 'users'] });
      for (let i = 0; i < 200; i++) {
        const { rows: [w] } = await t.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where application_name = 'sync-lookup:pull' and wait_event_type = 'Lock'`);
        if (w?.n) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      const swapped = convertLayout(t.db, { to: 'partitioned', registry, batchMs: 20, swapLockTimeoutMs: 100 });
      // The swap must not slip between the pull's snapshot and its read; it waits for the pull (or swaps first, harmlessly).
      await Promise.race([swapped, new Promise((r) => setTimeout(r, 3000))]);
      await blocker.client.query('commit');
      const s = await pull;
      expect(s.rows).toBe(1);
      expect((await swapped).layout).toBe('partitioned');
    } finally {
      await blocker.client.query('rollback').catch(() => {});
      await blocker.release();
    }
  });

  it('an archive validated before a conversion began and detaching after: refused under its lock, the partition stays', async () => {
    const t = await partitionedTable();
    const blocker = await t.db.acquire();
    try {
      // A long pull holds sync_lookup: the archive has passed its checks and waits to detach.
      await blocker.client.query(`begin; lock table only sync_lookup in access share mode`);
      const archive = archiveRecordTypes(t.db, { types: ['patients'], registry, force: true, lockTimeoutMs: 200 });
      archive.catch(() => {});
      for (let i = 0; i < 200; i++) {
        const { rows: [w] } = await t.query<{ n: number }>(`select count(*)::int as n from pg_locks where relation = 'sync_lookup'::regclass and not granted`);
        if (w?.n) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      const stopAt = new AbortController();
      await expect(convertLayout(t.db, {
        to: 'plain', registry, batchMs: 20, initialBatchRows: 1000, signal: stopAt.signal,
        onEvent: (e) => { if (e.type === 'phase' && e.phase === 'copy') stopAt.abort(); },
      })).rejects.toMatchObject({ name: 'CancelledError' });
      await blocker.client.query('commit');
      await expect(archive).rejects.toMatchObject({ code: 'conversion_in_progress' });
    } finally {
      await blocker.client.query('rollback').catch(() => {});
      await blocker.release();
    }
    const { rows: [p] } = await t.query<{ attached: boolean }>(`select to_regclass('public.${partitionName('patients')}') is not null as attached`);
    expect(p?.attached).toBe(true);
    expect((await rowsById(t)).size).toBe(5000);
  });

  it('ids written after the swap survive a rollback, the next id does not collide, and a rollback after --finish is refused', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({}) });
    const insert = (tag: string) => t.query<{ id: string }>(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select '${tag}' || g, 'notes', '{}', g from generate_series(1, 50) g returning id::text`);
    await insert('a');
    await convertLayout(t.db, { to: 'partitioned', registry, batchMs: 20 });
    const afterSwap = (await insert('b')).rows.map((r) => r.id);
    const before = await rowsById(t);
    await rollbackConversion(t.db);
    expect(await rowsById(t)).toEqual(before);
    const next = (await insert('c')).rows.map((r) => BigInt(r.id));
    expect(next.every((id) => id > BigInt(afterSwap[afterSwap.length - 1]!))).toBe(true);
    await convertLayout(t.db, { to: 'partitioned', registry, batchMs: 20 });
    await finishConversion(t.db);
    await expect(rollbackConversion(t.db)).rejects.toMatchObject({ code: 'no_conversion' });
    expect((await rowsById(t)).size).toBe(150);
  });
});
