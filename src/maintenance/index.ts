/** Record-type maintenance: purge, rebuild, resync, archive / restore, the seed's four migrations, jobs, vacuum. */
export * from './events.js';
export { openWorkSession, type MaintenanceTarget, type WorkSession } from './session.js';
export * from './jobs.js';
export * from './batches.js';
export * from './vacuum.js';
export * from './record-types.js';
export * from './models.js';
export * from './dry-run.js';
export * from './job.js';
export * from './purge.js';
export * from './rebuild.js';
export * from './seed-migrations.js';
export * from './layout.js';
export * from './resume.js';
export * from './archive.js';
export * from './restore.js';
