import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { explainHotQueries, explainSql } from '../../src/inspect/explain.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { setupSourceTables } from '../../src/lookup/source.js';
import { withClient } from '../../src/db/connection.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { RECORD_TYPE_INDEX } from '../../src/schema/sync-lookup.js';
import { createIndexSql } from '../../src/db/index-ddl.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

// 60 k rows is "large" with largeTableRows 20 000: the plans have the production shapes at test speed.
const LARGE = { largeTableRows: 20_000 };

describe.runIf(hasServer())('explain: verdicts on the hot queries of a real database', () => {
  it('fails the purge without a record_type index and passes it after migrate adds the index', async () => {
    const t = await createTestDatabase();
    const baseline = builtinMigrations()[0]!.name;
    await migrate(t.db, { migrations: builtinMigrations(), to: baseline });
    await fillSyntheticLookup(t, 60_000);
    await withClient(t.db, { purpose: 'test' }, (c) => setupSourceTables(c, builtinRegistry()));

    const before = await explainHotQueries(t.db, LARGE);
    const q = (name: string) => before.queries.find((x) => x.name === name)!;
    expect(before.verdict).toBe('fail');
    for (const name of ['purge_type', 'seed_purge']) {
      expect(q(name).verdict, name).toBe('fail');
      expect(q(name).reason, name).toMatch(/Seq Scan on sync_lookup reads all|reads the whole index/);
      expect(q(name).reason, name).toMatch(/no index leads with record_type/);
      expect(q(name).fix, name).toBe(createIndexSql(RECORD_TYPE_INDEX));
    }
    expect(q('initial_tick_maxima').verdict).toBe('ok');
    expect(q('initial_tick_maxima').plan).toMatch(/Index Only Scan Backward using sync_lookup_updated_at_sync_tick/);
    expect(q('seed_emptiness_count').verdict).toBe('fail');
    expect(q('seed_emptiness_count').fix).toMatch(/NOT EXISTS/);
    expect(q('emptiness_exists').verdict).toBe('ok');
    // With the source tables present the engine's own queries are explained, not skipped.
    for (const name of ['build_upsert', 'rebuild_type', 'verify_type', 'pull_incremental', 'pull_initial', 'publish_staged']) {
      expect(['ok', 'warn', 'fail'], `${name}: ${q(name).reason}`).toContain(q(name).verdict);
    }
    expect(before.params?.smallType).toMatch(/^patient_program_registration/);

    await migrate(t.db, { migrations: builtinMigrations() });
    await t.query('analyze sync_lookup');
    const after = await explainHotQueries(t.db, LARGE);
    const a = (name: string) => after.queries.find((x) => x.name === name)!;
    for (const name of ['purge_type', 'seed_purge']) {
      expect(a(name).verdict, `${name}: ${a(name).reason}`).toBe('ok');
      expect(a(name).plan, name).toMatch(/sync_lookup_record_type_updated_at_sync_tick/);
    }
    expect(a('purge_batch').verdict).toBe('ok');
    expect(a('purge_batch').plan).toMatch(/^Tid Scan on sync_lookup/);
    expect(a('seed_emptiness_count').verdict).toBe('fail');
    expect(a('initial_tick_maxima').verdict).toBe('ok');
  });

  it('calls a cursor that walks the primary key in id order to filter one type a full index scan, index or not', async () => {
    // Cursors are planned for the first 10 % of their rows (cursor_tuple_fraction): an id-ordered walk of
    // the primary key that filters looks cheaper than reading the type through its index and sorting.
    // (The purge sets cursor_tuple_fraction = 1 for its cursor; explain does the same for purge_type.)
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 60_000);
    const sql = `DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT id FROM sync_lookup
                  WHERE record_type = ANY('{patient_program_registrations}'::text[]) ORDER BY id`;
    const r = await explainSql(t.db, sql, LARGE);
    const q = r.queries[0]!;
    if (q.plan?.startsWith('Index Scan using sync_lookup_pkey')) {
      expect(q.verdict).toBe('fail');
      expect(q.findings[0]).toMatchObject({ kind: 'full_index_scan', index: 'sync_lookup_pkey' });
    } else {
      expect(q.verdict).toBe('ok');
    }
    // Planned for all its rows, the same query reads the type through the record_type index.
    const whole = await explainSql(t.db, sql.replace('DECLARE c SCROLL CURSOR WITH HOLD FOR ', ''), LARGE);
    expect(whole.queries[0]!.verdict).toBe('ok');
    expect(whole.queries[0]!.plan).toMatch(/sync_lookup_record_type_updated_at_sync_tick/);
  });

  it('executes with --analyze inside a transaction that is rolled back', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    const count = async () => Number((await t.query<{ n: string }>('select count(*) as n from sync_lookup')).rows[0]!.n);
    const n = await count();
    const r = await explainSql(t.db, "delete from sync_lookup where record_type = 'notes'", { analyze: true });
    expect(r.analyzed).toBe(true);
    expect(r.queries[0]!.executionMs).toBeGreaterThan(0);
    expect(await count()).toBe(n);
    const hot = await explainHotQueries(t.db, { analyze: true, ...LARGE });
    expect(hot.queries.filter((x) => x.verdict === 'error')).toEqual([]);
    expect(await count()).toBe(n);
  });

  it('rejects a statement that does not parse with its position, and a missing table, as usage errors', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const err = await explainSql(t.db, 'select 1\n  fro sync_lookup').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('sql_syntax_error');
    expect((err as ConfigError).message).toMatch(/syntax error at or near "sync_lookup" at line 2, column 7/);
    const missing = await explainSql(t.db, 'select * from\nno_such_table').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as ConfigError).message).toBe('relation "no_such_table" does not exist at line 2, column 1');
    expect((missing as ConfigError).details.sqlstate).toBe('42P01');
    const col = await explainSql(t.db, 'select nope from sync_lookup').catch((e: unknown) => e);
    expect((col as ConfigError).message).toMatch(/column "nope" does not exist at line 1, column 8/);
    const two = await explainSql(t.db, 'select 1; select 2').catch((e: unknown) => e);
    expect((two as ConfigError).code).toBe('not_one_statement');
  });
});
