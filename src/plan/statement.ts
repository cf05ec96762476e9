import type pg from 'pg';
import { SyncLookupError, toSyncLookupError } from '../db/errors.js';
import type { ExplainDocument, ExplainOptions, ExplainResult } from './types.js';

/**
 * Runs `EXPLAIN (FORMAT JSON[, ANALYZE, BUFFERS])` for one statement with `$n` parameters. Always inside
 * a transaction (or savepoint) that is rolled back, so an analyzed DELETE/UPDATE/INSERT changes nothing.
 *
 * @example
 * const r = await explainStatement(client, 'delete from sync_lookup where record_type = $1', ['notes'], { analyze: true });
 * console.log(r.plan['Node Type'], r.executionMs);
 */
export async function explainStatement(
  client: pg.ClientBase, sql: string, params: unknown[] = [], options: ExplainOptions = {},
): Promise<ExplainResult> {
  const analyze = !!options.analyze;
  const begin = options.inTransaction ? 'savepoint sync_lookup_explain' : 'begin';
  const rollback = options.inTransaction ? 'rollback to savepoint sync_lookup_explain' : 'rollback';
  const prefix = `EXPLAIN (FORMAT JSON${analyze ? ', ANALYZE, BUFFERS' : ''}) `;
  await client.query(begin);
  try {
    for (const [name, value] of Object.entries(options.settings ?? {})) {
      await client.query('select set_config($1, $2, true)', [name, value]);
    }
    const { rows } = await client.query<{ 'QUERY PLAN': ExplainDocument | string }>(`${prefix}${sql}`, params);
    const raw = rows[0]?.['QUERY PLAN'];
    const document = (typeof raw === 'string' ? JSON.parse(raw) : raw) as ExplainDocument | undefined;
    const top = document?.[0];
    if (!document || !top) throw new SyncLookupError('explain_failed', 'EXPLAIN returned no plan', { sql: sql.slice(0, 500) });
    return {
      sql, params, analyzed: analyze, plan: top.Plan, document,
      planningMs: top['Planning Time'] ?? null,
      executionMs: top['Execution Time'] ?? null,
    };
  } catch (err) {
    const e = toSyncLookupError(err, { sql: sql.slice(0, 500) });
    // PostgreSQL counts the error position from the start of what it received: make it the caller's.
    if (typeof e.details.position === 'number') e.details.position = Math.max(1, e.details.position - prefix.length);
    throw e;
  } finally {
    await client.query(rollback).catch(() => {});
    if (options.inTransaction) await client.query('release savepoint sync_lookup_explain').catch(() => {});
  }
}
