import type pg from 'pg';
import { SETTINGS_TABLE, readToolSetting, writeToolSetting } from '../schema/tool.js';

/*
 * Which rows at tick -2 are sync-lookup's own. A build (or a job batch on a `staged` host) records who is staging
 * in the tool's settings, in the same transaction as the staged rows, and clears it in the transaction that
 * publishes them. Staged rows found while that record names a backend that is gone are the leftovers of an
 * interrupted sync-lookup run: the next build publishes them (its publish moves every staged row), where rows a
 * host's own builder staged must be left to it.
 */

const KEY = 'staging';

interface StagingRecord { pid: number; backendStart: string; what: string }

/**
 * Inside the staging transaction: records that this backend stages rows (`what`: `build`, `resync notes`, …).
 *
 * @example
 * await markStaging(client, 'build');
 */
export async function markStaging(client: pg.ClientBase, what: string): Promise<void> {
  const { rows: [me] } = await client.query<{ pid: number; backend_start: string }>(
    `SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()`);
  await writeToolSetting(client, KEY, JSON.stringify({ pid: me!.pid, backendStart: me!.backend_start, what } satisfies StagingRecord));
}

/**
 * Inside the publish transaction: the staged rows are published, the record goes.
 *
 * @example
 * await clearStaging(client);
 */
export async function clearStaging(client: pg.ClientBase): Promise<void> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [SETTINGS_TABLE]);
  if (t?.ok) await client.query(`DELETE FROM ${SETTINGS_TABLE} WHERE key = $1`, [KEY]);
}

/**
 * What sync-lookup left staged, when the run that staged it is gone (or is this session): `what` it was, else null.
 *
 * @example
 * await ownStagedLeftovers(client) // 'resync notes'
 */
export async function ownStagedLeftovers(client: pg.ClientBase): Promise<string | null> {
  const value = await readToolSetting(client, KEY);
  if (!value) return null;
  const r = JSON.parse(value) as StagingRecord;
  const { rows: [alive] } = await client.query<{ other: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2 AND pid <> pg_backend_pid()) AS other`,
    [r.pid, r.backendStart]);
  return alive?.other ? null : r.what;
}
