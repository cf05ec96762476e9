import { indexBuildEstimate } from '../estimates.js';
import { dropNames } from '../schema/apply.js';
import { formatSize } from '../../plan/describe.js';
import { formatDuration, levelFor, sized, sizeWords, stmtKind, type Ast, type RangeVar, type RuleContext, type RuleHit, type Sized } from './context.js';

/*
 * `non-concurrent-index`: CREATE INDEX, DROP INDEX and REINDEX without CONCURRENTLY block the table's
 * writes (DROP: all access) for the whole build. `concurrent-index-in-transaction`: CONCURRENTLY cannot
 * run inside a transaction block, so such a migration fails on its first run.
 */

/** The index statement's table, whether it is concurrent, and its verb. */
function indexStatement(ctx: RuleContext): { verb: string; concurrent: boolean; s: Sized | null; n: Ast } | null {
  const [kind, n] = stmtKind(ctx.stmt.ast);
  if (kind === 'IndexStmt') return { verb: 'CREATE INDEX', concurrent: !!n.concurrent, s: sized(ctx, n.relation as RangeVar), n };
  if (kind === 'DropStmt' && n.removeType === 'OBJECT_INDEX') {
    const [schema, name] = dropNames(n)[0] ?? [undefined, ''];
    const idx = ctx.model.index(schema, name);
    const [tschema, tname] = idx ? idx.table.split('.') : [undefined, undefined];
    const s = idx ? sized(ctx, { schemaname: tschema!, relname: tname! }) : null;
    return { verb: 'DROP INDEX', concurrent: !!n.concurrent, s, n };
  }
  if (kind === 'ReindexStmt') {
    const concurrent = ((n.params as { DefElem?: { defname?: string } }[] | undefined) ?? []).some((p) => p.DefElem?.defname === 'concurrently');
    const rel = n.relation as RangeVar | undefined;
    let s: Sized | null = null;
    if (n.kind === 'REINDEX_OBJECT_TABLE' && rel) s = sized(ctx, rel);
    else if (n.kind === 'REINDEX_OBJECT_INDEX' && rel) {
      const idx = ctx.model.index(rel.schemaname, rel.relname ?? '');
      const [tschema, tname] = idx ? idx.table.split('.') : [undefined, undefined];
      if (idx) s = sized(ctx, { schemaname: tschema!, relname: tname! });
    }
    return { verb: 'REINDEX', concurrent, s, n };
  }
  return null;
}

/** `non-concurrent-index`: on a large (or unknown) existing table, with the build time when sizes are known. */
export function nonConcurrentIndex(ctx: RuleContext): RuleHit[] {
  const st = indexStatement(ctx);
  if (!st || st.concurrent || !st.s) return [];
  // CREATE INDEX IF NOT EXISTS of an index the schema already has does nothing.
  const rel = st.n.relation as RangeVar | undefined;
  if (st.verb === 'CREATE INDEX' && st.n.if_not_exists && typeof st.n.idxname === 'string' && ctx.model.index(rel?.schemaname, st.n.idxname)) return [];
  const level = levelFor(st.s);
  if (level === null) return [];
  const blocks = st.verb === 'DROP INDEX' ? 'reads and writes' : 'writes';
  let estimate = '';
  const evidence: RuleHit['evidence'] = { rows: st.s.size?.rows ?? null };
  const measured = ctx.settings.measuredIndexBuilds?.get(`${ctx.stmt.file}:${ctx.stmt.offset}`);
  if (measured) {
    estimate = `: index estimate on the database predicts ~${formatSize(measured.indexBytes)}` +
      (measured.buildMs !== null ? ` built in ~${formatDuration(measured.buildMs)} (measured read and sort rates)` : '');
    Object.assign(evidence, { indexBytes: measured.indexBytes, buildMs: measured.buildMs, estimateSource: 'index estimate (measured)' });
  } else if (st.verb === 'CREATE INDEX' && st.s.size) {
    const cols = ((st.n.indexParams as { IndexElem: { name?: string } }[] | undefined) ?? []).map((p) => p.IndexElem.name ?? '');
    const e = cols.every(Boolean) ? indexBuildEstimate(st.s.table, st.s.size, cols, !!st.n.unique, ctx.settings.rates) : null;
    if (e) {
      estimate = `: the build takes ${formatDuration(e.minMs)} to ${formatDuration(e.maxMs)} (index ~${formatSize(e.indexBytes)}; index estimate's model at the stated read rates)`;
      Object.assign(evidence, { indexBytes: e.indexBytes, minMs: e.minMs, maxMs: e.maxMs, estimateSource: 'index estimate model at stated rates' });
    }
  }
  const fix = st.verb === 'REINDEX' ? 'REINDEX … CONCURRENTLY, in a migration that runs outside a transaction'
    : `${st.verb} CONCURRENTLY …, in a migration that runs outside a transaction`;
  return [{
    rule: 'non-concurrent-index', level, table: st.s.key,
    message: `${st.verb} without CONCURRENTLY blocks ${blocks} on ${st.s.key} (${sizeWords(st.s)}) until it ends${estimate}`,
    fix, evidence,
  }];
}

/** `concurrent-index-in-transaction`: only when the transaction is known (marker, runner default, option, BEGIN, batch). */
export function concurrentIndexInTransaction(ctx: RuleContext): RuleHit[] {
  const st = indexStatement(ctx);
  if (!st?.concurrent) return [];
  const why = ctx.state.explicitTransaction ? 'it follows the file\'s own BEGIN'
    : ctx.stmt.batchSize > 1 ? `it is sent with ${ctx.stmt.batchSize - 1} other statement(s) in one query string, which PostgreSQL runs as one implicit transaction`
      : ctx.file.transaction.inTransaction === true ? `the migration runs in a transaction (${ctx.file.transaction.source})` : null;
  if (!why) return [];
  return [{
    rule: 'concurrent-index-in-transaction', level: 'error', table: st.s?.key ?? null,
    message: `${st.verb} CONCURRENTLY cannot run inside a transaction block, and ${why}: the migration fails`,
    fix: ctx.stmt.batchSize > 1 ? 'send the CONCURRENTLY statement on its own, in a migration without a transaction'
      : 'mark the migration as non-transactional (sync-lookup: transaction: false; TypeORM: transaction = false; Knex: config = { transaction: false }; node-pg-migrate: pgm.noTransaction(); SQL: --! no-transaction)',
    evidence: { transactionSource: ctx.file.transaction.source },
  }];
}
