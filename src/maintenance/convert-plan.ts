import { serverDiskSpace } from '../db/disk.js';
import { ConfigError } from '../db/errors.js';
import { quoteQualified } from '../db/quote.js';
import { builtinRegistry, type ModelRegistry } from '../lookup/registry.js';
import { detectLayout, type Layout } from '../schema/partitioned.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import { LIVE, blockingDependents, shadowIndexes } from './convert-tables.js';
import type { WorkSession } from './session.js';

/** What `convert --dry-run` prints: the plan, the table's measured size and the disk it needs. */
export interface ConvertPlan {
  dry_run: true;
  from_layout: Layout;
  to_layout: Layout;
  /** Rows, from the planner's statistics (reltuples). */
  estimated_rows: number;
  /** Heap + TOAST + indexes of the live table (all partitions), measured. */
  table_bytes: number;
  /**
   * Disk the conversion needs: a full second copy of the table with its indexes, plus the WAL the copy writes
   * (about the heap's size, bounded by max_wal_size between checkpoints), plus the change log.
   */
  disk_needed_bytes: number;
  /** Free space where the table lives; null when it cannot be known from here (a remote server). */
  disk_free_bytes: number | null;
  disk_path: string | null;
  disk_check: 'ok' | 'insufficient' | 'unknown';
  /** Rough: the copy at 50 000 rows/s plus index builds at 200 000 rows/s per index. */
  estimated_ms: number;
  /** The record types that get their own partition (partitioned target). */
  partitions: string[];
  /** The indexes the new table gets (the live table's, by name). */
  indexes: string[];
  steps: string[];
}

/**
 * Plans a conversion without changing anything: validates it (ConfigError when the table already has that layout,
 * is absent, or objects depend on it by oid) and measures what it needs.
 *
 * @example
 * const plan = await planConversion(session, { to: 'partitioned' }); // plan.disk_check
 */
export async function planConversion(session: WorkSession, options: { to: Layout; registry?: ModelRegistry }): Promise<ConvertPlan> {
  const c = session.client;
  const from = await detectLayout(c);
  if (from === 'absent') throw new ConfigError('no_table', `${LOOKUP_TABLE} does not exist; run \`sync-lookup migrate --layout ${options.to}\``);
  if (from === options.to) throw new ConfigError('already_layout', `${LOOKUP_TABLE} already has the ${from} layout; nothing to convert`);
  const blockers = await blockingDependents(c);
  if (blockers.length) {
    throw new ConfigError('dependent_objects', `objects refer to ${LOOKUP_TABLE} by oid and would keep pointing at the old table after the swap: ` +
      `${blockers.join('; ')}. Drop them first (and recreate them after the conversion). Nothing was changed`, { objects: blockers });
  }
  const indexes = (await shadowIndexes(c, options.to)).map((i) => i.name);
  const { rows: [m] } = await c.query<{ rows: string; bytes: string; heap: string; wal: string }>(
    `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint::text AS rows, coalesce(sum(pg_total_relation_size(c.oid)), 0)::text AS bytes,
            coalesce(sum(pg_relation_size(c.oid)), 0)::text AS heap, pg_size_bytes(current_setting('max_wal_size'))::text AS wal
       FROM pg_class c WHERE c.relkind = 'r' AND (c.oid = $1::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass))`, [quoteQualified(LIVE)]);
  const rows = Number(m!.rows);
  const bytes = Number(m!.bytes);
  const needed = Math.round(bytes + Math.min(Number(m!.heap), Number(m!.wal)) + rows * 0.01 * 64);
  const disk = await serverDiskSpace(c, quoteQualified(LIVE));
  const partitions = options.to === 'partitioned' ? [...(options.registry ?? builtinRegistry()).names].sort() : [];
  return {
    dry_run: true, from_layout: from, to_layout: options.to, estimated_rows: rows, table_bytes: bytes, disk_needed_bytes: needed,
    disk_free_bytes: disk?.freeBytes ?? null, disk_path: disk?.path ?? null,
    disk_check: disk === null ? 'unknown' : disk.freeBytes >= needed ? 'ok' : 'insufficient',
    estimated_ms: Math.round((rows / 50_000) * 1000 + indexes.length * (rows / 200_000) * 1000),
    partitions, indexes, steps: [
      `create sync_lookup_tool.sync_lookup_shadow (${options.to})` + (partitions.length ? ` with ${partitions.length} type partitions and a default` : '') +
        ', and a trigger on sync_lookup that logs the id of every row changed (one transaction)',
      'copy the rows in keyset batches over id (id, ticks and every column kept)',
      `build ${indexes.length} indexes on the shadow (${indexes.join(', ')})`,
      'apply the logged changes; compare counts and checksums per record type in one snapshot',
      'swap in one short transaction under lock_timeout, retried (indexes, sequence and host triggers keep their names)',
      'keep the previous table as sync_lookup_tool.sync_lookup_previous (still fed by change capture) until `convert --finish`',
    ],
  };
}
