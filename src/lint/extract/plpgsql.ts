import { parsePlPgSQLSync, parseSync } from 'libpg-query';

/*
 * The SQL a `DO $$ … $$` block runs, read with PostgreSQL's PL/pgSQL parser: each embedded statement
 * (`PLpgSQL_stmt_execsql`) and each condition that holds a query (`IF (SELECT count(*) …) = 0`), so a batch
 * loop is linted like the statements it repeats.
 */

/** One statement found inside a DO block: its SQL and parse tree. */
export interface BlockStatement { sql: string; ast: Record<string, unknown> }

/**
 * The statements inside a DO block (`doSql` is the whole `DO …` statement); empty when it is not PL/pgSQL
 * or does not parse.
 *
 * @example
 * doBlockStatements("DO $$ BEGIN DELETE FROM t WHERE a = 1; END $$")[0].sql // 'DELETE FROM t WHERE a = 1'
 */
export function doBlockStatements(doSql: string): BlockStatement[] {
  let tree: unknown;
  try { tree = parsePlPgSQLSync(doSql); } catch { return []; }
  const out: BlockStatement[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const expr = (v as { PLpgSQL_expr?: { query?: string; parseMode?: number } }).PLpgSQL_expr;
    if (expr?.query) {
      // parseMode 0: a whole statement; otherwise an expression, which holds a query only in a sub-select.
      const sql = expr.parseMode === 0 || expr.parseMode === undefined ? expr.query : `SELECT ${expr.query}`;
      try {
        const stmt = parseSync(sql).stmts?.[0]?.stmt as Record<string, unknown> | undefined;
        if (stmt && (expr.parseMode === 0 || /\bselect\b/i.test(expr.query))) out.push({ sql: expr.query, ast: stmt });
      } catch { /* PL/pgSQL variables and INTO clauses can make a query unparsable on its own: skipped */ }
      return;
    }
    Object.values(v).forEach(walk);
  };
  walk(tree);
  return out;
}
