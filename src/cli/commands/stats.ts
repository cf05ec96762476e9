import type { Command } from 'commander';
import { exportStats } from '../../inspect/stats.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { toSnakeCaseJson } from '../json.js';

/** `sync-lookup stats export`. */
export function registerStats(program: Command): void {
  const stats = program.command('stats').description('planner statistics without row data');
  stats.command('export')
    .description('table sizes, row estimates, index definitions and the pg_stats subset per column (sample values only for sync_lookup.record_type), as JSON on stdout')
    .option('--tables <names>', 'comma-separated tables (default: every table outside the system schemas)')
    .option('--include-values', "also export every column's most common values and histogram bounds: row data such as patient names " +
      '(default: only those of sync_lookup.record_type)')
    .option('--json', 'accepted for symmetry: the output is always JSON')
    .action(action(program, async (ctx: CommandContext, opts: { tables?: string; includeValues?: boolean }) => {
      const tables = opts.tables?.split(',').map((s) => s.trim()).filter(Boolean);
      const doc = await withDatabase(ctx, (db) => exportStats(db, { ...(tables?.length ? { tables } : {}), includeValues: !!opts.includeValues }));
      // Always JSON: this document is meant for files (> stats.json) and other tools; indented without --json.
      ctx.out.result(doc, (d) => JSON.stringify(toSnakeCaseJson(d), null, 2));
    }));
}
