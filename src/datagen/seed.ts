import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { withClient, withTransaction, type Database } from '../db/connection.js';
import { CancelledError, ConfigError, toSyncLookupError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';
import { buildLookup, type BuildEvent, type BuildResult } from '../lookup/build.js';
import type { ModelDefinition, ModelRegistry } from '../lookup/registry.js';
import { STANDARD_SOURCE_COLUMNS } from '../lookup/registry.js';
import { advanceClockTo, CLOCK_SETUP_SQL, CLOCK_TABLE, finishSourceTables, setupSourceTables, TOMBSTONES_TABLE } from '../lookup/source.js';
import { migrate } from '../migrate/runner.js';
import { builtinMigrations } from '../migrations/index.js';
import { LOOKUP_TABLE, TICKS_TABLE } from '../schema/sync-lookup.js';
import { planRows, RowBuffer, SourceRowGenerator, type RowPlan } from './generate.js';

/** Progress of `seedDatabase`. */
export type SeedEvent =
  | { type: 'seed_load'; rows: number; totalRows: number; rowsPerSecond: number; etaMs: number | null }
  | { type: 'seed_phase'; phase: 'schema' | 'build' | 'analyze' }
  | { type: 'seed_build'; event: BuildEvent };

/** Options of `seedDatabase`. */
export interface SeedOptions {
  /** Lookup rows wanted (each source row becomes one lookup row). */
  rows: number;
  /** PRNG seed: same seed, same data. Default 1. */
  seed?: string | number;
  registry: ModelRegistry;
  /**
   * Drop the registry's source tables and empty sync_lookup, its ticks and tombstones first. Without it,
   * seed refuses a database whose lookup or source tables already hold rows.
   */
  replace?: boolean;
  /** Bytes of COPY text per COPY statement. Default 4 MiB. */
  copyBatchBytes?: number;
  signal?: AbortSignal;
  onProgress?: (event: SeedEvent) => void;
}

/** What `seedDatabase` did (the `--json` shape of `sync-lookup seed`). */
export interface SeedResult {
  seed: string;
  rows: number;
  models: { name: string; rows: number }[];
  /** Creating the source tables, generating and COPYing the rows, ANALYZE of the sources. */
  loadMs: number;
  /** Source indexes and triggers, built on a second connection while the initial build runs. */
  sourceIndexMs: number;
  /** The initial build (and attaching the source primary keys), wall time. */
  buildMs: number;
  analyzeMs: number;
  durationMs: number;
  /** Lookup rows per second, end to end (load + indexes + initial build + vacuum and analyze). */
  rowsPerSecond: number;
  build: BuildResult;
}

/**
 * Creates the registry's source tables, fills them with deterministic realistic rows (COPY), then runs the
 * initial build and ANALYZE. Applies the built-in migrations first when `sync_lookup` does not exist.
 *
 * @example
 * const r = await seedDatabase(db, { rows: 100_000, seed: 7, registry: builtinRegistry() });
 * console.log(r.rowsPerSecond);
 */
export async function seedDatabase(db: Database, options: SeedOptions): Promise<SeedResult> {
  if (!Number.isInteger(options.rows) || options.rows <= 0) {
    throw new ConfigError('invalid_option', `rows must be a positive integer, got ${JSON.stringify(options.rows)}`);
  }
  const started = Date.now();
  const emit = options.onProgress ?? (() => {});
  const seed = String(options.seed ?? 1);
  const registry = options.registry;
  emit({ type: 'seed_phase', phase: 'schema' });
  await ensureSchema(db, registry, !!options.replace);
  const plan = planRows(registry, options.rows);

  const loadStart = Date.now();
  // One transaction creates the source tables and loads them: COPY … FREEZE is allowed on a table created
  // in the same transaction, so the rows land frozen and all-visible and the initial build's reads do not
  // dirty every page again to set hint bits. Autovacuum stays off the tables until the seed has finished.
  await withClient(db, { purpose: 'seed', lockTimeoutMs: 30_000 }, async (client) => {
    await client.query(`SELECT set_config('synchronous_commit', 'off', false)`);
    await withTransaction(client, async () => {
      await resetLookup(client);
      await setupSourceTables(client, registry, { replace: true, deferIndexes: true });
      for (const m of registry.models) await client.query(`ALTER TABLE ${quoteIdent(m.name)} SET (autovacuum_enabled = false)`);
      const maxTick = await loadSourceRows(client, registry, plan, seed, options, emit);
      await advanceClockTo(client, maxTick + 1);
      // The initial build's joins read the parents' tables: give the planner their sizes.
      await client.query(`ANALYZE ${registry.models.map((m) => quoteIdent(m.name)).join(', ')}`);
    }).catch((err: unknown) => { throw toSyncLookupError(err); });
  });
  const loadMs = Date.now() - loadStart;
  checkAborted(options.signal);

  // The initial build only reads the source tables (hash joins, no index needed), so their indexes and
  // triggers are built at the same time on a second connection (CREATE INDEX takes a SHARE lock, which
  // does not block readers): on two cores that hides most of their cost. The primary keys are attached to
  // their unique indexes afterwards (ACCESS EXCLUSIVE, catalog only).
  emit({ type: 'seed_phase', phase: 'build' });
  const buildStart = Date.now();
  let sourceIndexMs = 0;
  const indexing = withClient(db, { purpose: 'seed', lockTimeoutMs: 60_000 }, async (client) => {
    await finishSourceTables(client, registry.models, ['indexes', 'triggers']);
    sourceIndexMs = Date.now() - buildStart;
  });
  indexing.catch(() => {}); // awaited below; a build failure must not leave it unobserved
  let build: BuildResult;
  try {
    build = await buildLookup(db, {
      registry, bulkLoad: true, history: true, ...(options.signal ? { signal: options.signal } : {}),
      onEvent: (event) => emit({ type: 'seed_build', event }),
    });
  } finally {
    await indexing.catch(() => {});
  }
  await indexing;
  await withClient(db, { purpose: 'seed', lockTimeoutMs: 30_000 }, (client) => finishSourceTables(client, registry.models, ['constraints']));
  const buildMs = Date.now() - buildStart;

  emit({ type: 'seed_phase', phase: 'analyze' });
  const analyzeStart = Date.now();
  await withClient(db, { purpose: 'seed' }, async (c) => {
    // VACUUM, not only ANALYZE: a production table is hinted and all-visible. Left fresh, the first statement
    // to read it (a benchmark's baseline, say) would pay for setting every hint bit (and, with data checksums,
    // a full-page WAL image per page), a cost that has nothing to do with the statement measured.
    await c.query(`VACUUM (ANALYZE) ${LOOKUP_TABLE}, ${TICKS_TABLE}`);
    for (const m of registry.models) await c.query(`ALTER TABLE ${quoteIdent(m.name)} RESET (autovacuum_enabled)`);
  });
  const analyzeMs = Date.now() - analyzeStart;
  const durationMs = Date.now() - started;
  return {
    seed, rows: plan.totalRows, models: plan.models, loadMs, sourceIndexMs, buildMs, analyzeMs, durationMs,
    rowsPerSecond: Math.round(build.rows / Math.max(0.001, durationMs / 1000)), build,
  };
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('cancelled: seeding was interrupted (run seed again with --replace)');
}

async function ensureSchema(db: Database, registry: ModelRegistry, replace: boolean): Promise<void> {
  const exists = await withClient(db, { purpose: 'seed' }, async (c) =>
    (await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [LOOKUP_TABLE])).rows[0]?.ok);
  if (!exists) await migrate(db, { migrations: builtinMigrations() });
  await withClient(db, { purpose: 'seed', lockTimeoutMs: 30_000 }, async (c) => {
    if (!replace) {
      const busy: string[] = [];
      if ((await c.query(`SELECT 1 FROM ${LOOKUP_TABLE} LIMIT 1`)).rowCount) busy.push(LOOKUP_TABLE);
      for (const m of registry.models) {
        const { rows } = await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [quoteIdent(m.name)]);
        if (rows[0]?.ok && (await c.query(`SELECT 1 FROM ${quoteIdent(m.name)} LIMIT 1`)).rowCount) busy.push(m.name);
      }
      if (busy.length) {
        throw new ConfigError('database_not_empty',
          `seed needs an empty lookup and empty source tables, but ${busy.slice(0, 5).join(', ')}${busy.length > 5 ? ` and ${busy.length - 5} more` : ''} ` +
          'hold rows; pass --replace to drop the source tables and empty sync_lookup (never on a real server)', { tables: busy });
      }
    }
    await c.query(CLOCK_SETUP_SQL);
  });
}

/**
 * Empties the lookup, its ticks and tombstones and resets the clock: called inside the load transaction, so
 * a seed killed before that commits leaves the old sources and their lookup exactly as they were, and one
 * killed after it leaves new sources with an empty lookup that the next `build` fills (never an emptied
 * lookup beside old sources whose ticks are ahead of a reset clock).
 */
async function resetLookup(client: pg.ClientBase): Promise<void> {
  await client.query(`TRUNCATE ${LOOKUP_TABLE}, ${TICKS_TABLE}, ${TOMBSTONES_TABLE}`);
  await client.query(`UPDATE ${CLOCK_TABLE} SET tick = 0`);
}

/** Streams generated rows into the source tables, one COPY per batch; returns the highest tick written. */
async function loadSourceRows(
  client: pg.ClientBase, registry: ModelRegistry, plan: RowPlan, seed: string, options: SeedOptions, emit: (e: SeedEvent) => void,
): Promise<number> {
  const generator = new SourceRowGenerator(registry, plan, { seed });
  const batchBytes = options.copyBatchBytes ?? 4 * 1024 * 1024;
  // Rows are written straight into per-model byte buffers (no JS strings), handed over in 256 KB pieces.
  interface Pending { model: ModelDefinition; out: RowBuffer; chunks: Buffer[]; bytes: number }
  const buffers = new Map<ModelDefinition, Pending>();
  for (const m of registry.models) buffers.set(m, { model: m, out: new RowBuffer(), chunks: [], bytes: 0 });
  const started = Date.now();
  let lastReport = 0;
  // One COPY in flight while the next batch is generated: Node and the server work at the same time.
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (b: Pending) => {
    if (b.out.pos) b.chunks.push(b.out.take());
    const chunks = b.chunks;
    b.chunks = [];
    b.bytes = 0;
    await inFlight;
    checkAborted(options.signal);
    inFlight = copyInto(client, b.model, chunks);
    inFlight.catch(() => {}); // observed by the next await
  };
  let current: Pending | undefined;
  const target = (m: ModelDefinition) => (current = buffers.get(m)!).out;
  while (generator.nextInto(target)) {
    const b = current!;
    if (b.out.pos >= 240 * 1024) {
      b.bytes += b.out.pos;
      b.chunks.push(b.out.take());
      if (b.bytes >= batchBytes) await flush(b);
    }
    // Generation is synchronous: give the event loop a turn now and then so the COPY in flight keeps
    // streaming to the server while the next batch is generated.
    if (generator.emitted % 4096 === 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const now = Date.now();
      if (now - lastReport >= 250) {
        lastReport = now;
        const rate = generator.emitted / Math.max(0.001, (now - started) / 1000);
        emit({ type: 'seed_load', rows: generator.emitted, totalRows: plan.totalRows, rowsPerSecond: Math.round(rate),
          etaMs: rate > 0 ? Math.round(((plan.totalRows - generator.emitted) / rate) * 1000) : null });
        checkAborted(options.signal);
      }
    }
  }
  for (const b of buffers.values()) if (b.out.pos || b.chunks.length) await flush(b);
  await inFlight;
  const elapsed = Math.max(0.001, (Date.now() - started) / 1000);
  emit({ type: 'seed_load', rows: generator.emitted, totalRows: plan.totalRows, rowsPerSecond: Math.round(generator.emitted / elapsed), etaMs: 0 });
  return generator.maxTick;
}

async function copyInto(client: pg.ClientBase, model: ModelDefinition, chunks: Buffer[]): Promise<void> {
  const columns = [...STANDARD_SOURCE_COLUMNS, ...model.columns.map((c) => c.name)].map(quoteIdent).join(', ');
  const stream = client.query(copyFrom(`COPY ${quoteIdent(model.name)} (${columns}) FROM STDIN WITH (FREEZE)`));
  try {
    await pipeline(Readable.from(chunks), stream);
  } catch (err) {
    throw toSyncLookupError(err, { table: model.name });
  }
}
