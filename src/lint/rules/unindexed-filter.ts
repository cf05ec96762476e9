import { readTimeMs } from '../estimates.js';
import { fixFor, fromRelations, hasOwnFilter, servingIndex, type ReadRelation } from './scan.js';
import { formatDuration, levelFor, sized, sizeWords, walkNodes, type Ast, type RuleContext, type RuleHit } from './context.js';

/*
 * `unindexed-filter`: a DELETE, UPDATE or SELECT whose predicate no index serves by its leading key
 * reads the whole table. Reported with the rows and bytes it reads, a time range at the stated read
 * rates, and the index that serves it.
 */

interface Scan { verb: string; relations: ReadRelation[]; parts: Ast[]; limited: boolean }

/** Every filtered read in the statement, sub-selects included. */
function scans(ast: Ast): Scan[] {
  const out: Scan[] = [];
  walkNodes(ast, (type, n) => {
    if (type === 'DeleteStmt' || type === 'UpdateStmt') {
      const rv = n.relation as ReadRelation['rel'];
      const from = fromRelations((n.usingClause ?? n.fromClause) as unknown[] | undefined);
      const self = { rel: rv, alias: rv.alias?.aliasname ?? rv.relname ?? '' };
      if (n.whereClause) out.push({ verb: type === 'DeleteStmt' ? 'DELETE' : 'UPDATE', relations: [self, ...from.relations], parts: [n.whereClause as Ast, ...from.quals], limited: false });
    } else if (type === 'SelectStmt' && n.whereClause) {
      const from = fromRelations(n.fromClause as unknown[] | undefined);
      out.push({ verb: 'SELECT', relations: from.relations, parts: [n.whereClause as Ast, ...from.quals], limited: !!n.limitCount });
    }
  });
  return out;
}

/** `unindexed-filter`: every filtered read of the statement, sub-selects included, on a large (or unknown) table. */
export function unindexedFilter(ctx: RuleContext): RuleHit[] {
  const hits: RuleHit[] = [];
  for (const scan of scans(ctx.stmt.ast)) {
    for (const r of scan.relations) {
      const s = sized(ctx, r.rel);
      // Without the table's indexes there is nothing to judge; a new or small table is cheap to read.
      if (!s.table) continue;
      let level = levelFor(s);
      if (level === null || servingIndex(ctx.model, s.table, r.alias, scan.parts)) continue;
      if (scan.relations.length > 1 && !hasOwnFilter(s.table, r.alias, scan.parts)) continue;
      if (scan.limited) level = 'warning';
      const rows = s.size?.rows ?? 0;
      const bytes = s.size?.bytes ?? 0;
      const { fix, reason } = fixFor(ctx.model, s.table, r.alias, scan.parts, rows, bytes);
      const time = s.size ? readTimeMs(bytes, ctx.settings.rates) : null;
      const [slow, fast] = ctx.settings.rates.readMBps;
      hits.push({
        rule: 'unindexed-filter', level, table: s.key,
        message: `${scan.verb} reads all of ${s.key} (${sizeWords(s)})` +
          (time ? `: ${formatDuration(time.minMs)} to ${formatDuration(time.maxMs)} at ${fast}–${slow} MB/s` : '') +
          `, because no index serves its predicate by the leading column: ${reason}` +
          (scan.limited ? '; the LIMIT stops it early only when matching rows are frequent' : ''),
        fix,
        evidence: { rows: s.size?.rows ?? null, bytes: s.size?.bytes ?? null, minMs: time?.minMs ?? null, maxMs: time?.maxMs ?? null, sizeSource: s.size?.source ?? null },
      });
    }
  }
  return hits;
}

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
