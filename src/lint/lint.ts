import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { withClient, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { estimateIndex } from '../inspect/estimate.js';
import { exportStats, type StatsExport } from '../inspect/stats.js';
import { loadSqlParser } from '../plan/expr.js';
import { DEFAULT_RATES } from './estimates.js';
import { lintFile, type RuleLevels } from './engine.js';
import { extractFile, MIGRATION_EXTENSIONS } from './extract/index.js';
import { readConstraints, schemaFromDump, schemaFromStats } from './schema/load.js';
import { SchemaModel } from './schema/model.js';
import { assumedSize, sizesFromStats, type SizeMap } from './sizes.js';
import type { MeasuredBuild } from './rules/context.js';
import type { ExtractedFile, LintFinding } from './types.js';

/*
 * `lintMigrations`: the linter's one entry point. Reads the starting schema and the sizes, extracts
 * every migration file in name order, and lints each against the schema as the earlier ones left it.
 */

/** A migration given as text (tests, editors) instead of a path. */
export interface MigrationSource { path: string; text: string }

/** Options of {@link lintMigrations}. */
export interface LintOptions {
  /** `pg_dump --schema-only` output: the schema before the first migration. */
  schemaSql?: string;
  /** A live database: schema (tables, indexes, constraints) and sizes (row estimates, pages, pg_stats widths). */
  database?: Database;
  /** A `stats export` document: sizes, and the schema when neither `schemaSql` nor `database` gives one. */
  stats?: StatsExport;
  /** Row counts to assume, by `schema.table` (or `table` for public): they override other sizes. */
  assumeRows?: ReadonlyMap<string, number> | Record<string, number>;
  /** Record types still in the registry (`--models`): deleting their lookup rows needs a rebuild. */
  liveTypes?: readonly string[];
  /** Migrations without their own marker run in a transaction (the runner wraps each one). */
  assumeInTransaction?: boolean;
  /** The runner sets lock_timeout for every migration. */
  lockTimeoutSetByRunner?: boolean;
  /** From this many rows a table is large (default 1 000 000). */
  largeTableRows?: number;
  /** Sequential read rates for time ranges, slowest and fastest, in MB/s (default 50 and 500). */
  readMBps?: [number, number];
  /** Levels per rule id (`off`, `warning`, `error`). */
  rules?: RuleLevels;
}

/** What {@link lintMigrations} found. */
export interface LintResult {
  files: string[];
  statements: number;
  findings: LintFinding[];
  errors: number;
  warnings: number;
  /** Where the starting schema came from: `schema dump`, `database`, `stats`, or null (none: only the migrations' own DDL). */
  schemaSource: string | null;
  /** Where sizes came from, and the tables of each source. */
  sizeSources: string[];
  /** Things said about the inputs (a schema statement that did not parse). */
  notes: string[];
}

/**
 * Lints migration files (paths of files or folders, read in name order) or sources. Throws ConfigError
 * (`missing_file`) for a path that does not exist; an unparsable migration is a `parse-error` finding.
 *
 * @example
 * const r = await lintMigrations(['migrations/'], { schemaSql: dump, assumeRows: { sync_lookup: 58_000_000 } });
 * for (const f of r.findings) console.log(`${f.file}:${f.line}:${f.column} ${f.rule} ${f.message}`);
 */
export async function lintMigrations(files: readonly (string | MigrationSource)[], options: LintOptions = {}): Promise<LintResult> {
  await loadSqlParser();
  const sources = readSources(files);
  const { model, sizes, schemaSource, sizeSources, notes } = await startingPoint(options);
  const settings = {
    largeTableRows: options.largeTableRows ?? 1_000_000,
    rates: { ...DEFAULT_RATES, ...(options.readMBps ? { readMBps: options.readMBps } : {}) },
    liveTypes: new Set(options.liveTypes ?? []),
    lockTimeoutSetByRunner: !!options.lockTimeoutSetByRunner,
  };
  const extractedFiles = sources.map((src) => extractFile(src.path, src.text, { assumeInTransaction: options.assumeInTransaction ? true : null }));
  const measured = options.database ? await measureIndexBuilds(options.database, extractedFiles, sizes, settings.largeTableRows) : new Map();
  const findings: LintFinding[] = [];
  let statements = 0;
  for (const extracted of extractedFiles) {
    statements += extracted.statements.length;
    findings.push(...lintFile(extracted, model, sizes, { ...settings, measuredIndexBuilds: measured }, options.rules ?? {}));
  }
  return {
    files: sources.map((s) => s.path), statements, findings,
    errors: findings.filter((f) => f.level === 'error').length, warnings: findings.filter((f) => f.level === 'warning').length,
    schemaSource, sizeSources, notes,
  };
}

/**
 * With a live database, `index estimate` itself (size from pg_stats, build time from a measured read and
 * sort of a sample) for each CREATE INDEX without CONCURRENTLY on a large table the database sized; by
 * `file:offset`. An index the database cannot estimate (a column added by an earlier migration) is left to
 * the model with stated rates.
 */
async function measureIndexBuilds(db: Database, files: ExtractedFile[], sizes: SizeMap, largeTableRows: number): Promise<Map<string, MeasuredBuild>> {
  const out = new Map<string, MeasuredBuild>();
  for (const f of files) {
    for (const s of f.statements) {
      const n = s.ast.IndexStmt as { concurrent?: boolean; relation?: { schemaname?: string; relname?: string } } | undefined;
      const size = n && !n.concurrent ? sizes.get(`${n.relation?.schemaname ?? 'public'}.${n.relation?.relname ?? ''}`) : undefined;
      if (!size || size.source !== 'database' || size.rows < largeTableRows) continue;
      try {
        const e = await estimateIndex(db, s.sql);
        out.set(`${f.file}:${s.offset}`, { indexBytes: e.estimatedBytes, buildMs: e.estimatedBuildMs });
      } catch { /* estimated from the model instead */ }
    }
  }
  return out;
}

/** Files a migration folder holds: its migration files, and one level down Prisma's / diesel's `<name>/migration.sql`, `up.sql`, `down.sql`. */
function folderFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isFile() && MIGRATION_EXTENSIONS.includes(extname(entry.name)) && !entry.name.endsWith('.d.ts')) out.push(p);
    else if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules') {
      out.push(...readdirSync(p).filter((n) => SUBFOLDER_MIGRATIONS.includes(n)).map((n) => join(p, n)));
    }
  }
  return out;
}

const SUBFOLDER_MIGRATIONS = ['migration.sql', 'up.sql', 'down.sql'];

/**
 * The order a runner applies files in: by file name, a migration in its own folder by the folder's name,
 * and a migration's `down` file right after its `up` (golang-migrate's `1_x.up.sql`, `1_x.down.sql`).
 */
function orderKey(path: string): [string, number] {
  const name = basename(path);
  if (SUBFOLDER_MIGRATIONS.includes(name)) return [basename(dirname(path)), name === 'down.sql' ? 1 : 0];
  const m = /^(.*)\.(up|down)\.sql$/.exec(name);
  return m ? [m[1]!, m[2] === 'down' ? 1 : 0] : [name, 0];
}

/** Files and folders as sources, in the order a runner applies them. */
function readSources(files: readonly (string | MigrationSource)[]): MigrationSource[] {
  const out: MigrationSource[] = [];
  const missing: string[] = [];
  for (const f of files) {
    if (typeof f !== 'string') { out.push(f); continue; }
    let st;
    try { st = statSync(f); } catch { missing.push(f); continue; }
    for (const p of st.isDirectory() ? folderFiles(f) : [f]) out.push({ path: p, text: readFileSync(p, 'utf8') });
  }
  if (missing.length) throw new ConfigError('missing_file', `no such file or folder: ${missing.join(', ')}`, { missing });
  return out.sort((a, b) => {
    const [ka, ra] = orderKey(a.path);
    const [kb, rb] = orderKey(b.path);
    return ka.localeCompare(kb) || ra - rb || a.path.localeCompare(b.path);
  });
}

async function startingPoint(options: LintOptions): Promise<{ model: SchemaModel; sizes: SizeMap; schemaSource: string | null; sizeSources: string[]; notes: string[] }> {
  const model = new SchemaModel();
  const notes: string[] = [];
  let sizes: SizeMap = new Map();
  const sizeSources: string[] = [];
  let schemaSource: string | null = null;
  if (options.database) {
    const db = options.database;
    const doc = await exportStats(db);
    notes.push(...schemaFromStats(doc, model).problems);
    await withClient(db, { purpose: 'lint' }, (client) => readConstraints(client, model));
    sizes = sizesFromStats(doc, 'database');
    schemaSource = 'database';
    sizeSources.push(`database (${doc.tables.length} tables)`);
  }
  if (options.schemaSql !== undefined) {
    notes.push(...schemaFromDump(options.schemaSql, model).problems);
    schemaSource = schemaSource ? `${schemaSource} + schema dump` : 'schema dump';
  }
  if (options.stats) {
    if (schemaSource === null) { notes.push(...schemaFromStats(options.stats, model).problems); schemaSource = 'stats'; }
    for (const [k, v] of sizesFromStats(options.stats, 'stats')) sizes.set(k, v);
    sizeSources.push(`stats (${options.stats.tables.length} tables)`);
  }
  const assumed = options.assumeRows instanceof Map ? options.assumeRows : new Map(Object.entries(options.assumeRows ?? {}));
  for (const [name, rows] of assumed) {
    const key = name.includes('.') ? name : `public.${name}`;
    sizes.set(key, assumedSize(rows, model.tables.get(key), sizes.get(key)));
  }
  if (schemaSource === null) notes.push('no starting schema (--schema, --database-url or --stats): only tables the migrations create are known, so unindexed-filter cannot judge the others');
  if (assumed.size) sizeSources.push(`assumed (${[...assumed].map(([k, v]) => `${k.includes('.') ? k : `public.${k}`}=${v}`).join(', ')})`);
  return { model, sizes, schemaSource, sizeSources, notes };
}
