import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { BatchSizer, batchTuning } from '../../src/maintenance/batches.js';
import { normalizeTypes, requireKnown } from '../../src/maintenance/record-types.js';
import { partitionName, partitionedSchemaSql, parseLayout } from '../../src/schema/partitioned.js';
import { rebuildBatchQuery } from '../../src/maintenance/rebuild.js';
import { builtinRegistry } from '../../src/lookup/registry.js';

describe('batch sizing', () => {
  it('moves towards the target duration, ×4 when far under it, else at most ×2 / ×½ per batch, within bounds', () => {
    const tuning = batchTuning({ batchMs: 200, initialBatchRows: 1000 });
    const s = new BatchSizer(tuning);
    expect(s.rows).toBe(1000);
    s.observe(20, 1000);
    expect(s.rows).toBe(4000); // far under target: ×4
    s.observe(50, 4000);
    expect(s.rows).toBe(8000);
    s.observe(1600, 8000);
    expect(s.rows).toBe(4000);
    s.observe(400, 4000);
    expect(s.rows).toBe(2000);
    s.observe(250, 2000);
    expect(s.rows).toBe(1600);
    s.observe(1, 10); // a short final batch says nothing
    expect(s.rows).toBe(1600);
    for (let i = 0; i < 30; i++) s.observe(1, s.rows);
    expect(s.rows).toBe(tuning.maxRows);
  });

  it('rejects nonsense tuning with a ConfigError naming the option', () => {
    expect(() => batchTuning({ batchMs: 0 })).toThrow(/batchMs must be a number >= 1, got 0/);
    expect(() => batchTuning({ pauseMs: -1 })).toThrow(ConfigError);
  });
});

describe('record type names', () => {
  it('takes a type named twice once and names every invalid one', () => {
    expect(normalizeTypes(['notes', 'vitals', 'notes'])).toEqual(['notes', 'vitals']);
    expect(() => normalizeTypes(['', 'a\u0000', 'x'.repeat(300)])).toThrow(/an empty record type; "a\\u0000" contains a NUL character; "x{40}"… is longer/);
    expect(() => requireKnown(['notes', 'nope'], ['notes', 'vitals'])).toThrow(/unknown record type "nope" \("nope": did you mean "notes"\?\); known: notes, vitals/);
    expect(() => requireKnown(['zzzzzz'], ['notes'])).toThrow(/unknown record type "zzzzzz"; known: notes/);
  });
});

describe('partitioned layout', () => {
  it('names partitions safely and deterministically', () => {
    expect(partitionName('encounters')).toBe('sync_lookup_p_encounters');
    const hostile = partitionName(`x"; drop table sync_lookup; --`);
    expect(hostile).toMatch(/^sync_lookup_p_x___drop_table_sync_lookup_____[0-9a-f]{8}$/);
    expect(partitionName('default')).not.toBe('sync_lookup_p_default');
    expect(Buffer.byteLength(partitionName('a'.repeat(255)))).toBeLessThanOrEqual(63);
    expect(partitionName('A')).not.toBe(partitionName('a'));
  });

  it('quotes type names in partition bounds and keys the primary key on (id, record_type)', () => {
    const sql = partitionedSchemaSql(["it's"]);
    expect(sql).toContain(`FOR VALUES IN ('it''s')`);
    expect(sql).toContain('PRIMARY KEY (id, record_type)');
    expect(sql).toContain('PARTITION BY LIST (record_type)');
    expect(() => parseLayout('sharded')).toThrow(/--layout must be one of plain, partitioned, got "sharded"/);
  });
});

describe('rebuild batch SQL', () => {
  it('reuses the lookup engine\'s row builder and writes only new or changed rows', () => {
    const q = rebuildBatchQuery(builtinRegistry().get('prescriptions'), { tick: 7, repull: false, limit: 500, after: { tick: '3', id: 'abc' } });
    expect(q.text).toMatch(/ORDER BY s\.updated_at_sync_tick, s\.id/);
    expect(q.text).toMatch(/IS DISTINCT FROM/);
    expect(q.text).toMatch(/ON CONFLICT \(record_id, record_type\) DO UPDATE/);
    expect(q.values.at(-1)).toBe(false);
    expect(q.values).toContain(7);
  });
});
