import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { archiveRecordTypes } from '../../src/maintenance/archive.js';
import { dropArchives, restoreRecordTypes } from '../../src/maintenance/restore.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

/* Archive retention against a restore in progress: the rows being restored must not be dropped. */

const registry = builtinRegistry();

describe.runIf(hasServer())('archive retention during a restore', () => {
  it('refuses to drop an archive whose restore was interrupted (nothing dropped); the restore then completes with every row', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({}) });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select 'r' || g, 'legacy_thing', json_build_object('n', g), g from generate_series(1, 3000) g`);
    const before = (await t.query(`select (l.*)::text as r from sync_lookup l order by id`)).rows;
    await archiveRecordTypes(t.db, { types: ['legacy_thing'], registry, batchMs: 20, initialBatchRows: 200 });
    const stop = new AbortController();
    await expect(restoreRecordTypes(t.db, {
      types: ['legacy_thing'], batchMs: 20, initialBatchRows: 200, signal: stop.signal,
      onProgress: (p) => { if (p.rows_done > 0) stop.abort(); },
    })).rejects.toMatchObject({ name: 'CancelledError' });
    const { rows: [half] } = await t.query<{ n: number }>(`select count(*)::int as n from sync_lookup`);
    expect(half!.n).toBeGreaterThan(0);
    expect(half!.n).toBeLessThan(3000);
    // The nightly retention (`archive --older-than-days 0 --drop`) runs while the restore waits to be resumed.
    await expect(dropArchives(t.db, { olderThanDays: 0 })).rejects.toMatchObject({ code: 'archive_in_use' });
    expect((await dropArchives(t.db, { olderThanDays: 0, dryRun: true })).dropped.map((a) => a.record_type)).toEqual(['legacy_thing']);
    await restoreRecordTypes(t.db, { types: ['legacy_thing'] });
    expect((await t.query(`select (l.*)::text as r from sync_lookup l order by id`)).rows).toEqual(before);
  });
});
