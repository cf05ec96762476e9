import { parse, scan } from 'libpg-query';
import { ConfigError } from '../db/errors.js';

/*
 * A `.sql` migration file read with PostgreSQL's own parser: its statements (with line numbers), which of
 * them cannot run inside a transaction block, which are transaction control, and which build or drop an
 * index concurrently. Pure: no connection. The runner refuses a file whose statements cannot keep the
 * promise of its mode before anything runs.
 */

/** The comment line that makes a `.sql` file non-transactional: each statement then runs and commits on its own. */
export const NO_TRANSACTION_MARKER = '-- sync-lookup: no-transaction';

/** A concurrent index statement, which the runner sends through the same path as the built-in index migration. */
export type ConcurrentIndexDdl =
  | { kind: 'create'; schema: string | null; table: string; name: string | null; ifNotExists: boolean; unique: boolean;
      /** The key columns, or null when a key is an expression. */
      columns: string[] | null }
  | { kind: 'drop'; schema: string | null; name: string; ifExists: boolean }
  | { kind: 'reindex'; target: 'index' | 'table' | 'schema' | 'database' | 'system'; schema: string | null; name: string | null };

/** One statement of a file. */
export interface SqlStatement {
  /** 1-based position in the file. */
  index: number;
  /** 1-based line of its first token. */
  line: number;
  /** 1-based line where `sql` begins (before any comment that precedes its first token). */
  textLine: number;
  sql: string;
  /** Its first words, for messages: `ALTER TABLE sync_lookup ADD COLUMN`. */
  summary: string;
  /** Why it cannot run inside a transaction block, or null when it can. */
  noTransaction: string | null;
  /** BEGIN, COMMIT, SAVEPOINT … : the file's own transaction control. */
  transactionControl: boolean;
  concurrentIndex: ConcurrentIndexDdl | null;
  /** `ALTER TYPE … ADD VALUE`: refused inside a transaction block before PostgreSQL 12. */
  addsEnumValue: boolean;
  /** `CALL` or `DO`: the procedure or block may COMMIT, which PostgreSQL allows only outside a transaction block. */
  mayCommit: boolean;
}

/** A parsed `.sql` migration file. */
export interface SqlFile {
  transactional: boolean;
  statements: SqlStatement[];
}

type Node = Record<string, unknown>;

/**
 * Splits a file into statements with libpg-query and classifies them. Throws ConfigError (naming
 * `file`, line and column) when PostgreSQL's parser rejects the text.
 *
 * @example
 * const f = await parseSqlFile('alter table t add column x int;\ncreate index concurrently i on t (x);', 'f.sql');
 * f.statements[1]!.line // 2
 */
export async function parseSqlFile(fileText: string, file: string): Promise<SqlFile> {
  // A byte-order mark (editors on Windows write one) is no SQL; an empty file is a file of no statements, like one of comments.
  const text = fileText.replace(/^\uFEFF/, '');
  if (text.trim() === '') return { transactional: true, statements: [] };
  const bytes = Buffer.from(text, 'utf8');
  let stmts: { stmt?: Node; stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = (await parse(text)).stmts as typeof stmts ?? [];
  } catch (err) {
    const cursor = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    const where = cursor === undefined ? '' : `:${lineOf(bytes, Math.max(0, charToByte(text, cursor)))}`;
    throw new ConfigError('invalid_migration', `${file}${where}: PostgreSQL's parser rejects it: ${err instanceof Error ? err.message : String(err)}`,
      { file }, { cause: err });
  }
  const statements: SqlStatement[] = [];
  for (const [i, s] of stmts.entries()) {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    const raw = bytes.subarray(start, end).toString('utf8');
    const tokens = (await scan(raw)).tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
    const lead = tokens[0]?.start ?? 0; // comments before the first token: the line is the statement's own
    const node = s.stmt ?? {};
    statements.push({
      index: i + 1,
      line: lineOf(bytes, start + lead),
      textLine: lineOf(bytes, start),
      sql: raw,
      summary: tokens.slice(0, 5).map((t) => t.text).join(' ').slice(0, 60),
      noTransaction: noTransactionReason(node),
      transactionControl: 'TransactionStmt' in node,
      concurrentIndex: concurrentIndexDdl(node),
      addsEnumValue: !!(node.AlterEnumStmt as Node | undefined)?.newVal && !(node.AlterEnumStmt as Node).oldVal,
      mayCommit: 'CallStmt' in node || 'DoStmt' in node,
    });
  }
  return { transactional: !(await hasNoTransactionMarker(text)), statements };
}

/** True when a comment of the file is the no-transaction marker (a comment, never text inside a string). */
async function hasNoTransactionMarker(text: string): Promise<boolean> {
  const { tokens } = await scan(text);
  return tokens.some((t) => t.tokenName === 'SQL_COMMENT' && /^--\s*sync-lookup:\s*no-transaction\b/.test(t.text));
}

/**
 * The file line of a PostgreSQL error `position` (1-based, in characters of the statement's text).
 *
 * @example
 * errorLine(statement, 12) // the line of the statement's 12th character
 */
export function errorLine(s: SqlStatement, position: number): number {
  let line = s.textLine;
  for (const ch of s.sql.slice(0, Math.max(0, position - 1))) if (ch === '\n') line++;
  return line;
}

function lineOf(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

function charToByte(text: string, chars: number): number {
  return Buffer.byteLength(text.slice(0, chars), 'utf8');
}

const REINDEX_TARGETS: Record<string, 'index' | 'table' | 'schema' | 'database' | 'system'> = {
  REINDEX_OBJECT_INDEX: 'index', REINDEX_OBJECT_TABLE: 'table', REINDEX_OBJECT_SCHEMA: 'schema',
  REINDEX_OBJECT_DATABASE: 'database', REINDEX_OBJECT_SYSTEM: 'system',
};

function isConcurrentReindex(r: Node): boolean {
  return ((r.params as Node[] | undefined) ?? []).some((p) => (p.DefElem as Node | undefined)?.defname === 'concurrently');
}

/** The statement kinds PostgreSQL refuses inside a transaction block (`… cannot run inside a transaction block`). */
function noTransactionReason(node: Node): string | null {
  const [type] = Object.keys(node);
  const n = (type ? node[type] : {}) as Node;
  switch (type) {
    case 'IndexStmt': return n.concurrent ? 'CREATE INDEX CONCURRENTLY' : null;
    case 'DropStmt': return n.concurrent ? 'DROP INDEX CONCURRENTLY' : null;
    case 'ReindexStmt': {
      if (isConcurrentReindex(n)) return 'REINDEX … CONCURRENTLY';
      const target = REINDEX_TARGETS[n.kind as string];
      return target === 'schema' || target === 'database' || target === 'system' ? `REINDEX ${target.toUpperCase()}` : null;
    }
    case 'VacuumStmt': return n.is_vacuumcmd ? 'VACUUM' : null;
    case 'CreatedbStmt': return 'CREATE DATABASE';
    case 'DropdbStmt': return 'DROP DATABASE';
    case 'AlterDatabaseStmt':
      return ((n.options as Node[] | undefined) ?? []).some((o) => (o.DefElem as Node | undefined)?.defname === 'tablespace')
        ? 'ALTER DATABASE … SET TABLESPACE' : null;
    case 'CreateTableSpaceStmt': return 'CREATE TABLESPACE';
    case 'DropTableSpaceStmt': return 'DROP TABLESPACE';
    case 'AlterSystemStmt': return 'ALTER SYSTEM';
    case 'CreateSubscriptionStmt': return 'CREATE SUBSCRIPTION';
    case 'DropSubscriptionStmt': return 'DROP SUBSCRIPTION';
    case 'ClusterStmt': return n.relation ? null : 'CLUSTER without a table';
    case 'DiscardStmt': return n.target === 'DISCARD_ALL' ? 'DISCARD ALL' : null;
    default: return null;
  }
}

function concurrentIndexDdl(node: Node): ConcurrentIndexDdl | null {
  const idx = node.IndexStmt as Node | undefined;
  if (idx?.concurrent) {
    const rel = idx.relation as Node;
    const keys = ((idx.indexParams as Node[] | undefined) ?? []).map((p) => (p.IndexElem as Node).name as string | undefined);
    return { kind: 'create', schema: (rel.schemaname as string | undefined) ?? null, table: rel.relname as string,
      name: (idx.idxname as string | undefined) ?? null, ifNotExists: !!idx.if_not_exists, unique: !!idx.unique,
      columns: keys.every((k) => k !== undefined) ? keys as string[] : null };
  }
  const drop = node.DropStmt as Node | undefined;
  if (drop?.concurrent) {
    const parts = (((drop.objects as Node[])[0]?.List as Node | undefined)?.items as Node[] | undefined ?? [])
      .map((p) => (p.String as Node).sval as string);
    return { kind: 'drop', schema: parts.length > 1 ? parts[parts.length - 2]! : null, name: parts[parts.length - 1]!, ifExists: !!drop.missing_ok };
  }
  const re = node.ReindexStmt as Node | undefined;
  if (re && isConcurrentReindex(re)) {
    const rel = re.relation as Node | undefined;
    return { kind: 'reindex', target: REINDEX_TARGETS[re.kind as string] ?? 'index',
      schema: (rel?.schemaname as string | undefined) ?? null, name: (rel?.relname as string | undefined) ?? (re.name as string | undefined) ?? null };
  }
  return null;
}

/** One reason a file cannot run in its mode, with where. */
export interface SqlFileProblem { line: number; statement: number; message: string }

/**
 * What keeps a file from running as its mode promises, found before anything runs: in a transactional
 * file a statement PostgreSQL refuses inside a transaction block (on servers before 12 also `ALTER TYPE …
 * ADD VALUE`), and anywhere the file's own transaction control (the runner owns the transactions); in a
 * non-transactional file a concurrent build without an index name (a failed build could not be found and repaired).
 *
 * @example
 * sqlFileProblems(await parseSqlFile('vacuum t', 'f.sql'), 180000) // [{ line: 1, statement: 1, message: 'VACUUM cannot run …' }]
 */
export function sqlFileProblems(file: SqlFile, serverVersionNum: number): SqlFileProblem[] {
  const problems: SqlFileProblem[] = [];
  for (const s of file.statements) {
    const at = { line: s.line, statement: s.index };
    const noTx = s.noTransaction ?? (serverVersionNum < 120000 && s.addsEnumValue ? 'ALTER TYPE … ADD VALUE (before PostgreSQL 12)' : null);
    if (s.transactionControl) {
      problems.push({ ...at, message: `${s.summary} is transaction control, which the runner owns: a file runs in one transaction of the runner's, ` +
        `or with "${NO_TRANSACTION_MARKER}" each statement commits on its own; remove it (split the file to commit parts separately)` });
    } else if (file.transactional && noTx) {
      problems.push({ ...at, message: `${noTx} cannot run inside a transaction block, and this file runs in one; ` +
        `put "${NO_TRANSACTION_MARKER}" on a line of its own at the top of the file to run its statements one by one` });
    } else if (s.concurrentIndex?.kind === 'create' && s.concurrentIndex.name === null) {
      problems.push({ ...at, message: `${s.summary}: name the index (CREATE INDEX CONCURRENTLY name ON …), so that an INVALID index left by a failed build can be found and rebuilt` });
    }
  }
  return problems;
}
