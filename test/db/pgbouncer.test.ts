import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { advisoryUnlock } from '../../src/db/advisory.js';
import { databaseFromUrl } from '../../src/db/connection.js';
import type { SyncLookupError } from '../../src/db/errors.js';
import { seedDatabase } from '../../src/datagen/seed.js';
import { buildLookup } from '../../src/lookup/build.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import type { MigrationEvent } from '../../src/migrate/events.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { hasPgBouncer, startPgBouncer, type TestPgBouncer } from '../helpers/pgbouncer.js';

/*
 * Issue 12, section 2: session-level advisory locks behind a real PgBouncer in transaction mode, started
 * here in front of the test server. `server_round_robin` hands out server connections in turn, as a busy
 * pool does, so consecutive statements of one client land on different backends.
 */

const dbName = (t: TestDatabase) => new URL(t.url).pathname.slice(1);
const failureOf = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as SyncLookupError);

/** Backends holding an advisory lock of `key` in `t`'s database. */
async function holders(t: TestDatabase, key: string): Promise<number[]> {
  const { rows } = await t.query<{ pid: number }>(
    `select pid from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())
        and ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`, [key]);
  return rows.map((r) => r.pid);
}

/** Several application clients at once through the pool: the pool then keeps several server connections. */
async function warmPool(url: string, clients: number): Promise<void> {
  await Promise.all(Array.from({ length: clients }, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('select pg_sleep(0.2)');
    await c.end();
  }));
}

describe.runIf(hasServer() && hasPgBouncer())('behind PgBouncer (pool_mode = transaction)', () => {
  let bouncer: TestPgBouncer;
  const dbs: Record<'mig' | 'sess' | 'sess1' | 'blame' | 'build' | 'stmt' | 'tx1', TestDatabase> = {} as never;

  beforeAll(async () => {
    for (const k of ['mig', 'sess', 'sess1', 'blame', 'build', 'stmt', 'tx1'] as const) dbs[k] = await createTestDatabase();
    bouncer = await startPgBouncer(inject('pgUrl'), {
      mig: { dbname: dbName(dbs.mig), poolMode: 'transaction' },
      sess: { dbname: dbName(dbs.sess), poolMode: 'session' },
      sess1: { dbname: dbName(dbs.sess1), poolMode: 'session', poolSize: 1 },
      blame: { dbname: dbName(dbs.blame), poolMode: 'transaction' },
      build: { dbname: dbName(dbs.build), poolMode: 'transaction' },
      stmt: { dbname: dbName(dbs.stmt), poolMode: 'statement' },
      tx1: { dbname: dbName(dbs.tx1), poolMode: 'transaction', poolSize: 1 },
    }, { server_round_robin: '1' });
  });
  afterAll(async () => { await bouncer?.stop(); });

  it('migrate through a transaction-mode pool is refused before it locks or sets anything; no lock is left behind', async () => {
    await warmPool(bouncer.url('mig'), 4);
    const db = databaseFromUrl(bouncer.url('mig'));
    const outcome = await migrate(db, { migrations: builtinMigrations(), advisoryLockTimeoutMs: 2000 }).then(
      (r) => `applied ${r.applied.length}`, (e: unknown) => e as SyncLookupError);
    expect(await holders(dbs.mig, 'sync-lookup:migrate'), 'the migration lock stays on a pooled backend').toEqual([]);
    expect(outcome).toMatchObject({ code: 'transaction_pooler' });
    expect((outcome as Error).message).toMatch(/connection pooler in transaction mode.*session-mode pool/);
    const { rows } = await dbs.mig.query(`select to_regclass('sync_lookup_tool.migrations') as ledger`);
    expect(rows[0]!.ledger).toBeNull();
  });

  it.runIf(cliBuilt())('the CLI exits 2 with the fix named', async () => {
    const r = await runCli(['migrate'], { DATABASE_URL: bouncer.url('mig') });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/transaction mode.*connect.*directly.*session-mode pool/s);
  });

  it('migrate through a session-mode pool (the fix) applies and releases its lock', async () => {
    const r = await migrate(databaseFromUrl(bouncer.url('sess')), { migrations: builtinMigrations() });
    expect(r.applied).toHaveLength(4);
    expect(await holders(dbs.sess, 'sync-lookup:migrate')).toEqual([]);
  });

  // PgBouncer's query_wait_timeout (120 s) is longer than this test's limit: a probe stuck behind its own
  // second connection's transaction fails here by running out of time.
  it.each(['stmt', 'tx1'] as const)('a statement-mode pool and a transaction-mode pool of one server connection (%s) are refused too, nothing locked or recorded', async (entry) => {
    const err = await failureOf(migrate(databaseFromUrl(bouncer.url(entry)), { migrations: builtinMigrations().slice(0, 1) }));
    expect(err.code, err.message).toBe('transaction_pooler');
    expect(err.message).toMatch(/pool_mode=session/);
    expect(await holders(dbs[entry], 'sync-lookup:migrate')).toEqual([]);
    const { rows } = await dbs[entry].query(`select to_regclass('sync_lookup_tool.migrations') as ledger, to_regclass('public.sync_lookup') as lookup`);
    expect(rows).toEqual([{ ledger: null, lookup: null }]);
  }, 60_000);

  it('a session-mode pool of one server connection: the probe cannot get a second one, and migrate still works', async () => {
    const r = await migrate(databaseFromUrl(bouncer.url('sess1')), { migrations: builtinMigrations().slice(0, 1) });
    expect(r.applied.map((a) => a.name)).toEqual(['0001_baseline']);
    expect(await holders(dbs.sess1, 'sync-lookup:migrate')).toEqual([]);
  });

  it('a migration lock left on a pooled application backend is named as what it is, not as another migrate run', async () => {
    const app = new pg.Client({ connectionString: bouncer.url('blame'), application_name: 'tamanu-central' });
    await app.connect();
    // What an earlier run through the pool leaves: the session lock stays on whichever backend took it.
    await app.query(`select pg_advisory_lock(hashtextextended('sync-lookup:migrate', 0))`);
    await app.query('select 1');
    const [leaked] = await holders(dbs.blame, 'sync-lookup:migrate');
    expect(leaked).toEqual(expect.any(Number));
    const events: MigrationEvent[] = [];
    const err = await failureOf(migrate(dbs.blame.db, { migrations: builtinMigrations(), advisoryLockTimeoutMs: 600, onEvent: (e) => events.push(e) }));
    await app.end();
    await dbs.blame.query('select pg_terminate_backend($1)', [leaked]);
    expect(err.message).not.toMatch(/another migrate run/);
    expect(err.message).toContain(`the migration lock is held by backend pid ${leaked} (application_name "tamanu-central"`);
    expect(err.message).toMatch(/not a running sync-lookup migrate session/);
    expect(events[0]).toMatchObject({ type: 'advisory_lock_wait', holderPid: leaked, holderIsMigrate: false });
  });

  it('a build through a transaction-mode pool is refused too, and leaves no build lock behind', async () => {
    const registry = builtinRegistry();
    await seedDatabase(dbs.build.db, { rows: 500, seed: 3, registry });
    await warmPool(bouncer.url('build'), 4);
    const outcome = await buildLookup(databaseFromUrl(bouncer.url('build')), { registry }).then(
      (r) => `built, end tick ${r.endTick}`, (e: unknown) => e as SyncLookupError);
    expect(await holders(dbs.build, 'sync-lookup:build'), 'the build lock stays on a pooled backend').toEqual([]);
    expect(outcome).toMatchObject({ code: 'transaction_pooler' });
  });

  it('an unlock that PostgreSQL answers with false is an error naming who holds the lock', async () => {
    const holder = new pg.Client({ connectionString: dbs.blame.url, application_name: 'other' });
    await holder.connect();
    await holder.query(`select pg_advisory_lock(hashtextextended('sync-lookup:test', 0))`);
    const c = new pg.Client({ connectionString: dbs.blame.url });
    await c.connect();
    const err = await failureOf(advisoryUnlock(c, 'sync-lookup:test', 'the test lock'));
    await Promise.all([c.end(), holder.end()]);
    expect(err.code).toBe('advisory_unlock_failed');
    expect(err.message).toMatch(/the test lock was not held by this connection's backend .*; backend pid \d+ \(application_name "other"/);
  });
});
