import type { Migration } from '../migrate/migration.js';
import { baselineMigration, type BaselineOptions } from './0001_baseline.js';
import { needsRebuildIndex, recordTypeIndex } from './0002_record_type_index.js';
import { deploymentShape } from './0003_deployment_shape.js';

/**
 * The migrations sync-lookup ships, in order. `layout` picks the baseline's layout on a fresh database
 * (default plain); on the partitioned layout the baseline already creates the record_type-led index
 * (a partitioned table cannot be indexed CONCURRENTLY, and it is empty then), so 0002 finds it valid.
 *
 * @example
 * await migrate(db, { migrations: builtinMigrations() });
 * await migrate(db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: ['notes'] }) });
 */
export function builtinMigrations(options: BaselineOptions = {}): Migration[] {
  return [baselineMigration(options), recordTypeIndex, deploymentShape, needsRebuildIndex];
}
