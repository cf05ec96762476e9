import type { Command } from 'commander';
import { ConfigError } from '../../db/errors.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { convertLayout, type ConvertEvent, type ConvertResult } from '../../maintenance/convert.js';
import { finishConversion, planConvert, rollbackConversion, type ConvertEndResult } from '../../maintenance/convert-end.js';
import type { ConvertPlan } from '../../maintenance/convert-plan.js';
import { parseLayout } from '../../schema/partitioned.js';
import { action, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatBytes, formatMs, type Output } from '../output.js';

interface ConvertFlags {
  to?: string; rollback?: boolean; finish?: boolean; dryRun?: boolean; json?: boolean; batchMs?: number; batchRows?: number;
  pauseMs?: number; lockTimeoutMs?: number; swapLockTimeoutMs?: number; models?: string; diskCheck?: boolean;
}

function render(out: Output, e: ConvertEvent): void {
  switch (e.type) {
    case 'progress': {
      const total = e.total_rows === null ? '' : `/${e.total_rows.toLocaleString('en')}`;
      const eta = e.eta_ms === null ? '' : `, ETA ${formatMs(e.eta_ms)}`;
      const rate = e.rows_per_s ? `, ${e.rows_per_s.toLocaleString('en')} rows/s` : '';
      return out.progress(e, `${e.phase}: ${e.rows.toLocaleString('en')}${total} rows${rate}${eta}`, e.total_rows ? Math.min(1, e.rows / e.total_rows) : null);
    }
    case 'phase': return out.event(e, `${e.phase}: ${e.detail}`);
    case 'lock_retry': return out.event(e, `swap: sync traffic held its locks past ${e.lock_timeout_ms} ms (attempt ${e.attempt}/${e.attempts}); retrying in ${e.sleep_ms} ms`);
  }
}

function describePlan(p: ConvertPlan): string {
  const free = p.disk_free_bytes === null ? 'unknown (the server\'s disk is not visible from here)' : `${formatBytes(p.disk_free_bytes)} at ${p.disk_path}`;
  return [
    `convert ${p.from_layout} → ${p.to_layout} — dry run, nothing changed`,
    `rows: ~${p.estimated_rows.toLocaleString('en')}; table with indexes: ${formatBytes(p.table_bytes)}`,
    `disk needed: ~${formatBytes(p.disk_needed_bytes)}; free: ${free}; check: ${p.disk_check}`,
    `estimated time: ~${formatMs(p.estimated_ms)} (rough)`,
    ...(p.partitions.length ? [`partitions: ${p.partitions.join(', ')} + default`] : []),
    ...p.steps.map((s, i) => `${i + 1}. ${s}`),
  ].join('\n');
}

function describeResult(r: ConvertResult): string {
  return [
    `converted sync_lookup ${r.from_layout} → ${r.layout}${r.resumed ? ' (resumed)' : ''} in ${formatMs(r.duration_ms)}: ${r.rows_copied.toLocaleString('en')} rows copied, ` +
      `${r.changes_applied.toLocaleString('en')} changes applied, verified: ${r.verified ? 'yes' : 'no'}`,
    `longest write stall: ${r.longest_write_stall_ms} ms (swap attempt ${r.swap_attempts})`,
    `the previous table is kept as ${r.kept_table}: \`sync-lookup convert --finish\` drops it, \`--rollback\` swaps it back`,
  ].join('\n');
}

function describeEnd(r: ConvertEndResult): string {
  if (r.action === 'finish') return `conversion finished: sync_lookup is ${r.layout}; dropped ${r.dropped_table ?? 'nothing'}`;
  return r.swapped_back
    ? `rolled back: sync_lookup is ${r.layout} again (${r.changes_applied} changes applied, longest write stall ${r.longest_write_stall_ms} ms); dropped ${r.dropped_table ?? 'nothing'}`
    : `conversion abandoned before its swap: sync_lookup is unchanged (${r.layout}); dropped ${r.dropped_table ?? 'nothing'}`;
}

/** `sync-lookup convert --to plain|partitioned`, `--finish`, `--rollback`. */
export function registerConvert(program: Command): void {
  program.command('convert')
    .description('convert sync_lookup to the other layout online (copy, capture concurrent changes, verify, swap); resumable')
    .option('--to <layout>', 'partitioned or plain')
    .option('--finish', 'after the swap: drop the previous table (no rollback afterwards)')
    .option('--rollback', 'undo the conversion (before the swap: drop the shadow; after: swap the previous table back)')
    .option('--dry-run', 'print the plan, the table\'s size and the disk space needed; change nothing')
    .option('--batch-ms <ms>', 'target duration of one copy batch', positiveInt('--batch-ms'), 200)
    .option('--batch-rows <n>', 'rows in the first copy batch', positiveInt('--batch-rows'))
    .option('--pause-ms <ms>', 'pause between batches (throttle)', positiveInt('--pause-ms'))
    .option('--lock-timeout-ms <ms>', 'lock_timeout of batches', positiveInt('--lock-timeout-ms'), 2000)
    .option('--swap-lock-timeout-ms <ms>', 'lock_timeout of the swap (the longest it may queue sync traffic per attempt)', positiveInt('--swap-lock-timeout-ms'), 200)
    .option('--models <file>', 'model registry file (JSON): the types that get a partition; default: the built-in registry')
    .option('--no-disk-check', 'convert even when the disk is known to lack the space it needs')
    .option('--json', 'JSON output (events as JSON lines, then the result)')
    .action(action(program, async (ctx: CommandContext, flags: ConvertFlags) => {
      const modes = [flags.to !== undefined, !!flags.finish, !!flags.rollback].filter(Boolean).length;
      if (modes !== 1) throw new ConfigError('invalid_option', 'give exactly one of --to <layout>, --finish, --rollback');
      const common = {
        batchMs: flags.batchMs ?? 200, ...(flags.batchRows ? { initialBatchRows: flags.batchRows } : {}), pauseMs: flags.pauseMs ?? 0,
        lockTimeoutMs: flags.lockTimeoutMs ?? 2000, swapLockTimeoutMs: flags.swapLockTimeoutMs ?? 200, signal: ctx.signal,
        onEvent: (e: ConvertEvent) => render(ctx.out, e),
      };
      if (flags.finish || flags.rollback) {
        if (flags.dryRun) throw new ConfigError('invalid_option', '--dry-run applies to --to only');
        const r = await withDatabase(ctx, (db) => (flags.finish ? finishConversion(db, common) : rollbackConversion(db, common)));
        ctx.out.result(r, describeEnd);
        return 0;
      }
      const to = parseLayout(flags.to!);
      const registry = await resolveRegistry(flags.models);
      if (flags.dryRun) {
        const plan = await withDatabase(ctx, (db) => planConvert(db, { to, registry }));
        ctx.out.result(plan, describePlan);
        // The plan is the output either way; a disk known to be too small makes it a refusal (exit 2).
        return plan.disk_check === 'insufficient' ? 2 : 0;
      }
      const r = await withDatabase(ctx, (db) => convertLayout(db, { ...common, to, registry, checkDisk: flags.diskCheck !== false }));
      ctx.out.result(r, describeResult);
      return 0;
    }));
}
