/**
 * sync-lookup: runs and maintains the sync_lookup table of an offline-first sync server on PostgreSQL.
 * Every CLI command is a thin layer over one of the entry points exported here; each export is a
 * promise to keep, so the list is short and checked by `test/unit/public-api.test.ts`.
 * The benchmark and the data generator are `sync-lookup/bench` and `sync-lookup/datagen`.
 */

// Errors: one base class with a stable `code`; the subclasses are the ones to branch on.
export {
  SyncLookupError, ConfigError, MigrationError, LockNotAcquiredError, CancelledError, CheckFailedError,
  type ErrorDetails,
} from './db/errors.js';

// Connections and the embedded server.
export {
  databaseFromUrl, databaseFromPool, withClient, withTransaction, type Database, type Lease, type SessionSettings,
} from './db/connection.js';
export { startEmbedded, stopEmbedded, type EmbeddedOptions } from './db/embedded.js';

// Migrations.
export { migrate, migrationStatus, type MigrateOptions, type MigrateResult, type MigrationState } from './migrate/runner.js';
export {
  sqlMigration, concurrentIndexMigration, loadMigrationsDir, type Migration, type MigrationContext,
} from './migrate/migration.js';
export type { MigrationEvent } from './migrate/events.js';
export type { IndexBuildResult } from './migrate/concurrent-index.js';
export type { IndexSpec } from './db/index-ddl.js';
export type { IndexBuildProgress, BlockingSession } from './db/index-progress.js';
export { builtinMigrations } from './migrations/index.js';
export type { BaselineOptions } from './migrations/0001_baseline.js';
export type { Layout } from './schema/partitioned.js';

// The model registry.
export {
  ModelRegistry, builtinRegistry, loadRegistry, validateModels, resolveRegistry,
  type ModelDefinition, type ModelColumn, type ModelJoin, type ColumnType, type SyncDirection, type KeyStyle, type DataBuilder,
} from './lookup/registry.js';
export { draftRegistry, type RegistryDraft, type DraftModel } from './lookup/draft.js';

// The host seam: the deployment's clock, since, ledger, delete signals, rebuild queue and data shape.
export type { Host, HostName, HostDescription, BuildRecord } from './lookup/host.js';
export { builtinHost, tamanuHost, resolveHost, detectHost, recordHost, parseHostName, type HostSource } from './lookup/hosts/index.js';
export { hostStatus, type HostStatus } from './lookup/status.js';
export { assertPublishable, assertDataShapes, dataShapeChange, type ShapeChange } from './lookup/guards.js';

// The lookup engine: build, pull, verify.
export {
  buildLookup, watchBuild, type BuildOptions, type BuildResult, type ModelBuildResult, type BuildEvent, type WatchOptions,
} from './lookup/build.js';
export { pullChanges, pullSummary, type PullOptions, type PullChunk, type PullRow, type PullSummary } from './lookup/pull.js';
export {
  verifyLookup, REPAIRS, type VerifyOptions, type VerifyResult, type VerifyEvent, type ModelVerifyReport, type ProblemReport,
  type VerifyProblemKind, type ColumnDifference,
} from './lookup/verify.js';

// Record-type operations and their jobs.
export { purgeRecordTypes, planPurge, type PurgeOptions, type PurgeResult } from './maintenance/purge.js';
export { rebuildRecordTypes, resyncRecordTypes, planRebuild, type RebuildOptions } from './maintenance/rebuild.js';
export { archiveRecordTypes, listArchives, type ArchiveOptions, type ArchiveResult, type ArchivedType } from './maintenance/archive.js';
export { restoreRecordTypes, dropArchives, type RestoreOptions, type DropArchivesResult } from './maintenance/restore.js';
export { convertLayout, type ConvertOptions, type ConvertResult, type ConvertEvent, type ConvertPhase } from './maintenance/convert.js';
export { finishConversion, rollbackConversion, planConvert, type ConvertEndResult } from './maintenance/convert-end.js';
export type { ConvertPlan } from './maintenance/convert-plan.js';
export {
  listJobs, abandonJob, type ListJobsOptions, type JobRecord, type JobStatus, type JobOperation, type JobCursor,
} from './maintenance/jobs.js';
export type { OperationOptions, OperationResult, JobCounts, TypeStrategy } from './maintenance/job.js';
export type { DryRunReport, PlannedStatement } from './maintenance/dry-run.js';
export type { MaintenanceEvent, MaintenanceProgress } from './maintenance/events.js';
export type { MaintenanceTarget } from './maintenance/session.js';
export {
  resyncPatientProgramRegistrations, rebuildForPrescriptionsChange, backfillInitialSyncLookupTick,
  PATIENT_PROGRAM_REGISTRATION_TYPES, type PrescriptionsChangeResult, type BackfillInitialTickResult,
} from './maintenance/seed-migrations.js';

// Diagnostics.
export {
  explainHotQueries, explainSql, type ExplainRunOptions, type ExplainReport, type QueryReport, type HotQuery,
} from './inspect/explain.js';
export {
  runDoctor, type DoctorOptions, type DoctorReport, type DoctorFinding, type DoctorIndex, type DoctorTable,
  type DoctorSeverity,
} from './inspect/doctor.js';
export {
  watchIndexBuilds, type IndexWatchOptions, type WatchedBuild, type IndexBuildSample,
} from './inspect/index-watch.js';
export {
  estimateIndex, parseIndexTarget, type EstimateOptions, type IndexEstimate, type EstimateColumn, type IndexTarget,
} from './inspect/estimate.js';
export { exportStats, type StatsExport, type TableStats, type ColumnStats } from './inspect/stats.js';
export type { ModelFit } from './inspect/model-fit.js';

// The plan reader.
export {
  explainStatement, readPlanContext, classifyPlan, describePlan,
  type ExplainOptions, type ExplainResult, type ExplainDocument, type PlanNode, type PlanContext, type PlanTableInfo,
  type PlanIndexInfo, type ClassifyOptions, type PlanVerdict, type PlanFinding, type FindingKind, type Severity,
} from './plan/plan.js';

// The migration linter.
export {
  lintMigrations, RULES as LINT_RULES, type LintOptions, type LintResult, type LintFinding, type MigrationSource,
} from './lint/index.js';
