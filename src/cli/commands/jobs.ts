import type { Command } from 'commander';
import { abandonJob, listJobs, type JobRecord } from '../../maintenance/jobs.js';
import { action, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { table } from '../output.js';

function describeJobs(r: { jobs: JobRecord[] }): string {
  if (!r.jobs.length) return 'no running or interrupted jobs';
  return table(['id', 'operation', 'types', 'status', 'phase', 'rows', 'batches', 'updated'],
    r.jobs.map((j) => [j.id, j.operation, j.record_types.join(','), j.live ? 'running' : j.status, j.cursor.phase || '-',
      `${j.rows_done.toLocaleString('en')}${j.rows_total === null ? '' : `/${j.rows_total.toLocaleString('en')}`}`, j.batches, j.updated_at]));
}

/** `sync-lookup jobs [--all] [--abandon ID]`. */
export function registerJobs(program: Command): void {
  program.command('jobs')
    .description('list running and interrupted record-type jobs (purge, rebuild, resync); an interrupted one resumes when its command runs again')
    .option('--all', 'include finished and abandoned jobs')
    .option('--abandon <id>', 'mark an interrupted job abandoned, so its command starts afresh', positiveInt('--abandon'))
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { all?: boolean; abandon?: number }) => {
      if (opts.abandon !== undefined) {
        const id = opts.abandon;
        const job = await withDatabase(ctx, (db) => abandonJob(db, id));
        ctx.out.result({ abandoned: job }, (r) => `job ${r.abandoned.id} abandoned`);
        return 0;
      }
      const jobs = await withDatabase(ctx, (db) => listJobs(db, { all: !!opts.all }));
      ctx.out.result({ jobs }, describeJobs);
      return 0;
    }));
}
