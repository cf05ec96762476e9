import { describe, expect, it } from 'vitest';
import { captureSql, dropCaptureSql, tempIndexName } from '../../src/maintenance/convert-tables.js';

describe('convert: pure parts', () => {
  it('temporary index names are valid identifiers, one per final name and tag, never the final name', () => {
    const finals = ['sync_lookup_pkey', 'sync_lookup_updated_at_sync_tick_record_id_patient_id_facility_', 'x'.repeat(63)];
    const names = finals.flatMap((f) => [tempIndexName(f, 'a'), tempIndexName(f, 'b')]);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^sync_lookup_cv[ab]_[0-9a-f]{16}$/);
    expect(tempIndexName('sync_lookup_pkey')).toBe(tempIndexName('sync_lookup_pkey', 'a'));
  });

  it('capture triggers quote partition names and record types (a hostile type cannot reach the SQL)', () => {
    const hostile = `x'); DROP TABLE sync_lookup; --`;
    const sql = captureSql([
      { table: { schema: 'public', name: 'sync_lookup_p_"odd' }, types: [hostile], isDefault: false },
      { table: { schema: 'public', name: 'sync_lookup_p_default' }, types: [], isDefault: true },
    ]);
    expect(sql).toHaveLength(4);
    expect(sql[2]).toContain(`"sync_lookup_p_""odd"`);
    expect(sql[2]).toContain(`('x''); DROP TABLE sync_lookup; --')`);
    expect(sql[3]).toMatch(/conversion_capture_truncate\(\)$/);
    expect(dropCaptureSql([{ table: { schema: 'public', name: 'p' }, types: [], isDefault: false }])).toEqual([
      'DROP TRIGGER IF EXISTS sync_lookup_convert_capture ON "public"."sync_lookup"',
      'DROP TRIGGER IF EXISTS sync_lookup_convert_truncate ON "public"."sync_lookup"',
      'DROP TRIGGER IF EXISTS sync_lookup_convert_truncate ON "public"."p"',
    ]);
  });
});
