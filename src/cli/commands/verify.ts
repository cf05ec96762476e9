import type { Command } from 'commander';
import { resolveRegistry } from '../../lookup/registry.js';
import { verifyLookup, type VerifyResult } from '../../lookup/verify.js';
import { action, forcedHost, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { ExitCode, formatMs, table } from '../output.js';

const list = (value: string, previous: string[] = []): string[] =>
  [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

function describe(r: VerifyResult): string {
  const lines: string[] = [];
  const problems = Object.entries(r.problems);
  if (problems.length) {
    lines.push(table(['problem', 'rows', 'examples', 'repair'], problems.map(([k, p]) => [k, p.count, p.examples.slice(0, 3).join(' '), p.repair])), '');
    const bad = r.models.filter((m) => Object.keys(m.problems).length);
    if (bad.length) {
      lines.push(table(['model', ...Object.keys(r.problems)], bad.map((m) =>
        [m.model, ...Object.keys(r.problems).map((k) => m.problems[k as keyof typeof m.problems]?.count ?? 0)])), '');
    }
  }
  for (const m of r.models.filter((x) => x.differences.length)) {
    lines.push(`${m.model}: differing columns (over up to 200 differing rows): ${m.differences.map((d) => `${d.column} ${d.rows}`).join(', ')}`);
  }
  const flagged = r.models.reduce((n, m) => n + m.pendingRebuild, 0);
  if (flagged) lines.push(`${flagged} rows flagged needs_rebuild (pending_rebuild: the next build's flag pass, or rebuild, re-derives them)`);
  const pending = r.models.reduce((n, m) => n + m.pending, 0);
  lines.push(`${r.ok ? 'consistent' : 'INCONSISTENT'}: ${r.models.length} models checked against the last build (end tick ${r.lastEndTick ?? 'none'}) ` +
    `in ${formatMs(r.durationMs)}${pending ? `; ${pending} source changes pending for the next build` : ''}` +
    `${r.buildRunning ? '; a build is running, staged rows not checked' : ''}`);
  return lines.join('\n');
}

/** `sync-lookup verify`: exit 3 when the lookup does not match its sources. */
export function registerVerify(program: Command): void {
  program.command('verify')
    .description('check that sync_lookup matches its source tables (missing, extra, differing and staged rows); exit 3 when not')
    .option('--types <t,...>', 'models to check (default: all, plus lookup rows of unknown types)', list)
    .option('--examples <n>', 'examples per problem (default 10)', positiveInt('--examples'), 10)
    .option('--models <file>', 'model registry file (JSON); default: the built-in registry')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { types?: string[]; examples: number; models?: string }) => {
      const registry = await resolveRegistry(opts.models);
      const result = await withDatabase(ctx, (db) => verifyLookup(db, {
        registry, signal: ctx.signal, examples: opts.examples, ...forcedHost(ctx),
        ...(opts.types ? { types: opts.types } : {}),
        onProgress: (e) => ctx.out.progress(e, `verifying ${e.model} (${e.index + 1}/${e.total})`, e.index / e.total),
      }));
      ctx.out.result(result, describe);
      return result.ok ? ExitCode.ok : ExitCode.checkFailed;
    }));
}
