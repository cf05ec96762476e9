import type { Command } from 'commander';
import { planRebuild, resyncRecordTypes } from '../../maintenance/rebuild.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { describeDryRun, describeOperation, maintenanceFlags, operationOptions, type MaintenanceFlags } from './purge.js';

/** `sync-lookup resync <type>...`. */
export function registerResync(program: Command): void {
  maintenanceFlags(program.command('resync')
    .description('make every facility re-pull every record of these types and the lookup match the sources, without rewriting source rows')
    .argument('[types...]', 'record types (registered models with a source table)'))
    .action(action(program, async (ctx: CommandContext, types: string[], flags: MaintenanceFlags) => {
      const options = await operationOptions(ctx, types, flags);
      if (flags.dryRun) {
        ctx.out.result(await withDatabase(ctx, (db) => planRebuild(db, options, 'resync')), describeDryRun);
        return 0;
      }
      ctx.out.result(await withDatabase(ctx, (db) => resyncRecordTypes(db, options)), describeOperation);
      return 0;
    }));
}
