import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { estimateIndex, parseIndexTarget } from '../../src/inspect/estimate.js';
import { exportStats } from '../../src/inspect/stats.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

describe.runIf(hasServer())('index estimate on a 1 M-row lookup', () => {
  it('predicts the size of (record_type), (record_type, updated_at_sync_tick) and (patient_id) within ±30 %, before building them', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations(), to: builtinMigrations()[0]!.name });
    await fillSyntheticLookup(t, 1_000_000); // ~15 s: one INSERT … SELECT generate_series
    const cases = [
      { columns: 'record_type', dedup: true },
      { columns: 'record_type, updated_at_sync_tick', dedup: true },
      { columns: 'patient_id', dedup: true },
    ];
    for (const c of cases) {
      const e = await estimateIndex(t.db, `sync_lookup(${c.columns})`);
      const name = `probe_${c.columns.replace(/\W+/g, '_')}`;
      await t.query(`create index ${name} on sync_lookup (${c.columns})`);
      const { rows: [r] } = await t.query<{ bytes: string }>('select pg_relation_size($1::regclass)::text as bytes', [name]);
      const real = Number(r!.bytes);
      const ratio = e.estimatedBytes / real;
      expect(ratio, `${c.columns}: estimated ${e.estimatedBytes}, real ${real}`).toBeGreaterThan(0.7);
      expect(ratio, `${c.columns}: estimated ${e.estimatedBytes}, real ${real}`).toBeLessThan(1.3);
      expect(e.inputs.deduplication).toBe(c.dedup);
      expect(Math.abs(e.inputs.rows - 1_000_000)).toBeLessThan(10_000);
      expect(e.estimatedBuildMs).toBeGreaterThan(0);
      expect(e.inputs.sampledPages).toBeGreaterThan(0);
      expect(e.statement).toBe(`CREATE INDEX CONCURRENTLY "sync_lookup_${c.columns.replace(', ', '_')}" ON "public"."sync_lookup" (${c.columns.split(', ').map((x) => `"${x}"`).join(', ')})`);
    }
    // B-tree deduplication is what keeps (record_type) small: 20 keys, ~6 bytes a row instead of 28.
    const rt = await estimateIndex(t.db, 'sync_lookup(record_type)', { measure: false });
    expect(rt.inputs.distinctKeys).toBe(20);
    expect(rt.inputs.leafBytesPerRow).toBeLessThan(10);
    expect(rt.estimatedBuildMs).toBeNull();
    const unique = await estimateIndex(t.db, 'CREATE UNIQUE INDEX u ON sync_lookup (record_type, updated_at_sync_tick)', { measure: false });
    expect(unique.inputs.deduplication).toBe(false);
    expect(unique.statement).toMatch(/^CREATE UNIQUE INDEX "u"/);

    // stats export on the same table: sizes, estimates and the pg_stats subset, no row data.
    const doc = await exportStats(t.db, { tables: ['sync_lookup'] });
    const table = doc.tables[0]!;
    expect(table).toMatchObject({ name: 'sync_lookup', kind: 'r' });
    expect(Math.abs(table.rows - 1_000_000)).toBeLessThan(10_000);
    const recordType = table.columns.find((c) => c.name === 'record_type')!;
    expect(recordType.mostCommonVals).toHaveLength(20);
    expect(recordType.mostCommonFreqs!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    expect(recordType.distinct).toBe(20);
    const facility = table.columns.find((c) => c.name === 'facility_id')!;
    expect(facility.nullFrac).toBeGreaterThan(0.85);
    expect(table.columns.find((c) => c.name === 'record_id')!.nDistinct).toBe(-1); // unique: every row distinct
    expect(table.indexes.map((i) => i.name)).toContain('probe_patient_id');
    expect(JSON.stringify(doc)).not.toMatch(/"note"/); // no json payloads: only what pg_stats exposes
  }, 300_000); // the 1 M-row fill alone takes most of the default 120 s on a loaded 2-core machine (PostgreSQL 15)

  it('rejects a missing column, a missing table and a statement that does not parse', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    const col = await estimateIndex(t.db, 'sync_lookup(record_type, nope)').catch((e: unknown) => e);
    expect(col).toBeInstanceOf(ConfigError);
    expect((col as ConfigError).message).toMatch(/^column "nope" not in table public.sync_lookup; its columns: id, record_id, record_type/);
    const table = await estimateIndex(t.db, 'CREATE INDEX x ON nope (a)').catch((e: unknown) => e);
    expect((table as ConfigError).message).toBe('table nope does not exist');
    const syntax = await estimateIndex(t.db, 'sync_lookup(record_type').catch((e: unknown) => e);
    expect((syntax as ConfigError).code).toBe('sql_syntax_error');
    expect((syntax as ConfigError).message).toMatch(/at line 1, column 24/);
    await expect(exportStats(t.db, { tables: ['nope'] })).rejects.toThrow('no such table: nope');
  });
});

describe('index target parsing', () => {
  it('reads statements and the short form with the PostgreSQL parser', async () => {
    expect(await parseIndexTarget('CREATE INDEX CONCURRENTLY i ON s.t USING btree (a, b) WITH (fillfactor = 70, deduplicate_items = off) WHERE (a > 1)'))
      .toMatchObject({ schema: 's', table: 't', name: 'i', columns: ['a', 'b'], concurrently: true, fillfactor: 70, deduplicateItems: false, where: '(a > 1)', fromStatement: true });
    expect(await parseIndexTarget(' "Odd Table"("a""b") ')).toMatchObject({ table: 'Odd Table', columns: ['a"b'], fromStatement: false });
    await expect(parseIndexTarget('t(lower(a))')).rejects.toThrow(/expression index keys/);
    await expect(parseIndexTarget('create index on t using hash (a)')).rejects.toThrow(/only B-tree/);
    await expect(parseIndexTarget('create table x (a int)')).rejects.toThrow(/not a CREATE INDEX statement/);
    await expect(parseIndexTarget('select 1')).rejects.toThrow(/syntax error at or near "select" at line 1, column 1/);
  });
});
