import { loadModule, parseSync, scanSync } from 'libpg-query';

/*
 * Reads the expressions EXPLAIN prints (`Index Cond`, `Filter`, `Recheck Cond`) with the real PostgreSQL
 * parser, never with regexes: which columns each AND-ed condition constrains and how (equality, range).
 */

let loading: Promise<void> | undefined;

/**
 * Loads the PostgreSQL parser (WebAssembly, ~15 ms once per process). Every async entry point of the
 * plan reader calls it; call it yourself before using the synchronous helpers.
 *
 * @example
 * await loadSqlParser();
 */
export function loadSqlParser(): Promise<void> {
  loading ??= loadModule();
  return loading;
}

/** How one AND-ed condition constrains a column. */
export type BoundKind = 'eq' | 'range' | 'not_null' | 'other';

/** A column as EXPLAIN prints it: `qualifier` is the alias it was printed with, or null. */
export interface ColumnName { qualifier: string | null; column: string }

/** One AND-ed part of a condition: the columns it names and the kind of bound. */
export interface Conjunct {
  /** Every column named anywhere in it. */
  columns: ColumnName[];
  kind: BoundKind;
  /**
   * The columns the bound is on: a side of the comparison that is a bare column (casts allowed), so an
   * index on that column can serve it. `(tick % 30) = 0` bounds no column; `a.x = b.y` bounds both.
   */
  bound: ColumnName[];
}

/** A node of libpg-query's parse tree. */
export type AstNode = Record<string, unknown>;

/**
 * Splits an EXPLAIN condition into its AND-ed parts. Returns null when the text does not parse
 * (EXPLAIN output is not always valid SQL).
 *
 * @example
 * await loadSqlParser();
 * conditionConjuncts("((record_type)::text = 'x'::text)")
 * // [{ columns: [{ qualifier: null, column: 'record_type' }], kind: 'eq', bound: [{ qualifier: null, column: 'record_type' }] }]
 */
export function conditionConjuncts(condition: string): Conjunct[] | null {
  let ast: AstNode;
  try {
    const parsed = parseSync(`SELECT 1 WHERE ${sanitizePlanReferences(condition)}`) as unknown as AstNode;
    const stmts = parsed.stmts as { stmt: { SelectStmt?: { whereClause?: AstNode } } }[] | undefined;
    const where = stmts?.[0]?.stmt.SelectStmt?.whereClause;
    if (!where) return null;
    ast = where;
  } catch {
    return null;
  }
  return whereConjuncts(ast);
}

/**
 * Splits a parsed condition (a `whereClause` node of libpg-query's tree) into its AND-ed parts, the same
 * way {@link conditionConjuncts} reads EXPLAIN's text: for callers that already hold the tree (the linter).
 *
 * @example
 * const where = (parseSync('delete from t where a = 1').stmts[0].stmt.DeleteStmt.whereClause);
 * whereConjuncts(where) // [{ columns: [{ qualifier: null, column: 'a' }], kind: 'eq', bound: [...] }]
 */
export function whereConjuncts(ast: AstNode): Conjunct[] {
  const parts: AstNode[] = [];
  const split = (n: AstNode) => {
    const b = n.BoolExpr as { boolop?: string; args?: AstNode[] } | undefined;
    if (b?.boolop === 'AND_EXPR' && b.args) b.args.forEach(split);
    else parts.push(n);
  };
  split(ast);
  return parts.map((p) => {
    const kind = boundKind(p);
    return { columns: columnRefs(p), kind, bound: kind === 'other' ? [] : boundColumns(p) };
  });
}

/**
 * Columns an expression names (e.g. an expression index key such as `lower((email)::text)`).
 *
 * @example
 * await loadSqlParser();
 * expressionColumns('lower((email)::text)') // ['email']
 */
export function expressionColumns(expression: string): string[] {
  try {
    const parsed = parseSync(`SELECT ${sanitizePlanReferences(expression)}`) as unknown as AstNode;
    return [...new Set(columnRefs(parsed).map((c) => c.column))];
  } catch {
    return [];
  }
}

/** Comparison operators that bound a B-tree key from one side (the pattern ones are LIKE 'abc%' on *_pattern_ops). */
const RANGE_OPS = new Set(['<', '>', '<=', '>=', '~<~', '~>~', '~<=~', '~>=~']);

function boundKind(n: AstNode): BoundKind {
  const expr = n.A_Expr as { kind?: string; name?: { String?: { sval?: string } }[] } | undefined;
  if (expr) {
    const op = expr.name?.[0]?.String?.sval ?? '';
    if (expr.kind === 'AEXPR_IN') return 'eq';
    if (expr.kind === 'AEXPR_OP_ANY' && op === '=') return 'eq';
    // x < ANY (array) and x > ALL (array) bound x from one side, as a plain comparison does.
    if ((expr.kind === 'AEXPR_OP_ANY' || expr.kind === 'AEXPR_OP_ALL') && RANGE_OPS.has(op)) return 'range';
    if (expr.kind === 'AEXPR_BETWEEN') return 'range';
    if (expr.kind === 'AEXPR_OP' && op === '=') return 'eq';
    if (expr.kind === 'AEXPR_OP' && RANGE_OPS.has(op)) return 'range';
    return 'other';
  }
  const nullTest = n.NullTest as { nulltesttype?: string } | undefined;
  if (nullTest) return nullTest.nulltesttype === 'IS_NULL' ? 'eq' : 'not_null';
  return 'other';
}

/**
 * The sides of a comparison (or the argument of IS [NOT] NULL) that are a bare, possibly cast, column.
 * A row comparison `ROW(a, b) > ROW($1, $2)` (keyset pagination) bounds its first column: the scan
 * starts at a = $1 and runs on from there. The array of `x = ANY (arr)` is no bound on the array column.
 */
function boundColumns(n: AstNode): ColumnName[] {
  const expr = n.A_Expr as { kind?: string; lexpr?: AstNode; rexpr?: unknown } | undefined;
  const isAny = expr?.kind === 'AEXPR_OP_ANY' || expr?.kind === 'AEXPR_OP_ALL';
  const sides: unknown[] = expr ? [expr.lexpr, Array.isArray(expr.rexpr) || isAny ? undefined : expr.rexpr]
    : [(n.NullTest as { arg?: AstNode } | undefined)?.arg];
  const out: ColumnName[] = [];
  for (let side of sides) {
    const row = side && typeof side === 'object' && 'RowExpr' in side ? (side as { RowExpr: { args?: unknown[] } }).RowExpr : undefined;
    if (row) side = expr?.kind === 'AEXPR_OP' ? row.args?.[0] : undefined;
    while (side && typeof side === 'object' && 'TypeCast' in side) side = (side as { TypeCast: { arg?: unknown } }).TypeCast.arg;
    if (side && typeof side === 'object' && 'ColumnRef' in side) out.push(...columnRefs(side));
  }
  return out;
}

function columnRefs(node: unknown): ColumnName[] {
  const out: ColumnName[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const ref = (v as AstNode).ColumnRef as { fields?: { String?: { sval?: string } }[] } | undefined;
    if (ref?.fields) {
      const names = ref.fields.map((f) => f.String?.sval).filter((s): s is string => typeof s === 'string');
      const column = names[names.length - 1];
      if (column !== undefined) out.push({ qualifier: names.length > 1 ? names[names.length - 2]! : null, column });
      return;
    }
    for (const child of Object.values(v as AstNode)) walk(child);
  };
  walk(node);
  return out;
}

/**
 * EXPLAIN prints references to sub-plans that are not SQL: `(InitPlan 1).col1` (PostgreSQL 17+),
 * `(SubPlan 2)`, `(hashed SubPlan 1)`. Rewrites each, found by the PostgreSQL scanner's tokens, to a
 * parameter `($0)` so the rest of the condition parses.
 */
function sanitizePlanReferences(text: string): string {
  let tokens: { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return text;
  }
  const word = (i: number) => tokens[i]?.text.toLowerCase();
  let out = '';
  let copied = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (word(i) !== '(') continue;
    let j = i + 1;
    if (word(j) === 'hashed') j++;
    if ((word(j) === 'initplan' || word(j) === 'subplan') && /^\d+$/.test(tokens[j + 1]?.text ?? '') && word(j + 2) === ')') {
      out += `${text.slice(copied, tokens[i]!.start)}($0)`;
      copied = tokens[j + 2]!.end;
      i = j + 2;
    }
  }
  return out + text.slice(copied);
}
