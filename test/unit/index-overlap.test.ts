import { describe, expect, it } from 'vitest';
import type { CatalogIndex, CatalogIndexKey } from '../../src/db/catalog.js';
import { indexOverlap } from '../../src/inspect/index-overlap.js';

// Indexes as tableIndexes() reads them from pg_index (keys with opclass, collation oid, order).
const key = (k: string, more: Partial<CatalogIndexKey> = {}): CatalogIndexKey =>
  ({ key: k, expression: false, opclass: 'text_ops', collation: 100, collationName: null, descending: false, nullsFirst: false, ...more });
const index = (name: string, keys: CatalogIndexKey[], more: Partial<CatalogIndex> = {}): CatalogIndex => ({
  schema: 'public', name, oid: 1, tableOid: 10, method: 'btree', keys, include: [], predicate: null, unique: false, primary: false,
  nullsNotDistinct: false, immediate: true, exclusion: false, valid: true, definition: '', bytes: 0, entries: 0, pages: 0, constraint: null, requiredBy: [], ...more,
});
const patient = index('sync_lookup_patient_id', [key('patient_id')]);

describe('index overlap', () => {
  it('same keys, method, predicate and uniqueness: duplicates; a non-unique B-tree prefix: redundant', () => {
    expect(indexOverlap(index('b', [key('patient_id')]), patient)).toBe('duplicate');
    expect(indexOverlap(index('rt', [key('record_type')]), index('rt_tick', [key('record_type'), key('tick', { opclass: 'int8_ops', collation: 0 })]))).toBe('redundant');
    expect(indexOverlap(index('h1', [key('patient_id', { opclass: 'text_ops' })], { method: 'hash' }), index('h2', [key('patient_id')], { method: 'hash' }))).toBe('duplicate');
  });

  it.each([
    ['varchar_pattern_ops', key('patient_id', { opclass: 'varchar_pattern_ops' })],
    ['text_pattern_ops', key('patient_id', { opclass: 'text_pattern_ops' })],
    ['COLLATE "C"', key('patient_id', { collation: 950 })],
    ['DESC', key('patient_id', { descending: true, nullsFirst: true })],
    ['NULLS FIRST', key('patient_id', { nullsFirst: true })],
    ['an expression', key('lower((patient_id)::text)', { expression: true })],
  ])('a key with %s is another index', (_, other) => {
    const b = index('other', [other]);
    expect(indexOverlap(patient, b)).toBeNull();
    expect(indexOverlap(b, patient)).toBeNull();
    expect(indexOverlap(patient, index('wider', [other, key('x')]))).toBeNull();
  });

  it('different predicates, methods, or a unique index against a wider one: no overlap', () => {
    expect(indexOverlap(patient, index('p', [key('patient_id')], { predicate: '(facility_id IS NOT NULL)' }))).toBeNull();
    expect(indexOverlap(patient, index('h', [key('patient_id')], { method: 'hash' }))).toBeNull();
    const wide = index('wide', [key('record_id'), key('record_type')]);
    expect(indexOverlap(index('u', [key('record_id')], { unique: true }), wide)).toBeNull();
    expect(indexOverlap(index('u', [key('record_id')], { unique: true }), { ...wide, unique: true })).toBeNull();
    expect(indexOverlap(index('n', [key('record_id')]), { ...wide, unique: true })).toBe('redundant');
    // Same keys, one unique: the non-unique one is served by the unique one, never the other way round.
    expect(indexOverlap(index('n', [key('patient_id')]), index('u', [key('patient_id')], { unique: true }))).toBe('redundant');
    expect(indexOverlap(index('u', [key('patient_id')], { unique: true }), index('n', [key('patient_id')]))).toBeNull();
  });

  it('INCLUDE columns are no key prefix, and must be covered', () => {
    const tick = index('tick', [key('tick', { opclass: 'int8_ops', collation: 0 }), key('record_id'), key('patient_id')]);
    expect(indexOverlap(index('inc', [key('tick', { opclass: 'int8_ops', collation: 0 })], { include: ['record_id'] }), tick)).toBe('redundant');
    expect(indexOverlap(index('inc', [key('tick', { opclass: 'int8_ops', collation: 0 })], { include: ['data'] }), tick)).toBeNull();
    expect(indexOverlap(index('tick_only', [key('tick', { opclass: 'int8_ops', collation: 0 })]),
      index('inc', [key('record_id')], { include: ['tick'] }))).toBeNull();
  });
});
