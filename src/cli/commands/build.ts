import type { Command } from 'commander';
import { buildLookup, watchBuild, type BuildEvent, type BuildResult } from '../../lookup/build.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { action, forcedHost, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatMs, table, type Output } from '../output.js';

/** Renders build progress (shared with `seed`). */
export function renderBuildEvent(out: Output, e: BuildEvent): void {
  switch (e.type) {
    case 'build_start':
      return out.event(e, `build (${e.host} host): source ticks (${e.sinceTick}, ${e.endTick})${e.initial ? ' (initial build)' : ''}`);
    case 'model_chunk':
      return out.progress(e, `${e.model}: ${e.totalRows.toLocaleString('en')} rows staged`, null);
    case 'model_done':
      if (out.verbose || (e.durationMs ?? 0) > 1000) {
        out.event(e, `${e.model}: ${e.rows.toLocaleString('en')} rows${e.durationMs === null ? '' : ` in ${formatMs(e.durationMs)}`}`);
      }
      return;
    case 'tombstones':
      if (e.deleted > 0) out.event(e, `removed ${e.deleted} lookup rows of hard-deleted records`);
      return;
    case 'flags':
      return out.event(e, `${e.model}: ${e.healed} flagged rows re-derived, ${e.deleted} whose source is gone deleted`);
    case 'model_start':
    case 'publish':
      return;
  }
}

function describe(r: BuildResult): string {
  const changed = r.models.filter((m) => m.rows > 0);
  return [
    ...(changed.length ? [table(['model', 'rows', 'time'], changed.map((m) => [m.model, m.rows.toLocaleString('en'), m.durationMs === null ? '-' : formatMs(m.durationMs)])), ''] : []),
    `built ${r.rows.toLocaleString('en')} rows (${r.deleted} deleted, ${r.published.toLocaleString('en')} published) at end tick ${r.endTick} ` +
      `covering source ticks (${r.sinceTick}, ${r.coveredBefore}) on the ${r.host} host in ${formatMs(r.durationMs)}` +
      (r.flagsHealed || r.flagsDeleted ? `; ${r.flagsHealed} flagged rows re-derived, ${r.flagsDeleted} deleted` : '') +
      (r.rebuiltModels.length ? `; rebuilt whole: ${r.rebuiltModels.join(', ')}` : ''),
  ].join('\n');
}

/** `sync-lookup build [--watch SECONDS]`. */
export function registerBuild(program: Command): void {
  program.command('build')
    .description('incremental build: upsert source rows changed since the last build (staged at -2), then publish them at a new end tick')
    .option('--watch <seconds>', 'build again every SECONDS until interrupted', positiveInt('--watch'))
    .option('--chunk <rows>', 'source rows per upsert statement', positiveInt('--chunk'))
    .option('--models <file>', 'model registry file (JSON); default: the built-in registry')
    .option('--accept-shape-change', 'write data even where its keys differ from the existing rows\' (refused otherwise)')
    .option('--json', 'JSON output (with --watch: one {"event": {"type": "build_done", …}} line per build, a summary when interrupted)')
    .action(action(program, async (ctx: CommandContext, opts: { watch?: number; chunk?: number; models?: string; acceptShapeChange?: boolean }) => {
      const registry = await resolveRegistry(opts.models);
      const base = {
        registry, signal: ctx.signal, onEvent: (e: BuildEvent) => renderBuildEvent(ctx.out, e), ...(opts.chunk ? { chunkRows: opts.chunk } : {}),
        ...forcedHost(ctx), acceptShapeChange: !!opts.acceptShapeChange,
      };
      if (opts.watch !== undefined) {
        const intervalMs = opts.watch * 1000;
        const summary = { builds: 0, skipped: 0, rows: 0 };
        await withDatabase(ctx, (db) => watchBuild(db, {
          ...base, intervalMs,
          onSkip: (e) => {
            summary.skipped++;
            ctx.out.event({ type: 'build_skipped', reason: e.message }, `skipped: ${e.message}`);
          },
          onBuild: (r) => {
            summary.builds++;
            summary.rows += r.rows;
            if (ctx.out.json) ctx.out.event({ type: 'build_done', ...r }, '');
            else process.stdout.write(`${new Date().toISOString()} ${describe(r).split('\n').at(-1)}\n`);
          },
        }));
        // People saw a line per build already; --json ends with the summary as its result line.
        ctx.out.result(summary, () => '');
        return 0;
      }
      const result = await withDatabase(ctx, (db) => buildLookup(db, base));
      ctx.out.result(result, describe);
      return 0;
    }));
}
