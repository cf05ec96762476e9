import { withClient, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { builtinRegistry, type ModelRegistry } from '../lookup/registry.js';
import type { Migration } from '../migrate/migration.js';
import { builtinMigrations } from '../migrations/index.js';
import { detectLayout, ensureTypePartitions, type EnsurePartitionsResult, type Layout } from '../schema/partitioned.js';

/** The built-in migrations for the layout a database has or is asked to get. */
export interface LayoutPlan {
  layout: Layout;
  /** What the database has now (`absent` before the baseline). */
  existing: Layout | 'absent';
  migrations: Migration[];
}

/**
 * Resolves `migrate --layout`: the live table's kind is the record of its layout, so a later `migrate`
 * without `--layout` keeps it, and asking for the other layout on an existing table is refused (converting
 * a large table is an online operation of its own: `convertLayout`, `sync-lookup convert`).
 *
 * @example
 * const { migrations } = await layoutMigrations(db, { layout: 'partitioned' });
 * await migrate(db, { migrations });
 */
export async function layoutMigrations(db: Database, options: { layout?: Layout; registry?: ModelRegistry } = {}): Promise<LayoutPlan> {
  const existing = await withClient(db, { purpose: 'migrate-layout' }, (c) => detectLayout(c));
  if (options.layout && existing !== 'absent' && existing !== options.layout) {
    throw new ConfigError('layout_mismatch',
      `sync_lookup already exists with the ${existing} layout; --layout ${options.layout} applies only when the table is created ` +
      `(to convert the existing table online: \`sync-lookup convert --to ${options.layout}\`, see docs/maintenance.md)`,
      { existing, requested: options.layout });
  }
  const layout: Layout = options.layout ?? (existing === 'absent' ? 'plain' : existing);
  const registry = options.registry ?? builtinRegistry();
  return { layout, existing, migrations: builtinMigrations({ layout, partitionTypes: registry.names }) };
}

/**
 * After `migrate` on the partitioned layout: gives every registered model that has no partition yet its
 * own (a model added since the baseline); null on the plain layout.
 *
 * @example
 * const r = await ensureLayoutPartitions(db);
 */
export async function ensureLayoutPartitions(db: Database, registry: ModelRegistry = builtinRegistry()): Promise<EnsurePartitionsResult | null> {
  return withClient(db, { purpose: 'migrate-layout', lockTimeoutMs: 5000 }, async (c) => {
    if ((await detectLayout(c)) !== 'partitioned') return null;
    return ensureTypePartitions(c, registry.names);
  });
}
