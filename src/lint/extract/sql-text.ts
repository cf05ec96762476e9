import { parseSync, scanSync } from 'libpg-query';

/*
 * SQL text that remembers where each character came from in the migration file (a template literal's
 * parts, a placeholder for an interpolation), split into statements by PostgreSQL's own parser.
 * libpg-query reports byte offsets; everything here is in characters.
 */

/** How the extractor names an interpolation it could not resolve where SQL needs a name (a table). */
export const UNRESOLVED_NAME_PREFIX = '__sync_lookup_lint_';

/** One piece of SQL: `src` is the file offset of its first character, null for a placeholder. */
export interface SqlPiece { text: string; src: number | null }

/** SQL assembled from pieces, with the way back from an SQL offset to a file offset. */
export class MappedSql {
  readonly text: string;
  private readonly starts: number[] = [];
  private readonly pieces: SqlPiece[];

  constructor(pieces: SqlPiece[]) {
    this.pieces = pieces;
    let at = 0;
    for (const p of pieces) { this.starts.push(at); at += p.text.length; }
    this.text = pieces.map((p) => p.text).join('');
  }

  /** The file offset of SQL offset `offset` (a placeholder maps to where its interpolation starts). */
  fileOffset(offset: number): number {
    let i = this.starts.length - 1;
    while (i > 0 && this.starts[i]! > offset) i--;
    const piece = this.pieces[i];
    if (!piece) return 0;
    if (piece.src !== null) return piece.src + Math.min(offset - this.starts[i]!, piece.text.length);
    // A placeholder: the next real piece starts right after the interpolation's `}`.
    for (let j = i - 1; j >= 0; j--) { const p = this.pieces[j]!; if (p.src !== null) return p.src + p.text.length; }
    return 0;
  }

  /** The same SQL with the ranges `[start, end)` (SQL offsets, sorted, disjoint) replaced by `text`. */
  replace(edits: { start: number; end: number; text: string }[]): MappedSql {
    if (edits.length === 0) return this;
    const out: SqlPiece[] = [];
    let e = 0;
    for (let i = 0; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      const start = this.starts[i]!;
      let cut = 0;
      while (e < edits.length && edits[e]!.start < start + p.text.length) {
        const edit = edits[e]!;
        const from = Math.max(edit.start - start, cut);
        if (from > cut) out.push({ text: p.text.slice(cut, from), src: p.src === null ? null : p.src + cut });
        out.push({ text: edit.text, src: p.src === null ? null : p.src + from });
        cut = Math.min(p.text.length, edit.end - start);
        if (edit.end > start + p.text.length) break;
        e++;
      }
      if (cut < p.text.length) out.push({ text: p.text.slice(cut), src: p.src === null ? null : p.src + cut });
    }
    return new MappedSql(out);
  }
}

/** A converter from libpg-query's byte offsets to character offsets of `text`. */
export function byteToChar(text: string): (byte: number) => number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return (b) => b;
  const bytes = Buffer.from(text);
  return (b) => bytes.subarray(0, b).toString().length;
}

/** One statement as the parser split it: character offsets into the SQL text. */
export interface ParsedStatement { ast: Record<string, unknown>; start: number; end: number; sql: string }

/** A parse failure: the parser's message and the character offset it points at. */
export interface SqlParseError { message: string; offset: number }

/**
 * Splits SQL into statements with PostgreSQL's parser. On a syntax error, returns the error and still
 * parses what it can: each `;`-separated part (split on the scanner's tokens) on its own.
 */
export function parseStatements(sql: string): { statements: ParsedStatement[]; error: SqlParseError | null } {
  const toChar = byteToChar(sql);
  try {
    const stmts = parseSync(sql).stmts ?? [];
    return { statements: stmts.map((s) => toParsed(sql, toChar, s as RawStmt)), error: null };
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const error = { message: e.message ?? String(err), offset: toChar(Math.max(0, e.sqlDetails?.cursorPosition ?? 0)) };
    return { statements: parsePartwise(sql, toChar), error };
  }
}

type RawStmt = { stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number };

function toParsed(sql: string, toChar: (b: number) => number, s: RawStmt): ParsedStatement {
  const startByte = s.stmt_location ?? 0;
  const start = toChar(startByte);
  const end = s.stmt_len ? toChar(startByte + s.stmt_len) : sql.length;
  // The statement starts at its first token, not at the comments and blanks before it.
  const lead = sql.slice(start, end).search(/\S/);
  const text = sql.slice(start, end);
  const skip = firstTokenOffset(text);
  return { ast: s.stmt ?? {}, start: start + (skip ?? Math.max(0, lead)), end, sql: text.slice(skip ?? 0).trim() };
}

function firstTokenOffset(text: string): number | null {
  try {
    const tokens = scanSync(text).tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
    const first = tokens[0];
    return first ? byteToChar(text)(first.start) : null;
  } catch {
    return null;
  }
}

/** After a syntax error: the parts between top-level semicolons that parse on their own. */
function parsePartwise(sql: string, toChar: (b: number) => number): ParsedStatement[] {
  let tokens: { start: number; end: number; text: string }[];
  try { tokens = scanSync(sql).tokens; } catch { return []; }
  const out: ParsedStatement[] = [];
  let from = 0;
  for (const t of [...tokens.filter((x) => x.text === ';'), { start: Buffer.byteLength(sql), end: Buffer.byteLength(sql), text: ';' }]) {
    const start = toChar(from);
    const end = toChar(t.end);
    const part = sql.slice(start, end);
    from = t.end;
    try {
      for (const s of parseSync(part).stmts ?? []) {
        const p = toParsed(part, byteToChar(part), s as RawStmt);
        out.push({ ...p, start: p.start + start, end: p.end + start });
      }
    } catch { /* the error is reported once, for the whole text */ }
  }
  return out;
}

/** Comment tokens of SQL text (`-- …` and `/* … *\/`), with character offsets; none when it does not scan. */
export function sqlComments(sql: string): { text: string; start: number; end: number }[] {
  try {
    const toChar = byteToChar(sql);
    return scanSync(sql).tokens
      .filter((t) => t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT')
      .map((t) => ({ text: t.text, start: toChar(t.start), end: toChar(t.end) }));
  } catch {
    return [];
  }
}

/**
 * Bound parameters as drivers write them (`?` for Sequelize replacements and Knex, `:name` for named
 * replacements) become `$n`, so the statement parses; `$1` is already SQL. Found on the scanner's tokens:
 * a `?` or `:` right after an operand (jsonb's `data ? 'key'`, an array slice `a[1:2]`) is left alone.
 */
export function bindPlaceholders(sql: MappedSql): MappedSql {
  let tokens: { start: number; end: number; text: string; tokenName: string; keywordKind: number }[];
  try { tokens = scanSync(sql.text).tokens; } catch { return sql; }
  const toChar = byteToChar(sql.text);
  const edits: { start: number; end: number; text: string }[] = [];
  let n = 100;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const prev = tokens[i - 1];
    const afterOperand = prev !== undefined && (prev.tokenName === 'IDENT' || prev.tokenName.endsWith('CONST') ||
      prev.text === ')' || prev.text === ']' || prev.tokenName === 'PARAM' || (prev.keywordKind === 1 && prev.text !== '('));
    if (t.text === '?' && !afterOperand) {
      edits.push({ start: toChar(t.start), end: toChar(t.end), text: `$${++n}` });
    } else if (t.text === ':' && !afterOperand && tokens[i + 1] && tokens[i + 1]!.start === t.end && /^[A-Za-z_]/.test(tokens[i + 1]!.text)) {
      edits.push({ start: toChar(t.start), end: toChar(tokens[i + 1]!.end), text: `$${++n}` });
      i++;
    }
  }
  return sql.replace(edits);
}

/** psql meta-commands (`\set ON_ERROR_STOP on`, pg_dump's `\restrict`) are not SQL: blanked, offsets kept. */
export function withoutPsqlMetaCommands(text: string): string {
  return text.split('\n').map((line) => (line.startsWith('\\') ? ' '.repeat(line.length) : line)).join('\n');
}
