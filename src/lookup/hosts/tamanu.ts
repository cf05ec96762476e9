import type pg from 'pg';
import { ConfigError } from '../../db/errors.js';
import type { Host } from '../host.js';
import { recordBuildTick } from '../sql.js';
import { ownStagedLeftovers } from '../staging.js';
import { LOOKUP_TABLE, STAGED_TICK } from '../../schema/sync-lookup.js';

/*
 * The tamanu host: a central server of the system behind the seed (ORIGIN.md), whose own builder keeps
 * `sync_lookup` every 20 s. sync-lookup never creates a second clock there; it follows the server's protocol:
 *
 * - the clock is the fact `currentSyncTick` in `local_system_facts`; writers stamp source rows with it and take
 *   a shared transaction-level advisory lock on that tick value; a build ticks the clock, then takes the
 *   exclusive advisory lock on the previous value (tock), which waits for those writers;
 * - `since` is the fact `lastSuccessfulLookupTableUpdate` (absent: initial build); a build stages rows at -2,
 *   then a second transaction moves them to a fresh end tick and inserts (previous tick, end tick) into
 *   `sync_lookup_ticks`;
 * - hard deletes and writes made while the tick trigger is off flag lookup rows (`needs_rebuild`), which the
 *   build's second pass re-derives; whole models are queued by `flag_lookup_model_to_rebuild(name)` in the fact
 *   `lookupModelsToRebuild`;
 * - `data` has camelCase keys without the timestamps, built with json_build_object; `pushed_by_device_id`
 *   comes from `sync_device_ticks` joined on the source row's tick.
 */

const FACTS = 'local_system_facts';
const CLOCK_FACT = 'currentSyncTick';
const SINCE_FACT = 'lastSuccessfulLookupTableUpdate';
const QUEUE_FACT = 'lookupModelsToRebuild';
const QUEUE_FUNCTION = 'flag_lookup_model_to_rebuild';
/** Alias of the device join the conventions add (unlikely to clash with a registry's own aliases). */
const DEVICE_ALIAS = 'host_device_tick';

async function readFact(client: pg.ClientBase, key: string): Promise<string | null> {
  const { rows } = await client.query<{ value: string | null }>(`SELECT value FROM ${FACTS} WHERE key = $1 ORDER BY id LIMIT 1`, [key]);
  return rows[0]?.value ?? null;
}

async function writeFact(client: pg.ClientBase, key: string, value: string): Promise<void> {
  const { rowCount } = await client.query(`UPDATE ${FACTS} SET value = $2, updated_at = now() WHERE key = $1`, [key, value]);
  if (!rowCount) await client.query(`INSERT INTO ${FACTS} (key, value, created_at, updated_at) VALUES ($1, $2, now(), now())`, [key, value]);
}

/** Advances the clock fact by one in the current transaction (or statement) and returns the new value. */
async function tickClock(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ tick: string }>(
    `UPDATE ${FACTS} SET value = (value::bigint + 1)::text, updated_at = now() WHERE key = $1 RETURNING value AS tick`, [CLOCK_FACT]);
  if (!rows[0]) throw new ConfigError('host_not_ready', `${FACTS} has no ${CLOCK_FACT} fact: is this a Tamanu central server?`);
  return Number(rows[0].tick);
}

/**
 * The tamanu host (see the module comment).
 *
 * @example
 * await buildLookup(db, { registry, host: tamanuHost });
 */
export const tamanuHost: Host = {
  name: 'tamanu',
  description: {
    clock: `${FACTS} '${CLOCK_FACT}'`, since: `${FACTS} '${SINCE_FACT}'`, deletes: 'needs_rebuild flags',
    rebuildQueue: `${FACTS} '${QUEUE_FACT}' (${QUEUE_FUNCTION})`,
  },
  conventions(model) {
    const device = model.pushedByDeviceId === undefined
      ? {
        pushedByDeviceId: `${DEVICE_ALIAS}.device_id`,
        joins: [...(model.joins ?? []), { table: 'sync_device_ticks', alias: DEVICE_ALIAS, on: `${DEVICE_ALIAS}.persisted_at_sync_tick = s.updated_at_sync_tick` }],
      }
      : {};
    return {
      keyStyle: 'camelCase', excludeFromData: ['created_at', 'updated_at', 'deleted_at', 'updated_at_sync_tick'], dataBuilder: 'json_build_object',
      ...model, ...device,
    };
  },
  async assertReady(client) {
    const { rows: [t] } = await client.query<{ facts: boolean; devices: boolean; lookup_flags: boolean }>(
      `SELECT to_regclass($1) IS NOT NULL AS facts, to_regclass('sync_device_ticks') IS NOT NULL AS devices,
              EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'needs_rebuild' AND NOT attisdropped) AS lookup_flags`,
      [FACTS, LOOKUP_TABLE]);
    const missing = [
      ...(t?.facts ? [] : [`table ${FACTS}`]),
      ...(t?.devices ? [] : ['table sync_device_ticks']),
      ...(t?.lookup_flags ? [] : [`column ${LOOKUP_TABLE}.needs_rebuild`]),
    ];
    if (!missing.length) {
      const tick = await readFact(client, CLOCK_FACT);
      if (tick !== null && /^-?\d+$/.test(tick.trim())) return;
      missing.push(`a numeric ${CLOCK_FACT} fact (found ${JSON.stringify(tick)})`);
    }
    throw new ConfigError('host_not_ready',
      `this database does not look like a Tamanu central server: it lacks ${missing.join(', ')}; ` +
      'run with --host builtin if sync-lookup set it up', { missing });
  },
  async currentTick(client) {
    return Number(await readFact(client, CLOCK_FACT));
  },
  async tock(client) {
    const next = await tickClock(client);
    // Waits until every writer that stamped the previous tick (holding its shared advisory lock) commits.
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [next - 1]);
    return next;
  },
  async publishTick(client) {
    return tickClock(client);
  },
  async since(client) {
    const value = await readFact(client, SINCE_FACT);
    return value === null ? null : Number(value);
  },
  async recordBuild(client, b) {
    const q = recordBuildTick({ sourceStartTick: b.coveredBefore - 1, lookupEndTick: b.endTick });
    await client.query(q.text, q.values);
    await writeFact(client, SINCE_FACT, String(b.coveredBefore - 1));
  },
  async applyDeletes() {
    return 0; // hard deletes flag lookup rows: the build's flag pass removes those whose source is gone
  },
  async queuedModels(client) {
    return parseQueue(await readFact(client, QUEUE_FACT));
  },
  async queueModel(client, model) {
    const { rows: [f] } = await client.query<{ ok: boolean }>(`SELECT to_regprocedure($1) IS NOT NULL AS ok`, [`${QUEUE_FUNCTION}(text)`]);
    if (f?.ok) await client.query(`SELECT ${QUEUE_FUNCTION}($1::text)`, [model]);
    else throw new ConfigError('host_not_ready', `function ${QUEUE_FUNCTION}(text) does not exist: cannot queue ${model} for a rebuild the way the server does`);
  },
  async dequeueModels(client, models) {
    if (!models.length) return;
    const { rows } = await client.query<{ value: string | null }>(`SELECT value FROM ${FACTS} WHERE key = $1 FOR UPDATE`, [QUEUE_FACT]);
    if (!rows.length) return;
    const left = parseQueue(rows[0]!.value).filter((m) => !models.includes(m));
    await writeFact(client, QUEUE_FACT, left.join(','));
  },
  jobPublish: 'staged',
  async recordPublish(client, endTick) {
    const since = Number((await readFact(client, SINCE_FACT)) ?? -1);
    const q = recordBuildTick({ sourceStartTick: since, lookupEndTick: endTick });
    await client.query(q.text, q.values);
  },
  async foreignBuilder(client, ownTypes = []) {
    const { rows: [r] } = await client.query<{ staged: number; writers: string | null }>(
      `SELECT (SELECT count(*)::int FROM (SELECT 1 FROM ${LOOKUP_TABLE} WHERE updated_at_sync_tick = $1 AND NOT (record_type = ANY($3::text[])) LIMIT 1000) s) AS staged,
              (SELECT string_agg(format('pid %s (%s)', a.pid, coalesce(nullif(a.application_name, ''), a.usename::text)), ', ')
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.relation = to_regclass($2) AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()) AS writers`,
      [STAGED_TICK, LOOKUP_TABLE, [...ownTypes]]);
    if (r?.writers) return `another session is writing ${LOOKUP_TABLE}: ${r.writers}`;
    if (r?.staged && (await ownStagedLeftovers(client))) return null; // an interrupted sync-lookup run's: the next build publishes them
    if (r?.staged) return `${r.staged >= 1000 ? '1000+' : r.staged} rows are staged at tick ${STAGED_TICK} (the server's builder is between its build and its publish, or one crashed there; its next run publishes them)`;
    return null;
  },
};

function parseQueue(value: string | null): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
