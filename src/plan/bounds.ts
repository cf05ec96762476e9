import { expressionColumns, type ColumnName, type Conjunct } from './expr.js';

/*
 * Whether a condition bounds an index's leading key: the one question behind "this scan is a lookup or a
 * range" (the classifier, on EXPLAIN's Index Cond) and "no index can serve this predicate" (the migration
 * linter, on a statement's WHERE). Pure.
 */

/** How a condition bounds an index's leading key: `lookup` (equality), `range`, or not at all (null). */
export type LeadingBound = 'lookup' | 'range' | null;

/**
 * Whether `conjuncts` bound the leading key of an index whose key columns are `indexColumns`. A plain
 * key needs a bare (possibly cast) column on one side of `=`, `IN`, a range or `IS NULL`; an expression
 * key (`lower((email)::text)`) is bounded through the columns it names. `tableColumns` tells plain keys
 * from expressions (null when the table's columns are unknown: the key is read as an expression); `mine` says whether a column reference
 * belongs to the indexed table (its qualifier is the table's alias or name, or none).
 *
 * @example
 * leadingColumnBound(['record_id', 'record_type'], conditionConjuncts("record_type = 'x'")!, ['record_id', 'record_type'], () => true) // null
 * leadingColumnBound(['updated_at_sync_tick'], conditionConjuncts('updated_at_sync_tick < 5')!, ['updated_at_sync_tick'], () => true) // 'range'
 */
export function leadingColumnBound(
  indexColumns: readonly string[], conjuncts: readonly Conjunct[], tableColumns: readonly string[] | null,
  mine: (c: ColumnName) => boolean,
): LeadingBound {
  const first = indexColumns[0];
  if (first === undefined) return null;
  const plain = tableColumns !== null && tableColumns.includes(first);
  const leadingCols = plain ? [first] : expressionColumns(first);
  if (leadingCols.length === 0) return null;
  const bounding = conjuncts.filter((c) => c.kind === 'eq' || c.kind === 'range');
  // An expression key is bounded when a condition compares the expression, which names the columns
  // inside it; a plain key needs the bare column on one side.
  const bounds = (c: Conjunct) => (plain ? c.bound : c.columns).some((x) => mine(x) && leadingCols.includes(x.column));
  const hits = bounding.filter(bounds);
  if (hits.length === 0) return null;
  return hits.some((c) => c.kind === 'eq' && c.bound.some((x) => mine(x) && leadingCols.includes(x.column))) ? 'lookup' : 'range';
}
