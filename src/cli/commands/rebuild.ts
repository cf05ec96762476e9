import type { Command } from 'commander';
import { planRebuild, rebuildRecordTypes } from '../../maintenance/rebuild.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { describeDryRun, describeOperation, maintenanceFlags, operationOptions, type MaintenanceFlags } from './purge.js';

/** `sync-lookup rebuild <type>... [--repull]`. */
export function registerRebuild(program: Command): void {
  maintenanceFlags(program.command('rebuild')
    .description('re-materialise these types\' lookup rows from their source tables, in place: only new or changed rows are written; rows whose source is gone are removed')
    .argument('[types...]', 'record types (registered models with a source table)')
    .option('--repull', 'give every row a fresh tick, so every facility pulls every record again'))
    .action(action(program, async (ctx: CommandContext, types: string[], flags: MaintenanceFlags & { repull?: boolean }) => {
      const options = { ...(await operationOptions(ctx, types, flags)), repull: !!flags.repull };
      if (flags.dryRun) {
        ctx.out.result(await withDatabase(ctx, (db) => planRebuild(db, options)), describeDryRun);
        return 0;
      }
      ctx.out.result(await withDatabase(ctx, (db) => rebuildRecordTypes(db, options)), describeOperation);
      return 0;
    }));
}
