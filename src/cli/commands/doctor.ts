import type { Command } from 'commander';
import { runDoctor, type DoctorReport } from '../../inspect/doctor.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { action, forcedHost, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatBytes, formatMs, table } from '../output.js';

function age(s: number): string {
  if (s >= 2 * 86_400) return `${(s / 86_400).toFixed(1)} days`;
  if (s >= 2 * 3600) return `${(s / 3600).toFixed(1)} hours`;
  return formatMs(s * 1000);
}

/** Renders a doctor report for people. */
export function renderDoctor(r: DoctorReport): string {
  const out = [`sync-lookup doctor · PostgreSQL ${r.serverVersion} · database ${r.database} · usage statistics cover ${age(r.statsAgeS)}`,
    `host ${r.host.host} (${r.host.source}) · clock ${r.host.clockTick ?? '?'} · last end tick ${r.host.lastEndTick ?? 'none'}` +
      (r.host.flaggedRows === null ? '' : ` · ${r.host.flaggedRows} flagged rows · upgrade gate ${r.host.upgradeGate}`), ''];
  for (const t of r.tables) {
    out.push(`${t.schema}.${t.name}: ${t.rows.toLocaleString('en')} rows (estimate), heap ${formatBytes(t.heapBytes)}, indexes ${formatBytes(t.indexBytes)}, ` +
      `dead tuples ${t.deadTuples.toLocaleString('en')}, last vacuum ${[t.lastVacuum, t.lastAutovacuum].filter(Boolean).sort().pop() ?? 'never'}, ` +
      `last analyze ${[t.lastAnalyze, t.lastAutoanalyze].filter(Boolean).sort().pop() ?? 'never'}`);
    if (t.indexes.length) {
      out.push(table(['  index', 'size', 'scans', 'state', 'columns'], t.indexes.map((i) => [
        `  ${i.name}`, formatBytes(i.bytes), i.scans ?? '?', i.valid ? (i.primary ? 'primary' : i.unique ? 'unique' : 'valid') : 'INVALID', i.columns.join(', '),
      ])));
    }
    out.push('');
  }
  const problems = r.findings.filter((f) => f.check !== 'sizes');
  out.push(`findings: ${r.counts.error} error(s), ${r.counts.warning} warning(s), ${problems.filter((f) => f.severity === 'info').length} note(s)`);
  for (const f of problems) {
    out.push(`${f.severity.toUpperCase().padEnd(7)} ${f.check} ${f.subject}: ${f.message}`);
    if (f.fix) out.push(`        fix: ${f.fix}`);
  }
  return out.join('\n');
}

/** `sync-lookup doctor`. */
export function registerDoctor(program: Command): void {
  program.command('doctor')
    .description('health report: sizes, invalid/redundant/unused/missing indexes, dead tuples, bloat, stale statistics, blocking sessions, index builds')
    .option('--tables <names>', 'comma-separated tables to examine (default: sync_lookup, sync_lookup_ticks)')
    .option('--session-age <seconds>', 'report transactions open longer than this (default 60)', positiveInt('--session-age'))
    .option('--no-explain', 'skip the explain verdicts (missing indexes)')
    .option('--models <file>', 'model registry file (default: the built-in models)')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { tables?: string; sessionAge?: number; explain: boolean; models?: string }) => {
      const tables = opts.tables?.split(',').map((s) => s.trim()).filter(Boolean);
      const report = await withDatabase(ctx, async (db) => runDoctor(db, {
        ...(tables?.length ? { tables } : {}),
        ...(opts.sessionAge !== undefined ? { sessionAgeS: opts.sessionAge } : {}),
        explain: opts.explain, registry: await resolveRegistry(opts.models), ...forcedHost(ctx),
      }));
      ctx.out.result(report, renderDoctor);
      return report.counts.error > 0 ? 3 : 0;
    }));
}
