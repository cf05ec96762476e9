import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { SyncLookupError } from '../../src/db/errors.js';
import { findIndex } from '../../src/migrate/concurrent-index.js';
import type { MigrationEvent } from '../../src/migrate/events.js';
import { loadMigrationsDir } from '../../src/migrate/migration.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

/*
 * `migrate --dir` with .sql files: the guarantees of the built-in migrations (issue 12, section 1).
 */

const NO_TX = '-- sync-lookup: no-transaction\n';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sl-sql-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

async function migrateDir(t: TestDatabase, dir: string, extra: { events?: MigrationEvent[]; dryRun?: boolean } = {}) {
  return migrate(t.db, {
    migrations: [...builtinMigrations(), ...(await loadMigrationsDir(dir))], dryRun: !!extra.dryRun,
    onEvent: (e) => extra.events?.push(e),
  });
}

async function migrated(): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await migrate(t.db, { migrations: builtinMigrations() });
  return t;
}

async function ledger(t: TestDatabase): Promise<string[]> {
  const { rows } = await t.query<{ name: string }>(`select name from sync_lookup_tool.migrations where name like '01%' order by name`);
  return rows.map((r) => r.name);
}

async function column(t: TestDatabase, name: string): Promise<boolean> {
  const { rows } = await t.query(`select 1 from pg_attribute where attrelid = 'sync_lookup'::regclass and attname = $1 and not attisdropped`, [name]);
  return rows.length === 1;
}

async function valid(t: TestDatabase, name: string): Promise<boolean | undefined> {
  const c = new pg.Client({ connectionString: t.url });
  await c.connect();
  try { return (await findIndex(c, { schema: 'public', name }))?.valid; } finally { await c.end(); }
}

/** A session that took a snapshot now and keeps its transaction open `ms` (a long report on another table). */
async function oldReader(t: TestDatabase, ms: number): Promise<{ done: Promise<void> }> {
  const c = new pg.Client({ connectionString: t.url });
  await c.connect();
  await c.query('create table if not exists report_source (id int)');
  await c.query('begin isolation level repeatable read');
  await c.query('select count(*) from report_source');
  // Work committed after its snapshot (as on any live server) makes that snapshot older than a build's.
  await t.query('insert into report_source values (1)');
  // Wrapped: an async function returning a bare promise would make the caller's await wait for the commit.
  return { done: new Promise((resolve) => setTimeout(() => { void c.query('commit').then(() => c.end()).then(resolve); }, ms)) };
}

const failureOf = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as SyncLookupError);

describe.runIf(hasServer())('migrate --dir: .sql files', () => {
  it('runs a no-transaction file statement by statement: ALTER TABLE then CREATE INDEX CONCURRENTLY both apply', async () => {
    const t = await migrated();
    const dir = await dirWith({ '0100_note.sql': `${NO_TX}ALTER TABLE sync_lookup ADD COLUMN note text;\nCREATE INDEX CONCURRENTLY sl_note ON sync_lookup (note);\n` });
    const events: MigrationEvent[] = [];
    const r = await migrateDir(t, dir, { events });
    expect(r.applied.map((a) => a.name)).toEqual(['0100_note']);
    expect(await column(t, 'note')).toBe(true);
    expect(await valid(t, 'sl_note')).toBe(true);
    expect(events).toContainEqual(expect.objectContaining({ type: 'index_build_start', index: 'public.sl_note' }));
  });

  it('reports exactly which statements of a no-transaction file committed, which failed and which did not run', async () => {
    const t = await migrated();
    await t.query('create index sl_old on sync_lookup (facility_id)');
    const dir = await dirWith({ '0100_mixed.sql': `${NO_TX}ALTER TABLE sync_lookup ADD COLUMN a1 int;\n` +
      'DROP INDEX CONCURRENTLY sl_old;\n\nALTER TABLE sync_lookup\n  ADD COLUMN a2 int,\n  ADD COLUMN a2 int;\nALTER TABLE sync_lookup ADD COLUMN a3 int;\n' });
    const err = await failureOf(migrateDir(t, dir));
    expect(err.code).toBe('migration_failed');
    expect(err.message).toContain('statement #3 (line 5: ALTER TABLE sync_lookup ADD COLUMN) failed');
    expect(err.message).toContain('committed before the failure, and kept: #1 (line 2: ALTER TABLE sync_lookup ADD COLUMN), #2 (line 3: DROP INDEX CONCURRENTLY sl_old)');
    expect(err.message).toContain('not run: #4 (line 8: ALTER TABLE sync_lookup ADD COLUMN)');
    expect(err.message).not.toMatch(/rolled back/);
    expect(err.details).toMatchObject({ sqlstate: '42701', committed: [{ index: 1, line: 2 }, { index: 2, line: 3 }], notRun: [{ index: 4, line: 8 }] });
    // What the message says committed did commit; what it says did not run did not.
    expect([await column(t, 'a1'), await valid(t, 'sl_old'), await column(t, 'a2'), await column(t, 'a3')]).toEqual([true, undefined, false, false]);
    expect(await ledger(t)).toEqual([]);
  });

  it('a statement of a no-transaction file whose lock is held retries with short lock timeouts instead of queueing', async () => {
    const t = await migrated();
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table sync_lookup in access share mode');
    const events: MigrationEvent[] = [];
    let released: Promise<unknown> | undefined;
    const dir = await dirWith({ '0100_alter.sql': `${NO_TX}ALTER TABLE sync_lookup ADD COLUMN c1 int;\n` });
    const r = await migrate(t.db, {
      migrations: [...builtinMigrations(), ...(await loadMigrationsDir(dir))],
      onEvent: (e) => { events.push(e); if (e.type === 'lock_retry') released ??= holder.query('rollback'); },
    });
    await released;
    await holder.end();
    expect(r.applied.map((a) => a.name)).toEqual(['0100_alter']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'lock_retry', attempt: 1, lock_timeout_ms: 100 }));
    expect(await column(t, 'c1')).toBe(true);
  });

  it('a statement that fails first in a no-transaction file: nothing committed, the rest named as not run', async () => {
    const t = await migrated();
    const dir = await dirWith({ '0100_first.sql': `${NO_TX}select 1/0;\nALTER TABLE sync_lookup ADD COLUMN b1 int;\n` });
    const err = await failureOf(migrateDir(t, dir));
    expect(err.message).toMatch(/statement #1 \(line 2: select 1 \/ 0\) failed: division by zero; each statement of this file commits on its own: no statement committed before it; not run: #2 \(line 3/);
    expect(await column(t, 'b1')).toBe(false);
  });

  it("a file's concurrent build waits for a reader on another table longer than the session's 5 s lock timeout", async () => {
    const t = await migrated();
    const reader = await oldReader(t, 7000);
    const dir = await dirWith({ '0100_idx.sql': `${NO_TX}CREATE INDEX CONCURRENTLY sl_enc_tick ON sync_lookup (encounter_id, updated_at_sync_tick);\n` });
    const r = await migrateDir(t, dir);
    await reader.done;
    expect(r.applied.map((a) => a.name)).toEqual(['0100_idx']);
    expect(await valid(t, 'sl_enc_tick')).toBe(true);
  });

  it('REINDEX INDEX CONCURRENTLY in a file waits the same way and leaves no _ccnew index', async () => {
    const t = await migrated();
    const reader = await oldReader(t, 7000);
    const dir = await dirWith({ '0100_reindex.sql': `${NO_TX}REINDEX INDEX CONCURRENTLY sync_lookup_patient_id;\n` });
    const r = await migrateDir(t, dir);
    await reader.done;
    expect(r.applied.map((a) => a.name)).toEqual(['0100_reindex']);
    const { rows } = await t.query(`select relname from pg_class where relname like 'sync_lookup_patient_id%' order by 1`);
    expect(rows.map((x) => x.relname)).toEqual(['sync_lookup_patient_id']);
    expect(await valid(t, 'sync_lookup_patient_id')).toBe(true);
  });

  it('drops a _ccnew leftover of a failed REINDEX CONCURRENTLY before reindexing again', async () => {
    const t = await migrated();
    const reader = await oldReader(t, 3000);
    // A REINDEX CONCURRENTLY run by hand that gave up on its lock timeout leaves an INVALID sync_lookup_patient_id_ccnew.
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    await c.query(`set lock_timeout = '500ms'`);
    await expect(c.query('reindex index concurrently sync_lookup_patient_id')).rejects.toThrow(/lock timeout/);
    await c.end();
    await reader.done;
    expect(await valid(t, 'sync_lookup_patient_id_ccnew')).toBe(false);
    const events: MigrationEvent[] = [];
    await migrateDir(t, await dirWith({ '0100_reindex.sql': `${NO_TX}REINDEX INDEX CONCURRENTLY sync_lookup_patient_id;\n` }), { events });
    expect(events).toContainEqual({ type: 'invalid_index_dropped', index: 'public.sync_lookup_patient_id_ccnew' });
    const { rows } = await t.query(`select count(*)::int as n from pg_index where not indisvalid`);
    expect(rows[0]!.n).toBe(0);
  });

  for (const ifNotExists of [true, false]) {
    const stmt = `CREATE UNIQUE INDEX CONCURRENTLY ${ifNotExists ? 'IF NOT EXISTS ' : ''}sl_uq_note`;
    it(`${stmt}: fails on duplicates, the data is fixed, the re-run rebuilds the INVALID leftover`, async () => {
      const t = await migrated();
      await t.query(`alter table sync_lookup add column ext_ref text;
        insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, ext_ref)
        values ('a', 'notes', '{}', 1, 'dup'), ('b', 'notes', '{}', 2, 'dup')`);
      const dir = await dirWith({ '0100_uq.sql': `${NO_TX}${stmt} ON sync_lookup (ext_ref);\n` });
      const err = await failureOf(migrateDir(t, dir));
      expect(err.details.sqlstate).toBe('23505');
      expect(await valid(t, 'sl_uq_note')).toBe(false);
      await t.query(`update sync_lookup set ext_ref = 'unique' where record_id = 'b'`);
      const events: MigrationEvent[] = [];
      const r = await migrateDir(t, dir, { events });
      expect(r.applied.map((a) => a.name)).toEqual(['0100_uq']);
      expect(events).toContainEqual({ type: 'invalid_index_dropped', index: 'public.sl_uq_note' });
      expect(await valid(t, 'sl_uq_note')).toBe(true);
    });
  }

  const refused: [string, string, number][] = [
    ['CREATE INDEX CONCURRENTLY', 'create table t_a (id int);\nCREATE INDEX CONCURRENTLY t_a_id ON t_a (id);\n', 2],
    ['VACUUM', 'create table t_b (id int);\n\nVACUUM t_b;\n', 3],
    ['SAVEPOINT', 'create table t_c (id int);\nSAVEPOINT before_fill;\ninsert into t_c values (1);\n', 2],
    ['COMMIT', 'create table t_d (id int);\nCOMMIT;\ncreate table t_e (id int);\nselect 1/0;\n', 2],
  ];
  for (const [what, text, line] of refused) {
    it(`refuses a transactional file with ${what} before anything runs (also under --dry-run), naming line and marker`, async () => {
      const t = await migrated();
      const dir = await dirWith({ '0100_ok.sql': 'create table ok_first (id int);\n', '0101_bad.sql': text });
      for (const dryRun of [true, false]) {
        const err = await failureOf(migrateDir(t, dir, { dryRun }));
        expect(err.code).toBe('migration_refused');
        expect(err.message).toContain(`0101_bad.sql:${line}: `);
        expect(err.message).toContain('-- sync-lookup: no-transaction');
        expect(err.message).toMatch(/nothing was run/);
      }
      const { rows } = await t.query(`select string_agg(relname, ',') as made from pg_class where relname in ('ok_first', 't_a', 't_b', 't_c', 't_d', 't_e')`);
      expect(rows[0]!.made).toBeNull();
      expect(await ledger(t)).toEqual([]);
    });
  }

  it('a no-transaction file may CALL a procedure (or run a DO block) that commits in batches; each batch stays when a later one fails', async () => {
    const t = await migrated();
    await t.query(`create table backfill (n int);
      create procedure fill(upto int) language plpgsql as $$
        begin for i in 1..upto loop insert into backfill values (100 / (5 - i)); commit; end loop; end $$`);
    const ok = await dirWith({ '0100_fill.sql': `${NO_TX}call fill(3);\ndo $$ begin insert into backfill values (0); commit; end $$;\n` });
    expect((await migrateDir(t, ok)).applied.map((a) => a.name)).toEqual(['0100_fill']);
    expect((await t.query('select count(*)::int as n from backfill')).rows[0]!.n).toBe(4);
    // The fifth batch divides by zero: the four before it committed, and the failure says the file is not recorded.
    const err = await failureOf(migrateDir(t, await dirWith({ '0101_more.sql': `${NO_TX}call fill(5);\n` })));
    expect(err.details.sqlstate).toBe('22012');
    expect(err.message).toMatch(/CALL or DO, whose own COMMITs before the error stay/);
    expect((await t.query('select count(*)::int as n from backfill')).rows[0]!.n).toBe(8);
    expect(await ledger(t)).toEqual(['0100_fill']);
  });

  it('CREATE INDEX CONCURRENTLY IF NOT EXISTS over a valid index of that name with other columns or uniqueness is a conflict, not "applied"', async () => {
    const t = await migrated();
    const same = await dirWith({ '0100_same.sql': `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS sync_lookup_patient_id ON sync_lookup (patient_id);\n` });
    const events: MigrationEvent[] = [];
    expect((await migrateDir(t, same, { events })).applied.map((a) => a.name)).toEqual(['0100_same']);
    expect(events).toContainEqual({ type: 'index_exists', index: 'public.sync_lookup_patient_id' });
    for (const stmt of ['CREATE INDEX CONCURRENTLY IF NOT EXISTS sync_lookup_patient_id ON sync_lookup (record_type)',
      'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sync_lookup_patient_id ON sync_lookup (patient_id)']) {
      const err = await failureOf(migrateDir(t, await dirWith({ '0101_other.sql': `${NO_TX}${stmt};\n` })));
      expect(err.message, stmt).toMatch(/index public.sync_lookup_patient_id already exists on sync_lookup \(patient_id\)/);
      expect(await ledger(t)).toEqual(['0100_same']);
    }
  });

  it("a file's SET, SET SESSION CHARACTERISTICS, SET ROLE or RESET ALL ends with the file: later migrations run with the runner's settings", async () => {
    const t = await migrated();
    await t.query('create schema side; create role qa12_reader nologin');
    const dir = await dirWith({
      '0100_path.sql': `${NO_TX}set search_path = side;\nset role qa12_reader;\n`,
      '0101_timeout.sql': `set statement_timeout = '150ms';\nset session characteristics as transaction read only;\n`,
      '0102_reset.sql': `${NO_TX}reset all;\n`,
      '0103_after.sql': `select pg_sleep(0.6);\ncreate table after_sets as select current_setting('application_name') as app, current_user::text as who;\n`,
    });
    const r = await migrateDir(t, dir);
    expect(r.applied.map((a) => a.name)).toEqual(['0100_path', '0101_timeout', '0102_reset', '0103_after']);
    const { rows } = await t.query(`select n.nspname as schema, a.app, a.who from public.after_sets a, pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relname = 'after_sets'`);
    expect(rows).toEqual([{ schema: 'public', app: 'sync-lookup:migrate', who: 'postgres' }]);
  });

  it("a failed no-transaction file's SET does not stay on the runner's connection either", async () => {
    const t = await migrated();
    const dir = await dirWith({ '0100_fail.sql': `${NO_TX}set search_path = pg_catalog;\nselect 1/0;\n` });
    await failureOf(migrateDir(t, dir));
    const dir2 = await dirWith({ '0100_fail.sql': `${NO_TX}set search_path = pg_catalog;\nselect 1;\n`, '0101_next.sql': 'create table after_fail (x int);\n' });
    expect((await migrateDir(t, dir2)).applied.map((a) => a.name)).toEqual(['0100_fail', '0101_next']);
    expect((await t.query(`select 1 from pg_tables where schemaname = 'public' and tablename = 'after_fail'`)).rows).toHaveLength(1);
  });

  it.runIf(cliBuilt())('the CLI exits 2 on a refused file, under --dry-run too, and names file:line', async () => {
    const t = await migrated();
    const dir = await dirWith({ '0100_vac.sql': 'create table t_v (id int);\nvacuum t_v;\n' });
    for (const args of [['migrate', '--dir', dir, '--dry-run'], ['migrate', '--dir', dir]]) {
      const r = await runCli(args, { DATABASE_URL: t.url });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${path.join(dir, '0100_vac.sql')}:2: VACUUM cannot run inside a transaction block`);
    }
  });
});
