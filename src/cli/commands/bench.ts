import type { Command } from 'commander';
import { embeddedStatus } from '../../db/embedded.js';
import { ConfigError } from '../../db/errors.js';
import { SCENARIO_NAMES, formatRowCount, parseRowList, parseScenarioList } from '../../bench/options.js';
import type { Projection } from '../../bench/projection.js';
import { parseRowCount } from '../../datagen/rows.js';
import { formatDuration, formatSpeedup, renderPlans, renderTextTable, writeReport } from '../../bench/report.js';
import { runBench, type BenchEvent } from '../../bench/runner.js';
import type { BenchReport } from '../../bench/types.js';
import { action, withDatabase, type CommandContext } from '../context.js';
import { Output } from '../output.js';

/**
 * The connection string the benchmark starts from: `--database-url` / `DATABASE_URL` (a user's server),
 * else the embedded server's (started by `withDatabase`).
 */
export async function benchUrl(ctx: CommandContext): Promise<{ url: string; external: boolean }> {
  const explicit = ctx.globals.databaseUrl ?? process.env.DATABASE_URL;
  if (explicit !== undefined) return { url: explicit, external: true };
  const s = await embeddedStatus(ctx.globals.embeddedDir ? { dataDir: ctx.globals.embeddedDir } : {});
  if (!s) throw new ConfigError('not_running', 'the embedded server is not running');
  return { url: s.url, external: false };
}

/**
 * Renders benchmark progress on stderr, also under --json (stdout then holds only the result document,
 * so `bench --json > results.json` is valid JSON).
 */
export function benchProgress(ctx: CommandContext): (e: BenchEvent) => void {
  const err = new Output({ json: false, verbose: ctx.out.verbose });
  return (e) => {
    if (e.type === 'info') err.info(e.text);
    else if (e.type === 'progress') err.progress(e, e.text, e.fraction, 3000);
    else {
      err.info(`  ${e.form === 'original' ? 'original' : 'ours    '} run ${e.run}/${e.of}: ${formatDuration(e.ms)}` +
        (e.restoreMs > 0 ? ` (restored in ${formatDuration(e.restoreMs)})` : ''));
    }
  };
}

/** The human summary: the side-by-side table, then growth exponents. */
export function renderBenchSummary(report: BenchReport): string {
  const lines = [renderTextTable(report.scenarios).trimEnd(), '', 'plans in words:', renderPlans(report.scenarios)];
  if (report.sizes.length > 1) {
    lines.push('', 'growth (log-log slope of time against rows; 1 = linear in the table, 0 = flat):');
    for (const name of new Set(report.scenarios.map((s) => s.name))) {
      const r = report.scenarios.find((s) => s.name === name)!;
      lines.push(`  ${name.padEnd(24)} original ${r.baseline_slope?.toFixed(2) ?? '–'}  ours ${r.slope?.toFixed(2) ?? '–'}`);
    }
  }
  const best = report.scenarios.filter((s) => s.speedup !== null && s.size === report.sizes[report.sizes.length - 1]);
  if (best.length) {
    lines.push('', `at ${formatRowCount(report.sizes[report.sizes.length - 1]!)} rows: ` +
      best.map((s) => `${s.name} ${formatSpeedup(s.speedup)}`).join(', '));
  }
  if (report.projection) lines.push('', renderProjection(report.projection));
  for (const n of report.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

/** The projection as text: predicted times, their inputs and the fit's error. */
function renderProjection(p: Projection): string {
  const lines = [`projection to ${formatRowCount(p.size)} rows (${p.note}):`];
  for (const s of p.scenarios) {
    if (s.ms === null) continue;
    const i = s.inputs.ours!;
    lines.push(`  ${s.name.padEnd(26)} original ${s.baseline_ms === null ? '–' : formatDuration(s.baseline_ms)}  ours ${formatDuration(s.ms)}  ` +
      `(${i.pages_read.toLocaleString('en-US')} pages × ${i.ms_per_page} ms + ${i.rows.toLocaleString('en-US')} rows × ${i.ms_per_row} ms; ` +
      `fit error ${Math.round(100 * (s.fit_error ?? 0))} %${s.baseline_fit_error === null ? '' : `, original's ${Math.round(100 * s.baseline_fit_error)} %`})`);
  }
  return lines.join('\n');
}

/** `sync-lookup bench`. */
export function registerBench(program: Command): void {
  program.command('bench')
    .description('benchmark the seed\'s operations in their original form and ours, side by side (medians, speedups, plans, growth)')
    .option('--rows <n[,n…]>', 'lookup table sizes, e.g. 500k,1m,2m', '1m')
    .option('--scenarios <a,b>', `scenarios to run (default all): ${SCENARIO_NAMES.join(', ')}`)
    .option('--repeat <k>', 'runs per form and size; the median is reported', '3')
    .option('--seed <s>', 'generator seed (same seed, same data)', '1')
    .option('--out <dir>', 'write results.json, results.md, index.html (with SVG charts) and the charts as .svg files here')
    .option('--fresh', 'reseed even when a bench database already holds the same data')
    .option('--project <size>', 'predict every scenario\'s time at this table size (e.g. 58m) from the sizes run: a projection, with its fit error')
    .option('--cold', 'before every timed run, evict PostgreSQL\'s buffers and drop the OS page cache (else evict the relation files one by one)')
    .option('--force', 'run on a DATABASE_URL server whose database holds data of its own (bench works in its own databases)')
    .option('--json', 'print the result as one JSON document on stdout (progress stays on stderr)')
    .action(action(program, async (ctx: CommandContext, opts: {
      rows: string; scenarios?: string; repeat: string; seed: string; out?: string; fresh?: boolean; force?: boolean; cold?: boolean; project?: string;
    }) => {
      const sizes = parseRowList(opts.rows);
      const scenarios = opts.scenarios === undefined ? [...SCENARIO_NAMES] : parseScenarioList(opts.scenarios);
      const repeat = positive('--repeat', opts.repeat);
      const seed = positive('--seed', opts.seed);
      const projectRows = opts.project === undefined ? undefined : parseRowCount(opts.project, '--project');
      const report = await withDatabase(ctx, async () => {
        const { url, external } = await benchUrl(ctx);
        return runBench({ url, external, sizes, scenarios, repeat, seed, fresh: !!opts.fresh, force: !!opts.force, cold: !!opts.cold, ...(projectRows ? { projectRows } : {}),
          signal: ctx.signal, onEvent: benchProgress(ctx) });
      });
      if (opts.out) {
        const written = await writeReport(report, opts.out);
        new Output({ json: false }).info(`wrote ${written.files.map((f) => f.replace(`${written.dir}/`, '')).join(', ')} to ${written.dir}`);
      }
      ctx.out.result(report, renderBenchSummary);
    }));
}

/** Parses a positive integer option value, naming the option on failure (ConfigError, exit 2). */
export function positive(option: string, value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new ConfigError('invalid_option', `${option} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
