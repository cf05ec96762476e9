import type { Command } from 'commander';
import { parseRowCount } from '../../datagen/rows.js';
import { seedDatabase, type SeedEvent } from '../../datagen/seed.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { formatMs, table, type Output } from '../output.js';
import { renderBuildEvent } from './build.js';

function renderSeedEvent(out: Output, e: SeedEvent): void {
  switch (e.type) {
    case 'seed_load': {
      const eta = e.etaMs === null ? '' : `, ETA ${formatMs(e.etaMs)}`;
      return out.progress(e, `loading source rows: ${e.rows.toLocaleString('en')}/${e.totalRows.toLocaleString('en')} ` +
        `(${Math.round(e.rowsPerSecond).toLocaleString('en')} rows/s${eta})`, e.rows / Math.max(1, e.totalRows));
    }
    case 'seed_phase':
      return out.event(e, {
        schema: 'preparing schema and source tables …', build: 'initial build (source indexes and triggers in parallel) …',
        analyze: 'ANALYZE …',
      }[e.phase]);
    case 'seed_build':
      return renderBuildEvent(out, e.event);
  }
}

/** `sync-lookup seed`: deterministic realistic source data, then the initial build. */
export function registerSeed(program: Command): void {
  program.command('seed')
    .description('create the source tables, fill them with deterministic realistic rows (COPY), then run the initial build')
    .requiredOption('--rows <n>', 'lookup rows to produce: 5000, 250k, 2m', (v: string) => parseRowCount(v))
    .option('--seed <s>', 'PRNG seed: same seed, same data', '1')
    .option('--models <file>', 'model registry file (JSON); default: the built-in registry')
    .option('--replace', 'drop the source tables and empty sync_lookup first (never on a real server)')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { rows: number; seed: string; models?: string; replace?: boolean }) => {
      const registry = await resolveRegistry(opts.models);
      const result = await withDatabase(ctx, (db) => seedDatabase(db, {
        rows: opts.rows, seed: opts.seed, registry, replace: !!opts.replace, signal: ctx.signal,
        onProgress: (e) => renderSeedEvent(ctx.out, e),
      }));
      ctx.out.result(result, (r) => [
        table(['model', 'rows'], r.build.models.map((m) => [m.model, m.rows.toLocaleString('en')])),
        '',
        `seeded ${r.build.rows.toLocaleString('en')} lookup rows (seed ${r.seed}) in ${formatMs(r.durationMs)}: ` +
          `${r.rowsPerSecond.toLocaleString('en')} rows/s end to end`,
        `  load ${formatMs(r.loadMs)}, initial build ${formatMs(r.buildMs)} (end tick ${r.build.endTick}; source indexes ` +
          `${formatMs(r.sourceIndexMs)} alongside), analyze ${formatMs(r.analyzeMs)}`,
      ].join('\n'));
    }));
}
