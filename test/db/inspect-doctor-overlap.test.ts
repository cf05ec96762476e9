import { describe, expect, it } from 'vitest';
import { runDoctor, type DoctorFinding } from '../../src/inspect/doctor.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

// Issue 12 §4: doctor calls an index duplicate or redundant only when another serves every query it serves.
const BASELINE_TICK = 'sync_lookup_updated_at_sync_tick_record_id_patient_id_facility_'; // truncated to 63 bytes

async function overlapFindings(t: TestDatabase): Promise<DoctorFinding[]> {
  const r = await runDoctor(t.db, { explain: false });
  return r.findings.filter((f) => f.check === 'duplicate_index' || f.check === 'redundant_index');
}

/** Names the doctor advises dropping. */
const dropped = (fs: DoctorFinding[]) => fs.map((f) => String(f.evidence.index)).sort();

describe.runIf(hasServer())('doctor: duplicate and redundant indexes', () => {
  it('keeps the baseline indexes next to a varchar_pattern_ops, a COLLATE "C" and a DESC index (the field report), and patient_id = $1 keeps its index', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    // Names that sort before the baseline's: the old doctor kept the first by name and told users to drop the baseline's.
    await t.query('create index idx_patient_pattern on sync_lookup (patient_id varchar_pattern_ops)');
    await t.query('create index idx_patient_c on sync_lookup (patient_id collate "C")');
    await t.query('create index idx_tick_desc on sync_lookup (updated_at_sync_tick desc, record_id, patient_id, facility_id)');
    const findings = await overlapFindings(t);
    expect(dropped(findings)).toEqual([]);
    // Apply whatever the doctor advises: patient_id = 'p7' must still be served by a default-collation index.
    for (const f of findings) await t.query(f.fix!.replace(' CONCURRENTLY', ''));
    const c = await t.query('select indexrelid::regclass::text as name from pg_index where indrelid = \'sync_lookup\'::regclass');
    expect(c.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['sync_lookup_patient_id', BASELINE_TICK]));
    // The user's experiments go again; the lookups of one patient keep their index.
    await t.query('drop index idx_patient_pattern, idx_patient_c, idx_tick_desc');
    const results = await t.query(`set enable_seqscan = off; set enable_bitmapscan = off;
      explain select * from sync_lookup where patient_id = 'p7' order by patient_id`) as unknown as { rows: { 'QUERY PLAN': string }[] }[];
    expect(results[2]!.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Index Scan using sync_lookup_patient_id on sync_lookup/);
  });

  it('keeps indexes that differ in operator class, NULLS order, predicate, expression, method or uniqueness', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    const variants = [
      'create index a_patient_text_pattern on sync_lookup (patient_id text_pattern_ops)',
      'create index a_patient_nulls_first on sync_lookup (patient_id nulls first)',
      'create index a_patient_partial on sync_lookup (patient_id) where facility_id is not null',
      'create index a_patient_lower on sync_lookup (lower(patient_id))',
      'create index a_patient_hash on sync_lookup using hash (patient_id)',
      // Unique and narrower than the baseline's unique (record_id, record_type): it enforces more, never redundant.
      'create unique index a_record_id_unique on sync_lookup (record_id)',
      // A prefix of the record_type index, but sorted the other way round on its only key.
      'create index a_record_type_desc on sync_lookup (record_type desc nulls last)',
      // A prefix of the tick index as INCLUDE columns: INCLUDE is no key prefix.
      'create index a_tick_include on sync_lookup (updated_at_sync_tick) include (record_id, patient_id, facility_id, record_type)',
    ];
    for (const sql of variants) await t.query(sql);
    expect(dropped(await overlapFindings(t))).toEqual([]);
  });

  it('still finds true duplicates and prefixes, whatever their names', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    await t.query('create index a_patient_same on sync_lookup (patient_id)');
    await t.query('create index z_patient_partial on sync_lookup (patient_id) where facility_id is not null');
    await t.query('create index z_patient_partial_again on sync_lookup (patient_id) where facility_id is not null');
    await t.query('create index a_record_type on sync_lookup (record_type)');
    await t.query('create index a_record_id on sync_lookup (record_id)');
    await t.query('create index z_patient_hash on sync_lookup using hash (patient_id)');
    await t.query('create index z_patient_hash_again on sync_lookup using hash (patient_id)');
    await t.query('create index a_patient_pattern on sync_lookup (patient_id varchar_pattern_ops)');
    await t.query('create index z_patient_pattern_again on sync_lookup (patient_id varchar_pattern_ops)');
    const findings = await overlapFindings(t);
    const by = (name: string) => findings.find((f) => f.evidence.index === name);
    expect(dropped(findings)).toEqual(['a_record_id', 'a_record_type', 'sync_lookup_patient_id', 'z_patient_hash_again',
      'z_patient_partial_again', 'z_patient_pattern_again']);
    expect(by('sync_lookup_patient_id')).toMatchObject({ check: 'duplicate_index', evidence: { duplicateOf: 'a_patient_same' } });
    expect(by('a_record_type')).toMatchObject({ check: 'redundant_index', evidence: { coveredBy: 'sync_lookup_record_type_updated_at_sync_tick' } });
    // A non-unique (record_id) is served by the unique (record_id, record_type).
    expect(by('a_record_id')?.check).toBe('redundant_index');
  });

  it('of two duplicates keeps the one a constraint, a foreign key or the replica identity needs, whatever the names', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 2_000);
    await t.query(`alter table sync_lookup add column ext text, add column ext2 text, add column ext3 text not null default ''`);
    await t.query(`update sync_lookup set ext = record_id || record_type, ext2 = record_id || record_type, ext3 = record_id || record_type`);
    // A unique constraint (ON CONFLICT ON CONSTRAINT names it) next to a plain unique index sorting first.
    await t.query('create unique index a_ext on sync_lookup (ext)');
    await t.query('alter table sync_lookup add constraint z_ext_key unique (ext)');
    // A foreign key from another table through the later-named of two unique indexes.
    await t.query('create unique index z_ext2 on sync_lookup (ext2)');
    await t.query('create table child_ref (ext2 text references sync_lookup (ext2))');
    await t.query('create unique index a_ext2 on sync_lookup (ext2)');
    // Logical replication identifies rows through z_ext3.
    await t.query('create unique index z_ext3 on sync_lookup (ext3)');
    await t.query('alter table sync_lookup replica identity using index z_ext3');
    await t.query('create unique index a_ext3 on sync_lookup (ext3)');
    const findings = await overlapFindings(t);
    expect(dropped(findings)).toEqual(['a_ext', 'a_ext2', 'a_ext3']);
    // Every fix applies: none of them is refused for a dependency, and the replica identity stays.
    for (const f of findings) await t.query(f.fix!.replace(' CONCURRENTLY', ''));
    const { rows } = await t.query(`select indexrelid::regclass::text as name from pg_index where indisreplident`);
    expect(rows).toEqual([{ name: 'z_ext3' }]);
  });

  it('on the partitioned layout, a copy of an attached partition index is the one to drop, never the attached one', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: ['notes'] }) });
    await fillSyntheticLookup(t, 2_000);
    await t.query('create index a_notes_patient on sync_lookup_p_notes (patient_id)');
    await t.query('create index a_default_type_tick on sync_lookup_p_default (record_type, updated_at_sync_tick, record_id)');
    const findings = await overlapFindings(t);
    expect(dropped(findings).filter((n) => !n.startsWith('a_'))).toEqual([]);
    expect(dropped(findings)).toContain('a_notes_patient');
    for (const f of findings) await t.query(f.fix!.replace(' CONCURRENTLY', ''));
  });
});
