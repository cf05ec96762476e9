import { concurrentIndexMigration } from '../migrate/migration.js';
import { RECORD_TYPE_INDEX } from '../schema/sync-lookup.js';

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
export const recordTypeIndex = concurrentIndexMigration({
  name: '0002_sync_lookup_record_type_index',
  index: RECORD_TYPE_INDEX,
  comment: 'record_type-led index (record_type, updated_at_sync_tick) for purge/rebuild/resync and typed pulls',
});
