import type { Migration } from '../migrate/migration.js';
import { baseline } from './0001_baseline.js';
import { recordTypeIndex } from './0002_record_type_index.js';

/**
 * The migrations sync-lookup ships, in order.
 *
 * @example
 * await migrate(db, { migrations: builtinMigrations() });
 */
export function builtinMigrations(): Migration[] {
  return [baseline, recordTypeIndex];
}
