import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { SEED_ORIGINAL_SQL } from '../maintenance/seed-migrations.js';
import { LOOKUP_TABLE, TICKS_TABLE } from '../schema/sync-lookup.js';

/*
 * The seed's original statements, as the baselines run them: `SEED_ORIGINAL_SQL` (maintenance) holds the
 * ones the seed analysis quotes, with literal record types as the migrations wrote them. What the seed
 * does not quote is reconstructed here, and said so in docs/bench.md:
 *
 * - Migrations 1 and 2 ("fullyResync…") delete the lookup rows of both types; for the lookup to be
 *   consistent again, the build must re-materialise them, and the incremental build only reads source rows
 *   whose tick moved. So the original also re-stamps every source row of both types (an UPDATE that fires
 *   the sync-tick trigger). The incremental build that follows is part of the baseline's time.
 * - Migration 3 deletes `encounter_medications` rows and re-materialises prescriptions and
 *   encounter_prescriptions the same way (re-stamp their source rows, then the build).
 * - Migration 4 tests emptiness with count(*) = 0, reads the table's highest tick, and the highest tick
 *   below the first recorded build, then records the initial (-1, max) row in sync_lookup_ticks.
 */

/**
 * The seed's purge: `DELETE FROM sync_lookup WHERE record_type IN ('a', 'b')`.
 *
 * @example
 * originalPurgeSql(['encounter_medications']) // "DELETE FROM sync_lookup WHERE record_type IN ('encounter_medications')"
 */
export function originalPurgeSql(types: readonly string[]): string {
  return `DELETE FROM ${LOOKUP_TABLE} WHERE record_type IN (${types.map(quoteLiteral).join(', ')})`;
}

/**
 * Re-stamps every source row of a model so the next incremental build re-reads it (the trigger sets
 * `updated_at_sync_tick` from the clock on every UPDATE).
 *
 * @example
 * restampSourceSql('prescriptions') // 'UPDATE "prescriptions" SET updated_at = updated_at'
 */
export function restampSourceSql(table: string): string {
  return `UPDATE ${quoteIdent(table)} SET updated_at = updated_at`;
}

/**
 * Runs migration 4 in its original form. Returns the rows it inserted (0 or 1).
 *
 * @example
 * await originalBackfill(client);
 */
export async function originalBackfill(client: pg.ClientBase): Promise<number> {
  const [emptiness, tableMax, maxBeforeFirstBuild] = SEED_ORIGINAL_SQL.backfillInitialSyncLookupTick;
  const { rows: [e] } = await client.query<{ empty: boolean }>(emptiness);
  if (e?.empty) return 0;
  const { rows: [all] } = await client.query<{ max: string | null }>(tableMax);
  const { rows: [before] } = await client.query<{ max: string | null }>(maxBeforeFirstBuild);
  const tick = before?.max ?? all?.max;
  if (tick === null || tick === undefined) return 0;
  const r = await client.query(`INSERT INTO ${quoteIdent(TICKS_TABLE)} (source_start_tick, lookup_end_tick) VALUES (-1, $1)`, [tick]);
  return r.rowCount ?? 0;
}
