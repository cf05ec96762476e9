import type { Command } from 'commander';
import path from 'node:path';
import { DEMO_ROWS, doctorHtml, runDemo, type DemoResult } from '../../bench/demo.js';
import { headline } from '../../bench/html.js';
import { formatRowCount, parseBenchRows } from '../../bench/options.js';
import { formatDuration, formatSpeedup, renderPlans, renderTextTable, writeReport } from '../../bench/report.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { Output } from '../output.js';
import { benchProgress, benchUrl, positive } from './bench.js';

function renderDemo(r: DemoResult & { reportPath: string }): string {
  const head = headline(r.report);
  const lines = [
    ...(head ? [head, ''] : []),
    `The seed's slow operations on ${r.report.sizes.map(formatRowCount).join(' and ')} lookup rows, ` +
      `PostgreSQL ${r.report.postgres}: the original form and ours, side by side.`,
    '',
    renderTextTable(r.report.scenarios).trimEnd(),
    '',
    'plans in words:',
    renderPlans(r.report.scenarios),
  ];
  const index = r.report.scenarios.find((s) => s.name === 'add-record-type-index');
  if (index) {
    lines.push('', `While the record_type index was built, the longest single write waited ` +
      `${formatDuration(Number(index.baseline_longest_write_stall_ms ?? NaN))} with a plain CREATE INDEX and ` +
      `${formatDuration(Number(index.longest_write_stall_ms ?? NaN))} with the concurrent build.`);
  }
  // Ratios at the largest size only: one figure per scenario, labelled with the size it was measured at.
  const largest = Math.max(...r.report.scenarios.map((s) => s.rows));
  const ratios = r.report.scenarios.filter((s) => s.rows === largest && s.speedup !== null && s.name !== 'add-record-type-index');
  if (ratios.length) lines.push(`Original time / ours at ${formatRowCount(largest)} rows: ${ratios.map((s) => `${s.name} ${formatSpeedup(s.speedup)}`).join(', ')}.`);
  for (const n of r.report.notes) lines.push(`note: ${n}`);
  if (r.doctor.length || r.doctorError) {
    lines.push('', 'doctor:');
    if (r.doctorError) lines.push(`  could not run: ${r.doctorError}`);
    else lines.push(`  ${r.doctorCounts.error} error(s), ${r.doctorCounts.warning} warning(s), ${r.doctorCounts.info} note(s) on ${r.doctorDatabase ?? '?'}`);
    for (const f of r.doctor) lines.push(`  ${f.severity.padEnd(7)} ${f.message}${f.fix ? `\n          fix: ${f.fix}` : ''}`);
  }
  lines.push('', `Report with charts: ${r.reportPath}`);
  return lines.join('\n');
}

/** `sync-lookup demo` (what `npm start` runs). */
export function registerDemo(program: Command): void {
  program.command('demo')
    .description('seed a realistic table and run the seed\'s slow operations in their original form and ours, side by side, with an HTML report')
    .option('--rows <n>', 'lookup rows of the larger table (the demo also runs a quarter of it; a second run with the same rows and seed reuses them)', formatRowCount(DEMO_ROWS))
    .option('--repeat <k>', 'runs per form (the median is shown)', '3')
    .option('--seed <s>', 'generator seed', '1')
    .option('--out <dir>', 'where the HTML report goes', 'sync-lookup-report')
    .option('--fresh', 'reseed even when the data is already there')
    .option('--force', 'run on a DATABASE_URL server whose database holds data of its own (the demo works in its own databases)')
    .option('--json', 'print the results as JSON (progress stays on stderr)')
    .action(action(program, async (ctx: CommandContext, opts: { rows: string; repeat: string; seed: string; out: string; fresh?: boolean; force?: boolean }) => {
      const rows = parseBenchRows(opts.rows);
      const repeat = positive('--repeat', opts.repeat);
      const seed = positive('--seed', opts.seed);
      const result = await withDatabase(ctx, async () => {
        const { url, external } = await benchUrl(ctx);
        return runDemo({ url, external, rows, repeat, seed, force: !!opts.force, signal: ctx.signal, onEvent: benchProgress(ctx) });
      });
      const written = await writeReport(result.report, opts.out, {
        title: 'sync-lookup demo: the seed\'s slow operations, original and ours',
        intro: 'Each operation ran in its original form (the seed\'s statements, on the table as it was: no record_type index) and in ' +
          'sync-lookup\'s form, on the same rows (restored between runs). Times include the ANALYZE an operation decides it needs, not ' +
          'the VACUUM afterwards (reported as vacuum_ms).',
        footer: doctorHtml(result),
      });
      const reportPath = path.join(path.relative(process.cwd(), written.dir) || '.', 'index.html');
      if (!ctx.out.json) new Output({ json: false }).info(`wrote ${reportPath}`);
      ctx.out.result({ ...result, reportPath }, renderDemo);
    }));
}

