import pg from 'pg';
import { applySessionSettings, databaseFromUrl, parseDatabaseUrl, type Database } from '../db/connection.js';
import { ConfigError, SyncLookupError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';

/**
 * Where the benchmark keeps its data: databases it creates and marks as its own, never the user's.
 *
 * Every bench-owned database holds the marker table {@link MARKER_TABLE} (what was seeded, with which
 * generator settings, and whether the data is in its seeded state). A database without the marker is
 * never dropped or written. The user's database (DATABASE_URL) is only read, to decide whether it is safe
 * to run at all, unless the role cannot create databases and that database is empty or bench-owned.
 */

/** Schema of bench-owned helper tables (saved copies of rows for exact restores). */
export const BENCH_SCHEMA = 'sync_lookup_bench';
/** The marker that makes a database bench-owned. */
export const MARKER_TABLE = 'sync_lookup_bench_marker';
/** Default name prefix of bench-owned databases. */
export const DEFAULT_DATABASE_PREFIX = 'sync_lookup_bench';

/** What a bench database holds: the same spec means the same data (the generator is deterministic). */
export interface DatasetSpec {
  rows: number;
  seed: number;
  layout: 'plain' | 'partitioned';
  /** Anything else the data depends on (registry additions, generator version); compared as JSON. */
  variant: Record<string, unknown>;
  /** A throwaway copy (the `seed` scenario's runs): its own database name, never reused. */
  scratch?: boolean;
}

/** The state a bench database is in. `in_use` left behind by a crash means "reseed". */
export type DatasetState = 'seeding' | 'ready' | 'in_use';

/** Options of {@link openBenchTarget}. */
export interface BenchTargetOptions {
  /** Connection string of the database the user pointed at (DATABASE_URL, or the embedded server's). */
  url: string;
  /** True for a user's server (DATABASE_URL), false for the embedded one this tool runs. */
  external: boolean;
  /** Run even though the user's database holds data of its own (bench still never touches it). */
  force?: boolean;
  /** Name prefix of bench-owned databases; default `sync_lookup_bench`. */
  databasePrefix?: string;
}

/** A bench-owned database. */
export interface BenchDatabase {
  name: string;
  url: string;
  db: Database;
  /** True when it already held the requested data in its seeded state. */
  reused: boolean;
}

interface Marker { spec: DatasetSpec; state: DatasetState; tables: string[] }

/** A table the user owns, as `schema.name`. */
async function userTables(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select n.nspname || '.' || c.relname as name
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'v', 'm', 'f')
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
        and not c.relispartition
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by 1`);
  return rows.map((r) => r.name);
}

async function readMarker(client: pg.ClientBase): Promise<Marker | undefined> {
  const { rows: [exists] } = await client.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`, [`public.${MARKER_TABLE}`]);
  if (!exists?.ok) return undefined;
  const { rows } = await client.query<{ spec: DatasetSpec; state: DatasetState; tables: string[] }>(
    `select spec, state, tables from ${quoteIdent(MARKER_TABLE)} limit 1`);
  return rows[0] ?? { spec: { rows: 0, seed: 0, layout: 'plain', variant: {} }, state: 'seeding', tables: [] };
}

/**
 * Marks the database bench-owned (or updates its marker).
 *
 * @example
 * await writeMarker(client, spec, 'ready');
 */
export async function writeMarker(client: pg.ClientBase, spec: DatasetSpec, state: DatasetState): Promise<void> {
  await client.query(`create table if not exists ${quoteIdent(MARKER_TABLE)} (
    spec jsonb not null, state text not null, tables text[] not null default '{}', updated_at timestamptz not null default now())`);
  const tables = state === 'ready' ? await userTables(client) : null;
  await client.query(`delete from ${quoteIdent(MARKER_TABLE)}`);
  await client.query(`insert into ${quoteIdent(MARKER_TABLE)} (spec, state, tables) values ($1, $2, coalesce($3::text[], '{}'))`,
    [JSON.stringify(spec), state, tables]);
}

/** Sets only the state of the marker (cheap; used around runs that change data). */
export async function setMarkerState(db: Database, state: DatasetState): Promise<void> {
  const lease = await db.acquire();
  try {
    await lease.client.query(`update ${quoteIdent(MARKER_TABLE)} set state = $1, updated_at = now()`, [state]);
  } finally {
    await lease.release();
  }
}

function sameSpec(a: DatasetSpec, b: DatasetSpec): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonical(v)]));
  }
  return value;
}

function withDatabaseName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

async function connect(url: string, purpose: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  await applySessionSettings(client, { purpose, lockTimeoutMs: 10_000 });
  return client;
}

/**
 * The benchmark's access to a server: checks it is safe to run there, holds an advisory lock so two
 * benchmarks never run at once on one server, and hands out bench-owned databases per dataset.
 *
 * @example
 * const target = await openBenchTarget({ url, external: true });
 * try { const d = await target.dataset(spec, (db) => seed(db)); } finally { await target.close(); }
 */
export interface BenchTarget {
  /** Where data goes: `databases` (one per dataset) or `entry` (the user's empty database itself). */
  readonly mode: 'databases' | 'entry';
  /** Names of the bench databases used so far. */
  readonly used: string[];
  /**
   * A bench-owned database holding `spec`'s data: reused when its marker says so, otherwise (re)created
   * and filled by `populate`. The returned database is marked `in_use` until {@link BenchTarget.release}.
   */
  dataset(spec: DatasetSpec, populate: (db: Database) => Promise<void>, options?: { fresh?: boolean }): Promise<BenchDatabase>;
  /** Marks a dataset as back in its seeded state (every scenario restored what it changed). */
  release(d: BenchDatabase): Promise<void>;
  /** Drops a bench-owned database (scratch data). */
  drop(name: string): Promise<void>;
  close(): Promise<void>;
}

const LOCK_KEY = 'sync-lookup:bench';

/**
 * Opens the target server for benchmarking. Refuses (ConfigError, exit 2) a user's database that holds
 * data of its own unless `force`, and a second benchmark on the same server.
 */
export async function openBenchTarget(options: BenchTargetOptions): Promise<BenchTarget> {
  const { label } = parseDatabaseUrl(options.url);
  const prefix = options.databasePrefix ?? DEFAULT_DATABASE_PREFIX;
  const entry = await connect(options.url, 'bench');
  try {
    const mode = await checkEntry(entry, options, label, prefix);
    return new ServerTarget(entry, options.url, prefix, mode);
  } catch (err) {
    await entry.end().catch(() => {});
    throw err;
  }
}

/** Checks the entry database is safe to use, picks the mode, and takes the one-benchmark-per-server lock. */
async function checkEntry(entry: pg.Client, options: BenchTargetOptions, label: string, prefix: string): Promise<BenchTarget['mode']> {
  const { rows: [info] } = await entry.query<{ db: string; createdb: boolean }>(
    `select current_database() as db, (select rolcreatedb or rolsuper from pg_roles where rolname = current_user) as createdb`);
  const entryName = info!.db;
  const marker = await readMarker(entry);
  const own = (await userTables(entry)).filter((t) => t !== `public.${MARKER_TABLE}`);
  const benchOwned = marker !== undefined;
  if (options.external && own.length > 0 && !benchOwned && !options.force) {
    throw new ConfigError('bench_refused',
      `refusing to benchmark on ${label}: database "${entryName}" holds ${own.length} table(s) of its own ` +
      `(${own.slice(0, 5).join(', ')}${own.length > 5 ? ', …' : ''}). The benchmark loads the server heavily and fills ` +
      `databases of several GB; point DATABASE_URL at a server (or an empty database) meant for it, or pass --force ` +
      `to run in separate databases named ${prefix}_* (your tables are never touched)`,
      { database: entryName, tables: own.slice(0, 20) });
  }
  const mode = info!.createdb ? 'databases' : 'entry';
  if (mode === 'entry' && own.length > 0 && !benchOwned) {
    throw new ConfigError('bench_no_database',
      `cannot benchmark on ${label}: the role may not create databases, and database "${entryName}" holds tables of its own ` +
      `(${own.slice(0, 5).join(', ')}); grant CREATEDB or point DATABASE_URL at an empty database`, { database: entryName });
  }
  const { rows: [lock] } = await entry.query<{ ok: boolean }>(`select pg_try_advisory_lock(hashtext($1)) as ok`, [LOCK_KEY]);
  if (!lock?.ok) {
    throw new ConfigError('bench_running', `another sync-lookup bench or demo is running on ${label}; wait for it to finish`);
  }
  return mode;
}

/** A checked server, holding the bench lock on its entry connection until closed. */
class ServerTarget implements BenchTarget {
  readonly used: string[] = [];
  private readonly entry: pg.Client;
  private readonly url: string;
  private readonly prefix: string;
  readonly mode: BenchTarget['mode'];

  constructor(entry: pg.Client, url: string, prefix: string, mode: BenchTarget['mode']) {
    this.entry = entry;
    this.url = url;
    this.prefix = prefix;
    this.mode = mode;
  }

  async dataset(spec: DatasetSpec, populate: (db: Database) => Promise<void>, { fresh = false } = {}): Promise<BenchDatabase> {
    const name = this.mode === 'databases' ? this.databaseName(spec) : (await this.entry.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    const url = this.mode === 'databases' ? withDatabaseName(this.url, name) : this.url;
    if (!this.used.includes(name)) this.used.push(name);
    const reused = await this.reuseOrClear(name, url, spec, fresh);
    if (reused) return reused;
    if (this.mode === 'databases') await this.entry.query(`create database ${quoteIdent(name)}`);
    const client = await connect(url, 'bench');
    try {
      await writeMarker(client, spec, 'seeding');
    } finally {
      await client.end().catch(() => {});
    }
    const db = databaseFromUrl(url);
    await populate(db);
    const after = await connect(url, 'bench');
    try {
      await writeMarker(after, spec, 'in_use');
    } finally {
      await after.end().catch(() => {});
    }
    return { name, url, db, reused: false };
  }

  /** An existing dataset with the same spec is reused (marked `in_use`); any other is dropped or reset. */
  private async reuseOrClear(name: string, url: string, spec: DatasetSpec, fresh: boolean): Promise<BenchDatabase | undefined> {
    if (this.mode === 'databases') {
      const { rowCount } = await this.entry.query('select 1 from pg_database where datname = $1', [name]);
      if (!rowCount) return undefined;
    }
    const client = await connect(url, 'bench');
    try {
      const marker = await readMarker(client);
      if (!marker && this.mode === 'databases') {
        throw new ConfigError('bench_not_owned',
          `database "${name}" exists but is not bench-owned (no ${MARKER_TABLE} table); refusing to use it`, { database: name });
      }
      if (!fresh && marker && marker.state === 'ready' && sameSpec(marker.spec, spec)) {
        await writeMarker(client, spec, 'in_use');
        return { name, url, db: databaseFromUrl(url), reused: true };
      }
      if (this.mode === 'entry') await resetEntry(client, marker);
    } finally {
      await client.end().catch(() => {});
    }
    if (this.mode === 'databases') await this.dropOwned(name);
    return undefined;
  }

  async release(d: BenchDatabase): Promise<void> {
    // Record the tables as they are now: the next run's reset may drop exactly these.
    const client = await connect(d.url, 'bench');
    try {
      const marker = await readMarker(client);
      if (marker) await writeMarker(client, marker.spec, 'ready');
    } finally {
      await client.end().catch(() => {});
    }
  }

  async drop(name: string): Promise<void> {
    if (this.mode === 'databases') await this.dropOwned(name);
    const i = this.used.indexOf(name);
    if (i >= 0) this.used.splice(i, 1);
  }

  async close(): Promise<void> {
    await this.entry.query(`select pg_advisory_unlock(hashtext($1))`, [LOCK_KEY]).catch(() => {});
    await this.entry.end().catch(() => {});
  }

  private databaseName(spec: DatasetSpec): string {
    return `${this.prefix}_${spec.scratch ? 'scratch_' : ''}${spec.layout === 'partitioned' ? 'part_' : ''}${spec.rows}${spec.seed === 1 ? '' : `_s${spec.seed}`}`;
  }

  private async dropOwned(name: string): Promise<void> {
    const client = await connect(withDatabaseName(this.url, name), 'bench');
    try {
      if (!(await readMarker(client))) {
        throw new ConfigError('bench_not_owned',
          `database "${name}" exists but is not bench-owned (no ${MARKER_TABLE} table); refusing to drop it`, { database: name });
      }
    } finally {
      await client.end().catch(() => {});
    }
    await this.entry.query(`drop database if exists ${quoteIdent(name)} with (force)`).catch(async (err: unknown) => {
      // PostgreSQL before 13 has no WITH (FORCE).
      if ((err as { code?: string }).code === '42601') await this.entry.query(`drop database if exists ${quoteIdent(name)}`);
      else throw err;
    });
  }
}

/** Empties the user's entry database for a new dataset: only tables this benchmark recorded as its own. */
async function resetEntry(client: pg.ClientBase, marker: Marker | undefined): Promise<void> {
  // Anything the benchmark did not record stops it.
  const now = (await userTables(client)).filter((t) => t !== `public.${MARKER_TABLE}`);
  const foreign = now.filter((t) => !(marker?.tables ?? []).includes(t) && !t.startsWith(`${BENCH_SCHEMA}.`));
  if (foreign.length) {
    throw new SyncLookupError('bench_foreign_tables',
      `database holds tables the benchmark did not create (${foreign.slice(0, 5).join(', ')}); refusing to reset it`, { tables: foreign });
  }
  for (const t of now) {
    const [schema, name] = [t.slice(0, t.indexOf('.')), t.slice(t.indexOf('.') + 1)];
    await client.query(`drop table if exists ${quoteIdent(schema)}.${quoteIdent(name)} cascade`);
  }
  await client.query(`drop schema if exists ${quoteIdent(BENCH_SCHEMA)} cascade`);
}
