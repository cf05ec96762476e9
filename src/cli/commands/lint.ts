import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { databaseFromUrl, type Database } from '../../db/connection.js';
import { ConfigError } from '../../db/errors.js';
import { parseLintConfig } from '../../lint/config.js';
import { lintMigrations, parseAssumeRows, readStatsDocument, renderGithub, renderSarif, renderText, type LintOptions } from '../../lint/index.js';
import { loadRegistry } from '../../lookup/registry.js';
import { liveLookupTypes } from '../../maintenance/models.js';
import { action, positiveInt, type CommandContext } from '../context.js';
import { toSnakeCaseJson } from '../json.js';

// package.json sits above dist/ and src/ (as main.ts reads it): the SARIF driver's version.
const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface LintFlags {
  schema?: string; stats?: string; assumeRows: string[]; format?: string; config?: string; json?: boolean;
  models?: string; assumeInTransaction?: boolean; largeTableRows?: number;
}

const FORMATS = ['text', 'json', 'sarif', 'github'];

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('missing_file', `${flag} ${file}: ${(err as Error).message}`);
  }
}

function readJson(file: string, flag: string): unknown {
  try {
    return JSON.parse(readText(file, flag));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('invalid_json', `${flag} ${file} is not JSON: ${(err as Error).message}`);
  }
}

/** The library's options from the flags, the config file under them. */
async function lintOptions(flags: LintFlags): Promise<LintOptions> {
  const config = flags.config ? parseLintConfig(readJson(flags.config, '--config'), flags.config) : {};
  const { assumeRows: configRows, ...fromConfig } = config;
  const assumeRows = new Map([...Object.entries(configRows ?? {}), ...parseAssumeRows(flags.assumeRows)]);
  return {
    ...fromConfig,
    ...(flags.schema ? { schemaSql: readText(flags.schema, '--schema') } : {}),
    ...(flags.stats ? { stats: readStatsDocument(readJson(flags.stats, '--stats'), flags.stats) } : {}),
    ...(assumeRows.size ? { assumeRows } : {}),
    ...(flags.models ? { liveTypes: liveLookupTypes(await loadRegistry(flags.models)) } : {}),
    ...(flags.assumeInTransaction ? { assumeInTransaction: true } : {}),
    ...(flags.largeTableRows !== undefined ? { largeTableRows: flags.largeTableRows } : {}),
  };
}

/** `sync-lookup lint`. */
export function registerLint(program: Command): void {
  program.command('lint')
    .description('lint migrations (.sql, and SQL inside .js/.ts migrations) against the schema and the table sizes: full reads, blocking index builds, rewrites, validations')
    .argument('<paths...>', 'migration files or folders (read in file-name order)')
    .option('--schema <file>', 'the starting schema: pg_dump --schema-only output')
    .option('--stats <file>', 'sizes (and the schema, without --schema): sync-lookup stats export output')
    .option('--assume-rows <table=n>', 'assume a table has n rows (repeatable; schema.table outside public)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--models <file>', 'model registry: record types still live (for sync-lookup-live-type-delete)')
    .option('--assume-in-transaction', 'migrations without a no-transaction marker run in a transaction')
    .option('--large-table-rows <n>', 'rows from which a table is large (default 1000000)', positiveInt('--large-table-rows'))
    .option('--format <format>', 'text, json, sarif or github', 'text')
    .option('--config <file>', 'JSON config: rule levels (error, warning, off) and the settings above')
    .option('--json', 'JSON output (same as --format json)')
    .action(action(program, async (ctx: CommandContext, paths: string[], flags: LintFlags) => {
      const format = flags.json ? 'json' : flags.format ?? 'text';
      if (!FORMATS.includes(format)) throw new ConfigError('invalid_option', `--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
      const options = await lintOptions(flags);
      // Only an explicit database is read: the linter never starts the embedded server.
      const url = ctx.globals.databaseUrl ?? process.env.DATABASE_URL;
      const db: Database | undefined = url ? databaseFromUrl(url, { source: ctx.globals.databaseUrl ? '--database-url' : 'DATABASE_URL' }) : undefined;
      try {
        const result = await lintMigrations(paths, { ...options, ...(db ? { database: db } : {}) });
        const baseDir = process.cwd();
        if (format === 'sarif') process.stdout.write(`${JSON.stringify(renderSarif(result, { version, baseDir }), null, 2)}\n`);
        else if (format === 'github') {
          const text = renderGithub(result, { baseDir });
          if (text) process.stdout.write(`${text}\n`);
        } else if (format === 'json') process.stdout.write(`${JSON.stringify(toSnakeCaseJson(result))}\n`);
        else ctx.out.result(result, renderText);
        // An unparsable migration is bad input (exit 2), after the other files were linted and shown.
        return result.findings.some((f) => f.rule === 'parse-error') ? 2 : result.errors > 0 ? 3 : 0;
      } finally {
        await db?.close();
      }
    }));
}
