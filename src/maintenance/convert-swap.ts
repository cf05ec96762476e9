import type pg from 'pg';
import { CheckFailedError } from '../db/errors.js';
import { quoteIdent, quoteQualified, type QualifiedName } from '../db/quote.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import { TOOL_SCHEMA } from '../schema/tool.js';
import { applyChanges, differingPending } from './convert-copy.js';
import { CAPTURE_TRIGGER, CHANGES_TABLE, LIVE, PENDING_TABLE, TRUNCATE_TRIGGER, captureSql, dropCaptureSql, runAll, tempIndexName } from './convert-tables.js';
import { typePartitions } from '../schema/partitioned.js';

/*
 * The swap: one short transaction that holds ACCESS EXCLUSIVE on both tables (waiting at most `lock_timeout`:
 * a waiting exclusive lock queues every later reader and writer behind it, so the wait is part of the stall),
 * applies the last logged changes, compares the rows changed since the verification one by one, and exchanges
 * the tables by catalog changes only:
 * - the live table's indexes take temporary names and it moves into the tool's schema (renamed); the other table
 *   moves into `public` as `sync_lookup` and its indexes take the names the live ones had, so the host's index
 *   and constraint names (`sync_lookup_pkey`, `…_record_id_record_type_uk`, …) keep working;
 * - the id sequence keeps its name and value: an identity column (the plain layout's; a partitioned table cannot
 *   have one before PostgreSQL 17) becomes a default on a sequence of the same name, then the sequence is owned by
 *   the new table's `id`;
 * - the host's triggers on sync_lookup are recreated on the new table from `pg_get_triggerdef` (read while it was
 *   still `public.sync_lookup`, so the definition names the right table) and dropped from the old one;
 * - partitions stay where they are (in `public`): only the parent moves.
 * Functions that name `sync_lookup` (the host's flag triggers on source tables) resolve the name again at their
 * next run: renaming a table invalidates the plans cached for it.
 */

const L = quoteQualified(LIVE);

/** What the swap needs to know. */
export interface SwapInput {
  /** The table coming in (in the tool's schema). */
  incoming: QualifiedName;
  /** The name the outgoing table gets in the tool's schema. */
  outgoingName: string;
  /** Column list for applying the last changes. */
  cols: string;
  /** Capture changes on the new live table afterwards (for a rollback). */
  captureAfter: boolean;
  /** The live table's partitions when it was verified (see `livePartitionOids`); refused when they changed. */
  partitions?: string[] | undefined;
}

/**
 * The oids of the live table's partitions, sorted. A partition created, attached or detached after the
 * verification moves rows no capture trigger sees (or truncates them unseen, before it has the capture's
 * TRUNCATE trigger), so the swap compares this with the verification's.
 */
export async function livePartitionOids(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ oid: string }>(`SELECT inhrelid::oid::text AS oid FROM pg_inherits WHERE inhparent = $1::regclass ORDER BY inhrelid`, [L]);
  return rows.map((r) => r.oid);
}

/** Runs the swap's statements; call inside one transaction. Throws CheckFailedError when rows differ. */
export async function swapTables(client: pg.ClientBase, input: SwapInput): Promise<{ changesApplied: number }> {
  const incoming = quoteQualified(input.incoming);
  // JIT compiling the row comparison below (planned on an unanalyzed pending table) took 250 ms: stall for nothing.
  await client.query(`SELECT set_config('jit', 'off', true)`);
  await client.query(`LOCK TABLE ${incoming}, ${L} IN ACCESS EXCLUSIVE MODE`);
  if (input.partitions && (await livePartitionOids(client)).join(',') !== input.partitions.join(',')) {
    throw new CheckFailedError('partitions_changed', 'a partition of sync_lookup was created, attached or detached since the verification ' +
      '(`migrate`, `archive`, `restore`?); nothing was swapped: run the same command again (it verifies again)');
  }
  let applied = 0;
  for (let n = 1; n > 0; applied += n) n = await applyChanges(client, input.incoming, input.cols, 50_000, true);
  const differing = await differingPending(client, input.incoming);
  if (differing.length) {
    throw new CheckFailedError('conversion_mismatch',
      `rows differ between sync_lookup and ${input.incoming.schema}.${input.incoming.name} after applying every change (ids ${differing.join(', ')}); ` +
      'nothing was swapped: run `sync-lookup convert --rollback` and convert again', { ids: differing });
  }
  // After the lock: the session's setting is for waiting on the lock, not for the catalog work below. Everything
  // is read first, then the changes go in one round trip (each round trip under the lock is stall).
  await client.query(`SELECT set_config('lock_timeout', '0', true)`);
  const triggers = await hostTriggers(client);
  const seq = await sequenceOf(client);
  const inTag = await incomingTag(client, input.incoming);
  const outTag = inTag === 'a' ? 'b' : 'a';
  const { rows: liveIx } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`, [L]);
  const { rows: inIx } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`, [incoming]);
  const inNames = new Set(inIx.map((r) => r.name));
  const out = quoteQualified({ schema: 'public', name: input.outgoingName });
  await runAll(client, [
    ...dropCaptureSql(await typePartitions(client)),
    ...triggers.map((t) => `DROP TRIGGER ${quoteIdent(t.name)} ON ${L}`),
    ...releaseSequenceSql(seq),
    ...liveIx.map((r) => `ALTER INDEX ${quoteQualified({ schema: 'public', name: r.name })} RENAME TO ${quoteIdent(tempIndexName(r.name, outTag))}`),
    `ALTER TABLE ${L} RENAME TO ${quoteIdent(input.outgoingName)}`,
    `ALTER TABLE ${out} SET SCHEMA ${quoteIdent(TOOL_SCHEMA)}`,
    `ALTER TABLE ${incoming} SET SCHEMA public`,
    `ALTER TABLE ${quoteQualified({ schema: 'public', name: input.incoming.name })} RENAME TO ${quoteIdent(LOOKUP_TABLE)}`,
    ...liveIx.filter((r) => inNames.has(tempIndexName(r.name, inTag)))
      .map((r) => `ALTER INDEX ${quoteQualified({ schema: 'public', name: tempIndexName(r.name, inTag) })} RENAME TO ${quoteIdent(r.name)}`),
    ...adoptSequenceSql(seq),
    ...triggers.flatMap((t) => [t.definition, ...(t.disabled ? [`ALTER TABLE ${L} DISABLE TRIGGER ${quoteIdent(t.name)}`] : [])]),
    `TRUNCATE ${CHANGES_TABLE}, ${PENDING_TABLE}`,
  ]);
  // The new live table's partitions are the incoming table's (they stayed in public).
  if (input.captureAfter) await runAll(client, captureSql(await typePartitions(client)));
  return { changesApplied: applied };
}

interface HostTrigger { name: string; definition: string; disabled: boolean }

/** The live table's own triggers (not internal, not cloned from a parent, not the capture's). */
async function hostTriggers(client: pg.ClientBase): Promise<HostTrigger[]> {
  const { rows } = await client.query<HostTrigger>(
    `SELECT tgname AS name, pg_get_triggerdef(oid) AS definition, tgenabled = 'D' AS disabled FROM pg_trigger
      WHERE tgrelid = $1::regclass AND NOT tgisinternal AND tgname NOT IN ($2, $3) ORDER BY tgname`, [L, CAPTURE_TRIGGER, TRUNCATE_TRIGGER]);
  return rows;
}

interface SequenceInfo {
  /** The sequence behind `id` (qualified, quoted), or null. */
  sequence: string | null;
  identity: boolean;
  last: string | null;
  called: boolean;
  /** The default of the live table's `id` after the release (null: none). */
  defaultExpr: string | null;
}

async function sequenceOf(client: pg.ClientBase): Promise<SequenceInfo> {
  const { rows: [c] } = await client.query<{ identity: boolean; sequence: string | null; expr: string | null }>(
    `SELECT a.attidentity <> '' AS identity, pg_get_serial_sequence($1, 'id') AS sequence,
            (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS expr
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = 'id'`, [L]);
  const info: SequenceInfo = { sequence: c?.sequence ?? null, identity: !!c?.identity, last: null, called: false, defaultExpr: c?.expr ?? null };
  if (info.identity && info.sequence) {
    const { rows: [v] } = await client.query<{ last: string; called: boolean }>(`SELECT last_value::text AS last, is_called AS called FROM ${info.sequence}`);
    info.last = v!.last;
    info.called = v!.called;
    info.defaultExpr = `nextval('${info.sequence.replaceAll("'", "''")}'::regclass)`;
  }
  return info;
}

/**
 * Makes the id sequence independent of the live table: an identity column becomes a default on a new sequence of
 * the same name and value; an owned sequence is disowned (so it does not follow the table into the tool's schema).
 */
function releaseSequenceSql(seq: SequenceInfo): string[] {
  if (seq.identity && seq.sequence) {
    return [
      `ALTER TABLE ${L} ALTER COLUMN id DROP IDENTITY`, `CREATE SEQUENCE ${seq.sequence} AS bigint`,
      `SELECT setval('${seq.sequence.replaceAll("'", "''")}'::regclass, ${BigInt(seq.last!)}, ${seq.called})`,
      `ALTER TABLE ${L} ALTER COLUMN id SET DEFAULT ${seq.defaultExpr!}`,
    ];
  }
  return seq.sequence ? [`ALTER SEQUENCE ${seq.sequence} OWNED BY NONE`] : [];
}

/** The new live table takes the id default and owns the sequence. */
function adoptSequenceSql(seq: SequenceInfo): string[] {
  return [
    ...(seq.defaultExpr ? [`ALTER TABLE ${L} ALTER COLUMN id SET DEFAULT ${seq.defaultExpr}`] : []),
    ...(seq.sequence ? [`ALTER SEQUENCE ${seq.sequence} OWNED BY ${L}.id`] : []),
  ];
}

/** The tag of the incoming table's temporary index names (`a` for a shadow; a kept table has whichever it got). */
async function incomingTag(client: pg.ClientBase, incoming: QualifiedName): Promise<'a' | 'b'> {
  const { rows: [r] } = await client.query<{ b: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND c.relname LIKE 'sync\\_lookup\\_cvb\\_%') AS b`,
    [quoteQualified(incoming)]);
  return r?.b ? 'b' : 'a';
}
