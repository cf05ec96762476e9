import { fromRelations, servingIndex } from './scan.js';
import { levelFor, sized, sizeWords, walkNodes, type Ast, type RuleContext, type RuleHit } from './context.js';

/*
 * `count-for-emptiness`: `count(*) = 0` and its kin count every row to learn whether there is one; EXISTS
 * stops at the first.
 */

/** `count(*)` (or `(SELECT count(*) …)`) compared with 0 or 1: a test for rows that reads them all. */
export function countForEmptiness(ctx: RuleContext): RuleHit[] {
  const hits: RuleHit[] = [];
  walkNodes(ctx.stmt.ast, (type, n) => {
    // Counts per group (GROUP BY … HAVING count(*) > 1) are not emptiness tests.
    if (type !== 'SelectStmt' || n.groupClause) return;
    for (const cmp of comparisons([n.targetList, n.whereClause, n.havingClause])) {
      const countLeft = countSource(cmp.lexpr, n) !== null;
      const counted = countLeft ? cmp.lexpr : countSource(cmp.rexpr, n) !== null ? cmp.rexpr : undefined;
      const constant = counted === cmp.lexpr ? cmp.rexpr : cmp.lexpr;
      if (!counted || !isEmptinessTest(countLeft ? cmp.op : mirror(cmp.op), constantValue(constant))) continue;
      hits.push(...emptinessHits(ctx, countSource(counted, n)!, cmp.op));
    }
  });
  return hits;
}

function emptinessHits(ctx: RuleContext, select: Ast, op: string): RuleHit[] {
  const hits: RuleHit[] = [];
  for (const r of fromRelations(select.fromClause as unknown[] | undefined).relations) {
    const s = sized(ctx, r.rel);
    const level = levelFor(s);
    if (level === null) continue;
    if (select.whereClause && s.table && servingIndex(ctx.model, s.table, r.alias, [select.whereClause as Ast])) continue;
    hits.push({
      rule: 'count-for-emptiness', level, table: s.key,
      message: `count(*) ${op} … tests ${s.key} for rows by counting all of them (${sizeWords(s)}); EXISTS stops at the first row`,
      fix: `SELECT EXISTS (SELECT 1 FROM ${r.rel.schemaname ? `${r.rel.schemaname}.` : ''}${r.rel.relname}${select.whereClause ? ' WHERE …' : ''})`,
      evidence: { rows: s.size?.rows ?? null },
    });
  }
  return hits;
}

/** Comparisons (`a op b`) in these expressions, not inside sub-selects. */
function comparisons(roots: unknown[]): { op: string; lexpr: Ast | undefined; rexpr: Ast | undefined }[] {
  const out: { op: string; lexpr: Ast | undefined; rexpr: Ast | undefined }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const e = (v as Ast).A_Expr as Ast | undefined;
    if (e && e.kind === 'AEXPR_OP') {
      const op = ((e.name as { String?: { sval?: string } }[] | undefined) ?? [])[0]?.String?.sval ?? '';
      if (['=', '<>', '!=', '>', '>=', '<', '<='].includes(op)) out.push({ op, lexpr: e.lexpr as Ast | undefined, rexpr: e.rexpr as Ast | undefined });
    }
    for (const [k, child] of Object.entries(v)) if (k !== 'subselect') walk(child);
  };
  roots.forEach(walk);
  return out;
}

/** The integer value of a constant (libpg-query leaves `ival` empty for 0), or null. */
function constantValue(n: Ast | undefined): number | null {
  const c = n?.A_Const as { ival?: { ival?: number } } | undefined;
  return c?.ival !== undefined ? c.ival.ival ?? 0 : null;
}

function mirror(op: string): string {
  return ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as Record<string, string>)[op] ?? op;
}

/** `count op k` asks "is there any row?": `= 0`, `<> 0`, `> 0`, `>= 1`, `< 1`, `<= 0`. */
function isEmptinessTest(op: string, k: number | null): boolean {
  if (k === 0) return ['=', '<>', '!=', '>', '<='].includes(op);
  if (k === 1) return op === '>=' || op === '<';
  return false;
}

/** The SELECT whose rows a `count(*)` counts: the enclosing one, or a scalar sub-select's. */
function countSource(n: Ast | undefined, enclosing: Ast): Ast | null {
  if (!n) return null;
  const isCount = (x: Ast | undefined) => {
    const f = x?.FuncCall as { funcname?: { String?: { sval?: string } }[] } | undefined;
    return f?.funcname?.at(-1)?.String?.sval?.toLowerCase() === 'count';
  };
  if (isCount(n)) return enclosing;
  const sub = n.SubLink as { subLinkType?: string; subselect?: { SelectStmt?: Ast } } | undefined;
  const inner = sub?.subLinkType === 'EXPR_SUBLINK' ? sub.subselect?.SelectStmt : undefined;
  const target = ((inner?.targetList as { ResTarget?: { val?: Ast } }[] | undefined) ?? [])[0]?.ResTarget?.val;
  return inner && isCount(target) ? inner : null;
}
