import { readTimeMs } from '../estimates.js';
import { typeText } from '../schema/model.js';
import { formatDuration, levelFor, sized, sizeWords, stmtKind, walkNodes, type Ast, type RangeVar, type RuleContext, type RuleHit, type Sized } from './context.js';

/*
 * `full-table-rewrite`: statements that rewrite every row under ACCESS EXCLUSIVE (a type change that is
 * not binary-compatible, ADD COLUMN with a volatile default, VACUUM FULL, CLUSTER) or, for an UPDATE
 * without WHERE, write a new version of every row.
 */

/** Functions whose default PostgreSQL must compute per row (a constant or stable default is stored once). */
const VOLATILE = new Set(['random', 'gen_random_uuid', 'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4', 'uuidv4', 'uuidv7',
  'clock_timestamp', 'timeofday', 'nextval', 'statement_timestamp', 'txid_current', 'setseed']);
const SERIALS = new Set(['serial', 'bigserial', 'smallserial', 'serial4', 'serial8', 'serial2']);

interface TypeParts { base: string; mods: number[]; array: boolean }

function typeParts(text: string): TypeParts {
  const m = /^([^([]+)(?:\(([^)]*)\))?(\[\])*$/.exec(text.trim());
  return { base: m?.[1]?.trim() ?? text, mods: (m?.[2] ?? '').split(',').filter((x) => x.trim()).map(Number), array: text.endsWith('[]') };
}

/**
 * Whether `ALTER COLUMN … TYPE` from `from` to `to` rewrites the table: no for binary-compatible changes
 * (`varchar(n)` → `varchar(m ≥ n)`, `varchar` → `text`, a wider `numeric` of the same scale, `cidr` →
 * `inet`, the same type); yes otherwise, and always with a USING clause.
 *
 * @example
 * typeChangeRewrites('varchar(255)', 'text', false) // false
 * typeChangeRewrites('int4', 'int8', false) // true
 */
export function typeChangeRewrites(from: string, to: string, using: boolean): boolean {
  if (from === to) return using;
  if (using) return true;
  const a = typeParts(from);
  const b = typeParts(to);
  if (a.array !== b.array) return true;
  const textual = (t: string) => t === 'varchar' || t === 'text';
  if (textual(a.base) && b.base === 'text') return false;
  if (a.base === 'text' && b.base === 'varchar' && b.mods.length === 0) return false;
  if (a.base === 'varchar' && b.base === 'varchar') return b.mods.length > 0 && (a.mods.length === 0 || b.mods[0]! < a.mods[0]!);
  if ((a.base === 'varbit' && b.base === 'varbit')) return b.mods.length > 0 && (a.mods.length === 0 || b.mods[0]! < a.mods[0]!);
  if (a.base === 'numeric' && b.base === 'numeric') {
    if (b.mods.length === 0) return false;
    if (a.mods.length === 0) return true;
    return (b.mods[1] ?? 0) !== (a.mods[1] ?? 0) || b.mods[0]! < a.mods[0]!;
  }
  if (a.base === 'cidr' && b.base === 'inet') return false;
  return true;
}

function hit(ctx: RuleContext, s: Sized, what: string, fix: string | null, level = levelFor(s)): RuleHit[] {
  if (level === null) return [];
  const time = s.size ? readTimeMs(s.size.bytes, ctx.settings.rates) : null;
  return [{
    rule: 'full-table-rewrite', level, table: s.key,
    message: `${what} on ${s.key} (${sizeWords(s)})${time ? `: at least ${formatDuration(time.minMs)} to ${formatDuration(time.maxMs)} of reading alone, holding its lock throughout` : ''}`,
    fix, evidence: { rows: s.size?.rows ?? null, bytes: s.size?.bytes ?? null, minMs: time?.minMs ?? null, maxMs: time?.maxMs ?? null },
  }];
}

/** `full-table-rewrite`: ALTER TABLE subcommands that rewrite, VACUUM FULL, CLUSTER, UPDATE without WHERE. */
export function fullTableRewrite(ctx: RuleContext): RuleHit[] {
  const [kind, n] = stmtKind(ctx.stmt.ast);
  if (kind === 'AlterTableStmt' && n.objtype === 'OBJECT_TABLE') return alterRewrites(ctx, n);
  if (kind === 'VacuumStmt' && ((n.options as { DefElem?: { defname?: string } }[] | undefined) ?? []).some((o) => o.DefElem?.defname === 'full')) {
    const rels = ((n.rels as { VacuumRelation?: { relation?: RangeVar } }[] | undefined) ?? []).map((r) => r.VacuumRelation?.relation);
    return rels.flatMap((rel) => hit(ctx, sized(ctx, rel), 'VACUUM FULL rewrites the table and its indexes under ACCESS EXCLUSIVE',
      'plain VACUUM (no lock on reads and writes), or pg_repack / pg_squeeze for an online rewrite'));
  }
  if (kind === 'ClusterStmt' && n.relation) {
    return hit(ctx, sized(ctx, n.relation as RangeVar), 'CLUSTER rewrites the table and its indexes under ACCESS EXCLUSIVE', 'pg_repack --order-by for an online rewrite');
  }
  if (kind === 'UpdateStmt' && !n.whereClause) {
    return hit(ctx, sized(ctx, n.relation as RangeVar), 'UPDATE without WHERE writes a new version of every row (and every index entry unless HOT)',
      'update in batches by primary key ranges, each its own transaction');
  }
  return [];
}

function alterRewrites(ctx: RuleContext, n: Ast): RuleHit[] {
  const s = sized(ctx, n.relation as RangeVar);
  const out: RuleHit[] = [];
  for (const { AlterTableCmd: cmd } of (n.cmds as { AlterTableCmd: Ast }[] | undefined) ?? []) {
    const def = (cmd.def as { ColumnDef?: Ast } | undefined)?.ColumnDef;
    if (cmd.subtype === 'AT_AlterColumnType' && def) {
      const to = typeText(def.typeName as Ast);
      const from = s.table?.columns.find((c) => c.name === cmd.name)?.type;
      if (from === undefined) {
        // Sequelize's changeColumn restates the type every time: with the old type unknown, that says nothing.
        if (ctx.stmt.via.endsWith('.changeColumn()')) continue;
        if (s.state === 'large' || s.state === 'unknown') out.push(...hit(ctx, s, `ALTER COLUMN ${String(cmd.name)} TYPE ${to} rewrites the table unless the change is binary-compatible (the column's current type is unknown)`, null, 'warning'));
      } else if (typeChangeRewrites(from, to, computedUsing(def.raw_default as Ast | undefined, String(cmd.name), to))) {
        out.push(...hit(ctx, s, `ALTER COLUMN ${String(cmd.name)} TYPE ${from} → ${to} rewrites every row under ACCESS EXCLUSIVE`,
          'add a new column, backfill it in batches, then swap names in a short transaction'));
      }
    } else if (cmd.subtype === 'AT_AddColumn' && def) {
      // ADD COLUMN IF NOT EXISTS of a column the table has does nothing.
      if (cmd.missing_ok && s.table?.columns.some((c) => c.name === def.colname)) continue;
      const why = volatileAddColumn(def);
      if (why) out.push(...hit(ctx, s, `ADD COLUMN ${String(def.colname)} with ${why} rewrites every row under ACCESS EXCLUSIVE`,
        'add the column without a default (or with a constant one), then backfill it in batches'));
    }
  }
  return out;
}

/**
 * Whether a USING clause computes new values: `USING col` or `USING col::newtype` changes none (PostgreSQL
 * then rewrites only when the type change itself needs it, as without USING).
 */
function computedUsing(using: Ast | undefined, column: string, to: string): boolean {
  if (!using) return false;
  const cast = using.TypeCast as { arg?: Ast; typeName?: Ast } | undefined;
  if (cast?.typeName && typeText(cast.typeName) !== to) return true;
  const ref = ((cast?.arg ?? using).ColumnRef as { fields?: { String?: { sval?: string } }[] } | undefined)?.fields;
  return !(ref?.length === 1 && ref[0]!.String?.sval === column);
}

/** Why an added column rewrites the table (a volatile default, serial, identity, stored generated), or null. */
function volatileAddColumn(def: Ast): string | null {
  const names = (((def.typeName as Ast | undefined)?.names as { String?: { sval?: string } }[] | undefined) ?? []).map((x) => x.String?.sval ?? '');
  if (SERIALS.has(names.at(-1) ?? '')) return `type ${names.at(-1)} (a nextval() default per row)`;
  for (const { Constraint: c } of (def.constraints as { Constraint: Ast }[] | undefined) ?? []) {
    if (c.contype === 'CONSTR_IDENTITY') return 'an identity (a value per row)';
    if (c.contype === 'CONSTR_GENERATED') return 'a stored generated expression';
    if (c.contype === 'CONSTR_DEFAULT') {
      let fn: string | null = null;
      walkNodes(c.raw_expr, (type, x) => {
        const name = type === 'FuncCall' ? ((x.funcname as { String?: { sval?: string } }[] | undefined) ?? []).at(-1)?.String?.sval : undefined;
        if (name && VOLATILE.has(name.toLowerCase())) fn ??= name;
      });
      if (fn) return `the volatile default ${fn}()`;
    }
  }
  return null;
}
