import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { applySessionSettings, withTransaction, type Database, type Lease } from '../db/connection.js';
import { toSyncLookupError } from '../db/errors.js';
import { quoteIdent, quoteQualified, type QualifiedName } from '../db/quote.js';
import { typePartitions } from '../schema/partitioned.js';
import { ModelRegistry, builtinRegistry, type ModelDefinition } from '../lookup/registry.js';
import { createIndexSql } from '../db/index-ddl.js';
import { LOOKUP_TABLE, RECORD_TYPE_INDEX, TICKS_TABLE } from '../schema/sync-lookup.js';
import { CLOCK_TABLE } from '../schema/tool.js';
import { BENCH_SCHEMA } from './target.js';

/**
 * The data one benchmark size works on, and the untimed helpers scenarios use to put it back exactly as
 * it was after each run (so the original form and ours always start from the same rows).
 */

/** Rows of the fixed-size type the growth check purges (1 % of the smallest documented size, 500 k). */
export const FIXED_TYPE_ROWS = 5_000;
/** The record type whose size stays fixed while the table grows (see {@link benchRegistry}). */
export const FIXED_TYPE = 'bench_fixed_type';

/** Rows the fixed-size type gets in a table of `rows`: 5 000, or 1 % of a table smaller than 500 k. */
export function fixedTypeRows(rows: number): number {
  return Math.min(FIXED_TYPE_ROWS, Math.max(10, Math.round(rows / 100)));
}

/**
 * The registry the benchmark seeds: the built-in models plus {@link FIXED_TYPE}, a copy of the legacy
 * `encounter_medications` model whose share is set so that it has {@link fixedTypeRows} rows at this size.
 * The generator interleaves it over the table's whole life like every other type, so purging it reads
 * rows spread over the whole heap, as a real purge would.
 *
 * @example
 * benchRegistry(2_000_000).names.includes('bench_fixed_type') // true
 */
export function benchRegistry(rows: number): ModelRegistry {
  const builtin = builtinRegistry();
  const models = builtin.models;
  const sum = models.reduce((n, m) => n + (m.share ?? 1 / models.length), 0);
  const fixed = fixedTypeRows(rows);
  const template = builtin.get('encounter_medications');
  const extra: ModelDefinition = { ...structuredClone(template), name: FIXED_TYPE, share: (fixed * sum) / Math.max(1, rows - fixed) };
  return new ModelRegistry([...models, extra]);
}

/** One benchmark size's database and a connection for untimed setup, restore and plans. */
export interface BenchData {
  /** The bench-owned database. */
  db: Database;
  /** Its name (reported in `databases`). */
  name: string;
  /** The size asked for. */
  size: number;
  layout: 'plain' | 'partitioned';
  registry: ModelRegistry;
  /** Lookup rows when the dataset was opened. */
  rows: number;
  /** A session for setup, restores and EXPLAIN (never timed). */
  control: pg.ClientBase;
  signal?: AbortSignal;
  /** Reports a line of progress. */
  log(text: string): void;
}

/**
 * Opens the control session of a dataset.
 *
 * @example
 * const data = await openBenchData({ db, name, size, layout: 'plain', registry, log });
 */
export async function openBenchData(
  input: Omit<BenchData, 'rows' | 'control'>,
): Promise<{ data: BenchData; close(): Promise<void> }> {
  const lease: Lease = await input.db.acquire();
  try {
    await applySessionSettings(lease.client, { purpose: 'bench-control', lockTimeoutMs: 60_000, statementTimeoutMs: 0 });
    await lease.client.query(`create schema if not exists ${quoteIdent(BENCH_SCHEMA)}`);
    const rows = await countRows(lease.client);
    return { data: { ...input, rows, control: lease.client }, close: () => lease.release() };
  } catch (err) {
    await lease.release();
    throw err;
  }
}

/** Exact row count of sync_lookup. */
export async function countRows(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ n: string }>(`select count(*)::text as n from ${quoteIdent(LOOKUP_TABLE)}`);
  return Number(rows[0]?.n ?? 0);
}

/** Milliseconds `fn` took, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

/** Names of the indexes on sync_lookup that lead with record_type. */
async function recordTypeLedIndexes(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = to_regclass($1) and a.attname = 'record_type'`, [LOOKUP_TABLE]);
  return rows.map((r) => r.name);
}

/**
 * Puts the table in the index state a variant needs: `absent` is the table as deployments had it (no
 * record_type-led index at all), `present` has the index migration 0002 creates. Built with a plain
 * `CREATE INDEX` (nothing else writes meanwhile); returns the milliseconds spent (0 when nothing changed).
 */
export async function setRecordTypeIndex(data: BenchData, state: 'absent' | 'present'): Promise<number> {
  const existing = await recordTypeLedIndexes(data.control);
  const started = performance.now();
  const saved = `${quoteIdent(BENCH_SCHEMA)}.${quoteIdent('dropped_indexes')}`;
  if (state === 'absent') {
    if (!existing.length) return 0;
    // The other record_type-led indexes (needs_rebuild's partial index) come back with `present`: ours runs on the
    // table as migrations leave it, not without the indexes its own checks use.
    await data.control.query(`create table if not exists ${saved} (name text primary key, sql text not null)`);
    await data.control.query(`insert into ${saved} select c.relname, pg_get_indexdef(c.oid) from pg_class c
      where c.relname = any($1::text[]) and c.relname <> $2 and c.relkind in ('i', 'I') on conflict do nothing`, [existing, RECORD_TYPE_INDEX.name]);
    // On the partitioned layout the parent's index cascades to the partitions' indexes.
    for (const name of existing) await data.control.query(`drop index if exists ${quoteIdent(name)}`);
    data.log(`dropped ${existing.join(', ')} (the table as it was) in ${Math.round(performance.now() - started)} ms`);
  } else {
    const { rows: others } = await data.control.query<{ name: string; sql: string }>(
      `select name, sql from ${saved} where to_regclass(quote_ident(name)) is null`).catch(() => ({ rows: [] as { name: string; sql: string }[] }));
    if (existing.includes(RECORD_TYPE_INDEX.name) && !others.length) return 0;
    if (!existing.includes(RECORD_TYPE_INDEX.name)) await data.control.query(createIndexSql(RECORD_TYPE_INDEX, false));
    for (const o of others) await data.control.query(o.sql);
    data.log(`built ${[RECORD_TYPE_INDEX.name, ...others.map((o) => o.name)].join(', ')} in ${Math.round(performance.now() - started)} ms`);
  }
  return performance.now() - started;
}

/** `VACUUM sync_lookup` (the post-operation vacuum the issue reports apart); returns its milliseconds. */
export async function vacuumLookup(data: BenchData): Promise<number> {
  const { ms } = await timed(() => data.control.query(`vacuum ${quoteIdent(LOOKUP_TABLE)}`));
  return ms;
}

/** `ANALYZE sync_lookup` (untimed part of a restore: statistics as they were). */
export async function analyzeLookup(data: BenchData): Promise<void> {
  await data.control.query(`analyze ${quoteIdent(LOOKUP_TABLE)}`);
}

function savedTable(key: string): string {
  return `${quoteIdent(BENCH_SCHEMA)}.${quoteIdent(`saved_${key}`)}`;
}

/**
 * Saves a copy of the lookup rows of `types` (once per dataset; kept across runs while the dataset is
 * reused) so that a restore can put back exactly those rows, ids included. Returns the row count.
 */
export async function saveTypeRows(data: BenchData, key: string, types: string[]): Promise<number> {
  const table = savedTable(key);
  const { rows: [exists] } = await data.control.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`,
    [`${BENCH_SCHEMA}.saved_${key}`]);
  if (!exists?.ok) {
    await withTransaction(data.control, async (c) => {
      await c.query(`create table ${table} (like ${quoteIdent(LOOKUP_TABLE)})`);
      await c.query(`insert into ${table} select * from ${quoteIdent(LOOKUP_TABLE)} where record_type = any($1::text[])`, [types]);
    }).catch((err: unknown) => { throw toSyncLookupError(err); });
  }
  const { rows } = await data.control.query<{ n: string }>(`select count(*)::text as n from ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Puts the saved rows of `types` back, ids included: removes whatever rows of those types exist now,
 * VACUUMs when it removed any, re-inserts the saved ones, then ANALYZE. Untimed. The VACUUM matters: only
 * after it can the re-inserted rows fill the holes the removed ones left across the heap; without it they
 * would all land at the end of the table, side by side, and every later index scan over them would read
 * fewer pages than on the seeded table (flattering our index-backed operations).
 */
export async function restoreTypeRows(data: BenchData, key: string, types: string[]): Promise<number> {
  const { ms } = await timed(async () => {
    const own = data.layout === 'partitioned' ? await ownPartitions(data.control, types) : undefined;
    if (own) {
      // Each type has a partition of its own: empty it (the rows then fill it in the saved order, as seeded).
      await data.control.query(`truncate ${own.map(quoteQualified).join(', ')}`);
    } else {
      const removed = await data.control.query(`delete from ${quoteIdent(LOOKUP_TABLE)} where record_type = any($1::text[])`, [types]);
      if (removed.rowCount) await vacuumLookup(data);
    }
    try {
      await data.control.query(`insert into ${quoteIdent(LOOKUP_TABLE)} overriding system value select * from ${savedTable(key)}`);
    } catch (err) {
      throw toSyncLookupError(err, { restoring: types });
    }
    await analyzeLookup(data);
  });
  return ms;
}

/** The partitions holding exactly one of `types` each, or undefined when some type shares one. */
async function ownPartitions(client: pg.ClientBase, types: string[]): Promise<QualifiedName[] | undefined> {
  const parts = await typePartitions(client);
  const own = types.map((t) => parts.find((p) => !p.isDefault && p.types.length === 1 && p.types[0] === t)?.table);
  return own.every((x) => !!x) ? (own as QualifiedName[]) : undefined;
}

/** Rows of `types` in the lookup now. */
export async function countTypeRows(client: pg.ClientBase, types: string[]): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `select count(*)::text as n from ${quoteIdent(LOOKUP_TABLE)} where record_type = any($1::text[])`, [types]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Copies sync_lookup and sync_lookup_ticks from one database to another (COPY out, COPY in, streamed),
 * ids included, then moves the target's id sequence past them and ANALYZEs. The partitioned dataset is
 * made this way from the plain one: the same rows, routed to their partitions.
 *
 * @example
 * await copyLookup(plain.db, partitioned.db);
 */
export async function copyLookup(from: Database, to: Database, options: { signal?: AbortSignal } = {}): Promise<number> {
  const columns = await withClientOf(from, async (c) => {
    const { rows } = await c.query<{ name: string }>(
      `select attname as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum`, [LOOKUP_TABLE]);
    return rows.map((r) => quoteIdent(r.name)).join(', ');
  });
  let copied = 0;
  for (const [table, cols] of [[LOOKUP_TABLE, columns], [TICKS_TABLE, 'source_start_tick, lookup_end_tick']] as const) {
    const src = await from.acquire();
    const dst = await to.acquire();
    try {
      await applySessionSettings(dst.client, { purpose: 'bench-copy', lockTimeoutMs: 60_000 });
      const out = src.client.query(copyTo(`COPY ${quoteIdent(table)} (${cols}) TO STDOUT`));
      const into = dst.client.query(copyFrom(`COPY ${quoteIdent(table)} (${cols}) FROM STDIN`));
      await pipeline(out, into, ...(options.signal ? [{ signal: options.signal }] : []));
      if (table === LOOKUP_TABLE) copied = into.rowCount ?? 0;
    } catch (err) {
      throw toSyncLookupError(err, { copying: table });
    } finally {
      await src.release();
      await dst.release();
    }
  }
  await withClientOf(to, async (c) => {
    await c.query(`select setval(pg_get_serial_sequence($1, 'id'), (select max(id) from ${quoteIdent(LOOKUP_TABLE)}))
      where pg_get_serial_sequence($1, 'id') is not null`, [LOOKUP_TABLE]);
    await c.query(`analyze ${quoteIdent(LOOKUP_TABLE)}, ${quoteIdent(TICKS_TABLE)}`);
  });
  return copied;
}

/**
 * Copies source tables (public, same DDL on both sides) from one database to another with their ticks as they
 * are (the tick triggers are disabled while the rows go in), and sets the target's clock to the source's: the
 * partitioned dataset gets the sources of the types it resyncs this way.
 *
 * @example
 * await copySourceTables(plain.db, partitioned.db, ['patient_program_registrations']);
 */
export async function copySourceTables(from: Database, to: Database, tables: readonly string[], options: { signal?: AbortSignal } = {}): Promise<void> {
  for (const table of tables) {
    const cols = await withClientOf(from, async (c) => {
      const { rows } = await c.query<{ name: string }>(
        `select attname as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`,
        [quoteIdent(table)]);
      return rows.map((r) => quoteIdent(r.name)).join(', ');
    });
    const src = await from.acquire();
    const dst = await to.acquire();
    try {
      await applySessionSettings(dst.client, { purpose: 'bench-copy', lockTimeoutMs: 60_000 });
      await dst.client.query(`alter table ${quoteIdent(table)} disable trigger user`);
      const out = src.client.query(copyTo(`COPY ${quoteIdent(table)} (${cols}) TO STDOUT`));
      const into = dst.client.query(copyFrom(`COPY ${quoteIdent(table)} (${cols}) FROM STDIN`));
      await pipeline(out, into, ...(options.signal ? [{ signal: options.signal }] : []));
      await dst.client.query(`alter table ${quoteIdent(table)} enable trigger user`);
      await dst.client.query(`analyze ${quoteIdent(table)}`);
    } catch (err) {
      throw toSyncLookupError(err, { copying: table });
    } finally {
      await src.release();
      await dst.release();
    }
  }
  const tick = await withClientOf(from, async (c) => (await c.query<{ t: string }>(`select tick::text as t from ${CLOCK_TABLE}`)).rows[0]?.t ?? '0');
  await withClientOf(to, (c) => c.query(`update ${CLOCK_TABLE} set tick = $1::bigint`, [tick]));
}

async function withClientOf<T>(db: Database, fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
  const lease = await db.acquire();
  try {
    await applySessionSettings(lease.client, { purpose: 'bench-copy', statementTimeoutMs: 0 });
    return await fn(lease.client);
  } finally {
    await lease.release();
  }
}
