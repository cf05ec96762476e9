import { createHash } from 'node:crypto';
import { databaseFromUrl, serverVersion, withClient, type Database } from '../db/connection.js';
import { setupSourceTables } from '../lookup/source.js';
import { CancelledError, ConfigError, toSyncLookupError } from '../db/errors.js';
import { planRows, SourceRowGenerator } from '../datagen/generate.js';
import { seedDatabase, type SeedEvent } from '../datagen/seed.js';
import { insertLookupRowsInTickOrder, selectLookupRows } from '../lookup/sql.js';
import { migrate } from '../migrate/runner.js';
import { builtinMigrations } from '../migrations/index.js';
import {
  benchRegistry, copyLookup, copySourceTables, countRows, fixedTypeRows, openBenchData, setRecordTypeIndex, timed, vacuumLookup, type BenchData,
} from './dataset.js';
import { machineInfo } from './machine.js';
import { SCENARIO_NAMES, formatRowCount, type ScenarioName } from './options.js';
import type { RunOutcome, Scenario, Variant } from './scenario.js';
import { RESYNC_TYPES, SCENARIOS, SEED_TITLE, typeCounts } from './scenarios.js';
import { applySlopes, summarise, type Samples } from './summary.js';
import { openBenchTarget, type BenchDatabase, type BenchTarget, type DatasetSpec } from './target.js';
import type { BenchReport, MachineInfo, ScenarioResult } from './types.js';
import { openWorkMeter, pagesHoldingRows, type WorkMeter } from './work.js';
import { coldNote, openCold, type Cold } from './cold.js';
import { projectResults } from './projection.js';

/** Progress of a benchmark (the CLI renders it on stderr). */
export type BenchEvent =
  | { type: 'info'; text: string }
  | { type: 'progress'; text: string; fraction: number | null }
  | { type: 'run'; scenario: ScenarioName; form: 'original' | 'ours'; rows: number; run: number; of: number; ms: number; restoreMs: number };

/** Options of {@link runBench}. */
export interface BenchOptions {
  /** Connection string of the server to benchmark on (the user's database or the embedded one). */
  url: string;
  /** True for a user's server (DATABASE_URL): refuses a database with data of its own unless `force`. */
  external: boolean;
  force?: boolean;
  /** Name prefix of the bench-owned databases; default `sync_lookup_bench`. */
  databasePrefix?: string;
  /** Table sizes (lookup rows), e.g. [500_000, 1_000_000, 2_000_000]. */
  sizes: number[];
  /** Scenarios to run, by contract name; default all. */
  scenarios?: readonly ScenarioName[];
  /** Runs per form and size; the median is reported. Default 3. */
  repeat?: number;
  /** Generator seed. Default 1. */
  seed?: number;
  /** Reseed even when a bench database already holds the same data. */
  fresh?: boolean;
  /** Project every scenario's time to this many rows (`projection` in the report); needs two or more sizes. */
  projectRows?: number;
  /** Empty PostgreSQL's buffers and the OS page cache before every timed run (see cold.ts). */
  cold?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: BenchEvent) => void;
}

/**
 * Identifies what the generator produces, so a bench database is reused only for identical data: the
 * registry, the first generated source rows and the SQL that derives lookup rows from them. A change to
 * any of these (a new generator, a new lookup derivation) makes the next run reseed.
 */
function datasetSpec(size: number, seed: number, layout: DatasetSpec['layout']): DatasetSpec {
  const registry = benchRegistry(size);
  const hash = createHash('sha256').update(JSON.stringify(registry.models));
  const generator = new SourceRowGenerator(registry, planRows(registry, size), { seed: String(seed) });
  for (let i = 0, row = generator.next(); i < 200 && row; i++, row = generator.next()) hash.update(row.line);
  for (const m of registry.models) hash.update(selectLookupRows(m, { lookupTick: 'source' }).text);
  // The initial load's statement decides the heap order and ticks of the lookup rows.
  hash.update(insertLookupRowsInTickOrder(registry.models, { beforeTick: 0 }).text);
  return { rows: size, seed, layout, variant: { data: hash.digest('hex').slice(0, 16), fixed_type_rows: fixedTypeRows(size) } };
}

function seedProgress(emit: (e: BenchEvent) => void, label: string): (e: SeedEvent) => void {
  return (e) => {
    if (e.type === 'seed_load') {
      emit({ type: 'progress', fraction: e.totalRows ? e.rows / e.totalRows : null,
        text: `${label}: loading source rows ${e.rows.toLocaleString('en-US')}/${e.totalRows.toLocaleString('en-US')} ` +
          `(${e.rowsPerSecond.toLocaleString('en-US')} rows/s${e.etaMs !== null ? `, ${Math.ceil(e.etaMs / 1000)} s left` : ''})` });
    } else if (e.type === 'seed_phase') {
      emit({ type: 'progress', fraction: null, text: `${label}: ${e.phase.replace('_', ' ')} …` });
    } else if (e.event.type === 'model_done') {
      emit({ type: 'progress', fraction: null, text: `${label}: initial build: ${e.event.model} (${e.event.rows.toLocaleString('en-US')} rows)` });
    }
  };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new CancelledError('benchmark interrupted');
}

/** Source tables copied into the partitioned dataset: those of the types resync-types-partitioned resyncs. */
const PARTITIONED_SOURCES = RESYNC_TYPES;

interface Planned { scenario: Scenario; form: 'original' | 'ours'; variant: Variant }

/** The order that needs the fewest index builds: the table as it was first, then with the index. */
function runOrder(scenarios: Scenario[]): Planned[] {
  const items: Planned[] = scenarios.flatMap((s) => [
    ...(s.baseline ? [{ scenario: s, form: 'original' as const, variant: s.baseline }] : []),
    { scenario: s, form: 'ours' as const, variant: s.ours },
  ]);
  const rank = (p: Planned) => ((p.variant.dataset ?? 'plain') === 'plain' ? 0 : 10) + ({ absent: 0, any: 1, present: 2 })[p.variant.index];
  return items.map((p, i) => ({ p, i })).sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i).map((x) => x.p);
}

/**
 * Runs the benchmark: for each size, seeds (or reuses) a bench-owned database, then runs every selected
 * scenario's original form and ours `repeat` times each, restoring the starting state after each run,
 * and reports medians, speedups, plans in words and, with several sizes, growth exponents.
 *
 * @example
 * const report = await runBench({ url, external: false, sizes: [500_000, 1_000_000], repeat: 3 });
 * console.log(report.scenarios.map((s) => `${s.name} ${s.speedup}x`));
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const { repeat, seed, names, sizes } = benchSelection(options);
  const started = Date.now();
  const results: ScenarioResult[] = [];
  const target = await openBenchTarget({
    url: options.url, external: options.external, ...(options.force ? { force: true } : {}),
    ...(options.databasePrefix ? { databasePrefix: options.databasePrefix } : {}),
  });
  const run: BenchRun = { options, emit: options.onEvent ?? (() => {}), repeat, seed, target, notes: [], postgres: '' };
  try {
    let selected = names;
    if (target.mode === 'entry') {
      const skipped = selected.filter((n) => n === 'seed' || SCENARIOS.get(n)?.ours.dataset === 'partitioned');
      if (skipped.length) {
        run.notes.push(`skipped ${skipped.join(', ')}: the role may not create databases, and these need a second database`);
        selected = selected.filter((n) => !(skipped as string[]).includes(n));
      }
    }
    const scenarios = selected.filter((n) => n !== 'seed').map((n) => SCENARIOS.get(n)!);
    for (const size of sizes) {
      checkAborted(options.signal);
      results.push(...await benchSize(run, size, scenarios));
      if (selected.includes('seed')) results.push(await seedScenario(target, size, seed, repeat, options, run.emit));
    }
    if (!run.machine) {
      // Only the seed scenario ran: describe the server from a bench database anyway.
      const name = target.used[0];
      if (name) await withClient(databaseAt(options.url, name), { purpose: 'bench' }, (c) => describeServer(run, c));
    }
  } finally {
    await target.close();
  }
  if (sizes.length > 1) applySlopes(results);
  if (options.projectRows && sizes.length < 2) run.notes.push('--project needs two or more sizes (--rows a,b): no projection');
  return {
    postgres: run.postgres, machine: run.machine!, sizes, repeat, seed, started_at: new Date(started).toISOString(), duration_ms: Date.now() - started,
    databases: [...target.used], scenarios: results,
    ...(options.projectRows && sizes.length > 1 ? { projection: projectResults(results, options.projectRows) } : {}),
    notes: run.notes,
  };
}

/** The options checked and settled: runs per form, seed, scenarios in contract order, sizes ascending. */
function benchSelection(options: BenchOptions): { repeat: number; seed: number; names: ScenarioName[]; sizes: number[] } {
  const repeat = options.repeat ?? 3;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1) throw new ConfigError('invalid_option', `repeat must be a positive integer, got ${repeat}`);
  if (!options.sizes.length) throw new ConfigError('invalid_rows', 'name at least one table size');
  const names = options.scenarios?.length ? SCENARIO_NAMES.filter((n) => options.scenarios!.includes(n)) : [...SCENARIO_NAMES];
  return { repeat, seed, names, sizes: [...new Set(options.sizes)].sort((a, b) => a - b) };
}

/** One benchmark run in progress: its settings, where it runs, and what it has learnt so far. */
interface BenchRun {
  options: BenchOptions;
  emit: (e: BenchEvent) => void;
  repeat: number;
  seed: number;
  target: BenchTarget;
  notes: string[];
  postgres: string;
  machine?: MachineInfo;
}

type Layout = 'plain' | 'partitioned';
interface OpenedDataset { d: BenchDatabase; data: BenchData; meter: WorkMeter; cold?: Cold; close(): Promise<void> }
type Datasets = Partial<Record<Layout, OpenedDataset | undefined>>;

async function describeServer(run: BenchRun, client: BenchData['control']): Promise<void> {
  run.postgres = (await serverVersion(client)).version;
  run.machine = await machineInfo(client);
}

/** Every scenario at one table size: opens (or seeds) its datasets, runs, checks the restore, releases them. */
async function benchSize(run: BenchRun, size: number, scenarios: Scenario[]): Promise<ScenarioResult[]> {
  const label = formatRowCount(size);
  const datasets: Datasets = {};
  const results: ScenarioResult[] = [];
  try {
    if (scenarios.length) datasets.plain = await openDataset(run, size, 'plain', datasets);
    if (scenarios.some((s) => s.ours.dataset === 'partitioned')) datasets.partitioned = await openDataset(run, size, 'partitioned', datasets);
    const plain = datasets.plain?.data;
    if (plain && !run.machine) await describeServer(run, plain.control);
    const before = plain ? { rows: await countRows(plain.control), types: await typeCounts(plain.control) } : undefined;
    const { samples, failed, dirty } = await runScenarios(run, label, scenarios, datasets);
    if (plain && before) {
      const after = { rows: await countRows(plain.control), types: await typeCounts(plain.control) };
      if (JSON.stringify(after) !== JSON.stringify(before)) {
        run.notes.push(`[${label}] the restore check found a difference (before ${JSON.stringify(before)}, after ${JSON.stringify(after)}); ` +
          'the database will be reseeded next time');
        datasets.plain!.d.reused = false;
        await datasets.plain!.close();
        datasets.plain = undefined;
      }
    }
    for (const s of scenarios) {
      const ours = samples.get(`${s.name}/ours`);
      if (!ours || failed.has(s.name)) continue;
      results.push(summarise(s, size, plain?.rows ?? size, samples.get(`${s.name}/original`), ours));
    }
    for (const layout of ['plain', 'partitioned'] as const) {
      const ds = datasets[layout];
      if (!ds) continue;
      await ds.close();
      // A dataset a failed scenario may have left changed stays `in_use`: the next run reseeds it.
      if (!dirty.has(layout)) await run.target.release(ds.d);
      datasets[layout] = undefined;
    }
  } finally {
    for (const ds of Object.values(datasets)) await ds?.close().catch(() => {});
  }
  return results;
}

/** Reuses or seeds the dataset of one size and layout (a partitioned one is copied from the plain one). */
async function openDataset(run: BenchRun, size: number, layout: Layout, datasets: Datasets): Promise<OpenedDataset> {
  const { options, emit, seed } = run;
  const signal = options.signal ? { signal: options.signal } : {};
  const registry = benchRegistry(size);
  const spec = datasetSpec(size, seed, layout);
  // A partitioned copy follows its plain source: reseeding that one makes the copy stale.
  if (layout === 'partitioned') spec.variant.source = { plain: datasets.plain!.d.name, reseeded: !datasets.plain!.d.reused, sources: PARTITIONED_SOURCES };
  const what = `${formatRowCount(size)} rows${layout === 'partitioned' ? ' (partitioned layout)' : ''}`;
  const d = await run.target.dataset(spec, async (db) => {
    emit({ type: 'info', text: `seeding ${what} (seed ${seed}) …` });
    if (layout === 'partitioned') {
      // The same rows as the plain dataset, copied into the partitioned layout (a partition per model).
      await migrate(db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: registry.names }) });
      emit({ type: 'info', text: `copying the plain dataset's lookup rows into the partitioned layout …` });
      // The source tables too (empty), with the rows of the types the partitioned scenarios resync.
      await withClient(db, { purpose: 'bench-seed' }, (c) => setupSourceTables(c, registry));
      await copySourceTables(datasets.plain!.d.db, db, PARTITIONED_SOURCES, signal);
      const { ms, value } = await timed(() => copyLookup(datasets.plain!.d.db, db, signal));
      emit({ type: 'info', text: `copied ${value.toLocaleString('en-US')} rows in ${(ms / 1000).toFixed(1)} s` });
      return;
    }
    const r = await seedDatabase(db, { rows: size, seed, registry, onProgress: seedProgress(emit, `seed ${what}`), ...signal });
    emit({ type: 'info', text: `seeded ${r.rows.toLocaleString('en-US')} rows in ${(r.durationMs / 1000).toFixed(1)} s (${r.rowsPerSecond.toLocaleString('en-US')} rows/s)` });
  }, { fresh: !!options.fresh });
  if (d.reused) emit({ type: 'info', text: `reusing ${what} in database ${d.name} (same size, seed and generator)` });
  const opened = await openBenchData({ db: d.db, name: d.name, size, layout, registry,
    log: (text) => emit({ type: 'info', text: `  ${text}` }), ...signal });
  const meter = await openWorkMeter(opened.data.control);
  const note = meter.source === 'pg_stat_statements'
    ? 'pages and WAL of each run from pg_stat_statements (statements of the simulated traffic left out)'
    : 'pg_stat_statements is not loaded on this server (shared_preload_libraries): pages are not counted (null), WAL is the WAL position diff';
  if (!run.notes.includes(note)) run.notes.push(note);
  const cold = options.cold ? await openCold(opened.data.control) : undefined;
  if (cold && !run.notes.includes(coldNote(cold.method))) run.notes.push(coldNote(cold.method));
  return { d, meter, ...(cold ? { cold } : {}), ...opened };
}

/** Runs each scenario's forms in the order that needs the fewest index builds; a failing one is noted and left out. */
async function runScenarios(run: BenchRun, label: string, scenarios: Scenario[], datasets: Datasets) {
  const samples = new Map<string, Samples>();
  const failed = new Set<string>();
  const dirty = new Set<Layout>();
  const order = runOrder(scenarios);
  for (const [i, item] of order.entries()) {
    const layout = item.variant.dataset ?? 'plain';
    const { data, meter, cold } = datasets[layout]!;
    run.emit({ type: 'info', text: `[${label}] ${item.scenario.name}, ${item.form === 'original' ? 'original form' : 'ours'} (${i + 1}/${order.length})` });
    try {
      samples.set(`${item.scenario.name}/${item.form}`, await runForm(run, item, data, meter, cold));
    } catch (err) {
      if (run.options.signal?.aborted || err instanceof CancelledError) throw err;
      // One broken scenario must not cost the whole run: say so, put the data back, go on.
      const message = toSyncLookupError(err).message;
      run.notes.push(`[${label}] ${item.scenario.name} (${item.form}) failed and is left out: ${message}`);
      run.emit({ type: 'info', text: `  failed: ${message}` });
      failed.add(item.scenario.name);
      await item.variant.restore?.(data).catch(() => {});
      dirty.add(layout);
    }
  }
  return { samples, failed, dirty };
}

/** One form of one scenario, `repeat` timed runs, each from a checkpoint and followed by the restore. */
async function runForm(run: BenchRun, item: Planned, data: BenchData, meter: WorkMeter, cold?: Cold): Promise<Samples> {
  const s: Samples = { plan: null, runs: [], vacuumMs: [], restoreMs: [] };
  if (item.variant.index !== 'any') await setRecordTypeIndex(data, item.variant.index);
  await item.variant.prepare?.(data);
  let holding = item.scenario.touches ? -1 : undefined;
  s.plan = item.variant.plan ? await item.variant.plan(data).catch((err: unknown) => `(plan unavailable: ${toSyncLookupError(err).message})`) : null;
  for (let i = 1; i <= run.repeat; i++) {
    checkAborted(run.options.signal);
    await item.variant.before?.(data, i);
    if (holding === -1) holding = s.holdingPages = await pagesHoldingRows(data.control, item.scenario.touches!);
    // Every timed run starts after a checkpoint, as on a server where checkpoints come every few
    // minutes: the first change to each page then writes its full-page image to WAL, in both forms.
    // Without it the restore before the run has already paid that, and has left the pages cached.
    await checkpoint(data, run.notes);
    await cold?.evict();
    await meter.start();
    const outcome = await item.variant.run(data, i);
    outcome.work = await meter.stop();
    s.runs.push(outcome);
    if (item.variant.vacuum) s.vacuumMs.push(await vacuumLookup(data));
    const { ms: restoreMs } = await timed(async () => { await item.variant.restore?.(data); });
    if (item.variant.restore) s.restoreMs.push(restoreMs);
    run.emit({ type: 'run', scenario: item.scenario.name, form: item.form, rows: data.rows, run: i, of: run.repeat, ms: outcome.ms, restoreMs });
  }
  return s;
}

function databaseAt(url: string, name: string): Database {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return databaseFromUrl(u.toString());
}

/** `seed`: seeds a scratch database `repeat` times and reports the median time and throughput. */
async function seedScenario(
  target: BenchTarget, size: number, seed: number, repeat: number, options: BenchOptions, emit: (e: BenchEvent) => void,
): Promise<ScenarioResult> {
  const registry = benchRegistry(size);
  const spec: DatasetSpec = { ...datasetSpec(size, seed, 'plain'), scratch: true };
  const runs: RunOutcome[] = [];
  let rows = size;
  for (let run = 1; run <= repeat; run++) {
    checkAborted(options.signal);
    emit({ type: 'info', text: `[${formatRowCount(size)}] seed, run ${run}/${repeat} (scratch database)` });
    let outcome: RunOutcome | undefined;
    const d = await target.dataset(spec, async (db) => {
      const r = await seedDatabase(db, { rows: size, seed, registry, onProgress: seedProgress(emit, `seed ${formatRowCount(size)}`),
        ...(options.signal ? { signal: options.signal } : {}) });
      rows = r.build.rows;
      outcome = { ms: r.durationMs, rowsAffected: r.build.rows,
        extra: { rows_per_s: r.rowsPerSecond, load_ms: r.loadMs, source_index_ms: r.sourceIndexMs, build_ms: r.buildMs, analyze_ms: r.analyzeMs } };
    }, { fresh: true });
    await target.drop(d.name);
    runs.push(outcome!);
    emit({ type: 'run', scenario: 'seed', form: 'ours', rows, run, of: repeat, ms: outcome!.ms, restoreMs: 0 });
  }
  return summarise({ name: 'seed', title: SEED_TITLE }, size, rows, undefined,
    { plan: null, runs, vacuumMs: [], restoreMs: [] });
}

/** CHECKPOINT before a timed run; a role without the right (pg_checkpoint, PostgreSQL 15+) is noted once. */
async function checkpoint(data: BenchData, notes: string[]): Promise<void> {
  await data.control.query('checkpoint').catch((err: unknown) => {
    const note = `runs were not preceded by a CHECKPOINT (${toSyncLookupError(err).message}): both forms find their pages already logged`;
    if (!notes.includes(note)) notes.push(note);
  });
}
