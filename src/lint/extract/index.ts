import { scanSync } from 'libpg-query';
import type { ExtractedFile, ExtractedStatement, IgnoreDirective, MigrationPhase } from '../types.js';
import { extractJs, type SqlCall } from './js.js';
import { doBlockStatements } from './plpgsql.js';
import { ignoreDirective, noTransactionComment, parseIgnore, sectionComment, transactionContext } from './markers.js';
import { bindPlaceholders, MappedSql, parseStatements, sqlComments, UNRESOLVED_NAME_PREFIX, withoutPsqlMetaCommands, type SqlPiece } from './sql-text.js';

/*
 * Reads one migration file into parsed statements, ignores and its transaction context: `.sql` files
 * directly, `.js/.ts/.mjs/.cjs` through the JavaScript extractor. The SQL parser is libpg-query's; load it
 * first (`loadSqlParser`).
 */

/** File extensions the linter reads. */
export const MIGRATION_EXTENSIONS = ['.sql', '.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/** Line starts of a text, to turn offsets into 1-based lines and columns. */
export function lineIndex(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (starts[mid]! <= offset) lo = mid; else hi = mid - 1; }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  };
}

/**
 * Extracts a migration file. Never throws for bad input: unparsable code or SQL is in `errors`.
 *
 * @example
 * await loadSqlParser();
 * const f = extractFile('001.sql', 'create index on t (a);');
 * f.statements[0].ast // { IndexStmt: … }
 */
export function extractFile(file: string, text: string, options: { assumeInTransaction?: boolean | null } = {}): ExtractedFile {
  const at = lineIndex(text);
  const out: ExtractedFile = { file, statements: [], ignores: [], transaction: { inTransaction: null, source: '' }, rebuilds: [], errors: [] };
  const assumed = options.assumeInTransaction ?? null;
  if (file.endsWith('.sql')) {
    const marker = addSql(out, at, new MappedSql([{ text: withoutPsqlMetaCommands(text), src: 0 }]), { phase: sqlFilePhase(file), via: 'sql file', call: 0, translated: false });
    applySections(out, text);
    out.transaction = transactionContext(marker, 'sql', assumed);
    return out;
  }
  let js;
  try {
    js = extractJs(text, file);
  } catch (err) {
    const e = err as { message?: string; loc?: { line: number; column: number } };
    out.errors.push({ line: e.loc?.line ?? 1, column: (e.loc?.column ?? 0) + 1, message: e.message ?? String(err), phase: 'file' });
    out.transaction = transactionContext(null, null, assumed);
    return out;
  }
  let marker = js.noTransactionMarker;
  js.calls.forEach((call, i) => { marker = addCall(out, at, call, i) ?? marker; });
  for (const c of js.comments) {
    const parsed = parseIgnore(c.text);
    if (parsed && c.next) out.ignores.push(ignoreDirective(file, at(c.start), parsed, c.next));
    const m = noTransactionComment(`--${c.text}`);
    if (m && !marker) marker = m;
  }
  out.transaction = transactionContext(marker, js.runner, assumed);
  for (const phase of js.libraryRebuilds) out.rebuilds.push({ phase, types: ['*'] });
  return out;
}

/** A file that is one direction of a migration: golang-migrate's `1_x.down.sql`, diesel's `<name>/down.sql`. */
function sqlFilePhase(file: string): MigrationPhase {
  const m = /(?:^|[./\\])(up|down)\.sql$/.exec(file);
  return m ? m[1] as MigrationPhase : 'file';
}

/** `-- Up Migration` / `-- migrate:down` / `-- +goose Down` sections: the statements after each are of its phase. */
function applySections(out: ExtractedFile, text: string): void {
  const comments = sqlComments(text);
  const sections = comments.map((c) => ({ at: c.start, phase: sectionComment(c.text) })).filter((c) => c.phase !== null);
  if (sections.length === 0) return;
  for (const s of out.statements) {
    const section = sections.filter((c) => c.at <= s.offset).pop();
    if (section?.phase) s.phase = section.phase;
  }
  // A runner sends one section at a time (never up with down); goose sends each statement on its own.
  const goose = comments.some((c) => /^--\s*\+goose\s+(up|down)\b/i.test(c.text.trim()));
  for (const s of out.statements) {
    s.batchSize = goose ? 1 : out.statements.filter((o) => o.phase === s.phase && !o.via.endsWith('DO block')).length;
  }
  const at = lineIndex(text);
  for (const e of out.errors) {
    const section = sections.filter((c) => at(c.at).line <= e.line).pop();
    if (section?.phase) e.phase = section.phase;
  }
}

/** Words a statement starts with: other strings passed to `.query()` (cache keys, URLs) are not SQL. */
const STATEMENT_WORDS = new Set(['select', 'insert', 'update', 'delete', 'with', 'create', 'alter', 'drop', 'truncate', 'set', 'reset',
  'begin', 'start', 'commit', 'rollback', 'end', 'vacuum', 'analyze', 'analyse', 'reindex', 'cluster', 'grant', 'revoke', 'comment', 'do',
  'call', 'lock', 'values', 'table', 'explain', 'copy', 'refresh', 'savepoint', 'release', 'notify', 'listen', 'show', 'merge', 'import', 'security', '(']);

function looksLikeSql(text: string): boolean {
  try {
    const first = scanSync(text).tokens.find((t) => !t.tokenName.endsWith('COMMENT'));
    return first !== undefined && STATEMENT_WORDS.has(first.text.toLowerCase());
  } catch {
    return false;
  }
}

/** One call's SQL: placeholders for unknown interpolations (`$n`, or identifiers when `$n` does not parse there). */
function addCall(out: ExtractedFile, at: ReturnType<typeof lineIndex>, call: SqlCall, index: number): string | null {
  const joined = call.pieces.map((p) => p.text).join('');
  if (!looksLikeSql(joined.replaceAll('\u0000', 'x'))) return null;
  const build = (ident: boolean) => {
    let n = 0;
    const pieces: SqlPiece[] = call.pieces.map((p) => (p.text === '\u0000' ? { text: ident ? `${UNRESOLVED_NAME_PREFIX}${++n}` : `$${++n}`, src: null } : p));
    return bindPlaceholders(new MappedSql(pieces.map((p) => ({ ...p, src: p.src ?? call.start }))));
  };
  let sql = build(false);
  if (call.unresolved > 0 && parseStatements(sql.text).error) sql = build(true);
  if (call.translated) sql = new MappedSql([{ text: sql.text, src: call.start }]);
  return addSql(out, at, sql, { phase: call.phase, via: call.via, call: index + 1, translated: call.translated });
}

/** Parses SQL into statements of `out`; returns a no-transaction marker found in its comments. */
function addSql(out: ExtractedFile, at: ReturnType<typeof lineIndex>, sql: MappedSql,
  ctx: { phase: MigrationPhase; via: string; call: number; translated: boolean }): string | null {
  const { statements, error } = parseStatements(sql.text);
  if (error) out.errors.push({ ...at(sql.fileOffset(error.offset)), message: error.message, phase: ctx.phase });
  const fileOffset = (o: number) => (ctx.translated ? sql.fileOffset(0) : sql.fileOffset(o));
  const added: ExtractedStatement[] = statements.flatMap((s) => {
    const offset = fileOffset(s.start);
    const base = { file: out.file, phase: ctx.phase, offset, ...at(offset), via: ctx.via, batchSize: statements.length, call: ctx.call, end: fileOffset(s.end) };
    // A DO block is linted through the statements it runs (all placed at the block).
    const inner = 'DoStmt' in s.ast ? doBlockStatements(s.sql) : [];
    return [{ ...base, sql: s.sql, ast: s.ast }, ...inner.map((b) => ({ ...base, sql: b.sql, ast: b.ast, via: `${ctx.via} DO block` }))];
  });
  out.statements.push(...added);
  collectRebuilds(out, added);
  let marker: string | null = null;
  for (const c of sqlComments(sql.text)) {
    marker ??= noTransactionComment(c.text);
    const parsed = parseIgnore(c.text);
    if (!parsed) continue;
    const start = fileOffset(c.start);
    const next = added.find((s) => s.offset >= start);
    out.ignores.push(ignoreDirective(out.file, at(start), parsed, next ? { start: next.offset, end: Math.max(next.end, next.offset + 1) } : { start, end: start }));
  }
  return marker;
}

/** `flag_lookup_model_to_rebuild('x')` calls (the host's rebuild queue), by phase. */
function collectRebuilds(out: ExtractedFile, statements: ExtractedStatement[]): void {
  for (const s of statements) {
    const types: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) { v.forEach(walk); return; }
      if (v === null || typeof v !== 'object') return;
      const fn = (v as { FuncCall?: { funcname?: { String?: { sval?: string } }[]; args?: unknown[] } }).FuncCall;
      if (fn && fn.funcname?.at(-1)?.String?.sval === 'flag_lookup_model_to_rebuild') {
        const arg = (fn.args?.[0] as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const?.sval?.sval;
        types.push(arg ?? '*');
      }
      Object.values(v).forEach(walk);
    };
    walk(s.ast);
    // Re-stamping every source row (an UPDATE without WHERE fires the tick trigger) makes the next build re-read them all.
    const update = (s.ast as { UpdateStmt?: { relation?: { relname?: string }; whereClause?: unknown } }).UpdateStmt;
    if (update?.relation?.relname && !update.whereClause) types.push(update.relation.relname);
    if (types.length) out.rebuilds.push({ phase: s.phase, types });
  }
}

export type { IgnoreDirective };
