#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { Output, exitCodeOf } from './output.js';
import { registerDb } from './commands/db.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPurge } from './commands/purge.js';
import { registerRebuild } from './commands/rebuild.js';
import { registerResync } from './commands/resync.js';
import { registerJobs } from './commands/jobs.js';
import { registerExplain } from './commands/explain.js';

const program = new Command('sync-lookup')
  .description('runs and maintains the sync_lookup table of an offline-first sync server on PostgreSQL')
  .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL, else the embedded server)')
  .option('--embedded-dir <dir>', 'data folder of the embedded server', '.sync-lookup/pg')
  .option('--verbose', 'stack traces and more detail on errors')
  .showHelpAfterError()
  .exitOverride();

for (const register of [registerDb, registerMigrate, registerExplain, registerPurge, registerRebuild, registerResync, registerJobs]) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every other parse failure is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    new Output({ json: process.argv.includes('--json'), verbose: process.argv.includes('--verbose') }).error(err);
    process.exitCode = exitCodeOf(err);
  }
}
