import { ConfigError } from '../db/errors.js';
import { withLockRetries } from '../db/session.js';
import type { MaintenanceEvent } from './events.js';
import type { WorkSession } from './session.js';

/** How batches are sized and spaced. */
export interface BatchTuning {
  /** Target duration of one batch; the size adapts to it. Default 200 ms. */
  batchMs: number;
  /** Pause between batches, so other sessions get the I/O and locks. Default 0. */
  pauseMs: number;
  /** `lock_timeout` of every batch; a batch that waits longer is rolled back and retried. Default 2 000 ms. */
  lockTimeoutMs: number;
  /** Attempts per batch when its locks are not granted in time. Default 20. */
  lockAttempts: number;
  /** First batch size in rows (then it adapts). Default 5 000. */
  initialRows: number;
  /** True when the caller chose `initialRows`: then no batch starts larger than it. */
  initialRowsChosen: boolean;
  minRows: number;
  maxRows: number;
}

/** Fills in defaults and validates user-supplied tuning, naming a bad value. */
export function batchTuning(options: { batchMs?: number | undefined; pauseMs?: number | undefined; lockTimeoutMs?: number | undefined; initialBatchRows?: number | undefined }): BatchTuning {
  const check = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isFinite(v) || v < min)) {
      throw new ConfigError('invalid_option', `${name} must be a number >= ${min}, got ${String(v)}`, { option: name, value: v ?? null });
    }
  };
  check('batchMs', options.batchMs, 1);
  check('pauseMs', options.pauseMs, 0);
  check('lockTimeoutMs', options.lockTimeoutMs, 1);
  check('initialBatchRows', options.initialBatchRows, 1);
  return {
    batchMs: options.batchMs ?? 200,
    pauseMs: options.pauseMs ?? 0,
    lockTimeoutMs: options.lockTimeoutMs ?? 2000,
    lockAttempts: 20,
    // A first batch this size takes tens of milliseconds on an ordinary server: small enough to be safe
    // before anything is measured, large enough that a small type is done in one or two batches.
    initialRows: options.initialBatchRows ?? 5000,
    initialRowsChosen: options.initialBatchRows !== undefined,
    minRows: Math.min(50, options.initialBatchRows ?? 50),
    maxRows: 50_000,
  };
}

/**
 * Adapts the batch size to the target duration: after each batch the next size is scaled by
 * target / elapsed, damped to at most ×2 / ×½ per step so one slow batch (a checkpoint, a cold cache)
 * does not swing it.
 *
 * @example
 * const sizer = new BatchSizer(batchTuning({ batchMs: 200 }));
 * sizer.observe(350, sizer.rows);
 */
export class BatchSizer {
  rows: number;
  constructor(private readonly tuning: BatchTuning, startRows?: number) {
    this.rows = Math.max(tuning.minRows, Math.min(tuning.maxRows, startRows ?? tuning.initialRows));
  }

  observe(elapsedMs: number, rowsHandled: number): void {
    // A short final batch says nothing about the rate.
    if (rowsHandled < this.rows / 2) return;
    // Far under target: grow fast (×4); otherwise damped to ×2 / ×½.
    const ratio = this.tuning.batchMs / Math.max(1, elapsedMs);
    const factor = ratio >= 8 ? 4 : Math.max(0.5, Math.min(2, ratio));
    this.rows = Math.round(Math.max(this.tuning.minRows, Math.min(this.tuning.maxRows, this.rows * factor)));
  }
}

/**
 * Rows done / total, rows per second and ETA for the progress events.
 *
 * @example
 * const meter = new ProgressMeter('purge', emit); meter.update('delete', 5000, 20000, 3, 1000);
 */
export class ProgressMeter {
  private readonly started = Date.now();
  private rowsAtStart: number | undefined;

  constructor(private readonly operation: string, private readonly emit: (e: MaintenanceEvent) => void) {}

  update(phase: string, rowsDone: number, rowsTotal: number | null, batches: number, batchRows: number): void {
    this.rowsAtStart ??= rowsDone;
    const elapsedS = (Date.now() - this.started) / 1000;
    const rate = elapsedS > 0 ? (rowsDone - this.rowsAtStart) / elapsedS : 0;
    const remaining = rowsTotal === null ? null : Math.max(0, rowsTotal - rowsDone);
    this.emit({
      type: 'progress', operation: this.operation, phase, rows_done: rowsDone, rows_total: rowsTotal,
      rows_per_s: Math.round(rate), eta_ms: remaining === null || rate <= 0 ? null : Math.round((remaining / rate) * 1000),
      batches, batch_rows: batchRows,
    });
  }
}

/**
 * Runs one batch as its own short unit (transaction, or savepoint inside a caller's transaction) with
 * the tuning's `lock_timeout`. A batch whose locks are not granted in time is rolled back and retried
 * after a growing pause, so maintenance yields to sync traffic instead of queueing it behind itself.
 *
 * @example
 * const n = await runBatch(session, tuning, signal, emit, async () => (await session.query(sql, params, signal)).rowCount);
 */
export async function runBatch<T>(
  session: WorkSession, tuning: BatchTuning, signal: AbortSignal | undefined, emit: (e: MaintenanceEvent) => void,
  fn: () => Promise<T>,
): Promise<T> {
  return withLockRetries(session, fn, {
    lockTimeoutsMs: [tuning.lockTimeoutMs],
    attempts: tuning.lockAttempts,
    sleepMs: (attempt) => Math.min(5000, 100 * attempt) + Math.floor(Math.random() * 100),
    exhausted: (attempts, lockTimeoutMs) => `a batch could not take its locks within ${lockTimeoutMs} ms in ${attempts} attempts; ` +
      'another session holds conflicting locks (see pg_stat_activity); the job is resumable',
    signal,
    onRetry: emit,
  });
}
