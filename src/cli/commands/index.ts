import type { Command } from 'commander';
import { estimateIndex, type IndexEstimate } from '../../inspect/estimate.js';
import type { IndexBuildProgress } from '../../db/index-progress.js';
import { describePhase, watchIndexBuilds, type IndexBuildSample, type WatchedBuild } from '../../inspect/index-watch.js';
import { action, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatBytes, formatMs } from '../output.js';

/**
 * The one `index_progress` event shape, written by `index watch` and `migrate` alike (one key for the same
 * lock wait: `waiting_on`): an index build sample, flat. A build `migrate` follows has no rate or ETA
 * (null); `index` names the index when the progress view does not know it yet.
 */
export function indexProgressEvent(p: IndexBuildProgress | IndexBuildSample, index?: string): IndexBuildSample & { type: 'index_progress' } {
  const words = describePhase(p.phase);
  const sample: IndexBuildSample = 'phaseWords' in p ? p
    : { ...p, phaseWords: words.words, phaseStep: words.step, phaseSteps: words.steps, ratePerS: null, phaseEtaS: null };
  return { type: 'index_progress', ...sample, ...(index !== undefined ? { index } : {}) };
}

function sampleLine(b: IndexBuildSample): string {
  const counts = [
    b.blocksTotal > 0 ? `blocks ${b.blocksDone}/${b.blocksTotal}` : '',
    b.tuplesTotal > 0 ? `tuples ${b.tuplesDone}/${b.tuplesTotal}` : '',
    b.lockersTotal > 0 ? `lockers ${b.lockersDone}/${b.lockersTotal}` : '',
  ].filter(Boolean).join(', ');
  const step = b.phaseStep !== null ? `[${b.phaseStep}/${b.phaseSteps}] ` : '';
  const pct = b.phasePercent !== null ? ` ${b.phasePercent} %` : '';
  const eta = b.phaseEtaS !== null ? `, phase ETA ${formatMs(b.phaseEtaS * 1000)}` : '';
  const wait = b.waitingOn ? `; waiting for pid ${b.waitingOn.pid} (${b.waitingOn.state ?? '?'}, transaction open ` +
    `${Math.round(b.waitingOn.xactAgeS ?? 0)} s${b.waitingOn.applicationName ? `, ${b.waitingOn.applicationName}` : ''}): ${(b.waitingOn.query ?? '').replace(/\s+/g, ' ').slice(0, 80)}` : '';
  return `pid ${b.pid} ${b.command} ${b.index ?? '(index not named yet)'} on ${b.table}: ${step}${b.phaseWords}${pct}` +
    `${counts ? ` (${counts})` : ''}${eta}, ${formatMs(b.elapsedS * 1000)} elapsed${wait}`;
}

function renderWatched(builds: WatchedBuild[]): string {
  if (!builds.length) return 'no index build is running';
  return builds.map((b) => `pid ${b.pid} ${b.command} ${b.index ?? ''} on ${b.table}: ${b.ended ? 'ended' : 'still running'}; phases seen: ` +
    b.phases.map((p) => p.phase).join(' → ')).join('\n');
}

function renderEstimate(e: IndexEstimate): string {
  const i = e.inputs;
  return [
    e.statement,
    `estimated size: ${formatBytes(e.estimatedBytes)} (${i.leafPages} leaf + ${i.internalPages} internal pages; ${i.leafBytesPerRow} bytes per row` +
      `${i.deduplication ? ', with B-tree deduplication' : ', no deduplication'})`,
    `estimated build time: ${e.estimatedBuildMs === null ? 'not measured' : formatMs(e.estimatedBuildMs)}` +
      `${i.concurrently ? ' (CONCURRENTLY: two table scans and a validation)' : ''}`,
    `inputs: ${i.indexedRows.toLocaleString('en')} rows of ${i.table} (${formatBytes(i.tableBytes)}), ${i.distinctKeys.toLocaleString('en')} distinct keys (${i.distinctSource}), ` +
      `key tuple ${i.keyTupleBytes} bytes, fillfactor ${i.fillfactor}; ` +
      i.columns.map((c) => `${c.name} ${c.type}: width ${c.avgWidth}, null ${(c.nullFrac * 100).toFixed(1)} %, ${Math.round(c.distinct).toLocaleString('en')} distinct`).join('; '),
    `measured: ${i.sampledPages} pages read in ${i.sampleReadMs?.toFixed(1) ?? '?'} ms, ${i.sampledRows.toLocaleString('en')} keys sorted in ${i.sampleSortMs?.toFixed(1) ?? '?'} ms` +
      ` (maintenance_work_mem ${i.maintenanceWorkMem})`,
    ...(i.staleStatistics ? ['warning: the statistics are stale (many rows changed since the last ANALYZE); run ANALYZE first'] : []),
  ].join('\n');
}

/** `sync-lookup index watch | estimate`. */
export function registerIndex(program: Command): void {
  const index = program.command('index').description('index builds: live progress and size/time estimates');
  index.command('watch')
    .description('live progress of every running CREATE INDEX / REINDEX; ends when none remains')
    .option('--wait-ms <ms>', 'when none is running yet, wait this long for one to start', positiveInt('--wait-ms'))
    .option('--interval-ms <ms>', 'time between samples (default 1000)', positiveInt('--interval-ms'))
    .option('--pid <pid>', 'only the build of this backend', positiveInt('--pid'))
    .option('--json', 'JSON output: one {"event": …} line per build per sample, then the summary')
    .action(action(program, async (ctx: CommandContext, opts: { waitMs?: number; intervalMs?: number; pid?: number }) => {
      const builds = await withDatabase(ctx, (db) => watchIndexBuilds(db, {
        ...(opts.waitMs !== undefined ? { waitMs: opts.waitMs } : {}),
        ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
        ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
        signal: ctx.signal,
        onSample: (samples) => {
          for (const s of samples) {
            const event = indexProgressEvent(s);
            if (samples.length === 1) ctx.out.progress(event, sampleLine(s), s.phasePercent === null ? null : s.phasePercent / 100, 0);
            else ctx.out.event(event, sampleLine(s));
          }
        },
      }));
      ctx.out.result({ builds }, (r) => renderWatched(r.builds));
    }));
  index.command('estimate')
    .description('predicted size and build time of a B-tree index, before building it')
    .argument('<index>', 'a CREATE INDEX statement, or table(columns)')
    .option('--no-measure', 'skip the short read/sort measurement (no build-time estimate)')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, target: string, opts: { measure: boolean }) => {
      const e = await withDatabase(ctx, (db) => estimateIndex(db, target, { measure: opts.measure }));
      ctx.out.result(e, renderEstimate);
    }));
}
