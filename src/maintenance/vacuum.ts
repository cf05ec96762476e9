import type pg from 'pg';
import { quoteQualified, type QualifiedName } from '../db/quote.js';
import type { MaintenanceEvent } from './events.js';
import type { WorkSession } from './session.js';

/** Whether an operation analyzed the relations it changed, and why (part of the operation's time). */
export interface AnalyzeReport {
  ran: boolean;
  /** `auto`: only when the change passed autovacuum's own analyze threshold; `always`; `never`. */
  policy: AnalyzePolicy;
  reason: string;
  ms: number;
  changed_rows: number;
  /** autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × reltuples, summed over the targets. */
  threshold_rows: number;
  targets: string[];
}

/** The post-operation VACUUM, reported apart from the operation's time. */
export interface VacuumReport {
  ran: boolean;
  reason: string;
  sql: string | null;
  vacuum_ms: number;
  dead_tuples_before: number | null;
  dead_tuples_after: number | null;
  targets: string[];
}

/** When to ANALYZE after a bulk change. */
export type AnalyzePolicy = 'auto' | 'always' | 'never';

const label = (r: QualifiedName) => `${r.schema}.${r.name}`;

/**
 * Dead tuples of the relations, as the statistics system counts them (`n_dead_tup`). Flushes this
 * session's pending counters first, so the deletes it just made are included.
 *
 * @example
 * const dead = await deadTuples(client, [{ schema: 'public', name: 'sync_lookup' }]);
 */
export async function deadTuples(client: pg.ClientBase, relations: QualifiedName[]): Promise<number> {
  // Counters are flushed at most once a second when a session goes idle; force it, then read afresh.
  await client.query('select pg_stat_force_next_flush()');
  await client.query('select pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ n: string }>(
    `select coalesce(sum(pg_stat_get_dead_tuples(c.oid)), 0)::text as n
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join unnest($1::text[], $2::text[]) as r(schema, name) on n.nspname = r.schema and c.relname = r.name`,
    [relations.map((r) => r.schema), relations.map((r) => r.name)]);
  return Number(rows[0]?.n ?? 0);
}

/** autovacuum's analyze threshold for each relation (honouring per-table reloptions), summed. */
async function analyzeThreshold(client: pg.ClientBase, relations: QualifiedName[]): Promise<number> {
  const { rows } = await client.query<{ t: string }>(
    `select coalesce(sum(
              coalesce((select option_value::float8 from pg_options_to_table(c.reloptions) where option_name = 'autovacuum_analyze_threshold'),
                       current_setting('autovacuum_analyze_threshold')::float8)
            + coalesce((select option_value::float8 from pg_options_to_table(c.reloptions) where option_name = 'autovacuum_analyze_scale_factor'),
                       current_setting('autovacuum_analyze_scale_factor')::float8) * greatest(c.reltuples, 0)), 0)::text as t
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join unnest($1::text[], $2::text[]) as r(schema, name) on n.nspname = r.schema and c.relname = r.name`,
    [relations.map((r) => r.schema), relations.map((r) => r.name)]);
  return Math.round(Number(rows[0]?.t ?? 0));
}

/**
 * ANALYZEs the changed relations when the policy says so. Under `auto` (the default) it runs only when
 * the rows this operation changed exceed autovacuum's analyze threshold for them: exactly the point at
 * which PostgreSQL itself considers the statistics stale, done at once so the next pulls do not plan on
 * them while autovacuum gets round to it. Below it, ANALYZE is left to autovacuum: the statistics are
 * within the drift PostgreSQL tolerates, and sampling (up to 300 × statistics_target rows, spread over the
 * whole table) would make a small operation's time grow with the table.
 *
 * @example
 * const a = await analyzeIfNeeded(session, { relations, changedRows: 20_000, policy: 'auto' });
 */
export async function analyzeIfNeeded(
  session: WorkSession,
  options: { relations: QualifiedName[]; changedRows: number; policy: AnalyzePolicy; signal?: AbortSignal | undefined; emit?: (e: MaintenanceEvent) => void },
): Promise<AnalyzeReport> {
  const targets = options.relations.map(label);
  const threshold = options.relations.length ? await analyzeThreshold(session.client, options.relations) : 0;
  const base = { policy: options.policy, changed_rows: options.changedRows, threshold_rows: threshold, targets };
  let reason: string;
  let run: boolean;
  if (options.policy === 'never') { run = false; reason = 'skipped (analyze: never); autovacuum will analyze when its threshold is reached'; }
  else if (options.changedRows === 0 || !options.relations.length) { run = false; reason = 'nothing changed'; }
  else if (options.policy === 'always') { run = true; reason = 'analyze: always'; }
  else if (options.changedRows > threshold) {
    run = true;
    reason = `${options.changedRows} changed rows exceed autovacuum's analyze threshold (${threshold}): statistics refreshed now`;
  } else {
    run = false;
    reason = `${options.changedRows} changed rows are within autovacuum's analyze threshold (${threshold}): left to autovacuum`;
  }
  let ms = 0;
  if (run) {
    const started = performance.now();
    await session.query(`ANALYZE ${options.relations.map(quoteQualified).join(', ')}`, [], options.signal);
    ms = Math.round(performance.now() - started);
  }
  options.emit?.({ type: 'analyze', ran: run, target: targets.join(', '), ms, reason });
  return { ran: run, reason, ms, ...base };
}

/**
 * VACUUMs the relations a bulk delete or update left dead tuples in, outside any transaction, and
 * reports dead tuples before and after. On the plain layout this is the whole `sync_lookup`: the heap
 * pass skips all-visible pages, but the index-cleanup pass reads every index in full, so its time grows
 * with the table, not with the rows removed (pass `vacuum: false` to leave it to autovacuum). On the
 * partitioned layout only the touched partitions are vacuumed.
 *
 * @example
 * const v = await vacuumAfter(session, { relations, analyze: false, enabled: true, changedRows: 100 });
 */
export async function vacuumAfter(
  session: WorkSession,
  options: {
    relations: QualifiedName[]; enabled: boolean; analyze: boolean; changedRows: number;
    signal?: AbortSignal | undefined; emit?: (e: MaintenanceEvent) => void;
  },
): Promise<VacuumReport> {
  const targets = options.relations.map(label);
  const skip = (reason: string): VacuumReport =>
    ({ ran: false, reason, sql: null, vacuum_ms: 0, dead_tuples_before: null, dead_tuples_after: null, targets });
  if (!options.enabled) return skip('skipped (--no-vacuum): autovacuum will reclaim the dead tuples');
  if (session.mode === 'caller_transaction') return skip('skipped: VACUUM cannot run inside the caller\'s transaction; autovacuum will reclaim the dead tuples');
  if (options.changedRows === 0 || !options.relations.length) return skip('nothing to vacuum: no dead tuples were made');
  const sql = `VACUUM ${options.analyze ? '(ANALYZE) ' : ''}${options.relations.map(quoteQualified).join(', ')}`;
  const before = await deadTuples(session.client, options.relations);
  options.emit?.({ type: 'vacuum_start', target: targets.join(', '), sql });
  const started = performance.now();
  await session.query(sql, [], options.signal);
  const ms = Math.round(performance.now() - started);
  const after = await deadTuples(session.client, options.relations);
  options.emit?.({ type: 'vacuum_done', target: targets.join(', '), ms, dead_tuples_before: before, dead_tuples_after: after });
  return { ran: true, reason: 'bulk change left dead tuples', sql, vacuum_ms: ms, dead_tuples_before: before, dead_tuples_after: after, targets };
}
