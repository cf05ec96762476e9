import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  classifyPlan, describePlan, type ExplainDocument, type PlanContext, type PlanVerdict,
} from '../../src/plan/plan.js';
import { conditionConjuncts, expressionColumns, loadSqlParser } from '../../src/plan/expr.js';

// Saved EXPLAIN (FORMAT JSON) documents from PostgreSQL 18 and 15 with the catalog context read at the
// same moment (test/fixtures/plans/README.md says how they were made).
interface Fixture { name: string; sql: string; analyzed: boolean; document: ExplainDocument; context: PlanContext }
const root = path.resolve('test/fixtures/plans');
const load = (dir: string, name: string): Fixture => JSON.parse(readFileSync(path.join(root, dir, `${name}.json`), 'utf8')) as Fixture;
const judge = (f: Fixture, options = {}): Promise<PlanVerdict> => classifyPlan(f.document, f.context, options);
const RECORD_TYPE_FIX = 'CREATE INDEX CONCURRENTLY "sync_lookup_record_type_updated_at_sync_tick" ON "public"."sync_lookup" ("record_type", "updated_at_sync_tick")';

beforeAll(async () => { await loadSqlParser(); });

describe.each(['pg18', 'pg15'])('plan classifier on %s fixtures', (dir) => {
  it('has every fixture from the right server version', () => {
    const names = readdirSync(path.join(root, dir)).map((f) => f.replace(/\.json$/, ''));
    expect(names).toEqual(expect.arrayContaining(['unique-index-trap', 'skip-scan', 'bitmap-scan', 'sort-spill', 'hash-spill', 'misestimate']));
    expect(Math.floor(load(dir, 'bitmap-scan').context.serverVersionNum / 10000)).toBe(dir === 'pg18' ? 18 : 15);
  });

  it.each(['unique-index-trap', 'unique-index-trap-analyzed'])('calls the unique-index trap (%s) a full index scan and proposes the record_type index', async (name) => {
    const f = load(dir, name);
    const v = await judge(f);
    expect(v.verdict).toBe('fail');
    const finding = v.findings.find((x) => x.kind === 'full_index_scan')!;
    expect(finding.index).toBe('sync_lookup_record_id_record_type_key');
    expect(finding.evidence.leadingColumn).toBe('record_id');
    expect(v.reason).toMatch(/reads the whole index .*does not bound the leading column record_id/);
    expect(v.fix).toBe(RECORD_TYPE_FIX);
    expect(v.description).toBe('Index Only Scan using sync_lookup_record_id_record_type_key');
  });

  it.each(['purge-seq-scan', 'purge-seq-scan-analyzed'])("fails the seed's purge (%s) as a selective seq scan", async (name) => {
    const v = await judge(load(dir, name));
    expect(v.verdict).toBe('fail');
    expect(v.findings[0]).toMatchObject({ kind: 'seq_scan', severity: 'fail', relation: 'sync_lookup' });
    expect(v.reason).toMatch(/reads all 200 k rows to keep ~8\d{3} .*no index leads with record_type/);
    expect(v.fix).toBe(RECORD_TYPE_FIX);
    expect(v.description).toMatch(/^Seq Scan on sync_lookup \(200 k rows( read)?\)$/);
  });

  it.each(['purge-with-index', 'count-with-index'])('passes the same statements once the record_type index exists (%s)', async (name) => {
    const v = await judge(load(dir, name));
    expect(v.verdict).toBe('ok');
    expect(v.fix).toBeNull();
    expect(v.findings.some((x) => x.kind === 'index_range_scan' && x.index === 'sync_lookup_record_type_updated_at_sync_tick')).toBe(true);
  });

  it('names a multicolumn index used on its second column: skip scan on 18, full index scan on 15', async () => {
    for (const name of ['skip-scan', 'skip-scan-plain']) {
      const v = await judge(load(dir, name));
      const finding = v.findings[0]!;
      if (dir === 'pg18') {
        expect(finding).toMatchObject({ kind: 'skip_scan', severity: 'warn', index: 'skip_demo_grp_val' });
        expect(finding.evidence.leadingDistinct).toBe(4);
        expect(finding.reason).toMatch(/skip scan: 4 distinct values of its leading column grp/);
      } else {
        expect(finding).toMatchObject({ kind: 'full_index_scan', severity: 'fail', index: 'skip_demo_grp_val' });
      }
      expect(finding.fix).toBe('CREATE INDEX CONCURRENTLY "skip_demo_val" ON "public"."skip_demo" ("val")');
    }
  });

  it('reports the descents of an analyzed skip scan (PostgreSQL 18 only prints Index Searches)', async () => {
    const v = await judge(load(dir, 'skip-scan'));
    if (dir === 'pg18') expect(Number(v.findings[0]!.evidence.indexSearches)).toBeGreaterThan(1);
    else expect(v.findings[0]!.evidence.indexSearches).toBeNull();
  });

  it('sees a bitmap scan with its index', async () => {
    const v = await judge(load(dir, 'bitmap-scan'));
    expect(v.verdict).toBe('ok');
    expect(v.findings.map((x) => x.kind)).toEqual(expect.arrayContaining(['bitmap_scan', 'index_range_scan']));
    expect(v.description).toBe('Bitmap Heap Scan on sync_lookup (sync_lookup_patient_id)');
  });

  it('warns about a sort spilling to disk and proposes enough work_mem', async () => {
    const v = await judge(load(dir, 'sort-spill'));
    const spill = v.findings.find((x) => x.kind === 'sort_spill')!;
    expect(spill.severity).toBe('warn');
    const kb = Number(spill.evidence.sortSpaceKb);
    expect(kb).toBeGreaterThan(1000);
    const mb = Number(/work_mem = '(\d+)MB'/.exec(spill.fix ?? '')?.[1]);
    expect(mb * 1024).toBeGreaterThan(kb);
    expect(v.description).toMatch(/Sort spilling [\d.]+ MB to disk/);
  });

  it('warns about a hash spilling to disk', async () => {
    const v = await judge(load(dir, 'hash-spill'));
    const spill = v.findings.find((x) => x.kind === 'hash_spill')!;
    expect(spill.severity).toBe('warn');
    expect(Number(spill.evidence.hashBatches)).toBeGreaterThan(1);
  });

  it('reports a row estimate off by more than 10x where it starts', async () => {
    const v = await judge(load(dir, 'misestimate'));
    const mis = v.findings.filter((x) => x.kind === 'misestimate');
    expect(mis).toHaveLength(1);
    expect(mis[0]).toMatchObject({ nodeType: 'Seq Scan', relation: 'sync_lookup' });
    expect(Number(mis[0]!.evidence.ratio)).toBeGreaterThan(10);
    // 20 000 rows match; the planner multiplies two selectivities it believes independent.
    expect(Math.abs(Number(mis[0]!.evidence.actualRows) - 20000)).toBeLessThan(5);
    // Not analyzed: no misestimates can be claimed.
    const plain = await judge({ ...load(dir, 'purge-seq-scan') });
    expect(plain.findings.some((x) => x.kind === 'misestimate')).toBe(false);
  });

  it('fails the emptiness test by count(*) and passes it by EXISTS', async () => {
    for (const name of ['emptiness-count', 'emptiness-count-analyzed']) {
      const v = await judge(load(dir, name));
      expect(v.verdict).toBe('fail');
      expect(v.reason).toMatch(/to return 1 row/);
      expect(v.fix).toMatch(/NOT EXISTS \(SELECT 1 FROM sync_lookup\)/);
    }
    for (const name of ['emptiness-exists', 'emptiness-exists-analyzed']) {
      const v = await judge(load(dir, name));
      expect(v.verdict).toBe('ok');
    }
    expect(describePlan(load(dir, 'emptiness-exists').document, load(dir, 'emptiness-exists').context))
      .toBe('Seq Scan on sync_lookup (stops after ~1 of 200 k rows)');
  });

  it('passes the initial-tick maxima: a backward range scan of the tick index', async () => {
    const v = await judge(load(dir, 'initial-tick-maxima'));
    expect(v.verdict).toBe('ok');
    expect(v.description).toMatch(/Index Only Scan Backward using sync_lookup_updated_at_sync_tick_record_id_patient_id_facility_/);
    expect(v.findings.find((x) => x.index?.startsWith('sync_lookup_updated_at_sync_tick'))?.kind).toBe('index_range_scan');
  });

  it('judges the same plan differently when the context says so (pure: only the context knows the database)', async () => {
    const trap = load(dir, 'unique-index-trap');
    // A small table: reading all of it is fine.
    expect((await judge(trap, { largeTableRows: 1_000_000 })).verdict).toBe('ok');
    // An INVALID index leading with record_type exists: rebuild it rather than create another.
    const ctx = structuredClone(trap.context);
    ctx.indexes.sync_lookup_rt = { ...ctx.indexes.sync_lookup_patient_id!, name: 'sync_lookup_rt', columns: ['record_type'], valid: false };
    const v = await classifyPlan(trap.document, ctx);
    expect(v.fix).toBe('REINDEX INDEX CONCURRENTLY "public"."sync_lookup_rt"');
    // Another recommended index shape.
    const w = await classifyPlan(trap.document, trap.context, { recommendedIndexes: [{ table: 'sync_lookup', name: 'by_type', columns: ['record_type'] }] });
    expect(w.fix).toBe('CREATE INDEX CONCURRENTLY "by_type" ON "public"."sync_lookup" ("record_type")');
  });
});

describe('plan classifier without a version fixture', () => {
  it('reads a PostgreSQL 18 skip-scan plan as a full index scan when the server is older', async () => {
    const f = load('pg18', 'skip-scan-plain');
    const v = await classifyPlan(f.document, { ...f.context, serverVersionNum: 150010 });
    expect(v.findings[0]).toMatchObject({ kind: 'full_index_scan', severity: 'fail' });
  });

  it('treats a skip scan over a high-cardinality leading column as a full index scan', async () => {
    const f = load('pg18', 'skip-scan-plain');
    const ctx = structuredClone(f.context);
    ctx.indexes.skip_demo_grp_val!.leadingDistinct = 50_000;
    expect((await classifyPlan(f.document, ctx)).findings[0]!.kind).toBe('full_index_scan');
  });

  it('accepts a bare plan node and an explain result', async () => {
    const f = load('pg15', 'purge-seq-scan');
    const a = await classifyPlan(f.document[0]!.Plan, f.context);
    const b = await classifyPlan({ sql: f.sql, params: [], analyzed: false, plan: f.document[0]!.Plan, planningMs: null, executionMs: null, document: f.document }, f.context);
    expect(a).toEqual(b);
    expect(a.verdict).toBe('fail');
  });

  it('reads full verdicts for a verify-like full read when the caller expects one', async () => {
    const f = load('pg18', 'emptiness-count');
    expect((await classifyPlan(f.document, f.context, { fullScanExpected: true })).verdict).toBe('ok');
  });
});

describe('condition reader', () => {
  beforeAll(async () => { await loadSqlParser(); });

  it('finds the bound column through casts and = ANY', () => {
    expect(conditionConjuncts("((record_type)::text = ANY ('{a,b}'::text[]))")).toEqual([
      { columns: [{ qualifier: null, column: 'record_type' }], kind: 'eq', bound: [{ qualifier: null, column: 'record_type' }] },
    ]);
  });

  it('splits AND, reads ranges and IS NOT NULL, and the init-plan references EXPLAIN prints', () => {
    const parts = conditionConjuncts('((updated_at_sync_tick IS NOT NULL) AND (updated_at_sync_tick < (InitPlan 1).col1))')!;
    expect(parts.map((p) => p.kind)).toEqual(['not_null', 'range']);
    expect(conditionConjuncts('(s.id = $0)')![0]!.bound).toEqual([{ qualifier: 's', column: 'id' }]);
    expect(conditionConjuncts('(x = ANY (hashed SubPlan 2))')![0]!.kind).toBe('eq');
  });

  it('does not call an expression over a column a bound on it', () => {
    const [c] = conditionConjuncts("((updated_at_sync_tick % '30'::bigint) = 0)")!;
    expect(c).toMatchObject({ kind: 'eq', bound: [] });
    expect(c!.columns).toEqual([{ qualifier: null, column: 'updated_at_sync_tick' }]);
  });

  it('returns null for text that is not an expression', () => {
    expect(conditionConjuncts('((((')).toBeNull();
  });

  it('reads a row comparison as a range on its first column (keyset reads), in either direction and on either side', () => {
    const rt = [{ qualifier: null, column: 'record_type' }];
    for (const op of ['>', '>=', '<', '<=']) {
      expect(conditionConjuncts(`(ROW((record_type)::text, updated_at_sync_tick) ${op} ROW($1, $2))`)![0]).toMatchObject({ kind: 'range', bound: rt });
    }
    expect(conditionConjuncts("(ROW('a'::text, 5) < ROW((l.record_type)::text, l.updated_at_sync_tick))")![0]!.bound)
      .toEqual([{ qualifier: 'l', column: 'record_type' }]);
  });

  it('reads LIKE prefixes on pattern operator classes and < ANY as ranges; the array of = ANY is no bound', () => {
    const parts = conditionConjuncts("(((patient_id)::text ~>=~ 'p1'::text) AND ((patient_id)::text ~<~ 'p2'::text))")!;
    expect(parts.map((p) => p.kind)).toEqual(['range', 'range']);
    expect(parts[0]!.bound).toEqual([{ qualifier: null, column: 'patient_id' }]);
    expect(conditionConjuncts('(updated_at_sync_tick < ANY ($1))')![0]).toMatchObject({ kind: 'range', bound: [{ qualifier: null, column: 'updated_at_sync_tick' }] });
    expect(conditionConjuncts("('x'::text = ANY (tags))")![0]).toMatchObject({ kind: 'eq', bound: [] });
  });

  it('names the columns of an expression index key', () => {
    expect(expressionColumns('lower((email)::text)')).toEqual(['email']);
  });
});
