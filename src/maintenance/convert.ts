import type pg from 'pg';
import { ConfigError, LockNotAcquiredError, CheckFailedError, toSyncLookupError, CancelledError } from '../db/errors.js';
import { advisoryUnlock, tryAdvisoryLock, unlessUnlockFailed } from '../db/advisory.js';
import { quoteQualified, type QualifiedName } from '../db/quote.js';
import { planConversion } from './convert-plan.js';
import { isRetryableLockError, pause, throwIfAborted, withLockRetries } from '../db/session.js';
import { builtinRegistry, type ModelRegistry } from '../lookup/registry.js';
import type { Layout } from '../schema/partitioned.js';
import { ensureToolSchema } from '../schema/tool.js';
import { BatchSizer, batchTuning, type BatchTuning } from './batches.js';
import { applyChanges, applyTruncateMarkers, copyBatch, pendingChanges, settlePending, verifyTables, type VerifyReport } from './convert-copy.js';
import { livePartitionOids, swapTables } from './convert-swap.js';
import {
  CHANGES_TABLE, CONVERSION_TABLE, KEPT, LIVE, PENDING_TABLE, SHADOW, columnList, ensureConversionTables,
  grantsSql, installCapture, shadowIndexes, shadowTableSql, tempIndexName,
} from './convert-tables.js';
import { openWorkSession, type MaintenanceTarget, type WorkSession } from './session.js';

/*
 * `convert --to partitioned|plain`: builds the other layout beside the live table and swaps it in online.
 * Phases, each resumable from the state row in the tool's schema (a crash or Ctrl-C loses at most one batch):
 *   capture (shadow table created and the change-capture triggers installed, in one transaction)
 *   → copy (keyset batches over id, no index on the shadow yet) → index (the live table's indexes, temporary names)
 *   → catchup (apply the logged changes) → verify (counts and checksums per type in one snapshot)
 *   → swap (one short transaction, retried under lock_timeout) → swapped.
 * The previous table stays in the tool's schema, still fed by change capture, until `--finish` drops it or
 * `--rollback` swaps it back.
 */

/** Phases of a conversion, in order. */
export type ConvertPhase = 'capture' | 'copy' | 'index' | 'catchup' | 'verify' | 'swapped' | 'rolled_back';

/** Events a conversion reports (the CLI prints them; one JSON line each under --json). */
export type ConvertEvent =
  | { type: 'phase'; phase: string; detail: string }
  | { type: 'progress'; phase: string; rows: number; total_rows: number | null; rows_per_s: number; eta_ms: number | null }
  | { type: 'lock_retry'; attempt: number; attempts: number; lock_timeout_ms: number; sleep_ms: number; waited_ms: number };

/** Options of `convertLayout`. */
export interface ConvertOptions {
  to: Layout;
  /** Registered types get their own partition (default: the built-in registry). */
  registry?: ModelRegistry;
  /** Target duration of one copy batch (its size adapts). Default 200 ms. */
  batchMs?: number;
  initialBatchRows?: number;
  /** Pause between batches (throttle). Default 0. */
  pauseMs?: number;
  /** lock_timeout of batches and of the capture's trigger creation. Default 2 000 ms. */
  lockTimeoutMs?: number;
  /**
   * lock_timeout of the swap's first attempt: the longest a waiting swap may queue sync traffic. Later attempts
   * wait a little longer each (up to 700 ms, or this value if larger), so long pulls cannot starve the swap. Default 200 ms.
   */
  swapLockTimeoutMs?: number;
  /** Swap attempts before giving up (the conversion stays resumable). Default 60. */
  swapAttempts?: number;
  /** Refuse when free disk space is known to be short (default true). */
  checkDisk?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: ConvertEvent) => void;
}

/** What `convertLayout` did (the `convert --json` result). */
export interface ConvertResult {
  action: 'convert';
  from_layout: Layout;
  /** The layout after. */
  layout: Layout;
  resumed: boolean;
  rows_copied: number;
  changes_applied: number;
  /** This run, from start to swap. */
  duration_ms: number;
  /** The longest time sync traffic waited on the swap (lock waits of failed attempts included). */
  longest_write_stall_ms: number;
  swap_attempts: number;
  /** True only when the two tables matched (per-type counts and checksums, then row by row) before the swap. */
  verified: boolean;
  verify: VerifyReport | null;
  phases_ms: Record<string, number>;
  /** Where the previous table is kept (until `convert --finish`). */
  kept_table: string;
}

export interface StateRow {
  from_layout: Layout; to_layout: Layout; phase: ConvertPhase; after_id: string | null; rows_copied: string; total_rows: string | null;
  changes_applied: string; verified: boolean | null; longest_write_stall_ms: number | null; state: Record<string, unknown>;
}

export async function readState(client: pg.ClientBase): Promise<StateRow | null> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [CONVERSION_TABLE]);
  if (!t?.ok) return null;
  const { rows } = await client.query<StateRow>(`SELECT * FROM ${CONVERSION_TABLE}`);
  return rows[0] ?? null;
}

export async function setState(client: pg.ClientBase, fields: Record<string, unknown>): Promise<void> {
  const keys = Object.keys(fields);
  await client.query(`UPDATE ${CONVERSION_TABLE} SET ${keys.map((k, i) => `${k} = $${i + 1}`).join(', ')}, updated_at = now()`,
    keys.map((k) => (k === 'state' ? JSON.stringify(fields[k]) : fields[k])));
}

export const LOCK_KEY = 'sync-lookup:convert';

/**
 * Takes the conversion's advisory lock (one conversion at a time) and returns its checked release, for a
 * `finally`; throws LockNotAcquiredError `conversion_running` when another session holds it.
 */
export async function lockConversion(client: pg.ClientBase): Promise<() => Promise<void>> {
  if (!(await tryAdvisoryLock(client, LOCK_KEY))) {
    throw new LockNotAcquiredError('conversion_running', 'another sync-lookup convert is running on this database; wait for it or cancel it');
  }
  return () => advisoryUnlock(client, LOCK_KEY, 'the conversion lock').catch(unlessUnlockFailed);
}

/** Context of one run. */
export interface Run {
  session: WorkSession; options: Omit<ConvertOptions, 'to'> & { to?: Layout }; tuning: BatchTuning; emit: (e: ConvertEvent) => void; cols: string;
  phasesMs: Record<string, number>;
  /** Where logged changes go: the shadow before the swap, the kept table for a rollback. */
  target?: QualifiedName;
}

/**
 * Converts `sync_lookup` to the other layout online (see the phases above). Resumes an interrupted conversion to
 * the same layout. ConfigError when the table already has that layout, a conversion to the other layout is
 * unfinished or swapped, objects depend on the table by oid, or the disk is known to be too small;
 * CheckFailedError when the tables do not match before the swap (nothing is swapped); CancelledError on abort.
 *
 * @example
 * const r = await convertLayout(db, { to: 'partitioned', onEvent: (e) => log(e) }); // r.verified, r.longest_write_stall_ms
 */
export async function convertLayout(target: MaintenanceTarget, options: ConvertOptions): Promise<ConvertResult> {
  const started = performance.now();
  const tuning = batchTuning(options);
  const session = await openWorkSession(target, 'convert', tuning.lockTimeoutMs);
  let unlock: (() => Promise<void>) | undefined;
  try {
    unlock = await lockConversion(session.client);
    await ensureToolSchema(session.client);
    await ensureConversionTables(session.client);
    const existing = await readState(session.client);
    const from = await startOrResume(session, existing, options);
    const run: Run = { session, options, tuning, emit: options.onEvent ?? (() => {}), cols: await columnList(session.client, LIVE), phasesMs: {} };
    if (existing) run.emit({ type: 'phase', phase: existing.phase, detail: `resuming the conversion to ${options.to} at phase ${existing.phase}` });
    await runPhases(run);
    const s = (await readState(session.client))!;
    return {
      action: 'convert', from_layout: from, layout: options.to, resumed: !!existing, rows_copied: Number(s.rows_copied),
      changes_applied: Number(s.changes_applied), duration_ms: Math.round(performance.now() - started),
      longest_write_stall_ms: s.longest_write_stall_ms ?? 0, swap_attempts: Number(s.state.swap_attempts ?? 0), verified: !!s.verified,
      verify: (s.state.verify as VerifyReport | undefined) ?? null, phases_ms: run.phasesMs, kept_table: `${KEPT.schema}.${KEPT.name}`,
    };
  } catch (err) {
    throw options.signal?.aborted && !(err instanceof CancelledError)
      ? new CancelledError('convert was cancelled; the batch in flight was rolled back: run the same command again to continue')
      : toSyncLookupError(err);
  } finally {
    await unlock?.().finally(() => session.close());
  }
}

/** Validates a new conversion (and records it) or the resumption of one; returns the layout converted from. */
async function startOrResume(session: WorkSession, existing: StateRow | null, options: ConvertOptions): Promise<Layout> {
  if (existing) {
    if (existing.phase === 'rolled_back') throw new ConfigError('conversion_rolling_back', 'a rollback was interrupted after swapping back; run `sync-lookup convert --rollback` to finish it');
    if (existing.phase === 'swapped') {
      throw new ConfigError('conversion_swapped', `sync_lookup was already converted to ${existing.to_layout}; ` +
        'run `sync-lookup convert --finish` to drop the previous table, or `--rollback` to go back');
    }
    if (existing.to_layout !== options.to) {
      throw new ConfigError('conversion_unfinished', `a conversion to ${existing.to_layout} is unfinished; run it again to continue, or \`convert --rollback\` to abandon it`);
    }
    return existing.from_layout;
  }
  const plan = await planConversion(session, options);
  if (plan.disk_check === 'insufficient' && options.checkDisk !== false) {
    throw new ConfigError('insufficient_disk', `the conversion needs about ${plan.disk_needed_bytes} bytes and ${plan.disk_path} has ${plan.disk_free_bytes} free. Nothing was changed`,
      { needed: plan.disk_needed_bytes, free: plan.disk_free_bytes });
  }
  await session.client.query(`INSERT INTO ${CONVERSION_TABLE} (from_layout, to_layout, phase, backend_pid) VALUES ($1, $2, 'capture', $3)`,
    [plan.from_layout, options.to, session.pid]);
  return plan.from_layout;
}

async function runPhases(run: Run): Promise<void> {
  const steps: [ConvertPhase, (run: Run) => Promise<void>][] = [
    ['capture', capturePhase], ['copy', copyPhase], ['index', indexPhase], ['catchup', catchupPhase], ['verify', verifyAndSwap],
  ];
  const order = steps.map(([p]) => p);
  for (const [phase, fn] of steps) {
    const current = (await readState(run.session.client))!.phase;
    if (order.indexOf(current) > order.indexOf(phase) || current === 'swapped' || current === 'rolled_back') continue;
    const t0 = performance.now();
    await fn(run);
    run.phasesMs[phase] = Math.round(performance.now() - t0);
  }
}

/** Shadow table and capture triggers in one transaction: from its commit on, every change is logged. */
async function capturePhase(run: Run): Promise<void> {
  const { session, options } = run;
  const types = (options.registry ?? builtinRegistry()).names;
  run.emit({ type: 'phase', phase: 'capture', detail: `creating ${SHADOW.schema}.${SHADOW.name} (${options.to!}) and capturing changes to sync_lookup` });
  await withLockRetries(session, async () => {
    for (const sql of await shadowTableSql(session.client, options.to!, types)) await session.client.query(sql);
    for (const sql of await grantsSql(session.client)) await session.client.query(sql);
    await installCapture(session.client);
    const { rows: [n] } = await session.client.query<{ n: string }>(
      `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint::text AS n FROM pg_class c
        WHERE c.relkind = 'r' AND (c.oid = $1::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass))`, [quoteQualified(LIVE)]);
    await setState(session.client, { phase: 'copy', total_rows: Number(n?.n ?? 0) });
  }, lockPolicy(run, 'the capture could not take its lock on sync_lookup'));
}

function lockPolicy(run: Run, what: string) {
  return {
    lockTimeoutsMs: [run.tuning.lockTimeoutMs], attempts: run.tuning.lockAttempts,
    sleepMs: (attempt: number) => Math.min(5000, 100 * attempt), signal: run.options.signal,
    exhausted: (attempts: number, ms: number) => `${what} within ${ms} ms in ${attempts} attempts; the conversion is resumable`,
    onRetry: (e: { attempt: number; attempts: number; lock_timeout_ms: number; sleep_ms: number }) => run.emit({ ...e, type: 'lock_retry', waited_ms: e.lock_timeout_ms }),
  };
}

/** Keyset batches over id; each commits with the state's cursor. */
async function copyPhase(run: Run): Promise<void> {
  const { session, tuning } = run;
  const s = (await readState(session.client))!;
  const sizer = new BatchSizer(tuning);
  let after = s.after_id;
  let done = Number(s.rows_copied);
  const total = s.total_rows === null ? null : Number(s.total_rows);
  const t0 = performance.now();
  const startRows = done;
  run.emit({ type: 'phase', phase: 'copy', detail: `copying ${total ?? '?'} rows (estimated) in batches of ~${tuning.batchMs} ms` });
  for (;;) {
    throwIfAborted(run.options.signal, 'convert');
    const b0 = performance.now();
    const r = await session.unit(tuning.lockTimeoutMs, async () => {
      const c = await copyBatch(session, SHADOW, run.cols, after, sizer.rows, run.options.signal);
      if (c.rows) await setState(session.client, { after_id: c.last, rows_copied: done + c.rows });
      return c;
    });
    if (!r.rows) break;
    after = r.last;
    done += r.rows;
    sizer.observe(performance.now() - b0, r.rows);
    const rate = (done - startRows) / Math.max(0.001, (performance.now() - t0) / 1000);
    run.emit({ type: 'progress', phase: 'copy', rows: done, total_rows: total === null ? null : Math.max(total, done), rows_per_s: Math.round(rate),
      eta_ms: total === null || rate <= 0 ? null : Math.round((Math.max(0, total - done) / rate) * 1000) });
    await pause(tuning.pauseMs, run.options.signal);
  }
  await setState(session.client, { phase: 'index' });
}

/** The live table's indexes on the shadow (after the load: one sort per index instead of row-by-row inserts). */
async function indexPhase(run: Run): Promise<void> {
  const { session } = run;
  for (const ix of await shadowIndexes(session.client, run.options.to!)) {
    const { rows: [e] } = await session.client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${SHADOW.schema}.${tempIndexName(ix.name)}`]);
    if (e?.ok) continue;
    throwIfAborted(run.options.signal, 'convert');
    run.emit({ type: 'phase', phase: 'index', detail: `building ${ix.name} on the shadow table` });
    await session.unit(run.tuning.lockTimeoutMs, () => session.query(ix.sql, [], run.options.signal));
  }
  await session.query(`ANALYZE ${quoteQualified(SHADOW)}`, [], run.options.signal);
  await setState(session.client, { phase: 'catchup' });
}

/** Applies logged changes in batches until fewer than `below` remain. */
export async function catchUp(run: Run, below: number, track: boolean): Promise<number> {
  const { session } = run;
  let applied = 0;
  const backlog = await pendingChanges(session.client);
  if (backlog >= below) run.emit({ type: 'phase', phase: 'catchup', detail: `applying ${backlog} logged change(s)` });
  for (;;) {
    throwIfAborted(run.options.signal, 'convert');
    const n = await session.unit(run.tuning.lockTimeoutMs, async () => {
      const k = await applyChanges(session.client, run.target ?? SHADOW, run.cols, 20_000, track);
      if (k) await session.client.query(`UPDATE ${CONVERSION_TABLE} SET changes_applied = changes_applied + $1, updated_at = now()`, [k]);
      return k;
    });
    applied += n;
    if (n) run.emit({ type: 'progress', phase: 'catchup', rows: applied, total_rows: Math.max(backlog, applied), rows_per_s: 0, eta_ms: null });
    if (n < 20_000 && (await pendingChanges(session.client)) < below) return applied;
  }
}

async function catchupPhase(run: Run): Promise<void> {
  await catchUp(run, 1000, false);
  await run.session.client.query(`TRUNCATE ${PENDING_TABLE}`);
  await setState(run.session.client, { phase: 'verify' });
}

/**
 * Installs the capture again, so partitions created since it began (a new model's, by `migrate`) get its TRUNCATE
 * trigger too; returns the live table's partitions, which the swap then requires unchanged (see `livePartitionOids`).
 */
export async function extendCapture(run: Run): Promise<string[]> {
  return withLockRetries(run.session, async () => {
    await installCapture(run.session.client);
    return livePartitionOids(run.session.client);
  }, lockPolicy(run, 'the capture could not take its lock on sync_lookup to cover new partitions'));
}

/**
 * The verification, after applying the truncate markers logged so far (a purge's partition TRUNCATE since the
 * catch-up, or while the conversion was stopped at this phase): a marker in the snapshot makes every type differ.
 * One logged between the markers' application and the snapshot is applied and the verification run again.
 */
async function verifyShadow(run: Run): Promise<VerifyReport> {
  const { session } = run;
  const partitions = await extendCapture(run);
  const st = (await readState(session.client))!;
  await setState(session.client, { state: { ...st.state, partitions } });
  for (let attempt = 1; ; attempt++) {
    await session.unit(run.tuning.lockTimeoutMs, async () => {
      const n = await applyTruncateMarkers(session.client, SHADOW);
      if (n) await session.client.query(`UPDATE ${CONVERSION_TABLE} SET changes_applied = changes_applied + $1, updated_at = now()`, [n]);
    });
    await session.client.query(`TRUNCATE ${PENDING_TABLE}`);
    run.emit({ type: 'phase', phase: 'verify', detail: 'comparing counts and checksums per record type in one snapshot' });
    const report = await verifyTables(session, SHADOW, run.options.signal);
    if (!report.mismatched.length || attempt >= 3) return report;
    const { rows: [m] } = await session.client.query<{ n: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${CHANGES_TABLE} WHERE id IS NULL) AS n`);
    if (!m?.n) return report;
  }
}

/** Verifies, then swaps (retrying under lock_timeout, catching up between attempts). */
async function verifyAndSwap(run: Run): Promise<void> {
  const { session } = run;
  const report = await verifyShadow(run);
  const s = (await readState(session.client))!;
  await setState(session.client, { verified: report.mismatched.length === 0, state: { ...s.state, verify: report } });
  if (report.mismatched.length) {
    throw new CheckFailedError('conversion_mismatch', `the shadow table differs from sync_lookup for ${report.mismatched.join(', ')}; ` +
      'nothing was swapped (a change the capture cannot see, such as a partition detached or attached meanwhile?): ' +
      'run `sync-lookup convert --rollback` and convert again', { mismatched: report.mismatched });
  }
  await swapWithRetries(run, { incoming: SHADOW, outgoingName: KEPT.name, captureAfter: true, phaseAfter: 'swapped', partitions: (s.state.partitions as string[] | undefined) ?? [] });
}

export interface SwapPlan {
  incoming: QualifiedName; outgoingName: string; captureAfter: boolean; phaseAfter: 'swapped' | 'rolled_back';
  /** The live table's partitions (oids) when it was verified: the swap refuses if they changed. */
  partitions?: string[] | undefined;
}

export async function swapWithRetries(run: Run, plan: SwapPlan): Promise<void> {
  const { session, options } = run;
  const baseMs = options.swapLockTimeoutMs ?? 200;
  const attempts = options.swapAttempts ?? 60;
  let longest = 0;
  for (let attempt = 1; ; attempt++) {
    run.target = plan.incoming;
    await catchUp(run, 200, true);
    await settlePending(session.client, plan.incoming);
    // Pulls longer than the timeout would starve the swap: later attempts wait longer, up to 700 ms (or the base, if
    // larger), which leaves the work under the lock room within a 1 s stall.
    const timeoutMs = Math.round(Math.min(baseMs * (1 + (attempt - 1) / 4), Math.max(baseMs, 700)));
    const t0 = performance.now();
    try {
      await session.unit(timeoutMs, async () => {
        const r = await swapTables(session.client, { incoming: plan.incoming, outgoingName: plan.outgoingName, captureAfter: plan.captureAfter, cols: run.cols, partitions: plan.partitions });
        const s = (await readState(session.client))!;
        await setState(session.client, {
          phase: plan.phaseAfter, swapped_at: new Date(),
          changes_applied: Number(s.changes_applied) + r.changesApplied, state: { ...s.state, swap_attempts: attempt },
        });
      });
      // Measured after the commit (the locks are held until it), recorded outside the lock.
      const ms = Math.round(performance.now() - t0);
      longest = Math.max(longest, ms);
      await setState(session.client, { longest_write_stall_ms: longest });
      run.emit({ type: 'phase', phase: 'swapped', detail: `swapped in ${ms} ms (attempt ${attempt})` });
      return;
    } catch (err) {
      longest = Math.max(longest, Math.round(performance.now() - t0));
      if (!isRetryableLockError(err) || attempt >= attempts) throw err;
      // Short, jittered pauses: the next gap between pulls is what the swap is waiting for.
      const sleepMs = 50 + Math.floor(Math.random() * 250);
      run.emit({ type: 'lock_retry', attempt, attempts, lock_timeout_ms: timeoutMs, sleep_ms: sleepMs, waited_ms: Math.round(performance.now() - t0) });
      await pause(sleepMs, options.signal);
      throwIfAborted(options.signal, 'convert');
    }
  }
}
