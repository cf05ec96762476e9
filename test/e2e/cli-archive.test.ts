import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

describe.runIf(hasServer() && cliBuilt())('archive, restore, purge --archive (CLI)', () => {
  it('purge --archive keeps the purge\'s live-type guard; status lists the archive; restore brings it back; --drop --dry-run lists it', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      select 'r' || g, (array['notes','legacy_thing'])[1 + g % 2], json_build_object('n', g), g from generate_series(1, 3000) g`);
    const env = { DATABASE_URL: t.url };
    const live = await runCli(['purge', '--archive', 'notes', '--json'], env);
    expect(live.code).toBe(2);
    expect(parseJsonOutput(live.stdout).last).toMatchObject({ error: { code: 'live_type' } });
    const a = await runCli(['purge', '--archive', 'legacy_thing', '--json'], env);
    expect(a.code, a.stdout).toBe(0);
    expect(parseJsonOutput(a.stdout).last).toMatchObject({ operation: 'archive', rows: 1500, strategy: 'batched_move', rebuild: null });
    const status = parseJsonOutput((await runCli(['status', '--json'], env)).stdout).last;
    expect(status).toMatchObject({ layout: 'plain', archived: [{ record_type: 'legacy_thing', rows: 1500, complete: true }] });
    const drop = await runCli(['archive', '--older-than-days', '0', '--drop', '--dry-run', '--json'], env);
    expect(parseJsonOutput(drop.stdout).last).toMatchObject({ dry_run: true, dropped: [{ record_type: 'legacy_thing' }] });
    const r = await runCli(['restore', 'legacy_thing', '--json'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(parseJsonOutput(r.stdout).last).toMatchObject({ operation: 'restore', rows: 1500, strategy: 'batched_move', duration_ms: expect.any(Number) });
    expect((await t.query(`select count(*)::int as n from sync_lookup where record_type = 'legacy_thing'`)).rows[0]!.n).toBe(1500);
  });
});
