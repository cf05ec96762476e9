import type pg from 'pg';

/*
 * A migration's `SET` (or `RESET ALL`, `SET ROLE`, `SET SESSION CHARACTERISTICS …`) outside a transaction
 * block, or committed with it, stays on the runner's connection: without this, one file's
 * `SET search_path` or `SET statement_timeout` would change every later migration, the ledger writes, and
 * the runner's own `lock_timeout` and `application_name`. The runner saves the session's settings before
 * each migration and puts them back after it, whatever the migration did.
 */

interface SavedSetting { name: string; value: string }

/** The settings a session has set for itself, and its roles. */
export interface SessionState { settings: SavedSetting[]; currentUser: string; sessionUser: string }

/**
 * Reads the settings `client`'s session has changed (`pg_settings.source = 'session'`) and its roles.
 *
 * @example
 * const saved = await saveSessionState(client); await m.up(ctx); await restoreSessionState(client, saved);
 */
export async function saveSessionState(client: pg.ClientBase): Promise<SessionState> {
  const { rows } = await client.query<SavedSetting>(
    `select s.name, current_setting(s.name) as value from pg_settings s where s.source = 'session'`);
  const { rows: [who] } = await client.query<{ current_user: string; session_user: string }>(
    `select current_user::text as current_user, session_user::text as session_user`);
  return { settings: rows.map(({ name, value }) => ({ name, value })), currentUser: who!.current_user, sessionUser: who!.session_user };
}

/**
 * Puts back what `saveSessionState` read: the roles, each saved setting's value, and the configured value
 * of any setting the session changed since. Inside a transaction block the restore is part of it.
 */
export async function restoreSessionState(client: pg.ClientBase, saved: SessionState): Promise<void> {
  const { rows: [who] } = await client.query<{ current_user: string; session_user: string }>(
    `select current_user::text as current_user, session_user::text as session_user`);
  if (who!.session_user !== saved.sessionUser) await client.query('reset session authorization');
  if (who!.current_user !== saved.currentUser) await client.query('reset role');
  // One statement: settings the session set since are reset to their configured value, saved ones put back.
  await client.query(
    `select set_config(s.name, coalesce(saved.value, s.reset_val), false)
       from pg_settings s left join unnest($1::text[], $2::text[]) as saved(name, value) on saved.name = s.name
      where (s.source = 'session' or saved.name is not null)
        and current_setting(s.name) is distinct from coalesce(saved.value, s.reset_val)`,
    [saved.settings.map((s) => s.name), saved.settings.map((s) => s.value)]);
}
