import { MigrationError, toSyncLookupError, type SyncLookupError } from '../db/errors.js';
import { runConcurrentIndexStatement } from './concurrent-index.js';
import type { MigrationContext } from './migration.js';
import { errorLine, type SqlFile, type SqlStatement } from './sql-file.js';

/*
 * Runs the statements of a `.sql` migration one by one: in a transactional file inside the runner's
 * transaction, in a no-transaction file each committing on its own (concurrent index statements through
 * the same path as the built-in index migration). A failure names the statement, and in a no-transaction
 * file which statements committed and which did not run.
 */

/** A statement as messages and JSON details name it. */
export interface StatementRef { index: number; line: number; summary: string }

const ref = (s: SqlStatement): StatementRef => ({ index: s.index, line: s.line, summary: s.summary });

/** `#2 (line 5: CREATE INDEX CONCURRENTLY i ON)` */
export function describeStatement(s: StatementRef): string {
  return `#${s.index} (line ${s.line}: ${s.summary})`;
}

/**
 * Runs `file`'s statements on `ctx.client`. Throws MigrationError `statement_failed` with details
 * `statement`, `committed` (no-transaction files: the statements that committed, in order) and `notRun`.
 *
 * @example
 * await runSqlFile(ctx, await parseSqlFile(text, '0005_x.sql'));
 */
export async function runSqlFile(ctx: MigrationContext, file: SqlFile): Promise<void> {
  const committed: SqlStatement[] = [];
  for (const s of file.statements) {
    try {
      if (!file.transactional && s.concurrentIndex) {
        await runConcurrentIndexStatement(ctx.db, ctx.client, s.sql, s.concurrentIndex,
          { onEvent: ctx.onEvent, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      } else if (!file.transactional && !s.noTransaction && !s.mayCommit) {
        // On its own like a one-statement migration: DDL never queues every later query behind a long transaction.
        await ctx.withLockRetries(() => ctx.client.query(s.sql));
      } else {
        // In a no-transaction file a CALL or DO runs outside any transaction block, so that it may COMMIT (batched backfills).
        await ctx.client.query(s.sql);
      }
    } catch (err) {
      throw statementFailure(file, s, committed, err);
    }
    if (!file.transactional) committed.push(s);
    ctx.completed.push(describeStatement(s));
  }
}

function statementFailure(file: SqlFile, s: SqlStatement, committed: SqlStatement[], err: unknown): SyncLookupError {
  const cause = toSyncLookupError(err);
  const position = Number(cause.details.position ?? 0);
  const at = position > 0 ? `, at line ${errorLine(s, position)}` : '';
  const notRun = file.statements.filter((x) => x.index > s.index);
  return new MigrationError('statement_failed', `statement ${describeStatement(s)} failed${at}: ${cause.message}`, {
    ...cause.details,
    ...(position > 0 ? { errorLine: errorLine(s, position) } : {}),
    statement: ref(s), committed: committed.map(ref), notRun: notRun.map(ref), transactional: file.transactional,
    ...(!file.transactional && s.mayCommit ? { mayCommit: true } : {}),
  }, { cause: err });
}
