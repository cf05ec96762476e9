import type { Command } from 'commander';
import { withClient } from '../../db/connection.js';
import { ConfigError } from '../../db/errors.js';
import { draftRegistry } from '../../lookup/draft.js';
import { resolveHost } from '../../lookup/hosts/index.js';
import { validateModels } from '../../lookup/registry.js';
import { action, forcedHost, withDatabase, type CommandContext } from '../context.js';

/** `sync-lookup models init --from-db`: a registry drafted from the live database, every guess marked for review. */
export function registerModels(program: Command): void {
  const models = program.command('models').description('the model registry: which source tables feed sync_lookup and how');
  models.command('init')
    .description('draft a registry (JSON on stdout) from the live database: lookup-tracked tables, their columns, linkage guessed from foreign keys')
    .option('--from-db', 'read the connected database (the only source for now)')
    .action(action(program, async (ctx: CommandContext, opts: { fromDb?: boolean }) => {
      if (!opts.fromDb) throw new ConfigError('invalid_option', 'models init needs --from-db (draft the registry from the connected database)');
      const draft = await withDatabase(ctx, (db) => withClient(db, { purpose: 'models-init' }, async (client) => {
        const { host } = await resolveHost(client, forcedHost(ctx).host?.name);
        return { host: host.name, ...(await draftRegistry(client, host)) };
      }));
      // The draft must load as it is, so a user can run verify with it before editing anything.
      await validateModels(draft.models, 'the drafted registry');
      process.stdout.write(`${JSON.stringify({ models: draft.models }, null, 2)}\n`);
      ctx.out.info(`drafted ${draft.models.length} models for the ${draft.host} host; review each model's "review" list, then run \`sync-lookup verify --models FILE\`` +
        (draft.withoutTable.length ? `\nrecord types in sync_lookup without a table (legacy types?): ${draft.withoutTable.join(', ')}` : ''));
    }));
}
