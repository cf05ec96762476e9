import { describe, expect, it } from 'vitest';
import { withClient } from '../../src/db/connection.js';
import { classifyPlan, explainStatement, readPlanContext, type PlanVerdict } from '../../src/plan/plan.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

// Issue 12 §3: the plan reader's verdicts on real plans of PostgreSQL 18 and 15. 60 k rows are "large"
// with largeTableRows 20 000. Planner settings force the plan shape under test; the verdict is on that shape.
const LARGE = { largeTableRows: 20_000 };
const FORCE_INDEX = { enable_seqscan: 'off', enable_bitmapscan: 'off', enable_sort: 'off' };
const NESTED_LOOP = { enable_hashjoin: 'off', enable_mergejoin: 'off', enable_seqscan: 'off', enable_bitmapscan: 'off', enable_material: 'off' };

async function judge(t: TestDatabase, sql: string, params: unknown[], options: { analyze?: boolean; settings?: Record<string, string> } = {}): Promise<PlanVerdict> {
  return withClient(t.db, { purpose: 'test' }, async (c) => {
    const r = await explainStatement(c, sql, params, { analyze: !!options.analyze, settings: options.settings ?? {} });
    return classifyPlan(r, await readPlanContext(c, [r]), LARGE);
  });
}

const scanOf = (v: PlanVerdict, index: string) => v.findings.find((f) => f.index === index);

describe.runIf(hasServer())('plan verdicts: row comparisons and leading-column bounds', () => {
  it.each([false, true])('a keyset read (a, b) > (x, y) on an index led by a is a range scan (analyzed: %s), and so are its variants', async (analyze) => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 60_000);
    const index = 'sync_lookup_record_type_updated_at_sync_tick';
    const cases: [string, unknown[]][] = [
      // The input: the engine's own keyset reads use this form.
      ['SELECT id FROM sync_lookup WHERE (record_type, updated_at_sync_tick) > ($1, $2) ORDER BY record_type, updated_at_sync_tick', ['vital_logs', 90_000]],
      ['SELECT id FROM sync_lookup WHERE (record_type, updated_at_sync_tick) >= ($1, $2) ORDER BY record_type, updated_at_sync_tick', ['vital_logs', 90_000]],
      ['SELECT id FROM sync_lookup WHERE (record_type, updated_at_sync_tick) <= ($1, $2) ORDER BY record_type DESC, updated_at_sync_tick DESC', ['encounter_history', 30_000]],
      ['SELECT id FROM sync_lookup WHERE (record_type, updated_at_sync_tick) < ($1, $2) ORDER BY record_type, updated_at_sync_tick', ['encounter_history', 30_000]],
      ['SELECT id FROM sync_lookup WHERE record_type = ANY($1) ORDER BY record_type, updated_at_sync_tick', [['notes', 'users']]],
    ];
    for (const [sql, params] of cases) {
      const v = await judge(t, sql, params, { analyze, settings: FORCE_INDEX });
      const scan = scanOf(v, index);
      expect(scan, `${sql}: ${v.description}`).toBeDefined();
      expect(scan, sql).toMatchObject({ kind: 'index_range_scan', severity: 'ok' });
      expect(scan!.reason, sql).toMatch(/bounds the leading column record_type/);
      expect(v.verdict, `${sql}: ${v.reason}`).toBe('ok');
      expect(v.fix).toBeNull();
    }
    // A row comparison led by a column the index does not lead with is no bound on it.
    const v = await judge(t, 'SELECT id FROM sync_lookup WHERE (updated_at_sync_tick, record_type) > ($1, $2) ORDER BY record_type, updated_at_sync_tick',
      [90_000, 'x'], { analyze, settings: FORCE_INDEX });
    // (A whole-index read on 15; on 18 a skip scan over the 20 record types.)
    expect(scanOf(v, index)!.kind).toBe(t.major >= 18 ? 'skip_scan' : 'full_index_scan');
  });
});

describe.runIf(hasServer())('plan verdicts: analyzed scans are judged per loop', () => {
  it('an inner index scan that reads the whole index for every outer row is a full index scan, on 18 whatever Index Searches adds up to', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations(), to: builtinMigrations()[0]!.name });
    await fillSyntheticLookup(t, 60_000);
    await t.query(`create table wanted (rt text, pid text); insert into wanted values ('notes', 'p1'), ('users', 'p2'), ('vitals', 'p3'), ('patients', 'p4'), ('settings', 'p5');
      analyze wanted`);
    const v = await judge(t, 'SELECT count(*) FROM wanted w JOIN sync_lookup l ON l.record_type = w.rt', [], { analyze: true, settings: NESTED_LOOP });
    expect(v.description).toMatch(/sync_lookup_record_id_record_type_key/);
    const inner = scanOf(v, 'sync_lookup_record_id_record_type_key')!;
    expect(inner).toMatchObject({ kind: 'full_index_scan', severity: 'fail' });
    expect(inner.evidence.loops).toBe(5);
    expect(inner.reason).toMatch(/reads the whole index \(60 k entries, [\d.]+ MB in each of its 5 loops\)/);
    if (t.major >= 18) expect(inner.evidence.indexSearches).toBe(5);
    expect(v.fix).toMatch(/CREATE INDEX CONCURRENTLY "sync_lookup_record_type_updated_at_sync_tick"/);

    // Variant: the same join on a column the inner index leads with: a lookup per loop.
    const byPatient = await judge(t, 'SELECT count(*) FROM wanted w JOIN sync_lookup l ON l.patient_id = w.pid', [], { analyze: true, settings: NESTED_LOOP });
    expect(scanOf(byPatient, 'sync_lookup_patient_id')).toMatchObject({ kind: 'index_range_scan', severity: 'ok' });
    expect(byPatient.verdict).toBe('ok');
  });

  it('a real skip scan repeated per loop stays a skip scan on 18 (several descents a loop) and is a full index scan on 15', async () => {
    const t = await createTestDatabase();
    await t.query(`create table skip_demo (grp int not null, val int not null, pad text);
      insert into skip_demo select g % 4, g, repeat('x', 40) from generate_series(1, 60000) g;
      create index skip_demo_grp_val on skip_demo (grp, val);
      create table probes (v int); insert into probes values (42), (4242), (42424)`);
    await t.query('vacuum analyze skip_demo');
    await t.query('vacuum analyze probes');
    const v = await judge(t, 'SELECT s.pad FROM probes p JOIN skip_demo s ON s.val = p.v', [], { analyze: true, settings: NESTED_LOOP });
    const inner = scanOf(v, 'skip_demo_grp_val')!;
    expect(inner.evidence.loops).toBe(3);
    if (t.major >= 18) {
      expect(inner).toMatchObject({ kind: 'skip_scan' });
      expect(Number(inner.evidence.indexSearches)).toBeGreaterThan(3);
    } else {
      expect(inner).toMatchObject({ kind: 'full_index_scan', severity: 'fail' });
      expect(inner.reason).toMatch(/in each of its 3 loops/);
    }
  });
});

describe.runIf(hasServer())('plan verdicts: partial indexes', () => {
  async function lookupWithFlags(): Promise<TestDatabase> {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 60_000);
    await t.query(`alter table sync_lookup add column deleted_at timestamptz;
      update sync_lookup set needs_rebuild = true where id % 1000 = 0;
      update sync_lookup set deleted_at = now() where id % 500 = 1;
      create index sync_lookup_deleted on sync_lookup (record_type) where deleted_at is not null;
      create index sync_lookup_live on sync_lookup (record_type) where deleted_at is null;
      create index sync_lookup_not_flagged on sync_lookup (record_type) where not needs_rebuild`);
    await t.query('vacuum analyze sync_lookup');
    return t;
  }

  it('reading all of a small partial index is its purpose: the upgrade gate count(*) WHERE needs_rebuild and its variants pass, without a fix', async () => {
    const t = await lookupWithFlags();
    const cases: [string, string][] = [
      ['SELECT count(*) FROM sync_lookup WHERE needs_rebuild', 'sync_lookup_needs_rebuild_index'],
      ['SELECT count(*) FROM sync_lookup WHERE deleted_at IS NOT NULL', 'sync_lookup_deleted'],
      ['SELECT record_type, count(*) FROM sync_lookup WHERE needs_rebuild GROUP BY record_type', 'sync_lookup_needs_rebuild_index'],
    ];
    for (const analyze of [false, true]) {
      for (const [sql, index] of cases) {
        const v = await judge(t, sql, [], { analyze, settings: FORCE_INDEX });
        const scan = scanOf(v, index);
        expect(scan, `${sql}: ${v.description}`).toBeDefined();
        expect(scan, sql).toMatchObject({ kind: 'index_scan', severity: 'ok' });
        expect(scan!.reason, sql).toMatch(/partial index .* its predicate .* admits only those rows/);
        expect(Number(scan!.evidence.indexEntries), sql).toBeLessThan(200);
        expect(v.verdict, `${sql}: ${v.reason}`).toBe('ok');
        expect(v.fix, sql).toBeNull();
      }
    }
  });

  it('analyzed, a partial index whose catalog count is stale (most rows flagged since the last VACUUM) is judged by the entries read, not "at most" the old count', async () => {
    const t = await lookupWithFlags();
    await t.query('alter table sync_lookup set (autovacuum_enabled = false)');
    await t.query('update sync_lookup set needs_rebuild = true where id % 10 <> 0');
    const { rows: [stale] } = await t.query(`select reltuples from pg_class where relname = 'sync_lookup_needs_rebuild_index'`);
    expect(Number(stale!.reltuples)).toBeLessThan(200);
    for (const sql of ['SELECT count(*) FROM sync_lookup WHERE needs_rebuild', 'SELECT record_id FROM sync_lookup WHERE needs_rebuild']) {
      const v = await judge(t, sql, [], { analyze: true, settings: FORCE_INDEX });
      const scan = v.findings.find((f) => f.index === 'sync_lookup_needs_rebuild_index' && f.kind !== 'misestimate');
      expect(scan, `${sql}: ${v.description}`).toBeDefined();
      expect(scan!.kind, `${sql}: ${scan!.reason}`).toBe('full_index_scan');
      expect(scan!.reason).not.toMatch(/at most/);
      expect(Number(scan!.evidence.indexEntriesRead), sql).toBeGreaterThan(50_000);
    }
  });

  it('a partial index holding most of the table is read like the table, and the fix keeps its predicate (never a rewrite that changes the result)', async () => {
    const t = await lookupWithFlags();
    const cases: [string, string, string][] = [
      ['SELECT count(*) FROM sync_lookup WHERE NOT needs_rebuild', 'sync_lookup_not_flagged', 'WHERE NOT needs_rebuild'],
      ['SELECT count(*) FROM sync_lookup WHERE deleted_at IS NULL', 'sync_lookup_live', 'WHERE deleted_at IS NULL'],
    ];
    for (const analyze of [false, true]) {
      for (const [sql, index, predicate] of cases) {
        const v = await judge(t, sql, [], { analyze, settings: FORCE_INDEX });
        const scan = scanOf(v, index);
        expect(scan, `${sql}: ${v.description}`).toBeDefined();
        expect(scan!.kind, sql).toBe('full_index_scan');
        expect(Number(scan!.evidence.indexEntriesRead), sql).toBeGreaterThan(50_000);
        expect(v.fix, sql).toContain(`NOT EXISTS (SELECT 1 FROM sync_lookup ${predicate})`);
      }
      // Grouped, the query returns a row per type: no one-row rewrite computes that, so none is offered.
      const grouped = await judge(t, 'SELECT record_type, count(*) FROM sync_lookup WHERE NOT needs_rebuild GROUP BY record_type', [],
        { analyze, settings: { ...FORCE_INDEX, enable_hashagg: 'off' } });
      expect(scanOf(grouped, 'sync_lookup_not_flagged')?.kind).toBe('full_index_scan');
      expect(grouped.fix).toBeNull();
    }
  });
});
