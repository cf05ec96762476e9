import type { Command } from 'commander';
import { ConfigError } from '../../db/errors.js';
import { resolveRegistry } from '../../lookup/registry.js';
import type { DryRunReport } from '../../maintenance/dry-run.js';
import type { MaintenanceEvent } from '../../maintenance/events.js';
import type { OperationOptions, OperationResult } from '../../maintenance/job.js';
import { planPurge, purgeRecordTypes, type PurgeOptions } from '../../maintenance/purge.js';
import { archiveRecordTypes } from '../../maintenance/archive.js';
import { liveLookupTypes } from '../../maintenance/models.js';
import { rebuildRecordTypes } from '../../maintenance/rebuild.js';
import { describeMove } from './archive.js';
import type { AnalyzePolicy } from '../../maintenance/vacuum.js';
import type { Host } from '../../lookup/host.js';
import { action, forcedHost, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatMs, type Output } from '../output.js';

/** Flags every record-type operation shares. */
export interface MaintenanceFlags {
  dryRun?: boolean;
  json?: boolean;
  batchMs?: number;
  batchRows?: number;
  pauseMs?: number;
  lockTimeoutMs?: number;
  vacuum?: boolean;
  analyze?: string;
  resume?: boolean;
  models?: string;
  acceptShapeChange?: boolean;
}

const nonNegativeInt = (name: string) => (value: string) => {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError('invalid_option', `${name} must be a whole number of milliseconds, got ${JSON.stringify(value)}`);
  return Number(value);
};

/** Adds the shared flags to a record-type command. */
export function maintenanceFlags(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'print the strategy, estimated rows and time, the SQL and the plans; change nothing')
    .option('--batch-ms <ms>', 'target duration of one batch (its size adapts)', positiveInt('--batch-ms'), 200)
    .option('--batch-rows <n>', 'rows in the first batch (later ones adapt to --batch-ms)', positiveInt('--batch-rows'))
    .option('--pause-ms <ms>', 'pause between batches', nonNegativeInt('--pause-ms'), 0)
    .option('--lock-timeout-ms <ms>', 'lock_timeout of every batch (retried with backoff)', positiveInt('--lock-timeout-ms'), 2000)
    .option('--no-vacuum', 'skip the VACUUM afterwards (leave it to autovacuum)')
    .option('--analyze <policy>', 'auto (when the change passes autovacuum\'s analyze threshold), always, never', 'auto')
    .option('--resume', 'continue the interrupted job for these types (running the same command again also resumes it)')
    .option('--models <file>', 'model registry file (JSON); default: the built-in registry')
    .option('--accept-shape-change', 'rewrite data even where its keys differ from the existing rows\' (refused otherwise)')
    .option('--json', 'JSON output (progress as JSON event lines, then the result)');
}

/** The library options a command's flags stand for. */
export async function operationOptions(ctx: CommandContext, types: string[], flags: MaintenanceFlags): Promise<OperationOptions & {
  registry: Awaited<ReturnType<typeof resolveRegistry>>; host?: Host; acceptShapeChange: boolean;
}> {
  const policies: AnalyzePolicy[] = ['auto', 'always', 'never'];
  if (flags.analyze !== undefined && !policies.includes(flags.analyze as AnalyzePolicy)) {
    throw new ConfigError('invalid_option', `--analyze must be one of ${policies.join(', ')}, got ${JSON.stringify(flags.analyze)}`);
  }
  if (!types.length && !flags.resume) throw new ConfigError('no_record_types', 'name at least one record type (or use --resume)');
  return {
    ...(types.length ? { types } : {}),
    batchMs: flags.batchMs ?? 200, ...(flags.batchRows ? { initialBatchRows: flags.batchRows } : {}), pauseMs: flags.pauseMs ?? 0, lockTimeoutMs: flags.lockTimeoutMs ?? 2000,
    vacuum: flags.vacuum !== false, analyze: (flags.analyze ?? 'auto') as AnalyzePolicy, resume: !!flags.resume,
    registry: await resolveRegistry(flags.models), ...forcedHost(ctx), acceptShapeChange: !!flags.acceptShapeChange,
    signal: ctx.signal,
    onEvent: (e) => renderMaintenanceEvent(ctx.out, e),
  };
}

/** Renders an operation's events: a bar (TTY) or plain lines for progress, one line for the rest. */
export function renderMaintenanceEvent(out: Output, e: MaintenanceEvent): void {
  switch (e.type) {
    case 'progress': {
      const total = e.rows_total === null ? '' : `/${e.rows_total.toLocaleString('en')}`;
      const eta = e.eta_ms === null ? '' : `, ETA ${formatMs(e.eta_ms)}`;
      return out.progress(e, `${e.phase}: ${e.rows_done.toLocaleString('en')}${total} rows, ${e.rows_per_s.toLocaleString('en')} rows/s${eta} (batch ${e.batch_rows})`,
        e.rows_total ? Math.min(1, e.rows_done / e.rows_total) : null);
    }
    case 'job_started':
      return out.event(e, `job ${e.job_id}: ${e.operation} ${e.record_types.join(', ')} (${e.strategy})`);
    case 'job_resumed':
      return out.event(e, `job ${e.job_id}: resuming ${e.operation} of ${e.record_types.join(', ')} at ${e.phase || 'the start'} (${e.rows_done.toLocaleString('en')} rows already done)`);
    case 'phase':
      return out.event(e, `${e.phase}: ${e.detail}`);
    case 'lock_retry':
      return out.event(e, `waiting for locks (attempt ${e.attempt}); retrying in ${e.sleep_ms} ms`);
    case 'analyze':
      return out.event(e, e.ran ? `ANALYZE ${e.target}: ${formatMs(e.ms)} (${e.reason})` : `ANALYZE: ${e.reason}`);
    case 'vacuum_start':
      return out.event(e, `${e.sql} …`);
    case 'vacuum_done':
      return out.event(e, `VACUUM ${e.target}: ${formatMs(e.ms)}, dead tuples ${e.dead_tuples_before.toLocaleString('en')} → ${e.dead_tuples_after.toLocaleString('en')}`);
    case 'warning':
      return out.event(e, `warning: ${e.message}`);
  }
}

/** One paragraph describing an operation's result. */
export function describeOperation(r: OperationResult): string {
  const n = (x: number) => x.toLocaleString('en');
  const changes = [
    r.rows_deleted ? `${n(r.rows_deleted)} deleted` : '', r.rows_inserted ? `${n(r.rows_inserted)} inserted` : '',
    r.rows_updated ? `${n(r.rows_updated)} updated` : '',
  ].filter(Boolean).join(', ') || 'nothing to change';
  return [
    `${r.operation} ${r.record_types.join(', ')} (job ${r.job_id}${r.resumed ? ', resumed' : ''}, ${r.layout} layout): ${changes}`,
    ...r.strategies.map((s) => `  ${s.record_type}: ${s.strategy} — ${s.reason}`),
    `  ${formatMs(r.operation_ms)} in ${r.batches} batch(es)` + (r.analyze.ran ? ` + ANALYZE ${formatMs(r.analyze_ms)}` : '') + ` = ${formatMs(r.duration_ms)}`,
    `  ANALYZE: ${r.analyze.ran ? 'ran' : r.analyze.reason}`,
    r.vacuum.ran
      ? `  ${r.vacuum.sql}: ${formatMs(r.vacuum_ms)} (reported apart), dead tuples ${n(r.dead_tuples_before ?? 0)} → ${n(r.dead_tuples_after ?? 0)}`
      : `  VACUUM: ${r.vacuum.reason}`,
  ].join('\n');
}

/** Renders a dry-run report. */
export function describeDryRun(r: DryRunReport): string {
  return [
    `${r.operation} ${r.record_types.join(', ')} (${r.layout} layout) — dry run, nothing changed`,
    `strategy: ${r.strategy}`,
    ...r.strategies.map((s) => `  ${s.record_type}: ${s.reason}`),
    `estimated rows: ${r.estimated_rows.toLocaleString('en')}, estimated time: ~${formatMs(r.estimated_ms)} (rough)`,
    ...r.statements.flatMap((s) => [
      '', `-- ${s.purpose}`, s.sql.trim().endsWith(';') ? s.sql.trim() : `${s.sql.trim()};`,
      ...(s.plan ? [`-- plan: ${s.plan}`, `-- verdict: ${s.verdict}${s.reason ? ` (${s.reason})` : ''}`] : []),
    ]),
  ].join('\n');
}

/** `purge --archive`: `archive` under the purge's guards, then the rebuild of live types with --then-rebuild. */
async function purgeToArchive(ctx: CommandContext, options: PurgeOptions, dryRun: boolean): Promise<number> {
  if (dryRun) throw new ConfigError('invalid_option', '--dry-run does not apply to purge --archive');
  const r = await withDatabase(ctx, async (db) => {
    const archived = await archiveRecordTypes(db, { ...options, purgeGuards: options });
    const live = archived.record_types.filter((t) => liveLookupTypes(options.registry).includes(t));
    const rebuild = options.thenRebuild && live.length ? await rebuildRecordTypes(db, { ...options, types: live, dequeue: true }) : null;
    return { ...archived, rebuild };
  });
  ctx.out.result(r, (x) => [describeMove(x), ...(x.rebuild ? ['then:', describeOperation(x.rebuild)] : [])].join('\n'));
  return 0;
}

/** `sync-lookup purge <type>...`. */
export function registerPurge(program: Command): void {
  maintenanceFlags(program.command('purge')
    .description('remove every lookup row of these record types (a removed or renamed model), in time proportional to those rows')
    .argument('[types...]', 'record types')
    .option('--then-rebuild', 'for a live (registered) type: purge, then rebuild it from its sources')
    .option('--force', 'purge a live type without rebuilding it (it is queued with the host\'s rebuild queue)')
    .option('--if-present', 'skip types that have no rows (re-runnable migrations) instead of refusing unknown ones')
    .option('--archive', 'archive the rows instead of deleting them (restorable with `restore`), under the same guards'))
    .action(action(program, async (ctx: CommandContext, types: string[], flags: MaintenanceFlags & { thenRebuild?: boolean; force?: boolean; ifPresent?: boolean; archive?: boolean }) => {
      const options = { ...(await operationOptions(ctx, types, flags)), thenRebuild: !!flags.thenRebuild, force: !!flags.force, ifPresent: !!flags.ifPresent };
      if (flags.archive) return purgeToArchive(ctx, options, !!flags.dryRun);
      if (flags.dryRun) {
        const plan = await withDatabase(ctx, (db) => planPurge(db, options));
        ctx.out.result(plan, (p) => (p.record_types.length ? describeDryRun(p) : 'nothing to purge: none of the types has rows (--if-present)'));
        return 0;
      }
      const result = await withDatabase(ctx, (db) => purgeRecordTypes(db, options));
      ctx.out.result(result, (r) => [
        r.record_types.length ? describeOperation(r) : 'nothing to purge',
        ...(r.skipped_types.length ? [`skipped (no rows, --if-present): ${r.skipped_types.join(', ')}`] : []),
        ...(r.rebuild ? ['then:', describeOperation(r.rebuild)] : []),
      ].join('\n'));
      return 0;
    }));
}
