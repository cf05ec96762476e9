import { readTimeMs } from '../estimates.js';
import { fixFor, fromRelations, hasOwnFilter, servingIndex, type ReadRelation } from './scan.js';
import { formatDuration, levelFor, sized, sizeWords, walkNodes, type Ast, type RuleContext, type RuleHit } from './context.js';

/*
 * `unindexed-filter`: a DELETE, UPDATE or SELECT whose predicate no index serves by its leading key
 * reads the whole table. Reported with the rows and bytes it reads, a time range at the stated read
 * rates, and the index that serves it.
 */

/** `joined`: the read joins other row sources (tables, sub-selects), so a relation may only be joined, not filtered. */
interface Scan { verb: string; relations: ReadRelation[]; parts: Ast[]; limited: boolean; joined: boolean }

/** Every filtered read in the statement, sub-selects included. */
function scans(ast: Ast): Scan[] {
  const out: Scan[] = [];
  walkNodes(ast, (type, n) => {
    if (type === 'DeleteStmt' || type === 'UpdateStmt') {
      const rv = n.relation as ReadRelation['rel'];
      const from = fromRelations((n.usingClause ?? n.fromClause) as unknown[] | undefined);
      const self = { rel: rv, alias: rv.alias?.aliasname ?? rv.relname ?? '' };
      if (n.whereClause) {
        out.push({ verb: type === 'DeleteStmt' ? 'DELETE' : 'UPDATE', relations: [self, ...from.relations], parts: [n.whereClause as Ast, ...from.quals],
          limited: false, joined: from.relations.length + from.derived > 0 });
      }
    } else if (type === 'SelectStmt' && n.whereClause) {
      const from = fromRelations(n.fromClause as unknown[] | undefined);
      out.push({ verb: 'SELECT', relations: from.relations, parts: [n.whereClause as Ast, ...from.quals], limited: !!n.limitCount, joined: from.relations.length + from.derived > 1 });
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
      if (scan.joined && !hasOwnFilter(s.table, r.alias, scan.parts)) continue;
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
