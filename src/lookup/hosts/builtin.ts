import type pg from 'pg';
import { ConfigError } from '../../db/errors.js';
import type { Host } from '../host.js';
import { currentTick, tockClock } from '../source.js';
import { deleteTombstonedRows, lastBuildTick, pruneTombstones, recordBuildTick } from '../sql.js';
import { CLOCK_TABLE, REBUILD_QUEUE_TABLE, ensureToolSchema } from '../../schema/tool.js';

/*
 * The builtin host: a new system set up by sync-lookup itself (`seed`, or source tables made with
 * `setupSourceTables`). Its clock is one row in the tool's schema, stamped by a row trigger that reads it
 * FOR SHARE (the tock's UPDATE waits for those writers); hard deletes leave tombstones; `since` is the last
 * recorded end tick less one; `data` has the source columns' names, timestamps included (row_to_json).
 */

/**
 * The builtin host (see the module comment).
 *
 * @example
 * const r = await buildLookup(db, { registry, host: builtinHost });
 */
export const builtinHost: Host = {
  name: 'builtin',
  description: {
    clock: CLOCK_TABLE, since: 'sync_lookup_ticks (last lookup_end_tick - 1)', deletes: 'tombstones', rebuildQueue: REBUILD_QUEUE_TABLE,
  },
  conventions(model) {
    return { keyStyle: 'snake_case', dataBuilder: 'row_to_json', ...model };
  },
  async assertReady(client) {
    const { rows: [t] } = await client.query<{ clock: boolean; facts: boolean }>(
      `SELECT to_regclass($1) IS NOT NULL AS clock, to_regclass('public.local_system_facts') IS NOT NULL AS facts`, [CLOCK_TABLE]);
    if (t?.clock) return;
    throw new ConfigError('host_not_ready',
      `the builtin host's clock ${CLOCK_TABLE} does not exist: this database was not set up by sync-lookup ` +
      (t?.facts ? '(it has local_system_facts: a Tamanu server; run with --host tamanu, or `migrate --adopt` to record it)'
        : '(run `sync-lookup seed`, or create the source tables with setupSourceTables)'), { clock: CLOCK_TABLE });
  },
  currentTick,
  tock: tockClock,
  async publishTick(_client, coveredBefore) {
    return coveredBefore;
  },
  async since(client) {
    const { rows } = await client.query<{ end_tick: string }>(lastBuildTick().text);
    return rows[0] ? Number(rows[0].end_tick) - 1 : null;
  },
  async recordBuild(client, b) {
    const q = recordBuildTick({ sourceStartTick: b.since ?? -1, lookupEndTick: b.endTick });
    await client.query(q.text, q.values);
  },
  async applyDeletes(client, w) {
    const del = deleteTombstonedRows({ types: w.types, sinceTick: w.since, beforeTick: w.before });
    const { rowCount } = await client.query(del.text, del.values);
    const prune = pruneTombstones({ types: w.types, beforeTick: w.before });
    await client.query(prune.text, prune.values);
    return rowCount ?? 0;
  },
  async queuedModels(client) {
    if (!(await queueExists(client))) return [];
    const { rows } = await client.query<{ model: string }>(`SELECT model FROM ${REBUILD_QUEUE_TABLE} ORDER BY queued_at, model`);
    return rows.map((r) => r.model);
  },
  async queueModel(client, model) {
    await ensureToolSchema(client);
    await client.query(`CREATE TABLE IF NOT EXISTS ${REBUILD_QUEUE_TABLE} (model text PRIMARY KEY, queued_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(`INSERT INTO ${REBUILD_QUEUE_TABLE} (model) VALUES ($1) ON CONFLICT DO NOTHING`, [model]);
  },
  async dequeueModels(client, models) {
    if (models.length && (await queueExists(client))) await client.query(`DELETE FROM ${REBUILD_QUEUE_TABLE} WHERE model = ANY($1::text[])`, [models]);
  },
  async foreignBuilder() {
    return null; // every builder of a builtin system is sync-lookup, which takes the build advisory lock
  },
  jobPublish: 'tick',
  async recordPublish() {
    // Rows of a job are written at a tocked tick below the next build's end tick: the next build's ticks row covers them.
  },
};

async function queueExists(client: pg.ClientBase): Promise<boolean> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [REBUILD_QUEUE_TABLE]);
  return !!t?.ok;
}
