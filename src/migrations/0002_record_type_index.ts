import { concurrentIndexMigration } from '../migrate/migration.js';
import { createIndexSql } from '../db/index-ddl.js';
import type { Migration } from '../migrate/migration.js';
import { detectLayout } from '../schema/partitioned.js';
import { NEEDS_REBUILD_INDEX, RECORD_TYPE_INDEX } from '../schema/sync-lookup.js';

/*
 * The seed's fix: one index that leads with record_type, built concurrently (writes continue).
 *
 * Chosen by measurement: PostgreSQL 18.4 on this project's 2-core machine, 2 M synthetic lookup rows
 * (1.0 GB heap, 12 types, ~0.4 KB json each), psql with \timing and EXPLAIN ANALYZE:
 *
 *                                      (record_type)   (record_type, updated_at_sync_tick)
 *   size                               13 MB           82 MB   (B-tree deduplication folds the few
 *                                                               distinct types; the tick defeats it)
 *   CREATE INDEX CONCURRENTLY          1.2 s           2.1 s
 *   purge/rebuild of one type          Index Scan, Index Cond record_type = ANY(...)   (same for both)
 *   pull of 2 large types since a
 *   recent tick (SYSTEM.md's pull)     23.4 ms         1.4 ms   (no record_type index at all: 4.5 ms)
 *
 * The single-column index makes the pull *slower* than having none: the planner BitmapAnds the tick
 * index with a 500 k-entry bitmap of the type index. The composite one answers type + tick range in one
 * index scan. Writes cost the same for both: every build moves a row to a new tick, which is already a
 * non-HOT update (the tick is in the existing tick index), so every index gets a new entry either way.
 * So the composite index, alone: it also serves `record_type = $1` by its leftmost prefix, which makes a
 * separate (record_type) index redundant; creating both is never right.
 */
/**
 * The partial index the origin deployments keep on flagged rows (ORIGIN.md): the build's flag pass and
 * verify find them without reading the table. Built concurrently; on a fresh lookup it is empty.
 */
export const needsRebuildIndex: Migration = partitionAware(concurrentIndexMigration({
  name: '0004_sync_lookup_needs_rebuild_index',
  index: NEEDS_REBUILD_INDEX,
  comment: 'partial index (record_type) WHERE needs_rebuild, as origin deployments have it',
}));

/**
 * A partitioned table cannot be indexed CONCURRENTLY: there the index is created plainly (each partition is
 * read under a SHARE lock, which blocks writes for that long). The partitioned baseline creates it with the
 * table, so only partitioned lookups made before this migration existed take this path.
 */
function partitionAware(m: Migration): Migration {
  return {
    ...m,
    async up(ctx) {
      if ((await detectLayout(ctx.client)) !== 'partitioned') return m.up(ctx);
      const sql = createIndexSql(NEEDS_REBUILD_INDEX, false).replace('CREATE INDEX', 'CREATE INDEX IF NOT EXISTS');
      await ctx.client.query(sql);
      ctx.completed.push(sql);
    },
  };
}

export const recordTypeIndex = concurrentIndexMigration({
  name: '0002_sync_lookup_record_type_index',
  index: RECORD_TYPE_INDEX,
  comment: 'record_type-led index (record_type, updated_at_sync_tick) for purge/rebuild/resync and typed pulls',
});
