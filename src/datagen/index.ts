/**
 * `sync-lookup/datagen`: realistic source rows for tests, demos and benchmarks. `seedDatabase` creates the
 * source tables the registry describes and fills them deterministically from a seed; `churnSourceRows`
 * updates a fraction of them the way facilities' edits would, for incremental builds to pick up.
 *
 * @example
 * import { builtinRegistry } from 'sync-lookup';
 * import { seedDatabase } from 'sync-lookup/datagen';
 * await seedDatabase(db, { rows: 100_000, registry: builtinRegistry() });
 */
export { seedDatabase, type SeedOptions, type SeedResult, type SeedEvent } from './seed.js';
export { churnSourceRows, type ChurnOptions, type ChurnResult } from './churn.js';
