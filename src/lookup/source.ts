import type pg from 'pg';
import { tableColumns } from '../db/catalog.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';
import { CLOCK_TABLE, REBUILD_QUEUE_TABLE, TOMBSTONES_TABLE, TOOL_SCHEMA, ensureToolSchema } from '../schema/tool.js';
import type { ModelDefinition, ModelRegistry } from './registry.js';

/*
 * The sync clock and the source tables.
 *
 * The builtin host's clock is one row, `sync_lookup_tool.clock.tick`. Every insert or update of a source row stamps
 * `updated_at_sync_tick` with the clock's current value, reading it `FOR SHARE`: the row lock is held
 * until the writer commits. A build "tocks" the clock (`UPDATE … SET tick = tick + 1`), which waits for
 * every writer still holding the old value; so once the tock returns end tick E, every source row with
 * a tick below E is committed and visible, and every later write gets a tick >= E. That is what makes
 * "rows with tick > since" a complete set without gaps. A writer in a REPEATABLE READ transaction that
 * started before the tock gets a serialization error instead of silently stamping a stale tick.
 *
 * Hard deletes leave a tombstone (record type, id, tick) through a statement-level AFTER DELETE trigger
 * (transition table: one INSERT … SELECT per statement, not one per row), so the next build deletes
 * exactly those lookup rows through the unique index instead of anti-joining the whole lookup table.
 * TRUNCATE of a source table fires no delete trigger: rebuild that model instead.
 */

export { CLOCK_TABLE, TOMBSTONES_TABLE };
/** Trigger function stamping `updated_at_sync_tick` from the clock. */
export const SET_TICK_FUNCTION = `${TOOL_SCHEMA}.sync_lookup_set_sync_tick`;
/** Trigger function recording tombstones for hard deletes. */
export const TOMBSTONE_FUNCTION = `${TOOL_SCHEMA}.sync_lookup_record_tombstones`;

/**
 * DDL of the clock, the tombstone table and the two trigger functions; idempotent.
 *
 * @example
 * await client.query(CLOCK_SETUP_SQL);
 */
export const CLOCK_SETUP_SQL = `
CREATE TABLE IF NOT EXISTS ${CLOCK_TABLE} (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  tick bigint NOT NULL
);
INSERT INTO ${CLOCK_TABLE} (singleton, tick) VALUES (true, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ${TOMBSTONES_TABLE} (
  record_type varchar(255) NOT NULL,
  record_id text NOT NULL,
  deleted_at_sync_tick bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_tick ON ${TOMBSTONES_TABLE} (deleted_at_sync_tick);
CREATE INDEX IF NOT EXISTS tombstones_record ON ${TOMBSTONES_TABLE} (record_type, record_id);
CREATE TABLE IF NOT EXISTS ${REBUILD_QUEUE_TABLE} (
  model text PRIMARY KEY,
  queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION ${SET_TICK_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  SELECT tick INTO NEW.updated_at_sync_tick FROM ${CLOCK_TABLE} FOR SHARE;
  RETURN NEW;
END
$fn$;
CREATE OR REPLACE FUNCTION ${TOMBSTONE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  current_tick bigint;
BEGIN
  SELECT tick INTO current_tick FROM ${CLOCK_TABLE} FOR SHARE;
  INSERT INTO ${TOMBSTONES_TABLE} (record_type, record_id, deleted_at_sync_tick)
    SELECT TG_TABLE_NAME, o.id::text, current_tick FROM deleted_rows o;
  RETURN NULL;
END
$fn$;
`.trim();

/** The parts of one source table's DDL, so a bulk load can create indexes and triggers after the data. */
export interface SourceTableDdl {
  table: string;
  create: string;
  /**
   * The primary key's unique index and the `(updated_at_sync_tick, id)` index every build and rebuild chunk
   * walks. Plain CREATE INDEX (SHARE lock): readers of the table are not blocked.
   */
  indexes: string[];
  /** Turns the unique index into the primary key (`ADD CONSTRAINT … USING INDEX`: catalog only, but ACCESS EXCLUSIVE). */
  constraints: string[];
  triggers: string[];
}

/** Name of a source table's tick index. */
export function sourceTickIndexName(model: Pick<ModelDefinition, 'name'>): string {
  return `${model.name.slice(0, 50)}_sync_tick_id`;
}

/**
 * DDL of a model's source table: `id uuid`, timestamps, `deleted_at` (soft delete),
 * `updated_at_sync_tick`, `pushed_by_device_id`, then the model's columns.
 *
 * @example
 * const ddl = sourceTableDdl(builtinRegistry().get('notes'));
 * await client.query(ddl.create); for (const s of [...ddl.indexes, ...ddl.constraints, ...ddl.triggers]) await client.query(s);
 */
export function sourceTableDdl(model: ModelDefinition): SourceTableDdl {
  const t = quoteIdent(model.name);
  const pkey = quoteIdent(`${model.name.slice(0, 55)}_pkey`);
  const columns = [
    'id uuid NOT NULL',
    'created_at timestamp NOT NULL DEFAULT localtimestamp',
    'updated_at timestamp NOT NULL DEFAULT localtimestamp',
    'deleted_at timestamp',
    'updated_at_sync_tick bigint NOT NULL DEFAULT 0',
    'pushed_by_device_id text',
    ...model.columns.map((c) => `${quoteIdent(c.name)} ${c.type}`),
  ];
  return {
    table: model.name,
    create: `CREATE TABLE ${t} (\n  ${columns.join(',\n  ')}\n)`,
    indexes: [
      `CREATE UNIQUE INDEX ${pkey} ON ${t} (id)`,
      `CREATE INDEX ${quoteIdent(sourceTickIndexName(model))} ON ${t} (updated_at_sync_tick, id)`,
    ],
    constraints: [`ALTER TABLE ${t} ADD CONSTRAINT ${pkey} PRIMARY KEY USING INDEX ${pkey}`],
    triggers: [
      `CREATE TRIGGER sync_lookup_tick BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${SET_TICK_FUNCTION}()`,
      `CREATE TRIGGER sync_lookup_tombstones AFTER DELETE ON ${t} REFERENCING OLD TABLE AS deleted_rows ` +
        `FOR EACH STATEMENT EXECUTE FUNCTION ${TOMBSTONE_FUNCTION}()`,
    ],
  };
}

/** Options of `setupSourceTables`. */
export interface SetupSourceOptions {
  /** Drop the models' tables first (CASCADE). Default false: existing tables are left as they are. */
  replace?: boolean;
  /** Skip indexes and triggers (a bulk load adds them afterwards with `finishSourceTables`). Default false. */
  deferIndexes?: boolean;
}

/**
 * Creates the clock, the tombstone table and every model's source table (those that do not exist yet).
 * Returns the names of the tables it created.
 *
 * @example
 * await setupSourceTables(client, builtinRegistry());
 */
export async function setupSourceTables(client: pg.ClientBase, registry: ModelRegistry, options: SetupSourceOptions = {}): Promise<string[]> {
  await ensureToolSchema(client);
  await client.query(CLOCK_SETUP_SQL);
  const created: string[] = [];
  for (const model of registry.models) {
    if (options.replace) await client.query(`DROP TABLE IF EXISTS ${quoteIdent(model.name)} CASCADE`);
    const { rows } = await client.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [quoteIdent(model.name)]);
    if (rows[0]?.exists) continue;
    const ddl = sourceTableDdl(model);
    await client.query(ddl.create);
    if (!options.deferIndexes) for (const sql of [...ddl.indexes, ...ddl.constraints, ...ddl.triggers]) await client.query(sql);
    created.push(model.name);
  }
  return created;
}

/**
 * Adds the indexes, primary keys and triggers `setupSourceTables({ deferIndexes: true })` left out.
 * `parts` limits it to some of them (a bulk load builds indexes and triggers while other sessions read the
 * tables, and adds the primary keys, which need an ACCESS EXCLUSIVE lock, afterwards).
 *
 * @example
 * await finishSourceTables(client, registry.models);
 */
export async function finishSourceTables(
  client: pg.ClientBase, models: readonly ModelDefinition[], parts: readonly ('indexes' | 'constraints' | 'triggers')[] = ['indexes', 'constraints', 'triggers'],
): Promise<void> {
  for (const model of models) {
    const ddl = sourceTableDdl(model);
    for (const part of parts) for (const sql of ddl[part]) await client.query(sql);
  }
}

/**
 * The clock's current tick (what a write now would be stamped with).
 *
 * @example
 * const tick = await currentTick(client);
 */
export async function currentTick(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ tick: string }>(`SELECT tick FROM ${CLOCK_TABLE}`);
  return Number(rows[0]?.tick ?? 0);
}

/**
 * Advances the clock by one and returns the new tick E. Waits for every writer still holding the old
 * tick (their `FOR SHARE` lock), so afterwards every source row with a tick below E is committed.
 * Run it in its own short transaction (or autocommit): the row lock it takes blocks writers until commit.
 *
 * @example
 * const endTick = await tockClock(client);
 */
export async function tockClock(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ tick: string }>(`UPDATE ${CLOCK_TABLE} SET tick = tick + 1 RETURNING tick`);
  return Number(rows[0]!.tick);
}

/**
 * Moves the clock forward to at least `tick` (after a bulk load that stamped ticks itself).
 *
 * @example
 * await advanceClockTo(client, maxLoadedTick + 1);
 */
export async function advanceClockTo(client: pg.ClientBase, tick: number): Promise<number> {
  const { rows } = await client.query<{ tick: string }>(
    `UPDATE ${CLOCK_TABLE} SET tick = greatest(tick, $1::bigint) RETURNING tick`, [tick]);
  return Number(rows[0]!.tick);
}

/**
 * The source table's `id` type as `format_type` prints it (`uuid`, `character varying(255)`, `text`), so a
 * lookup `record_id` (text) can be compared through the source's primary key; `text` when unknown.
 *
 * @example
 * await sourceIdType(client, 'notes') // 'uuid'
 */
export async function sourceIdType(client: pg.ClientBase, table: string): Promise<string> {
  const columns = await tableColumns(client, { schema: 'public', name: table });
  return columns.find((c) => c.name === 'id')?.type ?? 'text';
}

/**
 * Throws a ConfigError naming every model whose source table does not exist (a registry that does not
 * match the database), before a build or verify fails halfway on the first one.
 *
 * @example
 * await assertSourceTables(client, registry.models);
 */
export async function assertSourceTables(client: pg.ClientBase, models: readonly ModelDefinition[]): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n AS name FROM unnest($1::text[]) AS n WHERE to_regclass(quote_ident(n)) IS NULL`, [models.map((m) => m.name)]);
  if (rows.length) {
    const names = rows.map((r) => r.name);
    throw new ConfigError('missing_source_tables',
      `source table${names.length > 1 ? 's' : ''} ${names.join(', ')} do${names.length > 1 ? '' : 'es'} not exist; ` +
      'seed the database, create them with setupSourceTables, or pass the registry that matches it (--models FILE)', { missing: names });
  }
}
