import { LOOKUP_TABLE } from '../../schema/sync-lookup.js';
import { dropNames } from '../schema/apply.js';
import { andParts } from '../schema/model.js';
import { levelFor, sized, sizeWords, stmtKind, type Ast, type RangeVar, type RuleContext, type RuleHit } from './context.js';

/*
 * `blocking-validation`: constraints checked by a full scan under ACCESS EXCLUSIVE (or, for a foreign
 * key, SHARE ROW EXCLUSIVE). `missing-lock-timeout`: DDL that queues for ACCESS EXCLUSIVE behind a long
 * query, and every query behind it. `sync-lookup-live-type-delete`: lookup rows of a live type deleted
 * with nothing to bring them back.
 */

/** `blocking-validation`: each ALTER TABLE subcommand that validates by a full scan. */
export function blockingValidation(ctx: RuleContext): RuleHit[] {
  const [kind, n] = stmtKind(ctx.stmt.ast);
  if (kind !== 'AlterTableStmt' || n.objtype !== 'OBJECT_TABLE') return [];
  const s = sized(ctx, n.relation as RangeVar);
  const level = levelFor(s);
  if (level === null) return [];
  const out: RuleHit[] = [];
  const add = (what: string, fix: string) => out.push({
    rule: 'blocking-validation', level, table: s.key, message: `${what} scans all of ${s.key} (${sizeWords(s)}) while holding its lock`, fix,
    evidence: { rows: s.size?.rows ?? null, bytes: s.size?.bytes ?? null },
  });
  for (const { AlterTableCmd: cmd } of (n.cmds as { AlterTableCmd: Ast }[] | undefined) ?? []) {
    if (cmd.subtype === 'AT_SetNotNull') {
      const col = s.table?.columns.find((c) => c.name === cmd.name);
      const proven = s.table?.constraints.some((c) => c.kind === 'check' && c.validated && c.notNullColumn === cmd.name);
      if (col?.notNull || proven) continue;
      add(`SET NOT NULL on ${String(cmd.name)}`,
        `ALTER TABLE … ADD CONSTRAINT ${String(cmd.name)}_not_null CHECK (${String(cmd.name)} IS NOT NULL) NOT VALID; then VALIDATE CONSTRAINT (no write lock); then SET NOT NULL (no scan, PostgreSQL 12+)`);
    } else if (cmd.subtype === 'AT_AddConstraint') {
      const c = (cmd.def as { Constraint: Ast }).Constraint;
      if ((c.contype === 'CONSTR_CHECK' || c.contype === 'CONSTR_FOREIGN') && !c.skip_validation) {
        add(`ADD CONSTRAINT ${c.contype === 'CONSTR_CHECK' ? 'CHECK' : 'FOREIGN KEY'} without NOT VALID`,
          'ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT … (a later statement or migration)');
      } else if ((c.contype === 'CONSTR_PRIMARY' || c.contype === 'CONSTR_UNIQUE') && !c.indexname) {
        const what = c.contype === 'CONSTR_PRIMARY' ? 'PRIMARY KEY' : 'UNIQUE';
        add(`ADD ${what} without an existing index builds its index`,
          `CREATE UNIQUE INDEX CONCURRENTLY … first, then ADD CONSTRAINT … ${what} USING INDEX …`);
      }
    } else if (cmd.subtype === 'AT_AddColumn') {
      const def = (cmd.def as { ColumnDef?: Ast }).ColumnDef;
      const keyed = ((def?.constraints as { Constraint: Ast }[] | undefined) ?? []).find((x) => x.Constraint.contype === 'CONSTR_PRIMARY' || x.Constraint.contype === 'CONSTR_UNIQUE');
      if (keyed) add(`ADD COLUMN ${String(def?.colname)} ${keyed.Constraint.contype === 'CONSTR_PRIMARY' ? 'PRIMARY KEY' : 'UNIQUE'} builds an index`, 'add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX');
    }
  }
  return out;
}

/** Subcommands of ALTER TABLE that take less than ACCESS EXCLUSIVE. */
const WEAKER_ALTERS = new Set(['AT_ValidateConstraint', 'AT_SetStatistics', 'AT_AttachPartition', 'AT_ClusterOn', 'AT_DropCluster', 'AT_SetOptions', 'AT_ResetOptions']);

/** The tables a statement takes ACCESS EXCLUSIVE on, with what it does. */
function accessExclusive(ctx: RuleContext): { rel: RangeVar; what: string }[] {
  const [kind, n] = stmtKind(ctx.stmt.ast);
  switch (kind) {
    case 'AlterTableStmt': {
      const cmds = ((n.cmds as { AlterTableCmd: Ast }[] | undefined) ?? []).map((c) => c.AlterTableCmd);
      const strong = cmds.filter((c) => !WEAKER_ALTERS.has(c.subtype as string) &&
        !(c.subtype === 'AT_AddConstraint' && ((c.def as { Constraint?: Ast }).Constraint?.contype === 'CONSTR_FOREIGN')));
      return n.objtype === 'OBJECT_TABLE' && strong.length ? [{ rel: n.relation as RangeVar, what: 'ALTER TABLE' }] : [];
    }
    case 'TruncateStmt': return ((n.relations as { RangeVar: RangeVar }[] | undefined) ?? []).map((r) => ({ rel: r.RangeVar, what: 'TRUNCATE' }));
    case 'RenameStmt': return n.relation && (n.renameType === 'OBJECT_TABLE' || n.renameType === 'OBJECT_COLUMN') ? [{ rel: n.relation as RangeVar, what: 'RENAME' }] : [];
    case 'ClusterStmt': return n.relation ? [{ rel: n.relation as RangeVar, what: 'CLUSTER' }] : [];
    case 'DropStmt': {
      if (n.removeType === 'OBJECT_TABLE') return dropNames(n).map(([schemaname, relname]) => ({ rel: { ...(schemaname ? { schemaname } : {}), relname }, what: 'DROP TABLE' }));
      if (n.removeType === 'OBJECT_INDEX' && !n.concurrent) {
        return dropNames(n).flatMap(([schema, name]) => {
          const idx = ctx.model.index(schema, name);
          const [schemaname, relname] = idx ? idx.table.split('.') : [];
          return idx ? [{ rel: { schemaname: schemaname!, relname: relname! }, what: 'DROP INDEX' }] : [];
        });
      }
      return [];
    }
    default: return [];
  }
}

/** `missing-lock-timeout`: ACCESS EXCLUSIVE on an existing table before any lock_timeout of the file. */
export function missingLockTimeout(ctx: RuleContext): RuleHit[] {
  if (ctx.state.lockTimeoutSet || ctx.settings.lockTimeoutSetByRunner) return [];
  return accessExclusive(ctx).flatMap(({ rel, what }) => {
    const s = sized(ctx, rel);
    if (s.state === 'new' || s.state === 'unresolved') return [];
    return [{
      rule: 'missing-lock-timeout' as const, level: 'warning' as const, table: s.key,
      message: `${what} waits for ACCESS EXCLUSIVE on ${s.key} with no lock_timeout: behind one long query it queues, and every query on ${s.key} queues behind it`,
      fix: `SET lock_timeout = '5s';  -- before the statement (SET LOCAL inside a transaction), and retry on failure`,
      evidence: {},
    }];
  });
}

/** The record types a `DELETE FROM sync_lookup` names as literals in its WHERE (`=`, `IN`, `= ANY(ARRAY[…])`). */
export function deletedRecordTypes(n: Ast): string[] {
  const types: string[] = [];
  const literal = (x: unknown) => (x as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const?.sval?.sval;
  const unwrap = (x: unknown): unknown => ((x as { TypeCast?: { arg?: unknown } } | undefined)?.TypeCast?.arg ?? x);
  for (const p of andParts((n.whereClause ?? {}) as Ast)) {
    const e = p.A_Expr as { kind?: string; lexpr?: unknown; rexpr?: unknown } | undefined;
    const col = ((unwrap(e?.lexpr) as { ColumnRef?: { fields?: { String?: { sval?: string } }[] } } | undefined)?.ColumnRef?.fields ?? []).at(-1)?.String?.sval;
    if (!e || col !== 'record_type') continue;
    const right = unwrap(e.rexpr);
    const r = right as { List?: { items?: unknown[] }; A_ArrayExpr?: { elements?: unknown[] } };
    const items = r.List?.items ?? r.A_ArrayExpr?.elements ?? [right];
    for (const i of items) { const v = literal(unwrap(i)); if (v !== undefined) types.push(v); }
  }
  return types;
}

/** `sync-lookup-live-type-delete`: live types (from `--models`) deleted with no rebuild in the same phase of the migration. */
export function liveTypeDelete(ctx: RuleContext): RuleHit[] {
  const [kind, n] = stmtKind(ctx.stmt.ast);
  if (kind !== 'DeleteStmt' || (n.relation as RangeVar).relname !== LOOKUP_TABLE || ctx.settings.liveTypes.size === 0) return [];
  const rebuilt = new Set(ctx.file.rebuilds.filter((r) => r.phase === ctx.stmt.phase || r.phase === 'file').flatMap((r) => r.types));
  const live = deletedRecordTypes(n).filter((t) => ctx.settings.liveTypes.has(t) && !rebuilt.has(t) && !rebuilt.has('*'));
  if (live.length === 0) return [];
  return [{
    rule: 'sync-lookup-live-type-delete', level: 'error', table: `public.${LOOKUP_TABLE}`,
    message: `deletes the lookup rows of ${live.join(', ')}, still in the registry, and nothing in this migration rebuilds them: no later build reads their unchanged source rows, so facilities never get them again`,
    fix: `sync-lookup purge ${live.join(' ')} --then-rebuild (or rebuildRecordTypes), or SELECT flag_lookup_model_to_rebuild('${live[0]}') in the same migration`,
    evidence: { types: live.join(',') },
  }];
}
