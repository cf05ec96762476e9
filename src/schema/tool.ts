import type pg from 'pg';
import { withSavepoint, withTransaction } from '../db/connection.js';
import { quoteIdent } from '../db/quote.js';

/*
 * The tool's own schema. Everything sync-lookup creates besides `public.sync_lookup` and its ticks table lives
 * here: the migration ledger, the job table, the recorded host, and the builtin host's clock, tombstones and
 * rebuild queue. Not `public` (a Tamanu server's post-migration hooks add tick, change-notification and audit
 * triggers to every table there, which fail on tables without `id` or `created_at`: ORIGIN.md), not `logs`.
 *
 * Installs made before this schema existed kept these tables in `public`; `ensureToolSchema` moves them here
 * (ALTER … SET SCHEMA: the rows stay, nothing is copied) and drops the triggers a host hook put on them.
 */

/** The schema sync-lookup owns. */
export const TOOL_SCHEMA = 'sync_lookup_tool';

/** A table of the tool's schema, as SQL text (the names are fixed, lower-case identifiers). */
const table = (name: string) => `${TOOL_SCHEMA}.${name}`;

/** The migration ledger. */
export const LEDGER_TABLE = table('migrations');
/** Maintenance jobs (purge, rebuild, resync): cursors, counts, status. */
export const JOBS_TABLE = table('jobs');
/** Key/value settings of the tool in this database (`host`: the recorded host). */
export const SETTINGS_TABLE = table('settings');
/** The builtin host's sync clock (one row). */
export const CLOCK_TABLE = table('clock');
/** The builtin host's tombstones of hard-deleted source rows. */
export const TOMBSTONES_TABLE = table('tombstones');
/** The builtin host's queue of models the next build re-derives whole. */
export const REBUILD_QUEUE_TABLE = table('rebuild_queue');

/** Archived record types (`archive` / `restore`): one row per archived type, naming its table in this schema. */
export const ARCHIVES_TABLE = table('archives');

/** Tables of earlier versions in `public`, and their names here. */
const LEGACY_TABLES: [legacy: string, current: string][] = [
  ['sync_lookup_migrations', 'migrations'],
  ['sync_lookup_jobs', 'jobs'],
  ['sync_clock', 'clock'],
  ['sync_lookup_tombstones', 'tombstones'],
];
/** Trigger functions of earlier versions in `public` (the builtin host's source-table triggers call them). */
const LEGACY_FUNCTIONS = ['sync_lookup_set_sync_tick', 'sync_lookup_record_tombstones'];

/** What `ensureToolSchema` moved out of `public`. */
export interface ToolSchemaMove {
  /** `public.<legacy>` → `sync_lookup_tool.<name>`. */
  tables: { from: string; to: string; rows: number }[];
  functions: string[];
  /** Triggers a host had added to the moved tables, dropped (they read columns these tables do not have). */
  droppedTriggers: string[];
}

/**
 * Creates the tool's schema and its settings table, and moves the tables and functions earlier versions
 * kept in `public` into it (rows kept; the move is one transaction under an advisory lock, so two commands
 * starting together move once). Cheap when there is nothing to move: one catalog query.
 *
 * @example
 * const moved = await ensureToolSchema(client); // moved.tables: [{ from: 'public.sync_lookup_jobs', to: 'sync_lookup_tool.jobs', rows: 12 }]
 */
export async function ensureToolSchema(client: pg.ClientBase): Promise<ToolSchemaMove> {
  const moved: ToolSchemaMove = { tables: [], functions: [], droppedTriggers: [] };
  if (!(await needsWork(client))) return moved;
  // Inside a caller's transaction (a migration tool's) the move becomes a savepoint of it.
  const { rows: [tx] } = await client.query<{ inside: boolean }>(`SELECT now() <> statement_timestamp() AS inside`);
  const work = () => moveLegacy(client, moved);
  await (tx?.inside ? withSavepoint(client, 'sync_lookup_tool_schema', work) : withTransaction(client, work));
  return moved;
}

async function moveLegacy(client: pg.ClientBase, moved: ToolSchemaMove): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('sync-lookup:tool-schema', 0))`);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${TOOL_SCHEMA}`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${SETTINGS_TABLE} (key text PRIMARY KEY, value text NOT NULL)`);
  for (const [legacy, current] of LEGACY_TABLES) {
    const { rows: [t] } = await client.query<{ legacy: boolean; current: boolean }>(
      `SELECT to_regclass($1) IS NOT NULL AS legacy, to_regclass($2) IS NOT NULL AS current`, [`public.${legacy}`, table(current)]);
    if (!t?.legacy || t.current) continue;
    for (const trigger of await hostTriggers(client, legacy)) {
      await client.query(`DROP TRIGGER ${quoteIdent(trigger)} ON public.${quoteIdent(legacy)}`);
      moved.droppedTriggers.push(`${trigger} on public.${legacy}`);
    }
    await client.query(`ALTER TABLE public.${quoteIdent(legacy)} SET SCHEMA ${TOOL_SCHEMA}`);
    await client.query(`ALTER TABLE ${TOOL_SCHEMA}.${quoteIdent(legacy)} RENAME TO ${quoteIdent(current)}`);
    const { rows: [n] } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table(current)}`);
    moved.tables.push({ from: `public.${legacy}`, to: table(current), rows: n?.n ?? 0 });
  }
  for (const fn of LEGACY_FUNCTIONS) {
    const { rows: [f] } = await client.query<{ legacy: boolean; current: boolean }>(
      `SELECT to_regprocedure($1) IS NOT NULL AS legacy, to_regprocedure($2) IS NOT NULL AS current`,
      [`public.${fn}()`, `${TOOL_SCHEMA}.${fn}()`]);
    if (!f?.legacy || f.current) continue;
    // Triggers refer to the function by oid: they follow it into the schema.
    await client.query(`ALTER FUNCTION public.${quoteIdent(fn)}() SET SCHEMA ${TOOL_SCHEMA}`);
    moved.functions.push(fn);
  }
}

async function needsWork(client: pg.ClientBase): Promise<boolean> {
  const { rows: [r] } = await client.query<{ work: boolean }>(
    `SELECT to_regclass($1) IS NULL
         OR EXISTS (SELECT 1 FROM unnest($2::text[]) AS t(n) WHERE to_regclass('public.' || quote_ident(t.n)) IS NOT NULL)
         OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS f(n) WHERE to_regprocedure('public.' || quote_ident(f.n) || '()') IS NOT NULL) AS work`,
    [SETTINGS_TABLE, LEGACY_TABLES.map(([l]) => l), LEGACY_FUNCTIONS]);
  return !!r?.work;
}

/** User triggers on a legacy table: the tool never put a trigger on its own tables, so any there is a host's. */
async function hostTriggers(client: pg.ClientBase, legacy: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT tgname AS name FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, [`public.${legacy}`]);
  return rows.map((r) => r.name);
}

/**
 * A setting recorded in the tool's schema, or null (also when the schema does not exist yet).
 *
 * @example
 * await readToolSetting(client, 'host') // 'tamanu'
 */
export async function readToolSetting(client: pg.ClientBase, key: string): Promise<string | null> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [SETTINGS_TABLE]);
  if (!t?.ok) return null;
  const { rows } = await client.query<{ value: string }>(`SELECT value FROM ${SETTINGS_TABLE} WHERE key = $1`, [key]);
  return rows[0]?.value ?? null;
}

/**
 * Records a setting in the tool's schema (creating the schema when needed).
 *
 * @example
 * await writeToolSetting(client, 'host', 'tamanu');
 */
export async function writeToolSetting(client: pg.ClientBase, key: string, value: string): Promise<void> {
  await ensureToolSchema(client);
  await client.query(`INSERT INTO ${SETTINGS_TABLE} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
}
