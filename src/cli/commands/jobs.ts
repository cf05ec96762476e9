import type { Command } from 'commander';
import { ConfigError } from '../../db/errors.js';
import { abandonJob, listJobs, type JobRecord } from '../../maintenance/jobs.js';
import { resumeJob } from '../../maintenance/resume.js';
import { action, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { table } from '../output.js';
import { describeOperation, operationOptions } from './purge.js';

function describeJobs(r: { jobs: JobRecord[] }): string {
  if (!r.jobs.length) return 'no running or interrupted jobs';
  return table(['id', 'operation', 'types', 'status', 'phase', 'rows', 'batches', 'updated'],
    r.jobs.map((j) => [j.id, j.operation, j.record_types.join(','), j.live ? 'running' : j.status, j.cursor.phase || '-',
      `${j.rows_done.toLocaleString('en')}${j.rows_total === null ? '' : `/${j.rows_total.toLocaleString('en')}`}`, j.batches, j.updated_at]));
}

/** `sync-lookup jobs [--all] [--abandon ID] [--resume ID]`. */
export function registerJobs(program: Command): void {
  program.command('jobs')
    .description('list running and interrupted record-type jobs (purge, rebuild, resync); --resume ID continues one (running its command again does too)')
    .option('--all', 'include finished and abandoned jobs')
    .option('--abandon <id>', 'mark an interrupted job abandoned, so its command starts afresh', positiveInt('--abandon'))
    .option('--resume <id>', 'continue an interrupted or failed job after its last committed batch', positiveInt('--resume'))
    .option('--models <file>', 'with --resume: the model registry file the job ran with (default: the built-in registry)')
    .option('--json', 'JSON output (with --resume: progress as JSON event lines, then the result)')
    .action(action(program, async (ctx: CommandContext, opts: { all?: boolean; abandon?: number; resume?: number; models?: string }) => {
      if (opts.abandon !== undefined && opts.resume !== undefined) throw new ConfigError('invalid_option', '--abandon and --resume cannot be combined');
      if (opts.abandon !== undefined) {
        const id = opts.abandon;
        const job = await withDatabase(ctx, (db) => abandonJob(db, id));
        ctx.out.result({ abandoned: job }, (r) => `job ${r.abandoned.id} abandoned`);
        return 0;
      }
      if (opts.resume !== undefined) {
        const id = opts.resume;
        const options = await operationOptions(ctx, [], { resume: true, ...(opts.models ? { models: opts.models } : {}) });
        ctx.out.result(await withDatabase(ctx, (db) => resumeJob(db, id, options)), describeOperation);
        return 0;
      }
      const jobs = await withDatabase(ctx, (db) => listJobs(db, { all: !!opts.all }));
      ctx.out.result({ jobs }, describeJobs);
      return 0;
    }));
}
