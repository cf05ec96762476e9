import { ConfigError, CancelledError, SyncLookupError, toSyncLookupError } from '../db/errors.js';
import type { QualifiedName } from '../db/quote.js';
import { detectLayout, type Layout } from '../schema/partitioned.js';
import { BatchSizer, ProgressMeter, batchTuning, runBatch, type BatchTuning } from './batches.js';
import type { MaintenanceEvent, MaintenanceProgress } from './events.js';
import {
  claimJob, createJob, ensureJobsTable, findResumableJob, finishJob, lockRecordTypes, recordBatch, recordCursor,
  unfinishedJobsFor, type JobCursor, type JobOperation, type JobRecord,
} from './jobs.js';
import { requireRecordTypeIndex } from './record-types.js';
import { JOBS_TABLE } from '../schema/tool.js';
import { openWorkSession, pause, throwIfAborted, type MaintenanceTarget, type WorkSession } from './session.js';
import { analyzeIfNeeded, vacuumAfter, type AnalyzePolicy, type AnalyzeReport, type VacuumReport } from './vacuum.js';

/**
 * Options every record-type operation takes (one object per entry point; units in the names).
 *
 * @example
 * { types: ['encounter_medications'], batchMs: 200, pauseMs: 0, vacuum: true, onProgress: (p) => console.log(p.rows_done) }
 */
export interface OperationOptions {
  /** Record types to work on; a type named twice is taken once. Optional with `resume`. */
  types?: string[];
  /** Target duration of one batch (its size adapts). Default 200 ms. */
  batchMs?: number;
  /** Rows in the first batch; later batches adapt to `batchMs`. Default 5 000. */
  initialBatchRows?: number;
  /** Pause between batches. Default 0. */
  pauseMs?: number;
  /** `lock_timeout` of every batch (retried with backoff when exceeded). Default 2 000 ms. */
  lockTimeoutMs?: number;
  /** VACUUM the changed relations afterwards (reported apart, `vacuum_ms`). Default true. */
  vacuum?: boolean;
  /** When to ANALYZE (counted in the operation's time). Default `auto`: see `analyzeIfNeeded`. */
  analyze?: AnalyzePolicy;
  /** Only report strategy, estimates, SQL and plans. */
  dryRun?: boolean;
  /** Require an unfinished job to resume (without it an unfinished identical job is resumed anyway). */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: MaintenanceProgress) => void;
  onEvent?: (event: MaintenanceEvent) => void;
}

/** How one record type is handled, and why. */
export interface TypeStrategy {
  record_type: string;
  strategy: 'keyset_batches' | 'partition_truncate' | 'in_place_upsert' | 'shadow_swap' | 'detach' | 'attach' | 'batched_move';
  reason: string;
  /** The partition holding the type (partitioned layout). */
  partition: string | null;
}

/** What a record-type operation did (JSON-safe; the CLI prints it under --json). */
export interface OperationResult {
  operation: JobOperation;
  record_types: string[];
  layout: Layout;
  /** `batches`: one transaction per batch; `caller_transaction`: inside the caller's transaction. */
  mode: WorkSession['mode'];
  job_id: number;
  resumed: boolean;
  /** The strategies used, joined (`keyset_batches`, `partition_truncate+keyset_batches`, …). */
  strategy: string;
  strategies: TypeStrategy[];
  /** Rows deleted + inserted + updated. */
  rows_affected: number;
  rows_deleted: number;
  rows_inserted: number;
  rows_updated: number;
  batches: number;
  /** The operation itself (batches, truncates). */
  operation_ms: number;
  analyze_ms: number;
  /** operation_ms + analyze_ms: what a benchmark compares against the original statements. */
  duration_ms: number;
  analyze: AnalyzeReport;
  vacuum: VacuumReport;
  /** The post-operation VACUUM, not included in duration_ms. */
  vacuum_ms: number;
  dead_tuples_before: number | null;
  dead_tuples_after: number | null;
}

/** Counters a job keeps in its cursor, so a resumed job reports the whole job's numbers. */
export interface JobCounts { deleted: number; inserted: number; updated: number }

/** What a job's phases get: the session, the persisted cursor, batching and progress. */
export interface JobHandle {
  session: WorkSession;
  jobId: number;
  cursor: JobCursor;
  tuning: BatchTuning;
  sizer: BatchSizer;
  signal: AbortSignal | undefined;
  emit: (e: MaintenanceEvent) => void;
  layout: Layout;
  counts: JobCounts;
  rowsDone: number;
  rowsTotal: number | null;
  batches: number;
  /** Runs `fn` as phase `name` unless a previous run finished it; records it finished afterwards. */
  phase(name: string, fn: () => Promise<void>): Promise<void>;
  /**
   * Runs one batch: `work` inside a short transaction together with the job's progress update; adapts the
   * batch size; pauses; reports progress. Returns what `work` returned.
   */
  batch<T extends { rows: number; after: string | null; counts?: Partial<JobCounts> }>(work: () => Promise<T>): Promise<T>;
  /** Sets the expected total of rows (for progress and ETA). */
  setTotal(rows: number): Promise<void>;
}

/** What a concrete operation plugs into the job runner. */
export interface JobSpec {
  operation: JobOperation;
  /** Options that make two runs "the same job" (e.g. repull). */
  key: Record<string, unknown>;
  /** Validates the types (ConfigError, before anything is touched); returns them normalised. */
  validate(session: WorkSession, types: string[], layout: Layout): Promise<string[]>;
  /** Decides the strategy per type. */
  strategies(session: WorkSession, types: string[], layout: Layout): Promise<TypeStrategy[]>;
  /** Does the work. */
  run(handle: JobHandle, types: string[], strategies: TypeStrategy[]): Promise<void>;
  /** Relations to ANALYZE / VACUUM afterwards, with how many rows changed in them and whether dead tuples were made. */
  changedRelations(handle: JobHandle, types: string[], strategies: TypeStrategy[]): Promise<{ analyze: QualifiedName[]; vacuum: QualifiedName[] }>;
}

function emitter(options: OperationOptions): (e: MaintenanceEvent) => void {
  return (e) => {
    if (e.type === 'progress') options.onProgress?.(e);
    options.onEvent?.(e);
  };
}

/**
 * Runs a record-type operation as a resumable job: validates input before touching anything, checks the
 * record_type index, takes the per-type advisory locks (a second operation on the same type refuses),
 * resumes an unfinished identical job or starts one, runs its batches, then ANALYZE (by policy) and
 * VACUUM, and records the result. Cancelling (signal) rolls back the batch in flight and leaves the job
 * `interrupted`; running the same operation again continues it.
 */
export async function runJob(target: MaintenanceTarget, spec: JobSpec, options: OperationOptions): Promise<OperationResult> {
  const tuning = batchTuning(options);
  const emit = emitter(options);
  const session = await openWorkSession(target, spec.operation, tuning.lockTimeoutMs);
  let unlock: (() => Promise<void>) | undefined;
  let job: JobRecord | undefined;
  try {
    await requireRecordTypeIndex(session.client);
    const layout = (await detectLayout(session.client)) as Layout;
    await ensureJobsTable(session.client);
    const key = JSON.stringify(spec.key);
    const types = await selectTypes(session, spec, options, layout, key);
    unlock = await lockRecordTypes(session.client, types);
    const resumed = await findResumableJob(session.client, spec.operation, types, key);
    if (options.resume && !resumed) {
      throw new ConfigError('nothing_to_resume', `no unfinished ${spec.operation} job for ${types.join(', ')} to resume`);
    }
    if (!resumed) await refuseUnfinishedJobs(session, types);
    const strategies = await spec.strategies(session, types, layout);
    const strategy = [...new Set(strategies.map((s) => s.strategy))].join('+');
    job = await startJob(session, spec, { types, key, strategy, resumed, emit });
    const handle = makeHandle(session, job, tuning, layout, emit, options.signal, spec.operation);
    const opStarted = performance.now();
    await spec.run(handle, types, strategies);
    const operationMs = Math.round(performance.now() - opStarted);
    const changed = handle.counts.deleted + handle.counts.inserted + handle.counts.updated;
    const { analyze, vacuum } = await analyzeAndVacuum(session, spec, handle, { types, strategies, options, emit });
    const result: OperationResult = {
      operation: spec.operation, record_types: types, layout, mode: session.mode, job_id: job.id, resumed: !!resumed,
      strategy, strategies,
      rows_affected: changed, rows_deleted: handle.counts.deleted, rows_inserted: handle.counts.inserted, rows_updated: handle.counts.updated,
      batches: handle.batches, operation_ms: operationMs, analyze_ms: analyze.ms, duration_ms: operationMs + analyze.ms,
      analyze, vacuum, vacuum_ms: vacuum.vacuum_ms, dead_tuples_before: vacuum.dead_tuples_before, dead_tuples_after: vacuum.dead_tuples_after,
    };
    await finishJob(session.client, job.id, 'done', { result });
    return result;
  } catch (err) {
    throw await recordFailure(session, spec.operation, job, err, options.signal);
  } finally {
    await unlock?.().catch(() => {});
    await session.close();
  }
}

/** The types to work on: those given (validated), or with `resume` those of the last unfinished identical job. */
async function selectTypes(session: WorkSession, spec: JobSpec, options: OperationOptions, layout: Layout, key: string): Promise<string[]> {
  if (options.types?.length) return (await spec.validate(session, options.types, layout)).sort();
  if (!options.resume) throw new ConfigError('no_record_types', 'name at least one record type');
  const { rows } = await session.client.query<{ record_types: string[] }>(
    `select record_types from ${JOBS_TABLE} where operation = $1 and options->>'key' = $2
        and status in ('running', 'interrupted', 'failed') order by id desc limit 1`, [spec.operation, key]);
  if (!rows[0]) throw new ConfigError('nothing_to_resume', `no unfinished ${spec.operation} job to resume`);
  return rows[0].record_types;
}

/** A different unfinished job on any of these types must be finished or abandoned first. */
async function refuseUnfinishedJobs(session: WorkSession, types: string[]): Promise<void> {
  const [o] = await unfinishedJobsFor(session.client, types);
  if (!o) return;
  throw new ConfigError('unfinished_job',
    `job ${o.id} (${o.operation} of ${o.record_types.join(', ')}) was ${o.status} and touches the same types; ` +
    `finish it by running that ${o.operation} again, or abandon it with \`sync-lookup jobs --abandon ${o.id}\``,
    { jobId: o.id });
}

/** Claims the resumable job, or records a new one. */
async function startJob(session: WorkSession, spec: JobSpec, input: {
  types: string[]; key: string; strategy: string; resumed: JobRecord | undefined; emit: (e: MaintenanceEvent) => void;
}): Promise<JobRecord> {
  const { types, resumed, emit } = input;
  if (resumed) {
    await claimJob(session.client, resumed.id, session.pid);
    emit({ type: 'job_resumed', job_id: resumed.id, operation: spec.operation, record_types: types, rows_done: resumed.rows_done, phase: resumed.cursor.phase });
    return resumed;
  }
  const job = await createJob(session.client, {
    operation: spec.operation, types, options: { key: input.key, ...spec.key }, pid: session.pid,
    cursor: { phase: '', done: [], after: null, state: {} },
  });
  emit({ type: 'job_started', job_id: job.id, operation: spec.operation, record_types: types, strategy: input.strategy });
  return job;
}

/** ANALYZE (by policy) and VACUUM the relations the operation changed. */
async function analyzeAndVacuum(session: WorkSession, spec: JobSpec, handle: JobHandle, input: {
  types: string[]; strategies: TypeStrategy[]; options: OperationOptions; emit: (e: MaintenanceEvent) => void;
}) {
  const { options, emit } = input;
  const changed = handle.counts.deleted + handle.counts.inserted + handle.counts.updated;
  const rels = await spec.changedRelations(handle, input.types, input.strategies);
  const analyze = await analyzeIfNeeded(session, {
    relations: rels.analyze, changedRows: changed, policy: options.analyze ?? 'auto', signal: options.signal, emit,
  });
  const deadMade = handle.counts.deleted + handle.counts.updated;
  const vacuum = await vacuumAfter(session, {
    relations: rels.vacuum, enabled: options.vacuum ?? true, analyze: (options.analyze ?? 'auto') === 'always' && !analyze.ran,
    changedRows: deadMade, signal: options.signal, emit,
  });
  return { analyze, vacuum };
}

/** Records how the job ended (interrupted or failed) and returns the error to throw, naming the job. */
async function recordFailure(
  session: WorkSession, operation: string, job: JobRecord | undefined, err: unknown, signal: AbortSignal | undefined,
): Promise<SyncLookupError> {
  const e = signal?.aborted && !(err instanceof CancelledError)
    ? new CancelledError(`${operation} was cancelled`) : toSyncLookupError(err);
  if (!job) return e;
  const status = e instanceof CancelledError ? 'interrupted' : 'failed';
  await finishJob(session.client, job.id, status, { error: e.toJSON() }).catch(() => {});
  if (e instanceof SyncLookupError && !(e instanceof ConfigError)) {
    e.details.jobId = job.id;
    if (e instanceof CancelledError) {
      e.message = `${operation} job ${job.id} was interrupted; the batch in flight was rolled back and every ` +
        'committed batch is recorded: run the same command again (or with --resume) to continue';
    }
  }
  return e;
}

function makeHandle(
  session: WorkSession, job: JobRecord, tuning: BatchTuning, layout: Layout, emit: (e: MaintenanceEvent) => void,
  signal: AbortSignal | undefined, operation: string,
): JobHandle {
  const cursor: JobCursor = { phase: job.cursor.phase, done: [...job.cursor.done], after: job.cursor.after, state: { ...job.cursor.state } };
  const saved = (cursor.state.counts ?? {}) as Partial<JobCounts>;
  const counts: JobCounts = { deleted: saved.deleted ?? 0, inserted: saved.inserted ?? 0, updated: saved.updated ?? 0 };
  const meter = new ProgressMeter(operation, emit);
  const sizer = new BatchSizer(tuning, typeof cursor.state.batchRows === 'number' ? cursor.state.batchRows : undefined);
  const handle: JobHandle = {
    session, jobId: job.id, cursor, tuning, sizer, signal, emit, layout, counts,
    rowsDone: job.rows_done, rowsTotal: job.rows_total, batches: job.batches,
    async phase(name, fn) {
      if (cursor.done.includes(name)) return;
      if (cursor.phase !== name) {
        cursor.phase = name;
        cursor.after = null;
        await recordCursor(session.client, job.id, cursor);
      }
      await fn();
      cursor.done.push(name);
      cursor.after = null;
      await recordCursor(session.client, job.id, cursor);
    },
    async batch(work) {
      throwIfAborted(signal, operation);
      const t0 = performance.now();
      const result = await runBatch(session, tuning, signal, emit, async () => {
        const r = await work();
        const next: JobCounts = {
          deleted: counts.deleted + (r.counts?.deleted ?? 0),
          inserted: counts.inserted + (r.counts?.inserted ?? 0),
          updated: counts.updated + (r.counts?.updated ?? 0),
        };
        // The total is an estimate (planner statistics, a snapshot's count): once passed, it is the rows done.
        const total = handle.rowsTotal === null ? null : Math.max(handle.rowsTotal, handle.rowsDone + r.rows);
        await recordBatch(session.client, job.id, {
          cursor: { ...cursor, after: r.after, state: { ...cursor.state, counts: next, batchRows: sizer.rows } },
          rowsDelta: r.rows, rowsTotal: total,
        });
        return { r, next, total };
      });
      // Only after the commit: a rolled-back batch must leave the in-memory cursor where the table's is.
      const { r, next, total } = result;
      handle.rowsTotal = total;
      Object.assign(counts, next);
      cursor.after = r.after;
      cursor.state = { ...cursor.state, counts: next, batchRows: sizer.rows };
      handle.rowsDone += r.rows;
      handle.batches += 1;
      sizer.observe(performance.now() - t0, r.rows);
      meter.update(cursor.phase, handle.rowsDone, handle.rowsTotal, handle.batches, sizer.rows);
      await pause(tuning.pauseMs, signal);
      return r;
    },
    async setTotal(rows) {
      handle.rowsTotal = rows;
      await recordCursor(session.client, job.id, cursor, handle.rowsTotal);
    },
  };
  return handle;
}
