#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { Output, exitCodeOf } from './output.js';
import { registerDb } from './commands/db.js';
import { registerMigrate } from './commands/migrate.js';
import { registerBench } from './commands/bench.js';
import { registerDemo } from './commands/demo.js';
import { registerPurge } from './commands/purge.js';
import { registerRebuild } from './commands/rebuild.js';
import { registerResync } from './commands/resync.js';
import { registerJobs } from './commands/jobs.js';
import { registerSeed } from './commands/seed.js';
import { registerBuild } from './commands/build.js';
import { registerPull } from './commands/pull.js';
import { registerVerify } from './commands/verify.js';
import { registerExplain } from './commands/explain.js';
import { registerDoctor } from './commands/doctor.js';
import { registerIndex } from './commands/index.js';
import { registerStats } from './commands/stats.js';
import { registerModels } from './commands/models.js';

const program = new Command('sync-lookup')
  .description('runs and maintains the sync_lookup table of an offline-first sync server on PostgreSQL')
  .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL, else the embedded server)')
  .option('--embedded-dir <dir>', 'data folder of the embedded server', '.sync-lookup/pg')
  .option('--host <name>', 'the deployment\'s conventions: builtin or tamanu (default: recorded by migrate, else detected; env SYNC_LOOKUP_HOST)')
  .option('--verbose', 'stack traces and more detail on errors')
  .showHelpAfterError()
  .exitOverride();

for (const register of [registerDb, registerMigrate, registerSeed, registerBuild, registerPull, registerVerify, registerExplain, registerDoctor, registerIndex, registerStats, registerModels, registerPurge, registerRebuild, registerResync, registerJobs, registerBench, registerDemo]) register(program);

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
