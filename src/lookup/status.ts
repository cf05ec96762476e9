import type pg from 'pg';
import { hasColumn } from '../db/catalog.js';
import { toSyncLookupError } from '../db/errors.js';
import { LOOKUP_TABLE, STAGED_TICK } from '../schema/sync-lookup.js';
import { ownStagedLeftovers } from './staging.js';
import { lastPublishedTick } from './guards.js';
import type { HostDescription, HostName } from './host.js';
import { resolveHost, type HostSource } from './hosts/index.js';

/** Where the lookup stands on its host (the `host` part of `sync-lookup status`). */
export interface HostStatus {
  host: HostName;
  /** `option` (--host / SYNC_LOOKUP_HOST), `recorded` (by migrate) or `detected`. */
  source: HostSource;
  description: HostDescription;
  /** False when the host's objects are missing; `reason` says which. */
  ready: boolean;
  reason: string | null;
  clockTick: number | null;
  /** The last covered source tick (null before the first build). */
  since: number | null;
  lastEndTick: number | null;
  /** Rows flagged `needs_rebuild`; while any is, a Tamanu upgrade refuses to finish (its gate is shut). */
  flaggedRows: number | null;
  upgradeGate: 'open' | 'shut' | null;
  /** Models queued for a whole rebuild by the next build. */
  queuedModels: string[];
  /** Rows at tick -2 (invisible to pulls until published), counted up to 10 000. */
  stagedRows: number | null;
  /** When sync-lookup staged them and the run that did is gone: what it was (the next build publishes them). */
  stagedBy: string | null;
}

/**
 * The host in use and where the lookup stands on it: clock, since, last end tick, flagged rows, queued models.
 *
 * @example
 * const s = await hostStatus(client); // { host: 'tamanu', source: 'recorded', clockTick: 40003, flaggedRows: 0, upgradeGate: 'open', … }
 */
export async function hostStatus(client: pg.ClientBase, requested?: HostName): Promise<HostStatus> {
  const { host, source } = await resolveHost(client, requested);
  const reason = await host.assertReady(client).then(() => null, (err: unknown) => toSyncLookupError(err).message);
  const lookup = await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'id');
  const flags = lookup && (await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild'));
  const staged = lookup
    ? (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${LOOKUP_TABLE} WHERE updated_at_sync_tick = $1 LIMIT 10000) s`, [STAGED_TICK])).rows[0]!.n
    : null;
  const flagged = flags
    ? Number((await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${LOOKUP_TABLE} WHERE needs_rebuild`)).rows[0]?.n ?? 0)
    : null;
  return {
    host: host.name, source, description: host.description, ready: reason === null, reason,
    clockTick: reason === null ? await host.currentTick(client) : null,
    since: reason === null ? await host.since(client) : null,
    lastEndTick: lookup ? await lastPublishedTick(client).catch(() => null) : null,
    flaggedRows: flagged, upgradeGate: flagged === null ? null : flagged > 0 ? 'shut' : 'open',
    queuedModels: reason === null ? await host.queuedModels(client) : [],
    stagedRows: staged, stagedBy: staged ? await ownStagedLeftovers(client) : null,
  };
}
