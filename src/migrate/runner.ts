import type pg from 'pg';
import { cancelBackend, type Database } from '../db/connection.js';
import { openSession, type Session } from '../db/session.js';
import {
  CancelledError, ConfigError, LockNotAcquiredError, MigrationError, SyncLookupError, toSyncLookupError,
} from '../db/errors.js';
import type { MigrationEvent } from './events.js';
import { withMigrationLockRetries, type LockRetryOptions } from './lock-retries.js';
import { checksum, migrationContext, type Migration } from './migration.js';
import { LEDGER_TABLE, ensureToolSchema, type ToolSchemaMove } from '../schema/tool.js';
import { advisoryLockHolder, advisoryUnlock, describeHolder, tryAdvisoryLock, unlessUnlockFailed, type AdvisoryLockHolder } from '../db/advisory.js';
import { restoreSessionState, saveSessionState } from './session-state.js';
import { describeStatement, type StatementRef } from './sql-run.js';

export { LEDGER_TABLE };
const ADVISORY_LOCK_KEY = 'sync-lookup:migrate';

/** Options of `migrate`. */
export interface MigrateOptions {
  /** Every known migration, in order. */
  migrations: Migration[];
  /** Stop after this migration (inclusive). */
  to?: string;
  /** Report the SQL of pending migrations without running anything. */
  dryRun?: boolean;
  /** Record migrations whose objects already exist in their shape as applied instead of running them. */
  adopt?: boolean;
  /** How long a second `migrate` waits for the first one's advisory lock. Default 30 000 ms. */
  advisoryLockTimeoutMs?: number;
  lockRetries?: Omit<LockRetryOptions, 'onEvent' | 'signal'>;
  signal?: AbortSignal;
  onEvent?: (event: MigrationEvent) => void;
}

/** One migration's state. */
export interface MigrationState {
  name: string;
  transactional: boolean;
  status: 'applied' | 'pending' | 'changed';
  appliedAt: string | null;
  adopted: boolean;
  checksum: string;
}

/** What `migrate` did, or would do under `dryRun`. */
export interface MigrateResult {
  dryRun: boolean;
  applied: { name: string; transactional: boolean; durationMs: number; adopted: boolean }[];
  pending: { name: string; transactional: boolean; sql: string[]; adoption?: AdoptionCheck }[];
}

/** Under `adopt` with `dryRun`: whether the existing objects have a migration's shape (it would be recorded, not run). */
export interface AdoptionCheck {
  adoptable: boolean;
  /** How the existing objects differ from the migration's shape (when they exist but differ). */
  problems: string[];
}

interface LedgerRow { name: string; checksum: string; applied_at: Date; adopted: boolean }

/** The ledger's table: the tool schema's, or (before `migrate` moved it there) the one earlier versions kept in public. */
async function ledgerTable(client: pg.ClientBase): Promise<string | null> {
  const { rows: [t] } = await client.query<{ current: boolean; legacy: boolean }>(
    `select to_regclass($1) is not null as current, to_regclass('public.sync_lookup_migrations') is not null as legacy`, [LEDGER_TABLE]);
  return t?.current ? LEDGER_TABLE : t?.legacy ? 'public.sync_lookup_migrations' : null;
}

async function readLedger(client: pg.ClientBase): Promise<Map<string, LedgerRow>> {
  const table = await ledgerTable(client);
  if (!table) return new Map();
  const { rows } = await client.query<LedgerRow>(`select name, checksum, applied_at, adopted from ${table}`);
  return new Map(rows.map((r) => [r.name, r]));
}

/**
 * The state of every migration, checking applied ones against their checksums.
 *
 * @example
 * const states = await migrationStatus(client, builtinMigrations());
 */
export async function migrationStatus(client: pg.ClientBase, migrations: Migration[]): Promise<MigrationState[]> {
  const ledger = await readLedger(client);
  return migrations.map((m) => {
    const row = ledger.get(m.name);
    const sum = checksum(m.source);
    return {
      name: m.name,
      transactional: m.transaction,
      status: !row ? 'pending' : row.checksum === sum ? 'applied' : 'changed',
      appliedAt: row ? row.applied_at.toISOString() : null,
      adopted: row?.adopted ?? false,
      checksum: sum,
    };
  });
}

function select(migrations: Migration[], to: string | undefined): Migration[] {
  const names = new Set<string>();
  for (const m of migrations) {
    if (names.has(m.name)) throw new ConfigError('duplicate_migration', `two migrations are named ${m.name}`);
    names.add(m.name);
  }
  if (to === undefined) return migrations;
  const index = migrations.findIndex((m) => m.name === to);
  if (index < 0) {
    throw new ConfigError('unknown_migration', `--to ${JSON.stringify(to)} names no migration; known: ${[...names].join(', ')}`);
  }
  return migrations.slice(0, index + 1);
}

/**
 * Applies pending migrations under an advisory lock: transactional ones inside one transaction with
 * lock-timeout retries, non-transactional ones statement by statement; each recorded in the ledger
 * with its checksum. An edited applied migration is refused. Aborting `signal` cancels the running
 * statement and leaves the ledger consistent.
 *
 * @example
 * await migrate(db, { migrations: builtinMigrations(), onEvent: console.log });
 */
export async function migrate(db: Database, options: MigrateOptions): Promise<MigrateResult> {
  const wanted = select(options.migrations, options.to);
  const emit = options.onEvent ?? (() => {});
  // openSession refuses a transaction-mode pooler before any setting or lock is placed (db/advisory.ts).
  const session = await openSession(db, { purpose: 'migrate', lockTimeoutMs: 5000, statementTimeoutMs: 0 });
  const { client } = session;
  try {
    await takeAdvisoryLock(client, options.advisoryLockTimeoutMs ?? 30_000, emit, options.signal);
    let result: MigrateResult;
    try {
      result = await migrateLocked(session, wanted, options, emit);
    } catch (err) {
      // The run's own failure comes first; a failed unlock is added to it, never dropped.
      const unlock = await advisoryUnlock(client, ADVISORY_LOCK_KEY, 'the migration lock').catch(unlessUnlockFailed).then(() => null, (e: unknown) => e as SyncLookupError);
      if (!unlock) throw err;
      const first = toSyncLookupError(err); // keeps its class (and so the CLI's exit code)
      first.message = `${first.message}; also, ${unlock.message}`;
      first.details.unlock = unlock.details;
      throw first;
    }
    await advisoryUnlock(client, ADVISORY_LOCK_KEY, 'the migration lock');
    return result;
  } finally {
    await session.close();
  }
}

/** The work done under the migration lock: checks, then each pending migration in order. */
async function migrateLocked(session: Session, wanted: Migration[], options: MigrateOptions, emit: (e: MigrationEvent) => void): Promise<MigrateResult> {
  const { client } = session;
  const states = await migrationStatus(client, wanted);
  const changed = states.filter((s) => s.status === 'changed');
  if (changed.length) {
    throw new MigrationError('checksum_mismatch',
      `applied migration${changed.length > 1 ? 's' : ''} ${changed.map((s) => s.name).join(', ')} ` +
      'changed since it was applied; restore the original file and add a new migration instead',
      { migrations: changed.map((s) => s.name) });
  }
  const pending = wanted.filter((m) => states.find((s) => s.name === m.name)?.status === 'pending');
  // Before anything runs (and under --dry-run): a file that cannot keep its mode's promise is refused whole.
  for (const m of pending) await m.preflight?.(client);
  const result: MigrateResult = {
    dryRun: !!options.dryRun,
    applied: [],
    pending: pending.map((m) => ({ name: m.name, transactional: m.transaction, sql: m.plan })),
  };
  if (options.dryRun) {
    if (options.adopt) await checkAdoption(client, pending, result);
    return result;
  }
  reportMove(await ensureToolSchema(client), emit);
  await ensureLedger(session, options);
  for (const m of pending) {
    result.applied.push(await applyOne(session, m, options, emit));
    result.pending.shift();
  }
  return result;
}

/** The application_name of a migrate run's session (`applySessionSettings`): only such a holder is "another migrate run". */
const MIGRATE_APPLICATION_NAME = 'sync-lookup:migrate';

async function takeAdvisoryLock(client: pg.ClientBase, timeoutMs: number, emit: (e: MigrationEvent) => void, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    if (await tryAdvisoryLock(client, ADVISORY_LOCK_KEY)) return;
    const holder = await advisoryLockHolder(client, ADVISORY_LOCK_KEY);
    const isMigrate = isMigrateRun(holder);
    if (!announced) { emit({ type: 'advisory_lock_wait', holderPid: holder?.pid ?? null, holder, holderIsMigrate: isMigrate }); announced = true; }
    if (signal?.aborted) throw new CancelledError('cancelled while waiting for another migrate run');
    if (Date.now() > deadline) throw lockBusy(holder, isMigrate, timeoutMs);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A holder is another migrate run when its session says so and it is not long idle: a live run is idle only
 * between statements and in lock-retry pauses (seconds); a backend left idle with the name is a leftover.
 */
function isMigrateRun(holder: AdvisoryLockHolder | null): boolean {
  return holder?.applicationName === MIGRATE_APPLICATION_NAME && !(holder.state === 'idle' && (holder.stateAgeS ?? 0) >= 60);
}

/** Names what is seen of the holder; blames "another migrate run" only when its session is one. */
function lockBusy(holder: AdvisoryLockHolder | null, isMigrate: boolean, timeoutMs: number): LockNotAcquiredError {
  const details = { holderPid: holder?.pid ?? null, holder, holderIsMigrate: isMigrate, timeoutMs };
  if (!holder || isMigrate) {
    return new LockNotAcquiredError('migrate_locked',
      `another migrate run${holder ? ` (backend pid ${holder.pid})` : ''} holds the migration lock; gave up after ${timeoutMs} ms`, details);
  }
  return new LockNotAcquiredError('migrate_locked',
    `the migration lock is held by ${describeHolder(holder)}, which is not a running sync-lookup migrate session; gave up after ${timeoutMs} ms. ` +
    'A lock left behind on a pooled backend (a migrate run through a transaction-mode pooler) looks like this: check that session, ' +
    `then end it with select pg_terminate_backend(${holder.pid})`, details);
}

/** Dry run of `--adopt`: the adoption check of each pending migration instead of its DDL. */
async function checkAdoption(client: pg.ClientBase, pending: Migration[], result: MigrateResult): Promise<void> {
  for (const [i, m] of pending.entries()) {
    if (!m.adoptable) continue;
    const check: AdoptionCheck = await m.adoptable(client).then(
      (adoptable) => ({ adoptable, problems: [] }),
      (err: unknown) => ({ adoptable: false, problems: (toSyncLookupError(err).details.problems as string[] | undefined) ?? [toSyncLookupError(err).message] }));
    result.pending[i] = {
      ...result.pending[i]!, adoption: check,
      ...(check.adoptable ? { sql: [`-- adopt: the existing objects have the shape of ${m.name}; it would be recorded as applied, nothing run`] } : {}),
    };
  }
}

function reportMove(moved: ToolSchemaMove, emit: (e: MigrationEvent) => void): void {
  for (const t of moved.tables) emit({ type: 'tool_table_moved', from: t.from, to: t.to, rows: t.rows });
  for (const trigger of moved.droppedTriggers) emit({ type: 'host_trigger_dropped', trigger });
}

async function ensureLedger(session: Session, options: MigrateOptions): Promise<void> {
  await withMigrationLockRetries(session, () => session.client.query(
    `create table if not exists ${LEDGER_TABLE} (
       name text primary key,
       checksum text not null,
       transactional boolean not null,
       adopted boolean not null default false,
       applied_at timestamptz not null default now(),
       duration_ms integer not null default 0)`), { ...options.lockRetries, ...(options.signal ? { signal: options.signal } : {}) });
}

async function record(client: pg.ClientBase, m: Migration, durationMs: number, adopted: boolean): Promise<void> {
  await client.query(
    `insert into ${LEDGER_TABLE} (name, checksum, transactional, adopted, duration_ms) values ($1, $2, $3, $4, $5)`,
    [m.name, checksum(m.source), m.transaction, adopted, durationMs]);
}

async function applyOne(
  session: Session, m: Migration, options: MigrateOptions, emit: (e: MigrationEvent) => void,
): Promise<MigrateResult['applied'][number]> {
  const { db, client, pid } = session;
  if (options.adopt && m.adoptable && (await m.adoptable(client))) {
    await record(client, m, 0, true);
    emit({ type: 'migration_adopted', name: m.name });
    return { name: m.name, transactional: m.transaction, durationMs: 0, adopted: true };
  }
  const started = Date.now();
  emit({ type: 'migration_start', name: m.name, transactional: m.transaction });
  // Cancels whichever statement of the migration runs (it runs many, on `client` directly).
  const onAbort = () => { void cancelBackend(db, pid).catch(() => {}); };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const retries = { ...options.lockRetries, onEvent: emit, ...(options.signal ? { signal: options.signal } : {}) };
  const ctx = migrationContext(db, client, m, emit, options.signal, (fn) => {
    if (m.transaction) return fn(); // already inside the runner's retried transaction
    return withMigrationLockRetries(session, fn, retries);
  });
  // A migration's own SET / RESET ALL / SET ROLE ends with it: later migrations and the ledger run as the runner set them.
  const saved = await saveSessionState(client);
  try {
    if (options.signal?.aborted) throw new CancelledError();
    if (m.transaction) {
      await withMigrationLockRetries(session, async () => {
        ctx.completed.length = 0;
        await m.up(ctx);
        await restoreSessionState(client, saved);
        await record(client, m, Date.now() - started, false);
      }, retries);
    } else {
      await m.up(ctx);
      await restoreSessionState(client, saved);
      await record(client, m, Date.now() - started, false);
    }
  } catch (err) {
    await restoreSessionState(client, saved).catch(() => {}); // a broken connection is the error already thrown
    throw failure(m, ctx.completed, err, options.signal);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  const durationMs = Date.now() - started;
  emit({ type: 'migration_done', name: m.name, durationMs });
  return { name: m.name, transactional: m.transaction, durationMs, adopted: false };
}

function failure(m: Migration, completed: string[], err: unknown, signal?: AbortSignal): SyncLookupError {
  const cause = toSyncLookupError(err, { migration: m.name });
  if (signal?.aborted || cause instanceof CancelledError) {
    return new CancelledError(
      m.transaction
        ? `migration ${m.name} was cancelled and rolled back; the ledger is unchanged`
        : `migration ${m.name} was cancelled; it is not recorded as applied, and the next migrate finishes it` +
          (completed.length ? ` (committed before the cancel: ${completed.join(', ')})` : ''),
      { migration: m.name, completed });
  }
  if (cause instanceof LockNotAcquiredError || cause instanceof ConfigError) return cause;
  if (!m.transaction && Array.isArray(cause.details.committed)) return fileFailure(m, cause, err);
  const what = m.transaction
    ? 'it was rolled back and the ledger is unchanged'
    : `it is not transactional: ${completed.length} step(s) completed before the failure and stay done; ` +
      'it is not recorded as applied, so the next migrate re-runs it (its steps are idempotent)';
  return new MigrationError('migration_failed', `migration ${m.name} failed: ${cause.message}; ${what}`,
    { migration: m.name, transactional: m.transaction, completed, ...cause.details }, { cause: err });
}

/** A no-transaction `.sql` file failed at a statement: exactly which statements committed (and stay) and which did not run. */
function fileFailure(m: Migration, cause: SyncLookupError, err: unknown): SyncLookupError {
  const committed = cause.details.committed as StatementRef[];
  const notRun = (cause.details.notRun as StatementRef[] | undefined) ?? [];
  const list = (xs: StatementRef[]) => xs.map(describeStatement).join(', ');
  const what = `each statement of this file commits on its own: ` +
    (committed.length ? `committed before the failure, and kept: ${list(committed)}` : 'no statement committed before it') +
    (notRun.length ? `; not run: ${list(notRun)}` : '') +
    (cause.details.mayCommit ? '; the failed statement is a CALL or DO, whose own COMMITs before the error stay' : '') +
    '; it is not recorded as applied, and the next migrate runs the whole file again, so make the committed statements ' +
    'safe to repeat (IF NOT EXISTS) or remove them before re-running';
  return new MigrationError('migration_failed', `migration ${m.name} failed: ${cause.message}; ${what}`,
    { migration: m.name, transactional: false, ...cause.details }, { cause: err });
}
