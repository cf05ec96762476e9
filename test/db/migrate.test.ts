import { describe, expect, it } from 'vitest';
import { withClient } from '../../src/db/connection.js';
import { MigrationError } from '../../src/db/errors.js';
import { sqlMigration } from '../../src/migrate/migration.js';
import type { MigrationEvent } from '../../src/migrate/events.js';
import { ensureJobsTable } from '../../src/maintenance/jobs.js';
import { migrate, migrationStatus } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { PLAIN_SCHEMA_SQL } from '../../src/schema/sync-lookup.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

describe.runIf(hasServer())('migrate', () => {
  it('applies the baseline and the record_type index on a fresh database, then is a no-op', async () => {
    const t = await createTestDatabase();
    const first = await migrate(t.db, { migrations: builtinMigrations() });
    expect(first.applied.map((a) => a.name)).toEqual(
      ['0001_baseline', '0002_sync_lookup_record_type_index', '0003_deployment_shape', '0004_sync_lookup_needs_rebuild_index']);
    const { rows } = await t.query<{ indexname: string; valid: boolean }>(
      `select c.relname as indexname, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'sync_lookup'::regclass order by 1`);
    expect(rows).toContainEqual({ indexname: 'sync_lookup_record_type_updated_at_sync_tick', valid: true });
    expect(rows).toHaveLength(6);
    // The origin deployments' shape (ORIGIN.md): a new system and an adopted one look the same.
    const { rows: [shape] } = await t.query(
      `select (select pg_get_expr(adbin, adrelid) from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
                where d.adrelid = 'sync_lookup'::regclass and a.attname = 'id') as id_default,
              (select attidentity from pg_attribute where attrelid = 'sync_lookup'::regclass and attname = 'id') as identity,
              (select conname from pg_constraint where conrelid = 'sync_lookup'::regclass and contype = 'u') as unique_name,
              (select pg_get_indexdef('sync_lookup_needs_rebuild_index'::regclass)) as flag_index,
              (select format_type(atttypid, atttypmod) || ' ' || attnotnull from pg_attribute where attrelid = 'sync_lookup'::regclass and attname = 'needs_rebuild') as flag,
              (select attgenerated from pg_attribute where attrelid = 'sync_lookup_ticks'::regclass and attname = 'id') as ticks_id,
              (select string_agg(c.relname, ',') from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r') as public_tables`);
    expect(shape).toEqual({
      id_default: "nextval('sync_lookup_id_seq'::regclass)", identity: '', unique_name: 'sync_lookup_record_id_record_type_uk',
      flag_index: 'CREATE INDEX sync_lookup_needs_rebuild_index ON public.sync_lookup USING btree (record_type) WHERE needs_rebuild',
      flag: 'boolean true', ticks_id: 's', public_tables: expect.stringMatching(/^(sync_lookup,sync_lookup_ticks|sync_lookup_ticks,sync_lookup)$/),
    });
    const second = await migrate(t.db, { migrations: builtinMigrations() });
    expect(second.applied).toEqual([]);
    expect(second.pending).toEqual([]);
  });

  it('--dry-run lists the SQL of pending migrations and changes nothing', async () => {
    const t = await createTestDatabase();
    const result = await migrate(t.db, { migrations: builtinMigrations(), dryRun: true });
    expect(result.pending.map((p) => [p.name, p.transactional])).toEqual([
      ['0001_baseline', true], ['0002_sync_lookup_record_type_index', false], ['0003_deployment_shape', true],
      ['0004_sync_lookup_needs_rebuild_index', false]]);
    expect(result.pending[1]!.sql.join('\n')).toContain('CREATE INDEX CONCURRENTLY');
    const { rows } = await t.query(`select to_regclass('sync_lookup') as t`);
    expect(rows[0]!.t).toBeNull();
  });

  it('--to stops after the named migration and rejects unknown names', async () => {
    const t = await createTestDatabase();
    const r = await migrate(t.db, { migrations: builtinMigrations(), to: '0001_baseline' });
    expect(r.applied.map((a) => a.name)).toEqual(['0001_baseline']);
    await expect(migrate(t.db, { migrations: builtinMigrations(), to: 'nope' })).rejects.toThrow(/"nope" names no migration/);
  });

  it('adopts an existing table of the expected shape instead of creating it again', async () => {
    const t = await createTestDatabase();
    await t.query(PLAIN_SCHEMA_SQL.replace('sync_lookup_patient_id', 'my_site_patient_idx'));
    await expect(migrate(t.db, { migrations: builtinMigrations() })).rejects.toThrow(/already exists.*--adopt/);
    const r = await migrate(t.db, { migrations: builtinMigrations(), adopt: true });
    expect(r.applied).toEqual([
      expect.objectContaining({ name: '0001_baseline', adopted: true }),
      expect.objectContaining({ name: '0002_sync_lookup_record_type_index', adopted: false }),
      expect.objectContaining({ name: '0003_deployment_shape', adopted: false }),
      expect.objectContaining({ name: '0004_sync_lookup_needs_rebuild_index', adopted: false }),
    ]);
    const { rows } = await t.query(`select count(*)::int as n from pg_indexes where tablename = 'sync_lookup'`);
    expect(rows[0]!.n).toBe(6);
  });

  it('moves the ledger and jobs an earlier version kept in public into sync_lookup_tool, rows kept, dropping triggers a host hook added', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await withClient(t.db, { purpose: 'test' }, (c) => ensureJobsTable(c));
    await t.query(`insert into sync_lookup_tool.jobs (operation, record_types, status, cursor) values ('purge', '{notes}', 'done', '{}')`);
    // The layout of an earlier version: both tables in public, and a hook's trigger on each that reads NEW.id.
    await t.query(`alter table sync_lookup_tool.migrations set schema public; alter table public.migrations rename to sync_lookup_migrations;
                   alter table sync_lookup_tool.jobs set schema public; alter table public.jobs rename to sync_lookup_jobs;
                   drop schema sync_lookup_tool cascade;
                   create function notify_changed() returns trigger language plpgsql as $$ begin perform pg_notify('c', NEW.id::text); return NEW; end $$;
                   create trigger notify_changed after insert or update on sync_lookup_migrations for each row execute function notify_changed();
                   create trigger notify_changed after insert or update on sync_lookup_jobs for each row execute function notify_changed();`);
    const events: MigrationEvent[] = [];
    const r = await migrate(t.db, { migrations: [...builtinMigrations(), sqlMigration({ name: '0100_after_move', sql: 'select 1' })], onEvent: (e) => events.push(e) });
    expect(r.applied.map((a) => a.name)).toEqual(['0100_after_move']);
    expect(events).toContainEqual({ type: 'tool_table_moved', from: 'public.sync_lookup_migrations', to: 'sync_lookup_tool.migrations', rows: 4 });
    expect(events).toContainEqual({ type: 'tool_table_moved', from: 'public.sync_lookup_jobs', to: 'sync_lookup_tool.jobs', rows: 1 });
    expect(events.filter((e) => e.type === 'host_trigger_dropped')).toHaveLength(2);
    const { rows: [after] } = await t.query(`select (select count(*)::int from sync_lookup_tool.migrations) as ledger, (select count(*)::int from sync_lookup_tool.jobs) as jobs,
      to_regclass('public.sync_lookup_migrations') as old_ledger, to_regclass('public.sync_lookup_jobs') as old_jobs`);
    expect(after).toEqual({ ledger: 5, jobs: 1, old_ledger: null, old_jobs: null });
  });

  it('refuses to adopt a table whose shape differs, naming the difference', async () => {
    const t = await createTestDatabase();
    await t.query(PLAIN_SCHEMA_SQL.replace(/CREATE INDEX sync_lookup_patient_id[^;]*;/, ''));
    await expect(migrate(t.db, { migrations: builtinMigrations(), adopt: true }))
      .rejects.toThrow(/no index on sync_lookup \(patient_id\)/);
  });

  it('refuses an applied migration whose content changed, naming it', async () => {
    const t = await createTestDatabase();
    const m = sqlMigration({ name: '0003_extra', sql: 'create table extra (id int)' });
    await migrate(t.db, { migrations: [...builtinMigrations(), m] });
    const edited = sqlMigration({ name: '0003_extra', sql: 'create table extra (id bigint)' });
    const err = await migrate(t.db, { migrations: [...builtinMigrations(), edited] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('checksum_mismatch');
    expect((err as Error).message).toContain('0003_extra');
    const states = await withClient(t.db, { purpose: 'test' }, (c) => migrationStatus(c, [...builtinMigrations(), edited]));
    expect(states.find((s) => s.name === '0003_extra')!.status).toBe('changed');
  });

  it('rolls back a transactional migration that fails halfway, leaving the ledger unchanged', async () => {
    const t = await createTestDatabase();
    const bad = sqlMigration({ name: '0003_bad', sql: 'create table half (id int); insert into half values (1); select 1/0' });
    const err = await migrate(t.db, { migrations: [...builtinMigrations(), bad] }).catch((e: unknown) => e) as MigrationError;
    expect(err.code).toBe('migration_failed');
    expect(err.message).toMatch(/0003_bad failed: statement #3 \(line 1: select 1 \/ 0\) failed: division by zero; it was rolled back/);
    expect(err.details.sqlstate).toBe('22012');
    const { rows } = await t.query(`select to_regclass('half') as t, (select count(*)::int from sync_lookup_tool.migrations where name = '0003_bad') as n`);
    expect(rows[0]).toEqual({ t: null, n: 0 });
  });

  it('reports what a non-transactional migration completed before failing', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const bad = {
      name: '0003_two_indexes', transaction: false, source: 'two', plan: [],
      async up(ctx: Parameters<ReturnType<typeof builtinMigrations>[number]['up']>[0]) {
        await ctx.createIndexConcurrently({ table: 'sync_lookup', name: 'sl_first', columns: ['encounter_id'] });
        await ctx.createIndexConcurrently({ table: 'sync_lookup', name: 'sl_second', columns: ['no_such_column'] });
      },
    };
    const err = await migrate(t.db, { migrations: [...builtinMigrations(), bad] }).catch((e: unknown) => e) as MigrationError;
    expect(err.message).toMatch(/not transactional: 1 step\(s\) completed/);
    expect(err.details.completed).toEqual([expect.stringContaining('"sl_first"')]);
    const { rows } = await t.query(`select to_regclass('sl_first') is not null as first,
      exists(select 1 from sync_lookup_tool.migrations where name = '0003_two_indexes') as recorded`);
    expect(rows[0]).toEqual({ first: true, recorded: false });
  });
});
