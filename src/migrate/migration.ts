import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { serverVersion, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { createIndexSql, dropIndexSql, type IndexSpec } from '../db/index-ddl.js';
import { createIndexConcurrently, type IndexBuildResult } from './concurrent-index.js';
import type { MigrationEvent } from './events.js';
import { parseSqlFile, sqlFileProblems, type SqlFile } from './sql-file.js';
import { runSqlFile } from './sql-run.js';

/** What a migration's `up` gets from the runner. */
export interface MigrationContext {
  /** The migration's connection; inside its transaction when the migration is transactional. */
  client: pg.ClientBase;
  /** For extra connections (progress monitors, cancellation). */
  db: Database;
  signal?: AbortSignal;
  onEvent: (event: MigrationEvent) => void;
  /** Steps finished so far; reported when a non-transactional migration fails halfway. */
  completed: string[];
  /** Builds an index concurrently (non-transactional migrations only), repairing an INVALID leftover. */
  createIndexConcurrently(spec: IndexSpec): Promise<IndexBuildResult>;
  /**
   * Runs `fn` in a transaction of its own with the runner's short, growing `lock_timeout` and retries
   * (non-transactional migrations; a transactional one already runs so). Throws LockNotAcquiredError after the last attempt.
   */
  withLockRetries<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * One migration. `source` is what its checksum covers, `plan` is the SQL `--dry-run` shows.
 *
 * @example
 * const m = sqlMigration({ name: '0003_add_column', sql: 'alter table sync_lookup add column x int' });
 */
export interface Migration {
  name: string;
  /** Runs inside one transaction (default). False for `CREATE/DROP INDEX CONCURRENTLY`. */
  transaction: boolean;
  source: string;
  plan: string[];
  up(ctx: MigrationContext): Promise<void>;
  /** For `--adopt`: true when what this migration creates already exists in its shape. */
  adoptable?(client: pg.ClientBase): Promise<boolean>;
  /**
   * Checked for every pending migration before any runs (also under `--dry-run`): throws ConfigError when
   * the migration cannot keep the promise of its mode on this server (a `.sql` file's statements).
   */
  preflight?(client: pg.ClientBase): Promise<void>;
}

/** sha256 of a migration's source, hex. */
export function checksum(source: string): string {
  return createHash('sha256').update(source).digest('hex');
}

/**
 * A migration made of SQL text, split into statements with PostgreSQL's parser and run one by one: all in
 * one transaction, or (`transaction: false`) each committing on its own, concurrent index statements
 * through the built-in index path. `preflight` refuses statements that cannot keep that promise.
 *
 * @example
 * sqlMigration({ name: '0003_x', sql: 'create table x (id int)' })
 */
export function sqlMigration(options: { name: string; sql: string; transaction?: boolean; source?: string; file?: string }): Migration {
  const transactional = options.transaction ?? true;
  const label = options.file ?? options.name;
  let parsed: Promise<SqlFile> | undefined;
  const read = () => (parsed ??= parseSqlFile(options.sql, label).then((f) => ({ ...f, transactional })));
  return {
    name: options.name,
    transaction: transactional,
    source: options.source ?? options.sql,
    plan: [options.sql],
    async preflight(client) {
      const problems = sqlFileProblems(await read(), (await serverVersion(client)).num);
      if (!problems.length) return;
      throw new ConfigError('migration_refused',
        `${label} cannot run as written; nothing was run:\n${problems.map((p) => `  ${label}:${p.line}: ${p.message}`).join('\n')}`,
        { file: label, problems });
    },
    async up(ctx) {
      await runSqlFile(ctx, await read());
    },
  };
}

/**
 * A non-transactional migration that builds one index concurrently (dropping an INVALID leftover first).
 *
 * @example
 * concurrentIndexMigration({ name: '0002_idx', index: { table: 'sync_lookup', name: 'i', columns: ['record_type'] } })
 */
export function concurrentIndexMigration(options: { name: string; index: IndexSpec; comment?: string }): Migration {
  const create = createIndexSql(options.index);
  const plan = [
    `-- if an INVALID index ${options.index.name} is left by a failed build:\n${dropIndexSql({ schema: options.index.schema ?? 'public', name: options.index.name })}`,
    create,
  ];
  return {
    name: options.name,
    transaction: false,
    source: `${options.comment ?? ''}\n${create}`,
    plan,
    async up(ctx) {
      await ctx.createIndexConcurrently(options.index);
    },
  };
}

/**
 * Loads user migrations from a folder: `*.sql` files (a `-- sync-lookup: no-transaction` comment makes one
 * non-transactional; split into statements with PostgreSQL's parser, a syntax error names file and line) and `*.js` / `*.mjs` modules whose default export is a Migration without `source`
 * (the file's text is its checksum). Sorted by file name.
 *
 * @example
 * const extra = await loadMigrationsDir('./migrations');
 */
export async function loadMigrationsDir(dir: string): Promise<Migration[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /\.(sql|m?js)$/.test(f)).sort();
  } catch {
    throw new ConfigError('migrations_dir_not_found', `migrations folder ${JSON.stringify(dir)} cannot be read`);
  }
  const migrations: Migration[] = [];
  for (const file of names) {
    const full = path.resolve(dir, file);
    const text = await readFile(full, 'utf8');
    const name = file.replace(/\.(sql|m?js)$/, '');
    if (file.endsWith('.sql')) {
      const parsed = await parseSqlFile(text, full);
      migrations.push({ ...sqlMigration({ name, sql: text, transaction: parsed.transactional, file: full }),
        plan: parsed.statements.map((st) => st.sql) });
      continue;
    }
    let mod: { default?: Partial<Migration> };
    try {
      mod = (await import(pathToFileURL(full).href)) as { default?: Partial<Migration> };
    } catch (err) {
      // A syntax error, a missing import or a throw at the module's top level: name the file, keep the cause.
      throw new ConfigError('invalid_migration', `migration ${full} could not be loaded: ${err instanceof Error ? err.message : String(err)}`,
        { file: full }, { cause: err });
    }
    const m = mod.default;
    if (!m || typeof m.up !== 'function') {
      throw new ConfigError('invalid_migration', `migration ${file} must export default { up(ctx) {...}, transaction?, plan? }`, { file });
    }
    migrations.push({
      name, transaction: m.transaction ?? true, source: text, plan: m.plan ?? [`-- ${file}: JavaScript migration`],
      up: m.up.bind(m), ...(m.adoptable ? { adoptable: m.adoptable.bind(m) } : {}),
    });
  }
  return migrations;
}

/** Binds the helpers of a MigrationContext to a client. */
export function migrationContext(
  db: Database, client: pg.ClientBase, migration: Migration, onEvent: (e: MigrationEvent) => void, signal: AbortSignal | undefined,
  withLockRetries: <T>(fn: () => Promise<T>) => Promise<T>,
): MigrationContext {
  const completed: string[] = [];
  return {
    client, db, onEvent, completed, withLockRetries, ...(signal ? { signal } : {}),
    async createIndexConcurrently(spec) {
      if (migration.transaction) {
        throw new ConfigError('concurrent_in_transaction',
          `migration ${migration.name} builds an index concurrently, which cannot run inside a transaction: declare it transaction: false`);
      }
      const result = await createIndexConcurrently(db, client, spec, { onEvent, ...(signal ? { signal } : {}) });
      completed.push(createIndexSql(spec));
      return result;
    },
  };
}
