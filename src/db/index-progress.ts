import type pg from 'pg';

/** One running `CREATE INDEX` / `REINDEX`, read from `pg_stat_progress_create_index`. */
export interface IndexBuildProgress {
  pid: number;
  /** `schema.table` being indexed. */
  table: string;
  /** Index name, once known (0 during the first phases of a concurrent build). */
  index: string | null;
  command: string;
  /** PostgreSQL's own words for the phase, e.g. "building index: scanning table". */
  phase: string;
  blocksDone: number;
  blocksTotal: number;
  tuplesDone: number;
  tuplesTotal: number;
  lockersDone: number;
  lockersTotal: number;
  /** Percent of the current phase, when it has a known total. */
  phasePercent: number | null;
  /** Seconds since the build statement started. */
  elapsedS: number;
  /** Set when the build waits on another session (old transactions before a concurrent build). */
  waitingOn: BlockingSession | null;
}

/** A session another one waits for. */
export interface BlockingSession {
  pid: number;
  state: string | null;
  /** Seconds since its transaction began. */
  xactAgeS: number | null;
  query: string | null;
  applicationName: string | null;
}

/**
 * Reads every running index build, or only the one of backend `pid` (or only those in the connected
 * database, with `currentDatabaseOnly`), with the session it waits on.
 *
 * @example
 * const [build] = await readIndexBuilds(client, { pid });
 * console.log(build?.phase, build?.phasePercent);
 */
export async function readIndexBuilds(client: pg.ClientBase, options: { pid?: number; currentDatabaseOnly?: boolean } = {}): Promise<IndexBuildProgress[]> {
  const { rows } = await client.query<Record<string, string | number | null>>(
    `select p.pid, p.relid::regclass::text as table, nullif(p.index_relid, 0)::regclass::text as index,
            p.command, p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total,
            p.lockers_done, p.lockers_total,
            extract(epoch from now() - a.query_start)::float8 as elapsed_s,
            b.pid as blocker_pid, b.state as blocker_state,
            extract(epoch from now() - b.xact_start)::float8 as blocker_xact_age_s,
            left(b.query, 300) as blocker_query, b.application_name as blocker_app
       from pg_stat_progress_create_index p
       join pg_stat_activity a on a.pid = p.pid
       left join lateral (
         select s.* from pg_stat_activity s
          where s.pid = any(pg_blocking_pids(p.pid))
             or (p.current_locker_pid <> 0 and s.pid = p.current_locker_pid)
          order by s.xact_start nulls last limit 1) b on true
      where ($1::int is null or p.pid = $1) and (not $2 or p.datid = (select oid from pg_database where datname = current_database()))
      order by p.pid`,
    [options.pid ?? null, !!options.currentDatabaseOnly]);
  return rows.map((r) => {
    const n = (k: string) => Number(r[k] ?? 0);
    const blocksTotal = n('blocks_total');
    const tuplesTotal = n('tuples_total');
    const lockersTotal = n('lockers_total');
    const phasePercent = blocksTotal > 0 ? (100 * n('blocks_done')) / blocksTotal
      : tuplesTotal > 0 ? (100 * n('tuples_done')) / tuplesTotal
        : lockersTotal > 0 ? (100 * n('lockers_done')) / lockersTotal : null;
    return {
      pid: n('pid'),
      table: String(r.table),
      index: r.index === null ? null : String(r.index),
      command: String(r.command),
      phase: String(r.phase),
      blocksDone: n('blocks_done'),
      blocksTotal,
      tuplesDone: n('tuples_done'),
      tuplesTotal,
      lockersDone: n('lockers_done'),
      lockersTotal,
      phasePercent: phasePercent === null ? null : Math.min(100, Math.round(phasePercent * 10) / 10),
      elapsedS: n('elapsed_s'),
      waitingOn: r.blocker_pid === null || r.blocker_pid === undefined ? null : {
        pid: n('blocker_pid'),
        state: r.blocker_state === null ? null : String(r.blocker_state),
        xactAgeS: r.blocker_xact_age_s === null ? null : Number(r.blocker_xact_age_s),
        query: r.blocker_query === null ? null : String(r.blocker_query),
        applicationName: r.blocker_app === null ? null : String(r.blocker_app),
      },
    };
  });
}
