import { MigrationError } from '../db/errors.js';
import type { Migration } from '../migrate/migration.js';
import { LOOKUP_TABLE, PLAIN_SCHEMA_SQL, inspectShape } from '../schema/sync-lookup.js';

/**
 * The tables as existing deployments have them: `sync_lookup` with its four indexes and
 * `sync_lookup_ticks`. `migrate --adopt` records it as applied on a database that already has them.
 */
export const baseline: Migration = {
  name: '0001_baseline',
  transaction: true,
  source: PLAIN_SCHEMA_SQL,
  plan: [PLAIN_SCHEMA_SQL],
  async up(ctx) {
    const shape = await inspectShape(ctx.client);
    if (shape.lookupExists) {
      throw new MigrationError('table_exists',
        `table ${LOOKUP_TABLE} already exists; run \`migrate --adopt\` to record this baseline as applied` +
        (shape.problems.length ? ` (after fixing: ${shape.problems.join('; ')})` : ''), { problems: shape.problems });
    }
    await ctx.client.query(PLAIN_SCHEMA_SQL);
    ctx.completed.push(PLAIN_SCHEMA_SQL);
  },
  async adoptable(client) {
    const shape = await inspectShape(client);
    if (!shape.lookupExists) return false;
    if (shape.problems.length) {
      throw new MigrationError('shape_mismatch',
        `cannot adopt ${LOOKUP_TABLE}: ${shape.problems.join('; ')}`, { problems: shape.problems });
    }
    return true;
  },
};
