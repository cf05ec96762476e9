import type { DatabaseError } from 'pg';

/** JSON-safe extra information attached to an error. */
export type ErrorDetails = Record<string, unknown>;

/**
 * The one error type of sync-lookup: a stable `code` callers can branch on, a message for humans,
 * JSON-safe `details`, and the original `cause`.
 *
 * @example
 * throw new SyncLookupError('unknown_record_type', `unknown record type "${t}"`, { known });
 */
export class SyncLookupError extends Error {
  readonly code: string;
  readonly details: ErrorDetails;

  constructor(code: string, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: string; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Bad input or configuration: the CLI exits with 2. */
export class ConfigError extends SyncLookupError {}

/** A migration failed or the ledger disagrees with the migration files. */
export class MigrationError extends SyncLookupError {}

/** An advisory or table lock could not be taken in time. */
export class LockNotAcquiredError extends SyncLookupError {}

/** The operation was cancelled (Ctrl-C or an AbortSignal); the CLI exits with 130. */
export class CancelledError extends SyncLookupError {
  constructor(message = 'cancelled', details: ErrorDetails = {}) {
    super('cancelled', message, details);
  }
}

/** A check (lint, explain, doctor, verify) found problems: the CLI exits with 3. */
export class CheckFailedError extends SyncLookupError {}

/** The fields of a PostgreSQL error worth keeping (SQLSTATE, detail, hint, position, where). */
export interface PgErrorFields {
  sqlstate: string;
  detail?: string;
  hint?: string;
  position?: number;
  where?: string;
  table?: string;
  constraint?: string;
}

/** True when `err` came from the PostgreSQL server (it carries a SQLSTATE). */
export function isPgError(err: unknown): err is DatabaseError {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && 'severity' in err;
}

/** Picks the JSON-safe fields of a PostgreSQL error, dropping the empty ones. */
export function pgErrorFields(err: DatabaseError): PgErrorFields {
  const fields: PgErrorFields = { sqlstate: err.code ?? '' };
  if (err.detail) fields.detail = err.detail;
  if (err.hint) fields.hint = err.hint;
  if (err.position) fields.position = Number(err.position);
  if (err.where) fields.where = err.where;
  if (err.table) fields.table = err.table;
  if (err.constraint) fields.constraint = err.constraint;
  return fields;
}

/** SQLSTATEs the code branches on. */
export const SqlState = {
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  adminShutdown: '57P01',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  syntaxError: '42601',
  uniqueViolation: '23505',
  deadlockDetected: '40P01',
  serializationFailure: '40001',
  objectInUse: '55006',
} as const;

/**
 * Wraps any thrown value as a SyncLookupError, keeping a PostgreSQL error's SQLSTATE, detail and hint.
 *
 * @example
 * try { await client.query(sql) } catch (err) { throw toSyncLookupError(err, { sql }) }
 */
export function toSyncLookupError(err: unknown, details: ErrorDetails = {}): SyncLookupError {
  if (err instanceof SyncLookupError) return err;
  if (isPgError(err)) {
    if (err.code === SqlState.queryCanceled && /user request/.test(err.message)) {
      return new CancelledError('cancelled: the statement was cancelled', { ...details, ...pgErrorFields(err) });
    }
    return new SyncLookupError('postgres_error', err.message, { ...details, ...pgErrorFields(err) }, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SyncLookupError('internal_error', message, details, { cause: err });
}
