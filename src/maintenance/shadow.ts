import { LockNotAcquiredError } from '../db/errors.js';
import { quoteIdent, quoteLiteral, quoteQualified, type QualifiedName } from '../db/quote.js';
import { withLockRetries } from '../db/session.js';
import { assertPublishable } from '../lookup/guards.js';
import type { Host } from '../lookup/host.js';
import type { ModelDefinition } from '../lookup/registry.js';
import { LOOKUP_WRITE_COLUMNS, selectLookupRows } from '../lookup/sql.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import type { TypePartition } from '../schema/partitioned.js';
import type { JobHandle } from './job.js';

/*
 * Resync of a type that has its own partition: fill a fresh ("shadow") table sequentially, build its indexes
 * once, then swap it in for the old partition in one short transaction. Compared with rewriting every row in
 * place it writes each row once (no dead versions, no index churn, nothing left to VACUUM) and the old rows
 * disappear with their file.
 *
 * - Tick rules: the build lock is held from the tock to the swap, so no build publishes an end tick above the
 *   fill's tick before its rows become visible: the rows are published at a tick above every end tick
 *   facilities have seen (assertPublishable checks it). Builds wait for the fill (seconds for a type of
 *   100 k rows); pulls never wait except for the swap itself.
 * - Facilities never see a half-built type: until the swap they read the old partition, after it the new one;
 *   the swap (DETACH, ATTACH) is one transaction.
 * - The shadow is created beside the partition (in its schema, so PostgreSQL picks index names that are unique
 *   there) and marked by a comment; an interrupted run's shadow is dropped by the next run, and only a table
 *   carrying that comment is ever dropped.
 * - Source writes after the tock have ticks above it: the next build picks them up, as after any rebuild batch.
 */

/** The shadow table of a type's partition (beside it). */
export function shadowTable(partition: QualifiedName): QualifiedName {
  return { schema: partition.schema, name: `${partition.name.slice(0, 55)}_shadow` };
}

/** The comment that marks a shadow table as sync-lookup's own. */
export const SHADOW_COMMENT = 'sync-lookup: shadow partition being filled (dropped by the next resync if left behind)';

/** The statements of a shadow swap, in order (shown by --dry-run and documented). */
export const SHADOW_SQL = {
  create: (shadow: QualifiedName, partition: QualifiedName) =>
    `CREATE TABLE ${quoteQualified(shadow)} (LIKE ${quoteQualified(partition)} INCLUDING ALL)`,
  /** Lets ATTACH skip its validation scan: the constraint proves every row belongs to the partition. */
  check: (shadow: QualifiedName, type: string) =>
    `ALTER TABLE ${quoteQualified(shadow)} ADD CONSTRAINT sync_lookup_shadow_type CHECK (record_type IS NOT NULL AND record_type = ${quoteLiteral(type)})`,
  /** Index and key definitions of the shadow (copied from the partition), to drop before the fill and re-create after it. */
  indexes: `SELECT pg_get_indexdef(i.indexrelid) AS index_sql, c.conname, pg_get_constraintdef(c.oid) AS constraint_sql
              FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
             WHERE i.indrelid = $1::regclass ORDER BY c.conname NULLS LAST`,
  fill: (shadow: QualifiedName, select: string) =>
    `INSERT INTO ${quoteQualified(shadow)} (${LOOKUP_WRITE_COLUMNS.join(', ')}) SELECT ${LOOKUP_WRITE_COLUMNS.join(', ')} FROM (\n${select}\n) AS src`,
  detach: (partition: QualifiedName) => `ALTER TABLE ${quoteIdent(LOOKUP_TABLE)} DETACH PARTITION ${quoteQualified(partition)}`,
  attach: (shadow: QualifiedName, type: string) =>
    `ALTER TABLE ${quoteIdent(LOOKUP_TABLE)} ATTACH PARTITION ${quoteQualified(shadow)} FOR VALUES IN (${quoteLiteral(type)})`,
} as const;

interface IndexDef { index_sql: string; conname: string | null; constraint_sql: string | null }

async function dropLeftover(h: JobHandle, shadow: QualifiedName): Promise<void> {
  // Only a table carrying our comment that is not a partition: never anything a user made or a swap attached.
  const { rows: [r] } = await h.session.client.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = $2 AND NOT c.relispartition AND obj_description(c.oid, 'pg_class') = $3) AS ok`,
    [shadow.schema, shadow.name, SHADOW_COMMENT]);
  if (r?.ok) await h.session.client.query(`DROP TABLE ${quoteQualified(shadow)}`);
}

/** Creates the empty shadow, without its indexes (returned, to be built after the fill). */
async function createShadow(h: JobHandle, shadow: QualifiedName, part: TypePartition, type: string): Promise<IndexDef[]> {
  const c = h.session.client;
  await c.query(SHADOW_SQL.create(shadow, part.table));
  await c.query(`COMMENT ON TABLE ${quoteQualified(shadow)} IS ${quoteLiteral(SHADOW_COMMENT)}`);
  // The partition carries no such constraint after a swap (dropped below), but an older run's may have kept one.
  await c.query(`ALTER TABLE ${quoteQualified(shadow)} DROP CONSTRAINT IF EXISTS sync_lookup_shadow_type`);
  await c.query(SHADOW_SQL.check(shadow, type));
  const { rows } = await c.query<IndexDef>(SHADOW_SQL.indexes, [quoteQualified(shadow)]);
  for (const r of rows) {
    if (r.conname) await c.query(`ALTER TABLE ${quoteQualified(shadow)} DROP CONSTRAINT ${quoteIdent(r.conname)}`);
  }
  const { rows: left } = await c.query<{ name: string }>(
    `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass`, [quoteQualified(shadow)]);
  for (const r of left) await c.query(`DROP INDEX ${r.name}`);
  return rows;
}

/** A partition's indexes by the parent index each is attached to: parent oid → index name. */
async function attachedIndexNames(h: JobHandle, partition: QualifiedName): Promise<Map<string, string>> {
  const { rows } = await h.session.client.query<{ parent: string; name: string }>(
    `SELECT i.inhparent::text AS parent, c.relname AS name FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
       JOIN pg_inherits i ON i.inhrelid = x.indexrelid WHERE x.indrelid = $1::regclass`, [quoteQualified(partition)]);
  return new Map(rows.map((r) => [r.parent, r.name]));
}

/** The swap: detach and drop the old partition, move the shadow into its place and attach it; one transaction. */
async function swap(h: JobHandle, shadow: QualifiedName, part: TypePartition, type: string): Promise<void> {
  await withLockRetries(h.session, async () => {
    const c = h.session.client;
    const oldNames = await attachedIndexNames(h, part.table);
    await c.query(SHADOW_SQL.detach(part.table));
    await c.query(`DROP TABLE ${quoteQualified(part.table)}`);
    await c.query(`ALTER TABLE ${quoteQualified(shadow)} RENAME TO ${quoteIdent(part.table.name)}`);
    await c.query(`COMMENT ON TABLE ${quoteQualified(part.table)} IS NULL`);
    await c.query(SHADOW_SQL.attach(part.table, type));
    // Its work is done (ATTACH skipped the validation scan); the partition bound says the same from now on.
    await c.query(`ALTER TABLE ${quoteQualified(part.table)} DROP CONSTRAINT sync_lookup_shadow_type`);
    // The new partition's indexes take the old ones' names (matched by the parent index each is attached to).
    for (const [parent, name] of await attachedIndexNames(h, part.table)) {
      const old = oldNames.get(parent);
      if (old && old !== name) await c.query(`ALTER INDEX ${quoteQualified({ schema: part.table.schema, name })} RENAME TO ${quoteIdent(old)}`);
    }
  }, {
    lockTimeoutsMs: [h.tuning.lockTimeoutMs], attempts: 30, signal: h.signal, sleepMs: (n) => Math.min(5_000, 100 * 2 ** n),
    exhausted: (n, ms) => `could not take the lock to swap the new partition of ${type} in (${n} attempts of ${ms} ms; pulls or builds kept it busy); ` +
      'the old partition is untouched and the job is resumable: run it again',
    onRetry: (e) => h.emit(e),
  });
}

/**
 * Resyncs `model` (a type with its own partition) by a shadow swap, under the build lock the caller holds:
 * tock, fill the shadow at that tick, build its indexes, ANALYZE it, swap it in. Returns the rows written.
 */
export async function shadowResync(h: JobHandle, host: Host, model: ModelDefinition, part: TypePartition): Promise<number> {
  const shadow = shadowTable(part.table);
  await dropLeftover(h, shadow);
  const foreign = await host.foreignBuilder(h.session.client, [model.name]);
  if (foreign) throw new LockNotAcquiredError('host_builder_running', `paused: the host's own builder is at work (${foreign}); the job is resumable: run it again`);
  const tick = await host.tock(h.session.client);
  await assertPublishable(h.session.client, host, { tick, what: `resync ${model.name}` });
  const indexes = await createShadow(h, shadow, part, model.name);
  const src = selectLookupRows(model, { lookupTick: tick });
  const filled = await h.session.query(SHADOW_SQL.fill(shadow, src.text), src.values, h.signal);
  const c = h.session.client;
  for (const r of indexes) {
    await c.query(r.conname ? `ALTER TABLE ${quoteQualified(shadow)} ADD CONSTRAINT ${quoteIdent(r.conname)} ${r.constraint_sql}` : r.index_sql);
  }
  await c.query(`ANALYZE ${quoteQualified(shadow)}`);
  await swap(h, shadow, part, model.name);
  return filled.rowCount ?? 0;
}
