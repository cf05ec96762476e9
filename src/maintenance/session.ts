import { openSession, type Session, type SessionTarget } from '../db/session.js';

// The session type lives in db/ (below every user); maintenance keeps its names for it.
export { isRetryableLockError, pause, throwIfAborted } from '../db/session.js';

/**
 * What maintenance functions accept as "the database" (see `SessionTarget`): our `Database` seam, a
 * `pg.Pool`, or a single connected `pg` client.
 *
 * @example
 * await purgeRecordTypes(pool, { types: ['encounter_medications'] });
 */
export type MaintenanceTarget = SessionTarget;

/** One connection doing maintenance work: the shared `Session` (batches, or savepoints in a caller's transaction). */
export type WorkSession = Session;

/**
 * Opens a work session on `target` with sync-lookup's session settings (`application_name`,
 * `lock_timeout`, no `statement_timeout`); on a caller's client the previous settings are restored on close.
 *
 * @example
 * const s = await openWorkSession(pool, 'purge');
 * try { await s.unit(2000, () => s.query('delete …')); } finally { await s.close(); }
 */
export function openWorkSession(target: MaintenanceTarget, purpose: string, lockTimeoutMs = 2000): Promise<WorkSession> {
  return openSession(target, { purpose, lockTimeoutMs, statementTimeoutMs: 0 });
}

/**
 * Declares a `WITH HOLD` cursor and materialises it in one short transaction (a savepoint inside a
 * caller's transaction). `cursor_tuple_fraction = 1` makes the planner plan for reading every row, as
 * a materialised cursor does: with the default 0.1 a cursor over `… WHERE record_type = ANY($1) ORDER BY id`
 * gets a fast-start walk of the primary key, that is, a read of the whole table.
 *
 * @example
 * await declareHeldCursor(session, 'DECLARE "c" SCROLL CURSOR WITH HOLD FOR SELECT …', [types]);
 */
export async function declareHeldCursor(session: WorkSession, declareSql: string, params: unknown[], signal?: AbortSignal): Promise<void> {
  await session.unit(60_000, async () => {
    await session.client.query(`select set_config('cursor_tuple_fraction', '1', true)`);
    await session.query(declareSql, params, signal);
  });
}
