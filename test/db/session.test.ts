import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { CancelledError, LockNotAcquiredError } from '../../src/db/errors.js';
import { openSession, withLockRetries, withSession, type LockRetryEvent, type LockRetryPolicy } from '../../src/db/session.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

function policy(over: Partial<LockRetryPolicy> = {}): LockRetryPolicy {
  return {
    lockTimeoutsMs: [50, 100], attempts: 3, sleepMs: () => 20,
    exhausted: (attempts, ms) => `gave up after ${attempts} attempts at ${ms} ms`, ...over,
  };
}

describe.runIf(hasServer())('the shared session', () => {
  it('sets application_name and timeouts, and knows its pid', async () => {
    const t = await createTestDatabase();
    await withSession(t.db, { purpose: 'session-test', lockTimeoutMs: 1234, statementTimeoutMs: 0 }, async (s) => {
      const { rows: [r] } = await s.query<{ an: string; lt: string; st: string; pid: number }>(
        `select current_setting('application_name') as an, current_setting('lock_timeout') as lt,
                current_setting('statement_timeout') as st, pg_backend_pid() as pid`);
      expect(r).toEqual({ an: 'sync-lookup:session-test', lt: '1234ms', st: '0', pid: s.pid });
      expect(s.mode).toBe('batches');
    });
  });

  it('retries a unit whose lock is held, emitting lock_retry with the growing lock_timeout, then succeeds', async () => {
    const t = await createTestDatabase();
    await t.query('create table held (x int)');
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table held in access exclusive mode');
    const events: LockRetryEvent[] = [];
    // Released after the first retry (not after a fixed time: opening the session may take longer than that).
    let released: Promise<unknown> | undefined;
    const n = await withSession(t.db, { purpose: 'session-test' }, (s) =>
      withLockRetries(s, async () => (await s.query('insert into held values (1)')).rowCount,
        policy({ attempts: 20, onRetry: (e) => { events.push(e); released ??= holder.query('rollback'); } })));
    await released;
    await holder.end();
    expect(n).toBe(1);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]).toEqual({ type: 'lock_retry', attempt: 1, attempts: 20, lock_timeout_ms: 50, sleep_ms: 20 });
    if (events[1]) expect(events[1].lock_timeout_ms).toBe(100);
    expect((await t.query('select count(*)::int as n from held')).rows[0]).toEqual({ n: 1 });
  });

  it('gives up with LockNotAcquiredError after the last attempt, and stops at once when aborted', async () => {
    const t = await createTestDatabase();
    await t.query('create table held (x int)');
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table held in access exclusive mode');
    try {
      await withSession(t.db, { purpose: 'session-test' }, async (s) => {
        const insert = () => s.query('insert into held values (1)');
        const err = await withLockRetries(s, insert, policy()).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LockNotAcquiredError);
        expect((err as LockNotAcquiredError).message).toBe('gave up after 3 attempts at 100 ms');
        expect((err as LockNotAcquiredError).details).toEqual({ attempts: 3, lockTimeoutMs: 100 });
        const aborted = new AbortController();
        const started = Date.now();
        const cancelled = withLockRetries(s, insert, policy({ attempts: 100, sleepMs: () => 60_000, signal: aborted.signal,
          onRetry: () => aborted.abort() })).catch((e: unknown) => e);
        expect(await cancelled).toBeInstanceOf(CancelledError);
        expect(Date.now() - started).toBeLessThan(10_000); // the pause woke on the abort
      });
    } finally {
      await holder.end();
    }
    expect((await t.query('select count(*)::int as n from held')).rows[0]).toEqual({ n: 0 });
  });

  it('cancels the running statement on abort and stays usable', async () => {
    const t = await createTestDatabase();
    await withSession(t.db, { purpose: 'session-test' }, async (s) => {
      const aborted = new AbortController();
      setTimeout(() => aborted.abort(), 200);
      const started = Date.now();
      const err = await s.query('select pg_sleep(30)', [], aborted.signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await s.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it("on a caller's client inside its transaction, units are savepoints and its settings come back on close", async () => {
    const t = await createTestDatabase();
    await t.query('create table t (x int)');
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      await client.query(`set application_name = 'caller'`);
      await client.query('begin');
      await client.query('insert into t values (1)');
      const s = await openSession(client, { purpose: 'session-test', lockTimeoutMs: 777 });
      expect(s.mode).toBe('caller_transaction');
      await s.unit(500, () => s.query('insert into t values (2)'));
      await expect(s.unit(500, async () => { await s.query('insert into t values (3)'); throw new Error('boom'); })).rejects.toThrow('boom');
      await s.close();
      // The failed unit rolled back to its savepoint only; nothing is committed before the caller commits.
      expect((await t.query('select count(*)::int as n from t')).rows[0]).toEqual({ n: 0 });
      await client.query('commit');
      expect((await t.query('select array_agg(x order by x) as xs from t')).rows[0]).toEqual({ xs: [1, 2] });
      expect((await client.query(`select current_setting('application_name') as an`)).rows[0]).toEqual({ an: 'caller' });
    } finally {
      await client.end();
    }
  });
});
