import type pg from 'pg';
import { quoteIdent } from '../db/quote.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';

/*
 * Work, not just time: pages read, pages dirtied and WAL bytes of a timed run, which do not depend on the
 * machine's noise.
 *
 * Why pg_stat_statements and not EXPLAIN (ANALYZE, BUFFERS, WAL): our forms are batched jobs (many
 * statements, several sessions, a job record, an ANALYZE), not one statement. pg_stat_statements adds up,
 * at the end of each statement, the buffers it hit, read and dirtied and the WAL it wrote, per statement,
 * whatever session ran it, and leaves out autovacuum and the checkpointer. The alternatives count less:
 * pg_stat_database has no "dirtied" and other backends flush it to the shared statistics lazily (up to
 * seconds later), and a WAL position diff counts every process's WAL. So: pg_stat_statements when the
 * server loads it (the embedded server does); otherwise the WAL position diff on a quiet server (pages
 * then unknown, reported null, and said so in the notes).
 *
 * Traffic that runs beside an operation (the simulated fleet, the writer) marks its statements with
 * {@link TRAFFIC_MARK} and is left out of the sums.
 */

/** Comment appended to the statements of simulated traffic, so the work counters leave them out. */
export const TRAFFIC_MARK = '/* bench-traffic */';

/** Work counted over one timed run. Pages are 8 kB buffers; `pagesRead` counts hits and reads. */
export interface Work {
  pagesRead: number | null;
  pagesDirtied: number | null;
  walBytes: number | null;
}

/** Where the counters come from (reported in the notes). */
export type WorkSource = 'pg_stat_statements' | 'wal_lsn';

interface Snapshot { pages: number | null; dirtied: number | null; wal: number | null; lsn: string }

/** Counts the work of a timed run: `start()` before it, `stop()` after it. */
export interface WorkMeter {
  source: WorkSource;
  start(): Promise<void>;
  stop(): Promise<Work>;
}

async function hasStatements(client: pg.ClientBase): Promise<boolean> {
  try {
    await client.query('create extension if not exists pg_stat_statements');
    await client.query('select 1 from pg_stat_statements limit 1');
    return true;
  } catch {
    return false;
  }
}

const SNAPSHOT_SQL = `select coalesce(sum(shared_blks_hit + shared_blks_read), 0)::text as pages,
        coalesce(sum(shared_blks_dirtied), 0)::text as dirtied, coalesce(sum(wal_bytes), 0)::text as wal,
        pg_current_wal_lsn()::text as lsn
   from pg_stat_statements
  where dbid = (select oid from pg_database where datname = current_database())
    and query not like '%bench-traffic%' and query not like '%pg_stat_statements%'`;

async function snapshot(client: pg.ClientBase, source: WorkSource): Promise<Snapshot> {
  if (source === 'wal_lsn') {
    const { rows: [r] } = await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    return { pages: null, dirtied: null, wal: null, lsn: r!.lsn };
  }
  const { rows: [r] } = await client.query<{ pages: string; dirtied: string; wal: string; lsn: string }>(SNAPSHOT_SQL);
  return { pages: Number(r!.pages), dirtied: Number(r!.dirtied), wal: Number(r!.wal), lsn: r!.lsn };
}

async function lsnDiff(client: pg.ClientBase, from: string, to: string): Promise<number> {
  const { rows: [r] } = await client.query<{ n: string }>('select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as n', [to, from]);
  return Number(r!.n);
}

/**
 * A work meter on `client` (the dataset's control session): pg_stat_statements when the server loads it
 * (creating the extension in the bench-owned database), else the WAL position diff.
 *
 * @example
 * const meter = await openWorkMeter(data.control);
 * await meter.start(); await operation(); const work = await meter.stop();
 */
export async function openWorkMeter(client: pg.ClientBase): Promise<WorkMeter> {
  const source: WorkSource = (await hasStatements(client)) ? 'pg_stat_statements' : 'wal_lsn';
  let before: Snapshot | undefined;
  return {
    source,
    async start() { before = await snapshot(client, source); },
    async stop() {
      const after = await snapshot(client, source);
      const b = before!;
      const wal = after.wal !== null && b.wal !== null ? after.wal - b.wal : await lsnDiff(client, b.lsn, after.lsn);
      return {
        pagesRead: after.pages !== null && b.pages !== null ? after.pages - b.pages : null,
        pagesDirtied: after.dirtied !== null && b.dirtied !== null ? after.dirtied - b.dirtied : null,
        walBytes: wal,
      };
    },
  };
}

/**
 * Heap pages that hold the lookup rows of `types` now: `count(DISTINCT block)` over their ctids. The
 * physical limit of any operation that must touch each of those rows.
 *
 * @example
 * await pagesHoldingRows(client, ['encounter_medications']) // 18542
 */
export async function pagesHoldingRows(client: pg.ClientBase, types: readonly string[]): Promise<number> {
  // On the partitioned layout the block numbers of different partitions must not be merged.
  const { rows: [r] } = await client.query<{ n: string }>(
    `select count(distinct (tableoid, (ctid::text::point)[0]))::text as n from ${quoteIdent(LOOKUP_TABLE)} where record_type = any($1::text[])`,
    [[...types]]);
  return Number(r?.n ?? 0);
}
