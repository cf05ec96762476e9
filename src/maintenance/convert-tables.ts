import { createHash } from 'node:crypto';
import type pg from 'pg';
import { tableColumns } from '../db/catalog.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteLiteral, quoteQualified, type QualifiedName } from '../db/quote.js';
import { PARTITIONED_COMMENT, partitionName, typePartitions, type Layout, type TypePartition } from '../schema/partitioned.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import { TOOL_SCHEMA } from '../schema/tool.js';

/*
 * The tables of an online conversion and the statements that fill them. The live table is `public.sync_lookup`;
 * the shadow is built beside it in the tool's schema, in the other layout, then swapped in (convert-swap.ts).
 *
 * Change capture: an AFTER ROW trigger on the live table logs the id of every row inserted, updated or deleted
 * (by builds, the host's flag triggers, purges, anyone), and a TRUNCATE trigger logs the truncated types. A
 * change is applied by re-reading the row: delete it from the shadow, insert it again from the live table if it is
 * still there. That is idempotent and needs no ordering, so log entries are taken in any order (by ctid), and one
 * committed late is simply taken by a later batch.
 */

/** The conversion's state (one row). */
export const CONVERSION_TABLE = `${TOOL_SCHEMA}.conversion`;
/** Ids of live rows changed since the capture began, not yet applied to the other table. */
export const CHANGES_TABLE = `${TOOL_SCHEMA}.conversion_changes`;
/** Ids changed since the verification's snapshot: compared row by row at the swap. */
export const PENDING_TABLE = `${TOOL_SCHEMA}.conversion_verify_pending`;
/** The table being built (before the swap). */
export const SHADOW: QualifiedName = { schema: TOOL_SCHEMA, name: 'sync_lookup_shadow' };
/** The previous table, kept after the swap for `convert --rollback` until `convert --finish`. */
export const KEPT: QualifiedName = { schema: TOOL_SCHEMA, name: 'sync_lookup_previous' };
/** The live table. */
export const LIVE: QualifiedName = { schema: 'public', name: LOOKUP_TABLE };

const CAPTURE_FN = `${TOOL_SCHEMA}.conversion_capture`;
const TRUNCATE_FN = `${TOOL_SCHEMA}.conversion_capture_truncate`;
/** Names of the capture triggers (they are never recreated on the other table as a host's would be). */
export const CAPTURE_TRIGGER = 'sync_lookup_convert_capture';
export const TRUNCATE_TRIGGER = 'sync_lookup_convert_truncate';

/** Creates the log tables and the capture functions (idempotent). */
export async function ensureConversionTables(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${CONVERSION_TABLE} (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), from_layout text NOT NULL, to_layout text NOT NULL, phase text NOT NULL,
    after_id bigint, rows_copied bigint NOT NULL DEFAULT 0, total_rows bigint, changes_applied bigint NOT NULL DEFAULT 0,
    verified boolean, longest_write_stall_ms integer, state jsonb NOT NULL DEFAULT '{}', backend_pid integer,
    started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), swapped_at timestamptz)`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${CHANGES_TABLE} (id bigint, types text[])`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${PENDING_TABLE} (id bigint NOT NULL)`);
  await client.query(`CREATE INDEX IF NOT EXISTS conversion_verify_pending_id ON ${PENDING_TABLE} (id)`);
  await client.query(`CREATE OR REPLACE FUNCTION ${CAPTURE_FN}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN INSERT INTO ${CHANGES_TABLE} (id) VALUES (OLD.id); END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.id IS DISTINCT FROM OLD.id) THEN INSERT INTO ${CHANGES_TABLE} (id) VALUES (NEW.id); END IF;
  RETURN NULL;
END $$`);
  // TG_ARGV: the truncated table's record types (none for the whole table).
  await client.query(`CREATE OR REPLACE FUNCTION ${TRUNCATE_FN}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ${CHANGES_TABLE} (id, types) VALUES (NULL, CASE WHEN TG_NARGS = 0 THEN NULL ELSE TG_ARGV END);
  RETURN NULL;
END $$`);
}

/**
 * Statements installing the capture triggers on the live table and a TRUNCATE trigger on each of its partitions
 * (truncating a partition fires no trigger of its parent). Taking the trigger's lock waits for writers in flight,
 * so every write that commits afterwards is logged.
 */
export function captureSql(partitions: TypePartition[], orReplace = false): string[] {
  const t = quoteQualified(LIVE);
  const create = orReplace ? 'CREATE OR REPLACE TRIGGER' : 'CREATE TRIGGER';
  return [
    `${create} ${CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${CAPTURE_FN}()`,
    `${create} ${TRUNCATE_TRIGGER} AFTER TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${TRUNCATE_FN}()`,
    // A truncate marker without types (the default partition) re-checks every type: slower, never wrong.
    ...partitions.map((p) => `${create} ${TRUNCATE_TRIGGER} AFTER TRUNCATE ON ${quoteQualified(p.table)} FOR EACH STATEMENT ` +
      `EXECUTE FUNCTION ${TRUNCATE_FN}(${p.isDefault ? '' : p.types.map(quoteLiteral).join(', ')})`),
  ];
}

/** Statements dropping the capture triggers from the live table and its partitions (absent ones are fine). */
export function dropCaptureSql(partitions: TypePartition[]): string[] {
  const t = quoteQualified(LIVE);
  return [
    `DROP TRIGGER IF EXISTS ${CAPTURE_TRIGGER} ON ${t}`, `DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER} ON ${t}`,
    ...partitions.map((p) => `DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER} ON ${quoteQualified(p.table)}`),
  ];
}

/** Runs statements without parameters in one round trip (one simple-protocol query; inside the caller's transaction). */
export async function runAll(client: pg.ClientBase, statements: string[]): Promise<void> {
  if (statements.length) await client.query(statements.join(';\n'));
}

/**
 * Installs the capture on the live table (see `captureSql`). The table and its partitions are locked first, in
 * one statement (parent, then partitions), in the mode `CREATE TRIGGER` needs: it waits for writers, never for
 * pulls; taking partitions one by one, as each trigger statement would, can deadlock with a pull that holds
 * some of them and asks for the next between its chunks.
 */
export async function installCapture(client: pg.ClientBase): Promise<void> {
  await client.query(`LOCK TABLE ${quoteQualified(LIVE)} IN SHARE ROW EXCLUSIVE MODE`);
  await runAll(client, captureSql(await typePartitions(client), true));
}

/** Drops the capture from the live table (see `dropCaptureSql`), the whole tree locked first (see `installCapture`). */
export async function dropCapture(client: pg.ClientBase): Promise<void> {
  await client.query(`LOCK TABLE ${quoteQualified(LIVE)} IN ACCESS EXCLUSIVE MODE`);
  await runAll(client, dropCaptureSql(await typePartitions(client)));
}

/** The columns of the live table, in order, as a quoted list (both tables have the same, in the same order). */
export async function columnList(client: pg.ClientBase, table: QualifiedName): Promise<string> {
  const cols = (await tableColumns(client, table)).filter((c) => !c.generated);
  return cols.map((c) => quoteIdent(c.name)).join(', ');
}

/**
 * A temporary index name for `final` (the shadow's indexes are built under tag `a`; at a swap the outgoing table's
 * take the other tag, so the two tables' temporary names never meet in the tool's schema).
 */
export function tempIndexName(final: string, tag: 'a' | 'b' = 'a'): string {
  return `sync_lookup_cv${tag}_${createHash('sha256').update(final).digest('hex').slice(0, 16)}`;
}

/** One index of the live table, as the shadow will get it. */
export interface IndexPlan {
  /** The live index's name (the shadow's index takes it at the swap). */
  name: string;
  /** DDL creating the shadow's index under its temporary name. */
  sql: string;
}

interface LiveIndex {
  name: string; unique: boolean; primary: boolean; constraint: boolean; method: string;
  keys: string[]; nkeys: number; predicate: string | null;
}

async function liveIndexes(client: pg.ClientBase): Promise<LiveIndex[]> {
  const { rows } = await client.query<LiveIndex>(
    `SELECT c.relname AS name, i.indisunique AS unique, i.indisprimary AS primary, am.amname AS method,
            EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid) AS constraint,
            array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnatts) k) AS keys,
            i.indnkeyatts AS nkeys, pg_get_expr(i.indpred, i.indrelid, true) AS predicate
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
      WHERE i.indrelid = $1::regclass ORDER BY c.relname`, [quoteQualified(LIVE)]);
  return rows;
}

/**
 * The shadow's indexes: every index of the live table, under a temporary name, with the primary key the target
 * layout needs (`(id)` plain, `(id, record_type)` partitioned, as `migrate --layout partitioned` creates it).
 * ConfigError when a unique index leaves out `record_type` (a partitioned table cannot enforce it).
 */
export async function shadowIndexes(client: pg.ClientBase, to: Layout): Promise<IndexPlan[]> {
  const s = quoteQualified(SHADOW);
  const out: IndexPlan[] = [];
  for (const ix of await liveIndexes(client)) {
    const tmp = quoteIdent(tempIndexName(ix.name));
    if (ix.primary) {
      out.push({ name: ix.name, sql: `ALTER TABLE ${s} ADD CONSTRAINT ${tmp} PRIMARY KEY (${to === 'partitioned' ? 'id, record_type' : 'id'})` });
      continue;
    }
    const keys = ix.keys.slice(0, ix.nkeys);
    const include = ix.keys.slice(ix.nkeys);
    if (to === 'partitioned' && ix.unique && !keys.includes('record_type')) {
      throw new ConfigError('unique_without_record_type',
        `unique index ${ix.name} (${keys.join(', ')}) does not contain record_type: a table partitioned by record_type cannot enforce it. Nothing was changed`, { index: ix.name });
    }
    if (ix.constraint && ix.unique && !ix.predicate && !include.length) {
      out.push({ name: ix.name, sql: `ALTER TABLE ${s} ADD CONSTRAINT ${tmp} UNIQUE (${keys.join(', ')})` });
      continue;
    }
    out.push({ name: ix.name, sql: `CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX ${tmp} ON ${s} USING ${ix.method} (${keys.join(', ')})` +
      (include.length ? ` INCLUDE (${include.join(', ')})` : '') + (ix.predicate ? ` WHERE ${ix.predicate}` : '') });
  }
  return out;
}

/**
 * DDL of the shadow without its indexes (bulk-loaded first, indexed after): the live table's columns in the same
 * order (so a row's text is the same in both, which the checksum relies on), no defaults yet (`id`'s comes at the
 * swap), and for the partitioned layout a partition per type plus a default, created in `public` beside the
 * live table under their final names (partitions never move; only the parent does).
 */
export async function shadowTableSql(client: pg.ClientBase, to: Layout, types: string[]): Promise<string[]> {
  const cols = (await tableColumns(client, LIVE)).map((c) =>
    `${quoteIdent(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}${c.default !== null && c.name !== 'id' ? ` DEFAULT ${c.default}` : ''}`);
  const s = quoteQualified(SHADOW);
  if (to === 'plain') return [`CREATE TABLE ${s} (${cols.join(', ')})`];
  return [
    `CREATE TABLE ${s} (${cols.join(', ')}) PARTITION BY LIST (record_type)`,
    ...[...new Set(types)].sort().map((type) =>
      `CREATE TABLE ${quoteIdent(partitionName(type))} PARTITION OF ${s} FOR VALUES IN (${quoteLiteral(type)})`),
    `CREATE TABLE ${quoteIdent(`${LOOKUP_TABLE}_p_default`)} PARTITION OF ${s} DEFAULT`,
    `COMMENT ON TABLE ${s} IS ${quoteLiteral(PARTITIONED_COMMENT)}`,
  ];
}

/** GRANTs that give the shadow the live table's privileges (roles the host connects as keep their access). */
export async function grantsSql(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ grantee: string | null; privilege: string; grantable: boolean }>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`, [quoteQualified(LIVE)]);
  return rows.map((r) => `GRANT ${r.privilege} ON ${quoteQualified(SHADOW)} TO ${r.grantee === null ? 'PUBLIC' : quoteIdent(r.grantee)}${r.grantable ? ' WITH GRANT OPTION' : ''}`);
}

/**
 * Objects that refer to the live table by oid and would keep pointing at the old one after a swap (views,
 * rules, foreign keys, publications); the conversion refuses while any exists.
 */
export async function blockingDependents(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ what: string }>(
    `SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid) AS what FROM pg_depend d
      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::regclass
        AND d.classid IN ('pg_rewrite'::regclass, 'pg_constraint'::regclass, 'pg_publication_rel'::regclass)
        AND d.deptype = 'n'
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE d.classid = 'pg_constraint'::regclass AND k.oid = d.objid AND k.contype IN ('p', 'u', 'c', 'n'))
      ORDER BY 1`, [quoteQualified(LIVE)]);
  return rows.map((r) => r.what);
}
