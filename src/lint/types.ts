/*
 * The shapes of the migration linter: statements found in migration files, the findings rules make,
 * and the options and result of `lintMigrations`.
 */

/** Stable rule ids (a contract: configs, ignore comments and SARIF name them). */
export const RULE_IDS = [
  'unindexed-filter', 'count-for-emptiness', 'non-concurrent-index', 'concurrent-index-in-transaction',
  'full-table-rewrite', 'blocking-validation', 'missing-lock-timeout', 'sync-lookup-live-type-delete',
  'parse-error', 'unused-ignore', 'ignore-without-reason',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

/** An error blocks (exit 3), a warning informs. */
export type LintLevel = 'error' | 'warning';

/** Which migration function a statement runs in: `up`, `down`, or the whole file (SQL). */
export type MigrationPhase = 'up' | 'down' | 'file';

/** A place in a migration file; line and column are 1-based. */
export interface SourceLocation { file: string; line: number; column: number }

/** One finding: where, which rule, what, and the fix. */
export interface LintFinding extends SourceLocation {
  rule: RuleId;
  level: LintLevel;
  phase: MigrationPhase;
  /** The table the statement touches, `schema.name`, when there is one. */
  table: string | null;
  message: string;
  /** The exact statement or change that fixes it, when there is one. */
  fix: string | null;
  /** The statement as extracted (placeholders for what could not be resolved), cut to 300 characters. */
  statement: string | null;
  /** Numbers behind the message (rows, bytes, milliseconds), JSON-safe. */
  evidence: Record<string, string | number | boolean | null>;
}

/** Whether the migration runs in a transaction, and what says so. */
export interface TransactionContext {
  inTransaction: boolean | null;
  /** `sync-lookup transaction: false`, `pgm.noTransaction()`, `--! no-transaction`, … or `default of <runner>`. */
  source: string;
}

/** One SQL statement found in a migration file, parsed. */
export interface ExtractedStatement {
  file: string;
  phase: MigrationPhase;
  /** Offset of the statement in the original file, and its 1-based line and column. */
  offset: number;
  /** File offset just past the statement. */
  end: number;
  line: number;
  column: number;
  /** The statement's SQL (placeholders replace unresolved interpolations and bound parameters). */
  sql: string;
  /** The statement's parse tree (libpg-query's `stmt`). */
  ast: Record<string, unknown>;
  /** How it was found: `sql file`, `query()`, `knex.raw()`, `queryInterface.addColumn()`, … */
  via: string;
  /** Other statements sent in the same call (a multi-statement string runs as one implicit transaction). */
  batchSize: number;
  /** Index of the call it came from, within the file (statements of one call share it). */
  call: number;
}

/** An inline ignore: `-- sync-lookup-lint-ignore RULE reason` or `// sync-lookup-lint-ignore RULE reason`. */
export interface IgnoreDirective {
  file: string;
  line: number;
  column: number;
  rules: string[];
  reason: string;
  /** File offsets the directive covers (the next statement, or the next code statement for `//`). */
  from: number;
  to: number;
}

/** What a migration file holds once read. */
export interface ExtractedFile {
  file: string;
  statements: ExtractedStatement[];
  ignores: IgnoreDirective[];
  transaction: TransactionContext;
  /** Calls of the host's or sync-lookup's rebuild: `flag_lookup_model_to_rebuild('x')` arguments, or `*` for a library rebuild. */
  rebuilds: { phase: MigrationPhase; types: string[] }[];
  /** Unparsable SQL or code: reported as `parse-error` findings. */
  errors: { line: number; column: number; message: string; phase: MigrationPhase }[];
}
