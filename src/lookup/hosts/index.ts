import type pg from 'pg';
import { ConfigError } from '../../db/errors.js';
import { readToolSetting, writeToolSetting } from '../../schema/tool.js';
import { HOST_NAMES, type Host, type HostName } from '../host.js';
import { builtinHost } from './builtin.js';
import { tamanuHost } from './tamanu.js';

export { builtinHost, tamanuHost };

/** Every host by name. */
export const HOSTS: Record<HostName, Host> = { builtin: builtinHost, tamanu: tamanuHost };

/** Where the host a command uses came from (shown by `status`). */
export type HostSource = 'option' | 'recorded' | 'detected';

/**
 * Validates a host name given by a user (`--host`, `SYNC_LOOKUP_HOST`); ConfigError naming the known ones.
 *
 * @example
 * parseHostName('tamanu') // 'tamanu'
 */
export function parseHostName(value: string, from = '--host'): HostName {
  const name = value.trim().toLowerCase();
  if ((HOST_NAMES as readonly string[]).includes(name)) return name as HostName;
  throw new ConfigError('unknown_host', `${from} ${JSON.stringify(value)} is not a host sync-lookup knows; known: ${HOST_NAMES.join(', ')}`,
    { host: value, known: [...HOST_NAMES] });
}

/**
 * The host this database looks like: `tamanu` when it has the Tamanu server's clock fact and no clock of
 * sync-lookup's own, else `builtin`.
 *
 * @example
 * await detectHost(client) // 'tamanu'
 */
export async function detectHost(client: pg.ClientBase): Promise<HostName> {
  const { rows: [r] } = await client.query<{ tamanu: boolean }>(
    `SELECT to_regclass('public.local_system_facts') IS NOT NULL AND to_regclass('sync_lookup_tool.clock') IS NULL
        AND to_regclass('public.sync_clock') IS NULL AS tamanu`);
  if (!r?.tamanu) return 'builtin';
  const { rows } = await client.query(`SELECT 1 FROM public.local_system_facts WHERE key = 'currentSyncTick' LIMIT 1`);
  return rows.length ? 'tamanu' : 'builtin';
}

/**
 * The host to use: `requested` (a user's `--host`/`SYNC_LOOKUP_HOST`) when given, else the one recorded in
 * this database (by `migrate`), else the detected one.
 *
 * @example
 * const { host, source } = await resolveHost(client);
 */
export async function resolveHost(client: pg.ClientBase, requested?: HostName): Promise<{ host: Host; source: HostSource }> {
  if (requested) return { host: HOSTS[requested], source: 'option' };
  const recorded = await readToolSetting(client, 'host');
  if (recorded && (HOST_NAMES as readonly string[]).includes(recorded)) return { host: HOSTS[recorded as HostName], source: 'recorded' };
  return { host: HOSTS[await detectHost(client)], source: 'detected' };
}

/**
 * Records the host in the tool's schema, so later commands use it without detecting.
 *
 * @example
 * await recordHost(client, 'tamanu');
 */
export async function recordHost(client: pg.ClientBase, name: HostName): Promise<void> {
  await writeToolSetting(client, 'host', name);
}
