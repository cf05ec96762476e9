import { candidateColumns, missingIndexFix } from '../../plan/classify.js';
import { leadingColumnBound } from '../../plan/bounds.js';
import { whereConjuncts, type ColumnName, type Conjunct } from '../../plan/expr.js';
import type { PlanContext, PlanIndexInfo, PlanTableInfo } from '../../plan/types.js';
import { andParts, shape, type IndexModel, type SchemaModel, type TableModel } from '../schema/model.js';
import type { Ast, RangeVar } from './context.js';

/*
 * Whether an index can serve a statement's predicate, by the plan reader's own reasoning: the WHERE is
 * split into AND-ed conjuncts (`whereConjuncts`) and an index serves it when a conjunct bounds its
 * leading key (`leadingColumnBound`); the fix is the classifier's (`missingIndexFix`).
 */

/** A table a statement reads: the relation as written and the alias its columns are qualified with. */
export interface ReadRelation { rel: RangeVar; alias: string }

/**
 * The relations of a FROM/USING list, the join conditions (`JOIN … ON`) among them, and how many other
 * row sources (sub-selects, set-returning functions) it joins: they are judged on their own.
 */
export function fromRelations(items: unknown[] | undefined): { relations: ReadRelation[]; quals: Ast[]; derived: number } {
  const relations: ReadRelation[] = [];
  const quals: Ast[] = [];
  let derived = 0;
  const visit = (item: unknown) => {
    const n = item as Ast;
    if (n.RangeSubselect || n.RangeFunction) derived++;
    else if (n.RangeVar) {
      const rv = n.RangeVar as RangeVar;
      relations.push({ rel: rv, alias: rv.alias?.aliasname ?? rv.relname ?? '' });
    } else if (n.JoinExpr) {
      const j = n.JoinExpr as Ast;
      visit(j.larg);
      visit(j.rarg);
      if (j.quals) quals.push(j.quals as Ast);
    }
  };
  (items ?? []).forEach(visit);
  return { relations, quals, derived };
}

/**
 * `x IN (SELECT …)` as the plan reader reads a hashed sub-plan: `x = ANY($0)`. The sub-select is judged
 * on its own.
 */
function withoutSubLinks(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutSubLinks);
  if (node === null || typeof node !== 'object') return node;
  const sub = (node as Ast).SubLink as { subLinkType?: string; testexpr?: Ast; operName?: unknown } | undefined;
  if (sub && sub.subLinkType === 'ANY_SUBLINK' && sub.testexpr) {
    return { A_Expr: { kind: 'AEXPR_OP_ANY', name: [{ String: { sval: '=' } }], lexpr: sub.testexpr, rexpr: { ParamRef: { number: 0 } } } };
  }
  if (sub) return { ParamRef: { number: 0 } };
  const rowCompare = rowEquality((node as Ast).A_Expr as Ast | undefined);
  if (rowCompare) return rowCompare;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withoutSubLinks(v)]));
}

/**
 * `(a, b) = (x, y)` and `(a, b) IN ((…), …)` bound each column by equality: `a = $0 AND b = $0`, the form
 * the plan reader's conjuncts understand.
 */
function rowEquality(e: Ast | undefined): Ast | null {
  if (!e || !(e.kind === 'AEXPR_IN' || e.kind === 'AEXPR_OP')) return null;
  const op = ((e.name as { String?: { sval?: string } }[] | undefined) ?? [])[0]?.String?.sval;
  const row = (e.lexpr as { RowExpr?: { args?: Ast[] } } | undefined)?.RowExpr;
  if (op !== '=' || !row?.args?.length) return null;
  const eq = (arg: Ast) => ({ A_Expr: { kind: 'AEXPR_OP', name: [{ String: { sval: '=' } }], lexpr: arg, rexpr: { ParamRef: { number: 0 } } } });
  return { BoolExpr: { boolop: 'AND_EXPR', args: row.args.map(eq) } };
}

/** The conjuncts of a predicate (WHERE and join conditions). */
export function predicateConjuncts(parts: Ast[]): { conjuncts: Conjunct[]; parts: Ast[] } {
  const flat = parts.flatMap((p) => andParts(withoutSubLinks(p) as Ast));
  return { conjuncts: flat.flatMap((p) => whereConjuncts(p)), parts: flat };
}

/** A partial index serves only a predicate that repeats its own conditions (the simple, common case of implication). */
function predicateImplied(index: IndexModel, parts: Ast[]): boolean {
  if (!index.predicate) return true;
  const have = new Set(parts.map(shape));
  return index.predicate.every((p) => have.has(p));
}

/**
 * For an expression key (`lower(email)`), only conditions on an expression count: `email = 'x'` names the
 * key's column but no index on `lower(email)` serves it.
 */
function forKey(index: IndexModel, conjuncts: Conjunct[]): Conjunct[] {
  const first = index.columns[0] ?? '';
  if (!first.startsWith('__expr(')) return conjuncts;
  const names = first.slice('__expr('.length, -1).split(', ');
  return conjuncts.filter((c) => !c.bound.some((b) => names.includes(b.column)));
}

/**
 * Whether the predicate filters this relation on its own (a condition on its columns alone), as opposed to
 * only joining it to the others: a relation that is only joined is read whole by a hash join whatever
 * its indexes (a backfill `UPDATE a … FROM b WHERE a.b_id = b.id` reads all of `a` by design).
 */
export function hasOwnFilter(table: TableModel, alias: string, parts: Ast[]): boolean {
  const columns = table.columns.map((c) => c.name);
  const mine = (c: ColumnName) => (c.qualifier === null ? columns.includes(c.column) : c.qualifier === alias || c.qualifier === table.name);
  return predicateConjuncts(parts).conjuncts.some((c) => c.columns.length > 0 && c.columns.every(mine));
}

/** The index that serves the predicate by its leading key, or null. OR-ed conditions need every arm served. */
export function servingIndex(model: SchemaModel, table: TableModel, alias: string, parts: Ast[]): IndexModel | null {
  const { conjuncts, parts: flat } = predicateConjuncts(parts);
  const columns = table.columns.map((c) => c.name);
  const mine = (c: ColumnName) => (c.qualifier === null ? columns.length === 0 || columns.includes(c.column) : c.qualifier === alias || c.qualifier === table.name);
  const indexes = model.indexesOf(table).filter((i) => predicateImplied(i, flat));
  const direct = indexes.find((i) => leadingColumnBound(i.columns, forKey(i, conjuncts), columns, mine) !== null);
  if (direct) return direct;
  for (const p of flat) {
    const or = p.BoolExpr as { boolop?: string; args?: Ast[] } | undefined;
    if (or?.boolop !== 'OR_EXPR' || !or.args) continue;
    const arms = or.args.map((a) => servingIndex(model, table, alias, [a]));
    if (arms.every((a) => a !== null)) return arms[0]!;
  }
  return null;
}

/** The plan reader's view of one table and its indexes, from the schema model. */
export function planContextFor(model: SchemaModel, table: TableModel, rows: number, bytes: number): PlanContext {
  const info: PlanTableInfo = {
    schema: table.schema, name: table.name, rows, pages: Math.ceil(bytes / 8192), bytes, modsSinceAnalyze: null,
    lastAnalyzedAt: null, columns: table.columns.map((c) => c.name), distinct: {},
  };
  const indexes: Record<string, PlanIndexInfo> = {};
  for (const i of model.indexesOf(table, true)) {
    indexes[i.name] = {
      schema: i.schema, name: i.name, table: table.name, columns: i.columns, include: [], unique: i.unique, primary: i.primary,
      valid: i.valid, method: i.method, predicate: i.predicate ? 'partial' : null, bytes: 0, pages: 0, leadingDistinct: null, definition: '',
    };
  }
  return { serverVersionNum: 180000, tables: { [table.name]: info }, indexes };
}

/** The index that would serve the predicate (the classifier's fix), and why none does. */
export function fixFor(model: SchemaModel, table: TableModel, alias: string, parts: Ast[], rows: number, bytes: number): { fix: string | null; reason: string } {
  const context = planContextFor(model, table, rows, bytes);
  const { conjuncts } = predicateConjuncts(parts);
  const cols = candidateColumns(conjuncts, alias, table.name, context.tables[table.name]);
  const missing = missingIndexFix(table.name, cols, context, {});
  if (!missing) return { fix: null, reason: 'no index can serve this predicate as written (no column is compared to a value)' };
  const later = model.indexesOf(table).filter((i) => cols[0] !== undefined && i.columns.indexOf(cols[0]) > 0);
  const partial = model.indexesOf(table).filter((i) => i.predicate && i.columns[0] === cols[0]);
  const notes = [
    ...later.map((i) => `${i.name} has ${cols[0]} as key column ${i.columns.indexOf(cols[0]!) + 1}, not first`),
    ...partial.map((i) => `${i.name} leads with ${cols[0]} but is partial and its condition is not in this predicate`),
  ];
  return { fix: missing.fix, reason: `${missing.reason}${notes.length ? ` (${notes.join('; ')})` : ''}` };
}
