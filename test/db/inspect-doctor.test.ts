import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/inspect/doctor.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createIndexSql } from '../../src/db/index-ddl.js';
import { RECORD_TYPE_INDEX } from '../../src/schema/sync-lookup.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

/** A session that holds a row lock on sync_lookup inside an open transaction (idle in transaction). */
async function holdWriteLock(t: TestDatabase, id: number): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: t.url, application_name: 'test-holder' });
  await client.connect();
  await client.query('begin');
  await client.query('update sync_lookup set is_deleted = is_deleted where id = $1', [id]);
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return { client, pid: rows[0]!.pid };
}

/** Starts a concurrent index build on its own connection; it waits for lock holders before building. */
async function startConcurrentBuild(t: TestDatabase, sql: string) {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const pid = rows[0]!.pid;
  const done = client.query(sql).then(() => null, (e: unknown) => e);
  return { client, pid, done };
}

async function waitForPhase(t: TestDatabase, pid: number, phase: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await t.query<{ phase: string }>('select phase from pg_stat_progress_create_index where pid = $1', [pid]);
    if (rows[0]?.phase === phase) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`build ${pid} never reached phase ${phase}`);
}

describe.runIf(hasServer())('doctor', () => {
  it('finds an index build waiting on an idle-in-transaction session, then the INVALID index a cancelled build leaves, and redundant and duplicate indexes', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 20_000);
    await t.query('create index sync_lookup_record_type_only on sync_lookup (record_type)');
    await t.query('create index sync_lookup_patient_id_again on sync_lookup (patient_id)');

    const holder = await holdWriteLock(t, 1);
    const build = await startConcurrentBuild(t, 'create index concurrently sync_lookup_facility_id on sync_lookup (facility_id)');
    try {
      await waitForPhase(t, build.pid, 'waiting for writers before build');
      const during = await runDoctor(t.db, { sessionAgeS: 0, explain: false });
      const idle = during.findings.find((f) => f.check === 'idle_in_transaction' && f.evidence.pid === holder.pid);
      expect(idle?.severity).toBe('warning');
      expect(idle?.message).toMatch(/CREATE INDEX CONCURRENTLY started now would wait/);
      expect(idle?.fix).toMatch(new RegExp(`pg_terminate_backend\\(${holder.pid}\\)`));
      const running = during.findings.find((f) => f.check === 'index_build_in_progress');
      expect(running).toMatchObject({ severity: 'warning', evidence: { pid: build.pid, waitingOnPid: holder.pid } });
      // Not valid yet, but being built: not an error.
      const notYet = during.findings.find((f) => f.check === 'invalid_index' && f.subject.endsWith('sync_lookup_facility_id'));
      expect(notYet?.severity).toBe('info');
      expect(during.indexBuilds.map((b) => b.pid)).toContain(build.pid);

      await t.query('select pg_cancel_backend($1)', [build.pid]);
      const err = await build.done;
      expect((err as { code?: string } | null)?.code).toBe('57014');
    } finally {
      await holder.client.query('rollback').catch(() => {});
      await holder.client.end();
      await build.client.end();
    }

    const after = await runDoctor(t.db, { explain: false });
    const invalid = after.findings.find((f) => f.check === 'invalid_index')!;
    expect(invalid).toMatchObject({ severity: 'error', subject: 'public.sync_lookup_facility_id' });
    expect(invalid.fix).toMatch(/^REINDEX INDEX CONCURRENTLY "public"."sync_lookup_facility_id"/);
    expect(after.counts.error).toBeGreaterThanOrEqual(1);
    expect(after.findings[0]!.severity).toBe('error');
    const redundant = after.findings.find((f) => f.check === 'redundant_index')!;
    expect(redundant).toMatchObject({ severity: 'warning', subject: 'public.sync_lookup_record_type_only' });
    expect(redundant.evidence.coveredBy).toBe(RECORD_TYPE_INDEX.name);
    expect(redundant.fix).toBe('DROP INDEX CONCURRENTLY "public"."sync_lookup_record_type_only"');
    const dups = after.findings.filter((f) => f.check === 'duplicate_index');
    expect(dups).toHaveLength(1);
    expect(dups[0]!.subject).toBe('public.sync_lookup_patient_id_again');
    // The idle session is gone.
    expect(after.findings.some((f) => f.check === 'idle_in_transaction')).toBe(false);
    // Fresh statistics cannot call an index unused.
    const unused = after.findings.filter((f) => f.check === 'unused_index');
    expect(unused.every((f) => f.severity === 'info' && f.fix === null)).toBe(true);
    const lookup = after.tables.find((x) => x.name === 'sync_lookup')!;
    expect(lookup.rows).toBe(20_000);
    expect(lookup.indexes.find((i) => i.name === 'sync_lookup_facility_id')?.valid).toBe(false);
  });

  it('reports the missing record_type index from the explain verdicts, stale statistics and dead tuples', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations(), to: builtinMigrations()[0]!.name });
    await t.query('alter table sync_lookup set (autovacuum_enabled = off)');
    await fillSyntheticLookup(t, 30_000);
    const clean = await runDoctor(t.db, { largeTableRows: 10_000 });
    const missing = clean.findings.find((f) => f.check === 'missing_index')!;
    expect(missing.severity).toBe('error');
    expect(missing.fix).toBe(createIndexSql(RECORD_TYPE_INDEX));
    expect(String(missing.evidence.queries)).toMatch(/purge_type/);
    expect(clean.findings.some((f) => f.check === 'stale_statistics' || f.check === 'dead_tuples')).toBe(false);

    // Bulk changes after the last analyze: half the rows deleted.
    await t.query('delete from sync_lookup where id % 2 = 0');
    const after = await runDoctor(t.db, { largeTableRows: 10_000, explain: false, minIndexBloatBytes: 0 });
    const stale = after.findings.find((f) => f.check === 'stale_statistics')!;
    expect(stale).toMatchObject({ severity: 'warning', fix: 'ANALYZE "public"."sync_lookup"' });
    expect(Number(stale.evidence.modsSinceAnalyze)).toBeGreaterThanOrEqual(15_000);
    const dead = after.findings.find((f) => f.check === 'dead_tuples')!;
    expect(dead.fix).toBe('VACUUM (ANALYZE) "public"."sync_lookup"');

    // Index bloat: rewrite every row's patient_id three times; VACUUM frees the old entries but keeps the pages.
    expect(after.findings.some((f) => f.check === 'index_bloat' && f.subject === 'public.sync_lookup_patient_id')).toBe(false);
    for (let i = 0; i < 3; i++) {
      await t.query(`update sync_lookup set patient_id = patient_id || 'x'`);
      await t.query('vacuum analyze sync_lookup');
    }
    const bloated = await runDoctor(t.db, { explain: false, minIndexBloatBytes: 0 });
    const bloat = bloated.findings.find((f) => f.check === 'index_bloat' && f.subject === 'public.sync_lookup_patient_id')!;
    expect(Number(bloat.evidence.ratio)).toBeGreaterThanOrEqual(1.8);
    expect(bloat.fix).toBe('REINDEX INDEX CONCURRENTLY "public"."sync_lookup_patient_id"');
    await t.query('reindex index sync_lookup_patient_id');
    const rebuilt = await runDoctor(t.db, { explain: false, minIndexBloatBytes: 0 });
    expect(rebuilt.findings.some((f) => f.check === 'index_bloat' && f.subject === 'public.sync_lookup_patient_id')).toBe(false);
  });
});
