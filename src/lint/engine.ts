import { relationKey, type SchemaModel } from './schema/model.js';
import { applyStatement } from './schema/apply.js';
import type { FileState, RuleHit, RuleSettings } from './rules/context.js';
import { stmtKind, walkNodes, type Ast } from './rules/context.js';
import { RULES } from './rules/index.js';
import type { SizeMap } from './sizes.js';
import type { ExtractedFile, ExtractedStatement, LintFinding, LintLevel, MigrationPhase, RuleId } from './types.js';

/*
 * Runs the rules over one extracted file against the evolving schema: each statement is judged against
 * the schema as it stands just before it, then its DDL is applied. `down` statements are judged against
 * a copy (they undo this file, not the next one). Then inline ignores are applied.
 */

/** Configured levels per rule: a level, or `off`. */
export type RuleLevels = Partial<Record<RuleId, LintLevel | 'off'>>;

/** Lints one file; `model` is advanced by its `up` (and whole-file) statements. */
export function lintFile(file: ExtractedFile, model: SchemaModel, sizes: SizeMap, settings: RuleSettings, levels: RuleLevels): LintFinding[] {
  const raw: Placed[] = [];
  const forward = file.statements.filter((s) => s.phase !== 'down');
  const down = file.statements.filter((s) => s.phase === 'down');
  // Tables this file creates are new in its `down` too.
  const createdHere = new Set<string>();
  // `down` is judged against the schema `up` left (a copy, made once `up` has been applied).
  for (const [statements, pick] of [[forward, () => model], [down, () => model.clone()]] as const) {
    if (statements.length === 0) continue;
    const target = pick();
    const state: FileState = { lockTimeoutSet: false, explicitTransaction: false, createdHere };
    for (const stmt of statements) {
      for (const rule of RULES) {
        if (!rule.run) continue;
        for (const hit of rule.run({ stmt, file, model: target, sizes, settings, state })) {
          raw.push({ stmt, hit, line: stmt.line, column: stmt.column, offset: stmt.offset, phase: stmt.phase });
        }
      }
      track(state, stmt.ast);
      applyStatement(target, stmt.ast, file.file);
    }
  }
  for (const e of file.errors) {
    raw.push({ stmt: null, line: e.line, column: e.column, offset: -1, phase: e.phase,
      hit: { rule: 'parse-error', level: 'error', table: null, message: `does not parse: ${e.message}`, fix: null, evidence: {} } });
  }
  const findings = applyIgnores(file, onePerTable(raw)).map(({ stmt, hit, line, column, phase }) => ({
    file: file.file, line, column, rule: hit.rule, level: hit.level, phase, table: hit.table, message: hit.message, fix: hit.fix,
    statement: stmt ? (stmt.sql.length > 300 ? `${stmt.sql.slice(0, 297)}...` : stmt.sql) : null, evidence: hit.evidence,
  }));
  return findings.flatMap((f) => configured(f, levels));
}

/** What the file's own statements change for the next ones: lock_timeout, an explicit transaction, new tables. */
function track(state: FileState, ast: Ast): void {
  const [kind, n] = stmtKind(ast);
  if (kind === 'VariableSetStmt' && n.name === 'lock_timeout') state.lockTimeoutSet = n.kind !== 'VAR_RESET';
  if (kind === 'TransactionStmt') {
    if (n.kind === 'TRANS_STMT_BEGIN' || n.kind === 'TRANS_STMT_START') state.explicitTransaction = true;
    if (n.kind === 'TRANS_STMT_COMMIT' || n.kind === 'TRANS_STMT_ROLLBACK') state.explicitTransaction = false;
  }
  if (kind === 'CreateStmt' || kind === 'CreateTableAsStmt') {
    const rel = (n.relation ?? (n.into as Ast | undefined)?.rel) as { schemaname?: string; relname?: string } | undefined;
    state.createdHere.add(relationKey(rel));
  }
  // set_config('lock_timeout', …) in a SELECT.
  walkNodes(ast, (type, x) => {
    if (type !== 'FuncCall') return;
    const name = ((x.funcname as { String?: { sval?: string } }[] | undefined) ?? []).at(-1)?.String?.sval;
    const arg = ((x.args as { A_Const?: { sval?: { sval?: string } } }[] | undefined) ?? [])[0]?.A_Const?.sval?.sval;
    if (name === 'set_config' && arg === 'lock_timeout') state.lockTimeoutSet = true;
  });
}

/** A hit placed in its file: the statement (none for parse errors and ignores), where, and the phase. */
interface Placed { stmt: ExtractedStatement | null; hit: RuleHit; line: number; column: number; offset: number; phase: MigrationPhase }

/** One missing-lock-timeout per table and phase: one `SET lock_timeout` at the top fixes them all. */
function onePerTable(raw: Placed[]): Placed[] {
  const seen = new Set<string>();
  return raw.filter((r) => {
    if (r.hit.rule !== 'missing-lock-timeout') return true;
    const key = `${r.phase} ${r.hit.table ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Drops findings an ignore covers; reports ignores without a reason and ignores that covered nothing. */
function applyIgnores(file: ExtractedFile, raw: Placed[]): Placed[] {
  const used = new Set<number>();
  const kept = raw.filter((r) => {
    const i = file.ignores.findIndex((d) => d.reason !== '' && r.offset >= d.from && r.offset < Math.max(d.to, d.from + 1) &&
      (d.rules.includes(r.hit.rule) || d.rules.includes('all')));
    if (i < 0) return true;
    used.add(i);
    return false;
  });
  const meta = file.ignores.flatMap((d, i): Placed[] => {
    const at = { stmt: null, offset: -1, line: d.line, column: d.column, phase: 'file' as const };
    if (d.reason === '') {
      return [{ ...at, hit: {
        rule: 'ignore-without-reason', level: 'error', table: null, message: `sync-lookup-lint-ignore ${d.rules.join(',')} needs a reason after the rule id; it ignores nothing until it has one`,
        fix: `-- sync-lookup-lint-ignore ${d.rules.join(',') || 'RULE'} <why this is safe>`, evidence: {} } }];
    }
    if (used.has(i)) return [];
    const unknown = d.rules.filter((r) => r !== 'all' && !RULES.some((x) => x.id === r));
    return [{ ...at, hit: {
      rule: 'unused-ignore', level: 'warning', table: null,
      message: unknown.length ? `sync-lookup-lint-ignore names unknown rule(s) ${unknown.join(', ')}` : `sync-lookup-lint-ignore ${d.rules.join(',')} suppressed nothing`,
      fix: 'remove the comment, or correct the rule id', evidence: {} } }];
  });
  return [...kept, ...meta];
}

/** Applies configured levels: `off` drops; `warning` lowers; `error` raises findings at the rule's default level. */
function configured(f: LintFinding, levels: RuleLevels): LintFinding[] {
  const want = levels[f.rule];
  if (want === undefined) return [f];
  if (want === 'off') return [];
  const def = RULES.find((r) => r.id === f.rule)?.level;
  return [want === 'warning' || f.level === def ? { ...f, level: want } : f];
}
