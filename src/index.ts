/**
 * sync-lookup: runs and maintains the sync_lookup table of an offline-first sync server on PostgreSQL.
 * Every CLI command is a thin layer over the functions exported here.
 */
export * from './db/errors.js';
export * from './db/quote.js';
export * from './db/connection.js';
export { startEmbedded, stopEmbedded, embeddedStatus, embeddedUrl } from './db/embedded.js';
export * from './schema/sync-lookup.js';
export * from './migrate/events.js';
export * from './migrate/migration.js';
export * from './migrate/runner.js';
export * from './migrate/lock-retries.js';
export * from './db/index-ddl.js';
export * from './migrate/concurrent-index.js';
export { builtinMigrations } from './migrations/index.js';
export * from './db/index-progress.js';
export * from './lookup/registry.js';
export * from './lookup/source.js';
export * from './lookup/sql.js';
export * from './lookup/build.js';
export * from './lookup/pull.js';
export * from './lookup/verify.js';
export * from './datagen/prng.js';
export * from './datagen/rows.js';
export * from './datagen/generate.js';
export * from './datagen/seed.js';
export * from './datagen/churn.js';
export * from './plan/plan.js';
export { loadSqlParser, conditionConjuncts, expressionColumns } from './plan/expr.js';
export * from './inspect/explain.js';
export * from './inspect/json.js';
export * from './schema/partitioned.js';
export * from './maintenance/index.js';
export * from './bench/index.js';
export * from './inspect/doctor.js';
export * from './inspect/index-watch.js';
export * from './inspect/estimate.js';
export * from './inspect/stats.js';
