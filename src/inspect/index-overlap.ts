import type { CatalogIndex, CatalogIndexKey } from '../db/catalog.js';

/*
 * When one index can stand in for another (pure). Two indexes serve the same queries only when every key
 * agrees in what decides which operators it supports and in which order it returns rows: the column or
 * expression, the operator class (varchar_pattern_ops serves LIKE 'p%', text_ops serves = and ranges in
 * the collation's order), the collation, the direction and where NULLs sort; and both indexes cover the
 * same rows (predicate) with the same access method. Anything PostgreSQL would treat differently keeps
 * both: a wrong "drop this index" costs a production query its index, a missed one only some disk.
 */

/** The indexes' overlap: `duplicate` (either can go), `redundant` (the first is served by the second), or null. */
export type IndexOverlap = 'duplicate' | 'redundant' | null;

/**
 * True when two keys are interchangeable: same column or expression, operator class, collation and order.
 *
 * @example
 * sameKey(a.keys[0]!, b.keys[0]!)
 */
export function sameKey(a: CatalogIndexKey, b: CatalogIndexKey): boolean {
  return a.key === b.key && a.expression === b.expression && a.opclass === b.opclass && a.collation === b.collation &&
    a.descending === b.descending && a.nullsFirst === b.nullsFirst;
}

/**
 * How `a` relates to `b` on the same table: `duplicate` when they are the same index (keys, INCLUDE
 * columns, predicate, method, uniqueness); `redundant` when `a` is a plain B-tree whose keys are a leading
 * prefix of `b`'s keys (INCLUDE columns are no prefix) with the same predicate, and `b` covers `a`'s
 * INCLUDE columns. A unique, primary or exclusion index is never redundant: it enforces something.
 *
 * @example
 * indexOverlap(byPatient, byPatientPattern) // null: varchar_pattern_ops serves other operators
 */
export function indexOverlap(a: CatalogIndex, b: CatalogIndex): IndexOverlap {
  if (a.tableOid !== b.tableOid || a.method !== b.method || a.predicate !== b.predicate || a.exclusion || b.exclusion) return null;
  const prefix = a.keys.length <= b.keys.length && a.keys.length > 0 && a.keys.every((k, i) => sameKey(k, b.keys[i]!));
  if (!prefix) return null;
  const sameRules = a.unique === b.unique && a.nullsNotDistinct === b.nullsNotDistinct && a.immediate === b.immediate;
  if (a.keys.length === b.keys.length && sameRules && sameSet(a.include, b.include)) return 'duplicate';
  // Prefixes are a B-tree property: a hash or GiST index on (a, b) cannot search on a alone the same way.
  if (a.method !== 'btree' || a.unique || a.primary) return null;
  const bColumns = new Set([...b.keys.filter((k) => !k.expression).map((k) => k.key), ...b.include]);
  if (!a.include.every((c) => bColumns.has(c))) return null;
  return 'redundant';
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
