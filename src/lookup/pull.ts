import { backendPid, cancellableQuery, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import type { ModelRegistry } from './registry.js';
import { lastBuildTick, pullChunkQuery } from './sql.js';

/** One lookup row as a pull returns it. */
export interface PullRow {
  /** `sync_lookup.id` (bigint, as a string). */
  id: string;
  record_type: string;
  record_id: string;
  is_deleted: boolean;
  /** bigint as a string. */
  updated_at_sync_tick: string;
  patient_id: string | null;
  encounter_id: string | null;
  facility_id: string | null;
  data: Record<string, unknown>;
}

/** Options of `pullChanges`. */
export interface PullOptions {
  registry: ModelRegistry;
  /** Rows with `updated_at_sync_tick > sinceTick`; -1 for everything. Must be an integer >= -1. */
  sinceTick: number;
  /** Record types to pull (validated against the registry). Default: every model of the registry. */
  types?: readonly string[];
  patients?: readonly string[];
  facilities?: readonly string[];
  deviceId?: string;
  /** Rows per chunk. Default 1 000. */
  chunkRows?: number;
  signal?: AbortSignal;
}

/** One chunk of a pull. */
export interface PullChunk {
  /** 1-based chunk number. */
  chunk: number;
  rows: PullRow[];
  /**
   * The last published build end tick in the pull's snapshot: pass it as the next pull's `sinceTick`. Every
   * change committed before it was published is in this pull or in an earlier one. Null before the first build.
   */
  untilTick: number | null;
}

/** Validates pull options (ConfigError naming the bad value). */
export function checkPullOptions(options: Pick<PullOptions, 'registry' | 'sinceTick' | 'types' | 'chunkRows'>): string[] {
  if (!Number.isSafeInteger(options.sinceTick) || options.sinceTick < -1) {
    throw new ConfigError('invalid_option', `since must be an integer >= -1, got ${JSON.stringify(options.sinceTick)}`, { since: options.sinceTick });
  }
  if (options.chunkRows !== undefined && (!Number.isSafeInteger(options.chunkRows) || options.chunkRows <= 0)) {
    throw new ConfigError('invalid_option', `chunk must be a positive integer, got ${JSON.stringify(options.chunkRows)}`);
  }
  return options.registry.select(options.types).map((m) => m.name);
}

/**
 * The outgoing pull (SYSTEM.md): yields chunks of lookup rows changed since `sinceTick` that match the
 * puller's types, patients, facilities and device, ordered by `id` and read by an `id` cursor. All chunks
 * come from one REPEATABLE READ snapshot, so a build publishing meanwhile can neither split a chunk nor
 * hide a row; staged rows (-2) are never returned. There is always a first chunk (possibly with no rows):
 * it carries `untilTick`, read in the same snapshot.
 *
 * @example
 * for await (const chunk of pullChanges(db, { registry, sinceTick: 120, patients: ['p1'] })) {
 *   send(chunk.rows); next = chunk.untilTick;
 * }
 */
export async function* pullChanges(db: Database, options: PullOptions): AsyncGenerator<PullChunk> {
  const types = checkPullOptions(options);
  const limit = options.chunkRows ?? 1000;
  const lease = await db.acquire();
  const client = lease.client;
  let open = false;
  try {
    await client.query(`SELECT set_config('application_name', 'sync-lookup:pull', false)`);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    open = true;
    // Locked before the snapshot (LOCK takes none): a table swapped in (`convert`) between the snapshot and the
    // first read would be read as of that snapshot, without the changes the swap applied to it.
    await client.query(`LOCK TABLE ${quoteIdent(LOOKUP_TABLE)} IN ACCESS SHARE MODE`);
    const pid = await backendPid(client);
    const last = await client.query<{ end_tick: string }>(lastBuildTick().text);
    const untilTick = last.rows[0] ? Number(last.rows[0].end_tick) : null;
    let afterId: string | undefined;
    for (let chunk = 1; ; chunk++) {
      const q = pullChunkQuery({
        sinceTick: options.sinceTick, types,
        ...(options.patients ? { patients: options.patients } : {}),
        ...(options.facilities ? { facilities: options.facilities } : {}),
        ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        limit,
      });
      const { rows } = await cancellableQuery<PullRow>(db, client, pid, q.text, q.values, options.signal);
      // The first chunk is yielded even when empty: it carries the snapshot's untilTick.
      if (rows.length === 0 && chunk > 1) break;
      yield { chunk, rows, untilTick };
      if (rows.length < limit) break;
      afterId = rows[rows.length - 1]!.id;
    }
    await client.query('COMMIT');
    open = false;
  } finally {
    if (open) await client.query('ROLLBACK').catch(() => {});
    await lease.release();
  }
}

/** Counts of a pull, per record type (the `--json` shape of `sync-lookup pull`). */
export interface PullSummary {
  sinceTick: number;
  untilTick: number | null;
  rows: number;
  chunks: number;
  durationMs: number;
  types: Record<string, number>;
}

/**
 * Runs a whole pull, handing each chunk to `onChunk`, and returns the counts per type.
 *
 * @example
 * const summary = await pullSummary(db, { registry, sinceTick: -1 });
 */
export async function pullSummary(db: Database, options: PullOptions & { onChunk?: (chunk: PullChunk) => void | Promise<void> }): Promise<PullSummary> {
  const started = Date.now();
  const summary: PullSummary = { sinceTick: options.sinceTick, untilTick: null, rows: 0, chunks: 0, durationMs: 0, types: {} };
  for await (const chunk of pullChanges(db, options)) {
    if (chunk.rows.length) summary.chunks++;
    summary.rows += chunk.rows.length;
    summary.untilTick = chunk.untilTick;
    for (const r of chunk.rows) summary.types[r.record_type] = (summary.types[r.record_type] ?? 0) + 1;
    await options.onChunk?.(chunk);
  }
  summary.durationMs = Date.now() - started;
  return summary;
}
