import type { IgnoreDirective, TransactionContext } from '../types.js';

/*
 * The few comment markers a migration carries: inline ignores and "do not run me in a transaction".
 * Comments are found by the SQL scanner or the JavaScript parser; only their text is read here.
 */

const IGNORE = 'sync-lookup-lint-ignore';

/**
 * Reads `sync-lookup-lint-ignore RULE[,RULE…] reason` from a comment's text (its markers stripped);
 * null when the comment is not an ignore.
 */
export function parseIgnore(comment: string): { rules: string[]; reason: string } | null {
  const text = comment.replace(/^(--|\/\/|\/\*)\s*/, '').replace(/\*\/$/, '').trim();
  if (!text.startsWith(IGNORE)) return null;
  const rest = text.slice(IGNORE.length).trim();
  const [list = '', ...words] = rest.split(/\s+/);
  const reason = words.join(' ').replace(/^[-:—–]\s*/, '').trim();
  return { rules: list.split(',').map((r) => r.trim()).filter(Boolean), reason };
}

/** Builds an ignore directive covering file offsets `[from, to)`. */
export function ignoreDirective(file: string, at: { line: number; column: number }, parsed: { rules: string[]; reason: string },
  range: { start: number; end: number }): IgnoreDirective {
  return { file, line: at.line, column: at.column, rules: parsed.rules, reason: parsed.reason, from: range.start, to: range.end };
}

/**
 * The no-transaction marker a SQL comment carries: graphile-migrate's `--! no-transaction`,
 * node-pg-migrate's and sync-lookup's plain `-- no-transaction`, or null.
 */
export function noTransactionComment(comment: string): string | null {
  const text = comment.trim().toLowerCase();
  if (/^--!\s*no-transaction\b/.test(text)) return '--! no-transaction';
  if (/^--\s*\+goose\s+no\s+transaction\b/.test(text)) return '-- +goose NO TRANSACTION';
  if (/^--\s*migrate:(up|down)\b.*\btransaction:false\b/.test(text)) return 'dbmate transaction:false';
  if (/^--\s*(sync-lookup:\s*)?no[- ]transaction\b/.test(text)) return '-- no-transaction';
  return null;
}

/** Runners that wrap each migration in a transaction unless told otherwise (and how they are told). */
export const RUNNER_DEFAULTS: Record<string, boolean | null> = {
  'sync-lookup': true, typeorm: true, knex: true, 'node-pg-migrate': true, 'graphile-migrate': true,
  // Sequelize's umzug runs migrations as written; a host (Tamanu) may wrap them: --assume-in-transaction.
  sequelize: null, pg: null, sql: null,
};

/** The transaction context: the file's marker, else its runner's default, else `assumed` (or unknown). */
export function transactionContext(marker: string | null, runner: string | null, assumed: boolean | null): TransactionContext {
  if (marker) return { inTransaction: false, source: marker };
  const byRunner = runner ? RUNNER_DEFAULTS[runner] ?? null : null;
  if (assumed !== null) return { inTransaction: assumed, source: assumed ? '--assume-in-transaction' : 'not in a transaction (option)' };
  if (byRunner !== null) return { inTransaction: byRunner, source: `default of ${runner} migrations` };
  return { inTransaction: null, source: 'unknown: pass --assume-in-transaction if the runner wraps each migration in one' };
}

/**
 * The section a SQL comment opens in migration tools that keep both directions in one file:
 * node-pg-migrate (`-- Up Migration`), dbmate (`-- migrate:up`), goose (`-- +goose Up`); null otherwise.
 */
export function sectionComment(comment: string): 'up' | 'down' | null {
  const m = /^--\s*(?:(up|down) migration\b|migrate:(up|down)\b|\+goose\s+(up|down)\b)/.exec(comment.trim().toLowerCase());
  return m ? (m[1] ?? m[2] ?? m[3]) as 'up' | 'down' : null;
}
