import type { Command } from 'commander';
import { explainHotQueries, explainSql, type ExplainReport, type QueryReport } from '../../inspect/explain.js';
import type { ModelFit } from '../../inspect/model-fit.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { action, forcedHost, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatMs } from '../output.js';

function renderQuery(q: QueryReport): string {
  const head = `${q.verdict.toUpperCase().padEnd(7)} ${q.name}: ${q.title}`;
  const lines = [head];
  if (q.plan) lines.push(`        plan: ${q.plan}${q.executionMs !== null ? ` (ran in ${formatMs(q.executionMs)}, rolled back)` : ''}`);
  if (q.verdict !== 'ok' && q.reason) lines.push(`        why:  ${q.skippedReason ?? q.reason}`);
  if (q.fix) lines.push(`        fix:  ${q.fix}`);
  return lines.join('\n');
}

/** The models whose source does not match the registry (skipped) or cannot be planned (failed). */
function renderModels(models: readonly ModelFit[]): string[] {
  const off = models.filter((m) => m.status !== 'ok');
  if (!off.length) return [];
  return ['', `models: ${models.length - off.length} of ${models.length} fit this database:`,
    ...off.map((m) => `${m.status.toUpperCase().padEnd(7)} ${m.name}: ${m.skippedReason ?? m.error}`)];
}

/** Renders an explain report for people. */
export function renderExplain(r: ExplainReport): string {
  const system = r.queries.filter((q) => q.form === 'system');
  const seed = r.queries.filter((q) => q.form === 'seed');
  const out = [`PostgreSQL ${r.serverVersion}${r.host ? ` · host ${r.host}` : ''} · ${r.analyzed ? 'executed with EXPLAIN ANALYZE, rolled back' : 'plans only (--analyze executes and rolls back)'}`];
  if (r.params) out.push(`parameters: ${r.params.notes.join('; ')}`);
  if (r.models) out.push(...renderModels(r.models));
  out.push('', ...system.map(renderQuery));
  if (seed.length) out.push('', "the seed's original forms, for comparison (not counted in the exit code):", ...seed.map(renderQuery));
  out.push('', `verdict: ${r.verdict.toUpperCase()}`);
  return out.join('\n');
}

/** `sync-lookup explain`. */
export function registerExplain(program: Command): void {
  program.command('explain')
    .description('EXPLAIN every hot query (or --sql) and judge each plan: full scans, full index scans, skip scans, spills, misestimates')
    .option('--analyze', 'execute each statement (EXPLAIN ANALYZE, BUFFERS) inside a transaction that is rolled back')
    .option('--sql <statement>', 'judge this one statement instead of the hot queries')
    .option('--models <file>', 'model registry file (default: the built-in models)')
    .option('--large-table-rows <n>', 'rows from which reading a whole table is a finding (default 100000)', positiveInt('--large-table-rows'))
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { analyze?: boolean; sql?: string; models?: string; largeTableRows?: number }) => {
      const options = {
        analyze: !!opts.analyze, signal: ctx.signal,
        ...(opts.largeTableRows !== undefined ? { largeTableRows: opts.largeTableRows } : {}),
      };
      const report = opts.sql !== undefined
        ? await withDatabase(ctx, (db) => explainSql(db, opts.sql!, options))
        : await withDatabase(ctx, async (db) => explainHotQueries(db, {
          ...options, registry: await resolveRegistry(opts.models), ...forcedHost(ctx),
          // Progress for people only: under --json stdout carries just the report.
          onEvent: (e) => { if (!ctx.out.json) ctx.out.progress(e, `explained ${e.name}: ${e.verdict}`, null, 0); },
        }));
      ctx.out.result(report, renderExplain);
      return report.verdict === 'fail' ? 3 : 0;
    }));
}
