import type pg from 'pg';
import { quoteQualified, type QualifiedName } from '../db/quote.js';
import type { Session } from '../db/session.js';
import { CHANGES_TABLE, LIVE, PENDING_TABLE } from './convert-tables.js';

/*
 * Moving rows from the live table to the other one (the shadow before the swap, the kept table for a rollback):
 * the copy (keyset batches over the primary key), the application of logged changes, and the verification.
 */

const L = quoteQualified(LIVE);

/** Copies the next batch of rows with `id > afterId`, in id order; returns how many and the last id. */
export async function copyBatch(session: Session, dst: QualifiedName, cols: string, afterId: string | null, rows: number, signal?: AbortSignal): Promise<{ rows: number; last: string | null }> {
  const { rows: [r] } = await session.query<{ n: number; last: string | null }>(
    `WITH c AS (INSERT INTO ${quoteQualified(dst)} (${cols}) SELECT ${cols} FROM ${L} WHERE ($1::bigint IS NULL OR id > $1) ORDER BY id LIMIT $2 RETURNING id)
     SELECT count(*)::int AS n, max(id)::text AS last FROM c`, [afterId, rows], signal);
  return { rows: r?.n ?? 0, last: r?.last ?? null };
}

/**
 * Applies up to `limit` logged changes to `dst`: each logged id is deleted there and inserted again from the live
 * table if it still has it; a truncate marker removes from `dst` the rows of its types the live table no longer
 * has. With `track`, the ids also go to the verification's pending set. Run it inside one transaction.
 */
export async function applyChanges(client: pg.ClientBase, dst: QualifiedName, cols: string, limit: number, track: boolean): Promise<number> {
  const { rows } = await client.query<{ id: string | null; types: string[] | null }>(
    `DELETE FROM ${CHANGES_TABLE} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${CHANGES_TABLE} LIMIT $1)) RETURNING id::text, types`, [limit]);
  if (!rows.length) return 0;
  const d = quoteQualified(dst);
  for (const m of rows.filter((r) => r.id === null)) await applyTruncate(client, dst, m.types);
  const ids = [...new Set(rows.filter((r) => r.id !== null).map((r) => r.id!))];
  if (ids.length) {
    await client.query(`DELETE FROM ${d} WHERE id = ANY($1::bigint[])`, [ids]);
    await client.query(`INSERT INTO ${d} (${cols}) SELECT ${cols} FROM ${L} WHERE id = ANY($1::bigint[])`, [ids]);
    if (track) await client.query(`INSERT INTO ${PENDING_TABLE} (id) SELECT unnest($1::bigint[])`, [ids]);
  }
  return rows.length;
}

/** A truncate marker: removes from `dst` the rows of `types` (all types when null) the live table no longer has. */
async function applyTruncate(client: pg.ClientBase, dst: QualifiedName, types: string[] | null): Promise<void> {
  await client.query(`DELETE FROM ${quoteQualified(dst)} x WHERE ($1::text[] IS NULL OR x.record_type = ANY($1::text[]))
                        AND NOT EXISTS (SELECT 1 FROM ${L} l WHERE l.id = x.id)`, [types]);
}

/**
 * Applies the logged truncate markers only (whatever the backlog of row changes): a marker left in the log makes
 * every type differ at the verification, which leaves rows out by id only. Run it inside one transaction.
 */
export async function applyTruncateMarkers(client: pg.ClientBase, dst: QualifiedName): Promise<number> {
  const { rows } = await client.query<{ types: string[] | null }>(`DELETE FROM ${CHANGES_TABLE} WHERE id IS NULL RETURNING types`);
  for (const m of rows) await applyTruncate(client, dst, m.types);
  return rows.length;
}

/** Rows logged and not yet applied (an estimate is enough for progress; exact when small). */
export async function pendingChanges(client: pg.ClientBase): Promise<number> {
  const { rows: [r] } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${CHANGES_TABLE} LIMIT 1000000) s`);
  return r?.n ?? 0;
}

/** Counts and a checksum of one type in one table. */
export interface TypeDigest { record_type: string; rows: number; checksum: string }

const digestSql = (table: QualifiedName) =>
  `SELECT record_type::text AS record_type, count(*)::int AS rows, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS checksum
     FROM ${quoteQualified(table)} t WHERE NOT EXISTS (SELECT 1 FROM ${PENDING_TABLE} p WHERE p.id = t.id)
    GROUP BY 1 ORDER BY 1`;

/** What the verification found: per type, and the types that differ. */
export interface VerifyReport { types: { record_type: string; rows: number; matched: boolean }[]; mismatched: string[]; pending_ids: number }

/**
 * Compares the live table and `dst` in one REPEATABLE READ snapshot: per record type, the count and a checksum
 * (the sum of a 64-bit hash of each row's text; both tables have the same columns in the same order). Rows with a
 * change logged and not yet applied in that snapshot are left out of both sides and put in the pending set; the
 * swap compares those one by one under its lock, with every change applied.
 */
export async function verifyTables(session: Session, dst: QualifiedName, signal?: AbortSignal): Promise<VerifyReport> {
  const c = session.client;
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  try {
    await c.query(`INSERT INTO ${PENDING_TABLE} (id) SELECT DISTINCT id FROM ${CHANGES_TABLE} WHERE id IS NOT NULL`);
    const { rows: [m] } = await c.query<{ n: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${CHANGES_TABLE} WHERE id IS NULL) AS n`);
    const live = (await session.query<TypeDigest>(digestSql(LIVE), [], signal)).rows;
    const other = (await session.query<TypeDigest>(digestSql(dst), [], signal)).rows;
    const { rows: [p] } = await c.query<{ n: number }>(`SELECT count(DISTINCT id)::int AS n FROM ${PENDING_TABLE}`);
    await c.query('COMMIT');
    const byType = new Map(other.map((o) => [o.record_type, o]));
    const names = [...new Set([...live.map((l) => l.record_type), ...other.map((o) => o.record_type)])].sort();
    const types = names.map((t) => {
      const a = live.find((l) => l.record_type === t);
      const b = byType.get(t);
      return { record_type: t, rows: a?.rows ?? 0, matched: !m?.n && a?.rows === b?.rows && a?.checksum === b?.checksum };
    });
    return { types, mismatched: types.filter((t) => !t.matched).map((t) => t.record_type), pending_ids: p?.n ?? 0 };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Removes from the pending set the ids whose rows now agree (outside the swap's lock, so the swap has less to compare). */
export async function settlePending(client: pg.ClientBase, dst: QualifiedName): Promise<number> {
  const r = await client.query(`DELETE FROM ${PENDING_TABLE} p WHERE
      (SELECT l::text FROM ${L} l WHERE l.id = p.id) IS NOT DISTINCT FROM (SELECT d::text FROM ${quoteQualified(dst)} d WHERE d.id = p.id)`);
  return r.rowCount ?? 0;
}

/** Ids of the pending set whose rows differ between the live table and `dst` (empty when they all agree). */
export async function differingPending(client: pg.ClientBase, dst: QualifiedName): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(`SELECT DISTINCT p.id::text AS id FROM ${PENDING_TABLE} p WHERE
      (SELECT l::text FROM ${L} l WHERE l.id = p.id) IS DISTINCT FROM (SELECT d::text FROM ${quoteQualified(dst)} d WHERE d.id = p.id) LIMIT 20`);
  return rows.map((r) => r.id);
}
