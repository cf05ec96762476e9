import type { Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import type { OperationOptions, OperationResult } from './job.js';
import { getJob } from './jobs.js';
import { archiveRecordTypes } from './archive.js';
import { restoreRecordTypes } from './restore.js';
import { purgeRecordTypes, type PurgeOptions } from './purge.js';
import { rebuildRecordTypes, resyncRecordTypes, type RebuildOptions } from './rebuild.js';

/**
 * Continues an interrupted or failed job by its id (`sync-lookup jobs --resume ID`): runs its operation
 * again over its record types and options, which picks up after its last committed batch. ConfigError
 * when the job is unknown, still running, or already done or abandoned.
 *
 * @example
 * const r = await resumeJob(db, 12, { batchMs: 200 });
 */
export async function resumeJob(db: Database, id: number, options: Omit<OperationOptions, 'types' | 'resume'> & Pick<PurgeOptions & RebuildOptions, 'registry'>): Promise<OperationResult> {
  const job = await getJob(db, id);
  if (job.live) throw new ConfigError('job_running', `job ${id} is running (backend pid ${job.backend_pid}); it needs no resuming`);
  if (job.status === 'done' || job.status === 'abandoned') throw new ConfigError('job_finished', `job ${id} is already ${job.status}`);
  const run = { ...options, types: job.record_types, resume: true };
  switch (job.operation) {
    case 'purge': return purgeRecordTypes(db, run);
    case 'rebuild': return rebuildRecordTypes(db, { ...run, repull: job.options.repull === true });
    case 'resync': return resyncRecordTypes(db, run);
    case 'archive': return archiveRecordTypes(db, { ...run, force: true });
    case 'restore': return restoreRecordTypes(db, run);
  }
}
