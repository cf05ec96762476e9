#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../db/errors.js';
import { snakeCaseKey } from './json.js';
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
import { registerArchive } from './commands/archive.js';
import { registerConvert } from './commands/convert.js';
import { registerLint } from './commands/lint.js';

// Seen before parsing, so that a flag Commander rejects is still reported as JSON.
const json = process.argv.includes('--json');
const out = new Output({ json, verbose: process.argv.includes('--verbose') });
// package.json sits one folder above dist/ (and above src/): read, not copied, so it never disagrees.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('sync-lookup')
  .description('runs and maintains the sync_lookup table of an offline-first sync server on PostgreSQL')
  .version(json ? JSON.stringify({ version }) : version, '-V, --version', 'print the version')
  .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL, else the embedded server)')
  .option('--embedded-dir <dir>', 'data folder of the embedded server', '.sync-lookup/pg')
  .option('--host <name>', 'the deployment\'s conventions: builtin or tamanu (default: recorded by migrate, else detected; env SYNC_LOOKUP_HOST)')
  .option('--verbose', 'stack traces and more detail on errors')
  // Under --json a parse error is one {"error": …} line on stdout (below), not Commander's text and help.
  .showHelpAfterError(!json)
  .configureOutput(json ? { outputError: () => {} } : {})
  .exitOverride();

for (const register of [registerDb, registerMigrate, registerSeed, registerBuild, registerPull, registerVerify, registerExplain, registerDoctor, registerIndex, registerStats, registerModels, registerPurge, registerRebuild, registerResync, registerArchive, registerConvert, registerJobs, registerBench, registerDemo, registerLint]) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every other parse failure is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
    if (json && err.exitCode !== 0) {
      out.error(new ConfigError(snakeCaseKey(err.code.replace(/^commander\./, '')), err.message.replace(/^error: /, '')));
    }
  } else {
    out.error(err);
    process.exitCode = exitCodeOf(err);
  }
}
