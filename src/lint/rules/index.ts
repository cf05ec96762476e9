import type { LintLevel, RuleId } from '../types.js';
import type { Rule } from './context.js';
import { concurrentIndexInTransaction, nonConcurrentIndex } from './indexes.js';
import { blockingValidation, liveTypeDelete, missingLockTimeout } from './locks.js';
import { fullTableRewrite } from './rewrite.js';
import { countForEmptiness } from './count-for-emptiness.js';
import { unindexedFilter } from './unindexed-filter.js';

/*
 * The rules, with what SARIF and the docs say about each. Statement rules run on every statement; the
 * engine itself reports `parse-error`, `unused-ignore` and `ignore-without-reason`.
 */

/** What a rule is, for people and for SARIF. */
export interface RuleInfo {
  id: RuleId;
  /** The level it reports at by default (size-dependent rules: on a large table; warning when the size is unknown). */
  level: LintLevel;
  summary: string;
  help: string;
  run: Rule | null;
}

const DOCS = 'docs/lint.md';

/** Every rule, in the order findings of one statement are reported (and SARIF lists them). */
export const RULES: readonly RuleInfo[] = [
  { id: 'unindexed-filter', level: 'error', run: unindexedFilter,
    summary: 'DELETE, UPDATE or SELECT whose predicate no index serves by its leading column, on a large table',
    help: 'The statement reads the whole table. Create the index the finding names (CONCURRENTLY, in a migration before), or filter on an indexed leading column.' },
  { id: 'count-for-emptiness', level: 'error', run: countForEmptiness,
    summary: 'count(*) compared with 0 to test for rows, on a large table', help: 'Use EXISTS (SELECT 1 FROM … ), which stops at the first row.' },
  { id: 'non-concurrent-index', level: 'error', run: nonConcurrentIndex,
    summary: 'CREATE INDEX, DROP INDEX or REINDEX without CONCURRENTLY on a large table',
    help: 'Writes (reads too, for DROP INDEX) wait for the whole build. Use CONCURRENTLY in a migration that runs outside a transaction.' },
  { id: 'concurrent-index-in-transaction', level: 'error', run: concurrentIndexInTransaction,
    summary: 'CONCURRENTLY in a migration that runs in a transaction',
    help: 'PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY and REINDEX CONCURRENTLY inside a transaction block. Mark the migration non-transactional and send the statement alone.' },
  { id: 'full-table-rewrite', level: 'error', run: fullTableRewrite,
    summary: 'a type change that rewrites, ADD COLUMN with a volatile default, VACUUM FULL, CLUSTER, or UPDATE without WHERE, on a large table',
    help: 'Every row is rewritten while the table is locked. Add a column and backfill it in batches; use plain VACUUM or an online repack.' },
  { id: 'blocking-validation', level: 'error', run: blockingValidation,
    summary: 'SET NOT NULL, CHECK or FOREIGN KEY without NOT VALID, UNIQUE/PRIMARY KEY without an existing index, on a large table',
    help: 'The constraint is checked by a full scan under a lock. Add it NOT VALID and VALIDATE it later; build unique indexes CONCURRENTLY and attach them with USING INDEX.' },
  { id: 'missing-lock-timeout', level: 'warning', run: missingLockTimeout,
    summary: 'DDL taking ACCESS EXCLUSIVE on an existing table without lock_timeout',
    help: "While it waits for its lock, every other query on the table waits behind it. SET lock_timeout first (e.g. '5s') and retry on failure." },
  { id: 'sync-lookup-live-type-delete', level: 'error', run: liveTypeDelete,
    summary: 'DELETE FROM sync_lookup of a record type still in the registry, without the rebuild that restores it',
    help: 'No later incremental build reads the unchanged source rows. Use sync-lookup purge --then-rebuild (rebuildRecordTypes), or flag_lookup_model_to_rebuild in the same migration.' },
  { id: 'parse-error', level: 'error', run: null, summary: 'a migration file or statement that does not parse', help: 'Fix the syntax; the other statements and files are still linted.' },
  { id: 'unused-ignore', level: 'warning', run: null, summary: 'an inline ignore that suppressed nothing', help: 'Remove the comment, or correct the rule id.' },
  { id: 'ignore-without-reason', level: 'error', run: null, summary: 'an inline ignore without a reason', help: 'Write why after the rule id: -- sync-lookup-lint-ignore RULE reason.' },
];

/** Where each rule is explained (`docs/lint.md#<rule>`). */
export function ruleHelpUri(id: RuleId): string {
  return `${DOCS}#${id}`;
}
