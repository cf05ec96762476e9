import type { Command } from 'commander';
import { ConfigError } from '../../db/errors.js';
import { archiveRecordTypes, type ArchiveResult } from '../../maintenance/archive.js';
import { dropArchives, restoreRecordTypes, type DropArchivesResult } from '../../maintenance/restore.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { formatMs } from '../output.js';
import { describeOperation, maintenanceFlags, operationOptions, type MaintenanceFlags } from './purge.js';

/** One paragraph describing an archive or restore. */
export function describeMove(r: ArchiveResult): string {
  const verb = r.operation === 'archive' ? 'archived' : 'restored';
  return [
    `${verb} ${r.rows.toLocaleString('en')} row(s) of ${r.record_types.join(', ')} (${r.strategy}` +
      `${r.switch_ms === null ? '' : `, switch ${formatMs(r.switch_ms)}`})` +
      (r.superseded_rows ? `; ${r.superseded_rows.toLocaleString('en')} archived row(s) superseded by newer rows in sync_lookup` : ''),
    describeOperation(r),
  ].join('\n');
}

function describeDrop(r: DropArchivesResult): string {
  if (!r.dropped.length) return `no archive is older than ${r.older_than_days} day(s)`;
  return [`${r.dry_run ? 'would drop' : 'dropped'} ${r.dropped.length} archive(s) older than ${r.older_than_days} day(s):`,
    ...r.dropped.map((a) => `  ${a.record_type}: ${a.rows.toLocaleString('en')} rows, archived ${a.archived_at}`)].join('\n');
}

const nonNegative = (value: string) => {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError('invalid_option', `--older-than-days must be a whole number of days, got ${JSON.stringify(value)}`);
  return Number(value);
};

/** `sync-lookup archive <type>...` and `sync-lookup restore <type>...`. */
export function registerArchive(program: Command): void {
  maintenanceFlags(program.command('archive')
    .description('take record types out of sync_lookup into an archive (excluded from pulls, restorable); detaches a type\'s own partition')
    .argument('[types...]', 'record types')
    .option('--force', 'archive a live (registered) type anyway')
    .option('--older-than-days <n>', 'with --drop: the retention of archives, in days', nonNegative)
    .option('--drop', 'drop the archives older than --older-than-days (their rows are gone for good)'))
    .action(action(program, async (ctx: CommandContext, types: string[], flags: MaintenanceFlags & { force?: boolean; olderThanDays?: number; drop?: boolean }) => {
      if (flags.drop || flags.olderThanDays !== undefined) {
        if (!flags.drop || flags.olderThanDays === undefined || types.length) {
          throw new ConfigError('invalid_option', '--drop and --older-than-days go together, without record types');
        }
        const r = await withDatabase(ctx, (db) => dropArchives(db, { olderThanDays: flags.olderThanDays!, dryRun: !!flags.dryRun }));
        ctx.out.result(r, describeDrop);
        return 0;
      }
      if (flags.dryRun) throw new ConfigError('invalid_option', '--dry-run applies to archive only with --drop (archive prints its strategy as it starts)');
      const options = { ...(await operationOptions(ctx, types, flags)), force: !!flags.force };
      const r = await withDatabase(ctx, (db) => archiveRecordTypes(db, options));
      ctx.out.result(r, describeMove);
      return 0;
    }));
  maintenanceFlags(program.command('restore')
    .description('put archived record types back into sync_lookup with their ids and ticks (attaches an archived partition)')
    .argument('[types...]', 'record types'))
    .action(action(program, async (ctx: CommandContext, types: string[], flags: MaintenanceFlags) => {
      if (flags.dryRun) throw new ConfigError('invalid_option', 'restore has no --dry-run (it prints its strategy as it starts)');
      const r = await withDatabase(ctx, async (db) => restoreRecordTypes(db, await operationOptions(ctx, types, flags)));
      ctx.out.result(r, describeMove);
      return 0;
    }));
}
