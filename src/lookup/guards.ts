import type pg from 'pg';
import { ConfigError } from '../db/errors.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import type { Host } from './host.js';
import type { ModelDefinition } from './registry.js';
import { dataAttributes, lastBuildTick } from './sql.js';

/*
 * Guards against silent damage, on every host. Each throws ConfigError (exit 2) before anything is written
 * (or inside the transaction that would write, which then rolls back).
 */

/**
 * The last published end tick (`sync_lookup_ticks`), or null before the first build.
 *
 * @example
 * await lastPublishedTick(client) // 40003
 */
export async function lastPublishedTick(client: pg.ClientBase): Promise<number | null> {
  const { rows } = await client.query<{ end_tick: string }>(lastBuildTick().text);
  return rows[0] ? Number(rows[0].end_tick) : null;
}

/**
 * Refuses to publish rows at `tick` when it is not above the last published end tick: facilities pull
 * `tick > since`, so a row published lower than an end tick they already passed is never pulled by them.
 * Also refuses an end tick that is not above the build's start (`sourceStartTick`).
 *
 * @example
 * await assertPublishable(client, host, { tick: endTick, sourceStartTick: since });
 */
export async function assertPublishable(client: pg.ClientBase, host: Host, o: { tick: number; sourceStartTick?: number | null; what?: string }): Promise<void> {
  const last = await lastPublishedTick(client);
  const what = o.what ?? 'publish';
  if (last !== null && o.tick <= last) {
    throw new ConfigError('tick_regression',
      `refusing to ${what} at tick ${o.tick}: it is not above the last published end tick ${last} in sync_lookup_ticks, so facilities ` +
      `that already pulled past ${last} would never receive these rows. The ${host.name} host's clock (${host.description.clock}) is behind ` +
      'the ticks this database has published: if this is a Tamanu central server, run with --host tamanu; nothing was written',
      { tick: o.tick, last_end_tick: last, host: host.name });
  }
  if (o.sourceStartTick !== undefined && o.sourceStartTick !== null && o.tick <= o.sourceStartTick) {
    throw new ConfigError('tick_regression',
      `refusing to record end tick ${o.tick}: it is not above its source start tick ${o.sourceStartTick}; nothing was written`,
      { tick: o.tick, source_start_tick: o.sourceStartTick });
  }
}

/** How the keys of a model's existing `data` differ from the keys a write would give it. */
export interface ShapeChange {
  model: string;
  added: string[];
  removed: string[];
  /** Sampled rows that have the existing key set, out of `sampled`. */
  rows: number;
  sampled: number;
}

/**
 * Compares the key set most of a sample of a model's existing lookup rows have (up to `sampleRows`, through
 * the record_type index) with the keys the registry gives; null when they match or there are no rows with
 * data. The most common key set, not the union: a few damaged rows must not block the rebuild that repairs them.
 *
 * @example
 * await dataShapeChange(client, model) // { model: 'notes', added: ['created_at'], removed: ['noteType'], rows: 200, sampled: 200 }
 */
export async function dataShapeChange(client: pg.ClientBase, model: ModelDefinition, sampleRows = 200): Promise<ShapeChange | null> {
  const { rows } = await client.query<{ keys: string[]; n: number; sampled: number }>(
    `WITH d AS (SELECT data FROM ${LOOKUP_TABLE} WHERE record_type = $1 AND data IS NOT NULL LIMIT $2),
          s AS (SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(d.data::jsonb) AS k) AS keys FROM d)
     SELECT keys, count(*)::int AS n, (SELECT count(*)::int FROM d) AS sampled FROM s GROUP BY keys ORDER BY count(*) DESC, keys LIMIT 1`,
    [model.name, sampleRows]);
  const common = rows[0];
  if (!common) return null;
  const existing = new Set(common.keys ?? []);
  const wanted = new Set(dataAttributes(model).map((a) => a.key));
  const added = [...wanted].filter((k) => !existing.has(k));
  const removed = [...existing].filter((k) => !wanted.has(k)).sort();
  return added.length || removed.length ? { model: model.name, added, removed, rows: common.n, sampled: common.sampled } : null;
}

/**
 * Refuses to rewrite `data` of these models into a different key set than the rows already there, unless
 * `accept` (the user's `--accept-shape-change`). Every model's change is named at once.
 *
 * @example
 * await assertDataShapes(client, models, { accept: false });
 */
export async function assertDataShapes(client: pg.ClientBase, models: readonly ModelDefinition[], o: { accept?: boolean } = {}): Promise<ShapeChange[]> {
  const changes: ShapeChange[] = [];
  for (const m of models) {
    const change = await dataShapeChange(client, m);
    if (change) changes.push(change);
  }
  if (changes.length && !o.accept) {
    throw new ConfigError('data_shape_change',
      `refusing to rewrite data into a different key set than the existing rows have (facilities would receive keys their models ` +
      `do not have); nothing was written:\n  ${changes.map((c) => `${c.model}: adds ${c.added.join(', ') || '(none)'}; removes ${c.removed.join(', ') || '(none)'} ` +
        `(the keys of ${c.rows} of ${c.sampled} sampled rows)`).join('\n  ')}\n` +
      'check the registry (--models, --host) against the deployment, or pass --accept-shape-change if the change is intended',
      { changes });
  }
  return changes;
}
