import { CancelledError, ConfigError, toSyncLookupError } from '../db/errors.js';
import { quoteQualified } from '../db/quote.js';
import type { ModelRegistry } from '../lookup/registry.js';
import { detectLayout, type Layout } from '../schema/partitioned.js';
import { ensureToolSchema } from '../schema/tool.js';
import { batchTuning } from './batches.js';
import { withLockRetries } from '../db/session.js';
import { catchUp, extendCapture, lockConversion, readState, swapWithRetries, type ConvertOptions, type Run, type StateRow } from './convert.js';
import { planConversion, type ConvertPlan } from './convert-plan.js';
import { CHANGES_TABLE, CONVERSION_TABLE, KEPT, LIVE, PENDING_TABLE, SHADOW, columnList, dropCapture, ensureConversionTables } from './convert-tables.js';
import { openWorkSession, type MaintenanceTarget, type WorkSession } from './session.js';

/** What `convert --finish` or `convert --rollback` did. */
export interface ConvertEndResult {
  action: 'finish' | 'rollback';
  /** The layout of sync_lookup after. */
  layout: Layout;
  /** Rollback: whether the conversion had been swapped in (then the previous table was swapped back). */
  swapped_back: boolean;
  changes_applied: number;
  longest_write_stall_ms: number;
  /** Rollback after a swap: true when the rows changed since the swap matched row by row before swapping back. */
  verified: boolean | null;
  /** The table dropped. */
  dropped_table: string | null;
  duration_ms: number;
}

type EndOptions = Omit<ConvertOptions, 'to' | 'registry' | 'checkDisk'>;

async function withConversion<T>(target: MaintenanceTarget, options: EndOptions, fn: (s: WorkSession, state: StateRow) => Promise<T>): Promise<T> {
  const session = await openWorkSession(target, 'convert', options.lockTimeoutMs ?? 2000);
  let unlock: (() => Promise<void>) | undefined;
  try {
    unlock = await lockConversion(session.client);
    await ensureToolSchema(session.client);
    const state = await readState(session.client);
    if (!state) throw new ConfigError('no_conversion', 'no conversion is in progress or waiting to be finished');
    return await fn(session, state);
  } catch (err) {
    throw options.signal?.aborted && !(err instanceof CancelledError) ? new CancelledError('convert was cancelled; run the same command again') : toSyncLookupError(err);
  } finally {
    await unlock?.().finally(() => session.close());
  }
}

/** Drops the conversion's leftovers: the log tables' rows, the state, and `table`. */
async function cleanUp(session: WorkSession, table: typeof SHADOW, lockTimeoutMs: number): Promise<string | null> {
  // Dropping the capture locks sync_lookup exclusively: wait briefly for pulls in flight, retry, never queue traffic long.
  return withLockRetries(session, async () => {
    await dropCapture(session.client);
    const { rows: [t] } = await session.client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [quoteQualified(table)]);
    if (t?.ok) await session.client.query(`DROP TABLE ${quoteQualified(table)}`);
    await session.client.query(`TRUNCATE ${CHANGES_TABLE}, ${PENDING_TABLE}`);
    await session.client.query(`DELETE FROM ${CONVERSION_TABLE}`);
    return t?.ok ? `${table.schema}.${table.name}` : null;
  }, {
    lockTimeoutsMs: [Math.min(500, lockTimeoutMs)], attempts: 40, sleepMs: () => 50 + Math.floor(Math.random() * 250),
    exhausted: (attempts, ms) => `sync_lookup stayed busy (no ${ms} ms gap between pulls in ${attempts} attempts); run the command again`,
  });
}

/**
 * Ends a swapped conversion: stops the change capture and drops the previous table (no rollback after this).
 * ConfigError when no conversion is waiting to be finished.
 *
 * @example
 * await finishConversion(db); // { action: 'finish', layout: 'partitioned', dropped_table: 'sync_lookup_tool.sync_lookup_previous' }
 */
export async function finishConversion(target: MaintenanceTarget, options: EndOptions = {}): Promise<ConvertEndResult> {
  const started = performance.now();
  return withConversion(target, options, async (session, state) => {
    if (state.phase !== 'swapped') {
      throw new ConfigError('conversion_not_swapped', `the conversion to ${state.to_layout} has not been swapped in yet (phase ${state.phase}); run \`convert --to ${state.to_layout}\` to continue, or \`--rollback\` to abandon it`);
    }
    const dropped = await cleanUp(session, KEPT, options.lockTimeoutMs ?? 2000);
    return {
      action: 'finish', layout: state.to_layout, swapped_back: false, changes_applied: Number(state.changes_applied),
      longest_write_stall_ms: state.longest_write_stall_ms ?? 0, verified: state.verified, dropped_table: dropped,
      duration_ms: Math.round(performance.now() - started),
    };
  });
}

/**
 * Undoes a conversion. Before the swap: drops the shadow table and the change capture (sync_lookup was never
 * touched). After the swap: applies the changes made since to the previous table, compares them row by row, swaps
 * it back (the same short transaction as the swap), then drops the converted table.
 *
 * @example
 * const r = await rollbackConversion(db); // r.layout: 'plain', r.swapped_back: true
 */
export async function rollbackConversion(target: MaintenanceTarget, options: EndOptions = {}): Promise<ConvertEndResult> {
  const started = performance.now();
  return withConversion(target, options, async (session, state) => {
    const lockTimeoutMs = options.lockTimeoutMs ?? 2000;
    if (state.phase !== 'swapped') {
      // Before the swap the shadow is dropped; after an interrupted rollback's swap back, the converted table is.
      const dropped = await cleanUp(session, SHADOW, lockTimeoutMs);
      return {
        action: 'rollback', layout: (await detectLayout(session.client)) as Layout, swapped_back: state.phase === 'rolled_back', changes_applied: 0, longest_write_stall_ms: 0,
        verified: null, dropped_table: dropped, duration_ms: Math.round(performance.now() - started),
      };
    }
    const run: Run = {
      session, options, tuning: batchTuning(options), emit: options.onEvent ?? (() => {}), cols: await columnList(session.client, LIVE),
      phasesMs: {}, target: KEPT,
    };
    await ensureConversionTables(session.client);
    const before = Number((await readState(session.client))!.changes_applied);
    const partitions = await extendCapture(run);
    await catchUp(run, 200, true);
    await swapWithRetries(run, { incoming: KEPT, outgoingName: SHADOW.name, captureAfter: false, phaseAfter: 'rolled_back', partitions });
    const after = (await readState(session.client))!;
    const dropped = await cleanUp(session, SHADOW, lockTimeoutMs);
    return {
      action: 'rollback', layout: (await detectLayout(session.client)) as Layout, swapped_back: true,
      changes_applied: Number(after.changes_applied) - before, longest_write_stall_ms: after.longest_write_stall_ms ?? 0,
      verified: true, dropped_table: dropped, duration_ms: Math.round(performance.now() - started),
    };
  });
}

/**
 * `convert --dry-run`: the plan, the table's measured size and the disk it needs (see `ConvertPlan`); changes nothing.
 *
 * @example
 * const plan = await planConvert(db, { to: 'partitioned' });
 */
export async function planConvert(target: MaintenanceTarget, options: { to: Layout; registry?: ModelRegistry }): Promise<ConvertPlan> {
  const session = await openWorkSession(target, 'convert-dry-run');
  try {
    const state = await readState(session.client);
    if (state) throw new ConfigError('conversion_unfinished', `a conversion to ${state.to_layout} is at phase ${state.phase}; run it (or --finish / --rollback) first`);
    return await planConversion(session, options);
  } finally {
    await session.close();
  }
}
