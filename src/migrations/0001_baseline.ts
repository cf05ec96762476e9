import type pg from 'pg';
import { MigrationError } from '../db/errors.js';
import type { Migration } from '../migrate/migration.js';
import { detectLayout, partitionedSchemaSql, partitionedShapeProblems, type Layout } from '../schema/partitioned.js';
import { LOOKUP_TABLE, PLAIN_SCHEMA_SQL, inspectShape } from '../schema/sync-lookup.js';

/** Options of the baseline: which layout to create on a fresh database. */
export interface BaselineOptions {
  /** Default `plain`. */
  layout?: Layout;
  /** Record types that get their own partition under the `partitioned` layout (the registered models). */
  partitionTypes?: string[];
}

/**
 * The tables as existing deployments have them: `sync_lookup` with its four indexes and
 * `sync_lookup_ticks`; with `layout: 'partitioned'`, `sync_lookup` list-partitioned by `record_type`
 * instead. `migrate --adopt` records it as applied on a database that already has them.
 *
 * The checksum covers the plain DDL for both layouts: the layout is a parameter of this one migration,
 * not a different migration, so a database created partitioned does not read as "changed" later.
 *
 * @example
 * await migrate(db, { migrations: [baselineMigration({ layout: 'partitioned', partitionTypes: ['notes'] })] });
 */
export function baselineMigration(options: BaselineOptions = {}): Migration {
  const layout = options.layout ?? 'plain';
  const sql = layout === 'partitioned' ? partitionedSchemaSql(options.partitionTypes ?? []) : PLAIN_SCHEMA_SQL;
  return {
    name: '0001_baseline',
    transaction: true,
    source: PLAIN_SCHEMA_SQL,
    plan: [sql],
    async up(ctx) {
      const shape = await inspectShape(ctx.client);
      if (shape.lookupExists) {
        const problems = (await detectLayout(ctx.client)) === 'partitioned' ? await partitionedShapeProblems(ctx.client) : shape.problems;
        throw new MigrationError('table_exists',
          `table ${LOOKUP_TABLE} already exists; run \`migrate --adopt\` to record this baseline as applied` +
          (problems.length ? ` (after fixing: ${problems.join('; ')})` : ''), { problems });
      }
      await ctx.client.query(sql);
      ctx.completed.push(sql);
    },
    async adoptable(client: pg.ClientBase) {
      const shape = await inspectShape(client);
      if (!shape.lookupExists) return false;
      const problems = (await detectLayout(client)) === 'partitioned'
        ? [...(await partitionedShapeProblems(client)), ...(shape.ticksExists ? [] : [`table sync_lookup_ticks is missing`])]
        : shape.problems;
      if (problems.length) {
        throw new MigrationError('shape_mismatch', `cannot adopt ${LOOKUP_TABLE}: ${problems.join('; ')}`, { problems });
      }
      return true;
    },
  };
}

/** The plain-layout baseline. */
export const baseline: Migration = baselineMigration();
