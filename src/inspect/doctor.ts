import type pg from 'pg';
import { withClient, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteQualified } from '../db/quote.js';
import type { Host } from '../lookup/host.js';
import { hostStatus, type HostStatus } from '../lookup/status.js';
import { resolveTable, tableIndexes, type CatalogIndex } from '../db/catalog.js';
import { indexOverlap } from './index-overlap.js';
import type { ModelRegistry } from '../lookup/registry.js';
import { LOOKUP_TABLE, TICKS_TABLE } from '../schema/sync-lookup.js';
import { estimateIndex } from './estimate.js';
import { explainHotQueries, type QueryReport } from './explain.js';
import { readIndexBuilds, type IndexBuildProgress } from '../db/index-progress.js';
import type { ModelFit } from './model-fit.js';

/*
 * `sync-lookup doctor`: one read-only pass over the catalog and the statistics views, each finding with
 * its evidence and the exact statement that fixes it. Nothing here changes the database.
 */

/** How bad a finding is: `error` makes `doctor` exit 3. */
export type DoctorSeverity = 'error' | 'warning' | 'info';

/** One finding of the doctor. */
export interface DoctorFinding {
  severity: DoctorSeverity;
  /** Stable name of the check: invalid_index, redundant_index, duplicate_index, unused_index, missing_index,
   * dead_tuples, table_bloat, index_bloat, stale_statistics, never_analyzed, idle_in_transaction, long_running_query,
   * index_build_in_progress, sizes, model_skipped, model_error, host_not_ready, flagged_rows, staged_rows, rebuild_queued. */
  check: string;
  /** What it is about: `schema.table`, `schema.index`, or `pid 1234`. */
  subject: string;
  message: string;
  evidence: Record<string, string | number | boolean | null>;
  /** The exact statement (or action) that fixes it; null when nothing needs doing. */
  fix: string | null;
}

/** Size and upkeep of one index. */
export interface DoctorIndex {
  name: string;
  columns: string[];
  definition: string;
  bytes: number;
  valid: boolean;
  unique: boolean;
  primary: boolean;
  /** Index scans counted since the statistics reset; null when unknown. */
  scans: number | null;
  include: string[];
  predicate: string | null;
  method: string;
  /** The constraint this index backs (primary key, unique), if any: dropping it means dropping that. */
  constraint: string | null;
}

/** Size and upkeep of one table. */
export interface DoctorTable {
  schema: string;
  name: string;
  /** Row estimate (`reltuples`). */
  rows: number;
  liveTuples: number;
  deadTuples: number;
  heapBytes: number;
  indexBytes: number;
  totalBytes: number;
  modsSinceAnalyze: number;
  lastVacuum: string | null;
  lastAutovacuum: string | null;
  lastAnalyze: string | null;
  lastAutoanalyze: string | null;
  /** Estimated share of the heap that is free or dead space (0..1), null without statistics. */
  bloatRatio: number | null;
  indexes: DoctorIndex[];
}

/** What `doctor` found. */
export interface DoctorReport {
  serverVersion: string;
  database: string;
  /** Seconds the usage statistics cover (since their reset, or at least since the server started). */
  statsAgeS: number;
  /** The host in use and where the lookup stands on it (clock, since, flagged rows, upgrade gate). */
  host: HostStatus;
  tables: DoctorTable[];
  /** Severity ordered: errors first. */
  findings: DoctorFinding[];
  counts: Record<DoctorSeverity, number>;
  indexBuilds: IndexBuildProgress[];
  /** How each registry model fits this database, from the explain pass; null when it did not run. */
  models: ModelFit[] | null;
}

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** Tables to examine (default sync_lookup and sync_lookup_ticks, with their partitions). */
  tables?: string[];
  /** Sessions idle in a transaction, or running one statement, longer than this are findings. Default 60 s. */
  sessionAgeS?: number;
  /** Usage statistics younger than this cannot call an index unused. Default 7 days. */
  minStatsAgeS?: number;
  /** Run the explain verdicts to find missing indexes. Default true. */
  explain?: boolean;
  registry?: ModelRegistry;
  /** The host whose conventions the models are read with (explain verdicts); default: recorded, else detected. */
  host?: Host;
  /** Rows from which a table is large (explain verdicts). */
  largeTableRows?: number;
  /** Indexes smaller than this are not judged for bloat. Default 8 MB. */
  minIndexBloatBytes?: number;
}

const RANK: Record<DoctorSeverity, number> = { error: 0, warning: 1, info: 2 };

/**
 * Examines the lookup tables and the sessions around them: sizes and row estimates, invalid, redundant,
 * duplicate and unused indexes, missing indexes (from the explain verdicts), dead tuples and bloat, stale
 * statistics, sessions that would make a concurrent index build wait, and index builds in progress.
 *
 * @example
 * const report = await runDoctor(db);
 * if (report.counts.error > 0) process.exitCode = 3;
 */
export async function runDoctor(db: Database, options: DoctorOptions = {}): Promise<DoctorReport> {
  const findings: DoctorFinding[] = [];
  const report = await withClient(db, { purpose: 'doctor' }, async (client) => {
    const { rows: [meta] } = await client.query<{ v: string; db: string; stats_age_s: number }>(
      `select current_setting('server_version') as v, current_database() as db,
              extract(epoch from now() - coalesce(
                (select stats_reset from pg_stat_database where datname = current_database()),
                pg_postmaster_start_time()))::float8 as stats_age_s`);
    const tables = await readTables(client, options.tables ?? [LOOKUP_TABLE, TICKS_TABLE], !options.tables);
    const builds = await readIndexBuilds(client, { currentDatabaseOnly: true });
    for (const t of tables) {
      findings.push(...tableFindings(t));
      findings.push(...indexFindings(t, builds, meta!.stats_age_s, options));
    }
    findings.push(...(await sessionFindings(client, options.sessionAgeS ?? 60)));
    const host = await hostStatus(client, options.host?.name);
    findings.push(...hostFindings(host));
    for (const b of builds) {
      findings.push({
        severity: b.waitingOn ? 'warning' : 'info', check: 'index_build_in_progress', subject: b.index ?? b.table,
        message: `${b.command} on ${b.table}: ${b.phase}${b.phasePercent !== null ? ` (${b.phasePercent} %)` : ''}` +
          (b.waitingOn ? `; waiting for pid ${b.waitingOn.pid} (${b.waitingOn.state ?? '?'})` : ''),
        evidence: { pid: b.pid, phase: b.phase, phasePercent: b.phasePercent, elapsedS: Math.round(b.elapsedS), waitingOnPid: b.waitingOn?.pid ?? null },
        fix: b.waitingOn ? `end the blocking transaction (pid ${b.waitingOn.pid}), or SELECT pg_terminate_backend(${b.waitingOn.pid})` : null,
      });
    }
    const report = tables.map(({ catalogIndexes: _, ...t }) => t);
    return { serverVersion: meta!.v.split(' ')[0]!, database: meta!.db, statsAgeS: Math.round(meta!.stats_age_s), host, tables: report, indexBuilds: builds };
  });
  findings.push(...(await indexBloatFindings(db, report.tables, options.minIndexBloatBytes ?? 8 * 1024 ** 2)));
  let models: ModelFit[] | null = null;
  if (options.explain !== false && report.tables.some((t) => t.name === LOOKUP_TABLE)) {
    const explained = await explainFindings(db, options);
    findings.push(...explained.findings);
    models = explained.models;
  }
  findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  return { ...report, findings, counts, models };
}

/** Flagged rows (the upgrade gate), a host that is not ready, models queued for a whole rebuild. */
function hostFindings(host: HostStatus): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  if (!host.ready) {
    out.push({ severity: 'warning', check: 'host_not_ready', subject: host.host, message: host.reason ?? 'the host is not ready',
      evidence: { host: host.host, source: host.source }, fix: 'run with --host NAME (builtin or tamanu), or `sync-lookup migrate --adopt` to detect and record it' });
  }
  if (host.flaggedRows) {
    out.push({ severity: 'warning', check: 'flagged_rows', subject: LOOKUP_TABLE,
      message: `${host.flaggedRows} rows are flagged needs_rebuild: the upgrade gate is shut (an upgrade refuses to finish while any row is flagged)`,
      evidence: { flaggedRows: host.flaggedRows, upgradeGate: host.upgradeGate }, fix: 'sync-lookup build (its flag pass re-derives them), or sync-lookup rebuild <types>' });
  }
  if (host.stagedRows) {
    out.push({ severity: 'warning', check: 'staged_rows', subject: LOOKUP_TABLE,
      message: `${host.stagedRows >= 10_000 ? '10 000+' : host.stagedRows} rows are staged at tick -2, invisible to pulls until published` +
        (host.stagedBy ? ` (left by an interrupted sync-lookup ${host.stagedBy})` : ' (a build between its staging and its publish, or one that crashed there)'),
      evidence: { stagedRows: host.stagedRows, stagedBy: host.stagedBy }, fix: 'sync-lookup build (its publish moves every staged row)' });
  }
  if (host.queuedModels.length) {
    out.push({ severity: 'info', check: 'rebuild_queued', subject: LOOKUP_TABLE,
      message: `queued for a whole rebuild by the next build: ${host.queuedModels.join(', ')}`, evidence: { models: host.queuedModels.join(',') }, fix: 'sync-lookup build' });
  }
  return out;
}

/** A table as read, with its indexes as the catalog describes them (keys with operator classes, collations, order). */
type ReadTable = DoctorTable & { catalogIndexes: CatalogIndex[] };

async function readTables(client: pg.ClientBase, names: string[], lenient: boolean): Promise<ReadTable[]> {
  // Names resolve as PostgreSQL resolves them (`sync_lookup`, `public.sync_lookup`, quoted parts): the catalog reader.
  const found = await Promise.all(names.map(async (name) => ({ name, oid: (await resolveTable(client, name))?.oid ?? null })));
  const missing = found.filter((f) => f.oid === null).map((f) => f.name);
  if (missing.length && !lenient) {
    throw new ConfigError('unknown_table', `no such table: ${missing.join(', ')}`, { missing });
  }
  const oids = found.filter((f) => f.oid !== null).map((f) => f.oid!);
  if (!oids.length) {
    if (lenient) throw new ConfigError('no_lookup_table', `table ${LOOKUP_TABLE} does not exist in this database (run sync-lookup migrate first)`);
    return [];
  }
  const { rows } = await client.query<{
    oid: number; schema: string; name: string; rows: number; live: string; dead: string; heap: string; idx: string; total: string;
    mods: string; last_vacuum: Date | null; last_autovacuum: Date | null; last_analyze: Date | null; last_autoanalyze: Date | null;
    pages: number; row_bytes: number | null; fillfactor: number;
  }>(
    `with recursive rels(oid) as (
       select unnest($1::oid[])
       union
       select i.inhrelid from pg_inherits i join rels r on r.oid = i.inhparent)
     select c.oid::int as oid, n.nspname as schema, c.relname as name, greatest(c.reltuples, 0)::float8 as rows,
            coalesce(s.n_live_tup, 0)::text as live, coalesce(s.n_dead_tup, 0)::text as dead,
            pg_table_size(c.oid)::text as heap, pg_indexes_size(c.oid)::text as idx, pg_total_relation_size(c.oid)::text as total,
            coalesce(s.n_mod_since_analyze, 0)::text as mods,
            s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze, c.relpages::int as pages,
            (select sum(st.avg_width)::float8 from pg_stats st
              where st.schemaname = n.nspname and st.tablename = c.relname and not st.inherited) as row_bytes,
            coalesce((select split_part(o, '=', 2)::int from unnest(c.reloptions) o where o like 'fillfactor=%'), 100) as fillfactor
       from rels join pg_class c on c.oid = rels.oid
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_stat_all_tables s on s.relid = c.oid
      order by c.relname`, [oids]);
  const catalog = await tableIndexes(client, rows.map((r) => r.oid));
  const { rows: scans } = await client.query<{ oid: number; scans: string | null }>(
    `select indexrelid::int as oid, idx_scan::text as scans from pg_stat_all_indexes where relid = any($1::oid[])`, [rows.map((r) => r.oid)]);
  const scanCount = new Map(scans.map((x) => [x.oid, x.scans === null ? null : Number(x.scans)]));
  return rows.map((r) => {
    // Heap bloat: pages a freshly written copy would need (row width from pg_stats, 24-byte tuple header
    // and 4-byte line pointer, fillfactor) against the pages the table has.
    const perPage = r.row_bytes ? Math.floor(((8192 - 24) * r.fillfactor) / 100 / (r.row_bytes + 28)) : 0;
    const expectedPages = perPage > 0 ? Math.ceil(r.rows / perPage) : null;
    const bloatRatio = expectedPages !== null && r.pages > 0 && r.rows > 0 ? Math.max(0, Math.round((1 - expectedPages / r.pages) * 1000) / 1000) : null;
    return {
      schema: r.schema, name: r.name, rows: Math.round(r.rows), liveTuples: Number(r.live), deadTuples: Number(r.dead),
      heapBytes: Number(r.heap), indexBytes: Number(r.idx), totalBytes: Number(r.total), modsSinceAnalyze: Number(r.mods),
      lastVacuum: iso(r.last_vacuum), lastAutovacuum: iso(r.last_autovacuum), lastAnalyze: iso(r.last_analyze), lastAutoanalyze: iso(r.last_autoanalyze),
      bloatRatio,
      indexes: catalog.filter((i) => i.tableOid === r.oid).map((i) => ({
        name: i.name, columns: i.keys.map((k) => k.key), definition: i.definition, bytes: i.bytes, valid: i.valid, unique: i.unique,
        primary: i.primary, scans: scanCount.get(i.oid) ?? null,
        include: i.include, predicate: i.predicate, method: i.method, constraint: i.constraint,
      })),
      catalogIndexes: catalog.filter((i) => i.tableOid === r.oid),
    };
  });
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

function mb(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.round(bytes / 1024)} kB`;
}

function tableFindings(t: DoctorTable): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const subject = `${t.schema}.${t.name}`;
  const target = quoteQualified({ schema: t.schema, name: t.name });
  const lastVacuum = [t.lastVacuum, t.lastAutovacuum].filter((x): x is string => !!x).sort().pop() ?? null;
  const lastAnalyze = [t.lastAnalyze, t.lastAutoanalyze].filter((x): x is string => !!x).sort().pop() ?? null;
  out.push({
    severity: 'info', check: 'sizes', subject,
    message: `${t.rows.toLocaleString('en')} rows (estimate), heap ${mb(t.heapBytes)}, ${t.indexes.length} indexes ${mb(t.indexBytes)}, total ${mb(t.totalBytes)}`,
    evidence: { rows: t.rows, heapBytes: t.heapBytes, indexBytes: t.indexBytes, totalBytes: t.totalBytes, indexes: t.indexes.length },
    fix: null,
  });
  const upkeep = { deadTuples: t.deadTuples, liveTuples: t.liveTuples, lastVacuum, lastAnalyze, modsSinceAnalyze: t.modsSinceAnalyze };
  const deadShare = t.deadTuples / Math.max(1, t.liveTuples + t.deadTuples);
  if (t.deadTuples >= 10_000 && deadShare >= 0.1) {
    out.push({
      severity: 'warning', check: 'dead_tuples', subject,
      message: `${t.deadTuples.toLocaleString('en')} dead tuples (${(deadShare * 100).toFixed(0)} % of the table); last vacuum ${lastVacuum ?? 'never'}`,
      evidence: { ...upkeep, deadShare: Math.round(deadShare * 1000) / 1000 },
      fix: `VACUUM (ANALYZE) ${target}`,
    });
  }
  if (t.bloatRatio !== null && t.bloatRatio >= 0.3 && t.heapBytes >= 16 * 1024 ** 2) {
    out.push({
      severity: t.bloatRatio >= 0.5 ? 'warning' : 'info', check: 'table_bloat', subject,
      message: `about ${(t.bloatRatio * 100).toFixed(0)} % of the heap (${mb(t.heapBytes * t.bloatRatio)}) is free or dead space`,
      evidence: { bloatRatio: t.bloatRatio, heapBytes: t.heapBytes, rows: t.rows },
      fix: `VACUUM (ANALYZE) ${target}  -- makes the space reusable; returning it to the OS needs a rewrite (VACUUM FULL locks the table; pg_repack does not)`,
    });
  }
  if (!lastAnalyze && t.liveTuples > 0) {
    out.push({
      severity: 'warning', check: 'never_analyzed', subject,
      message: `never analyzed: the planner guesses row counts and distributions`,
      evidence: upkeep, fix: `ANALYZE ${target}`,
    });
  } else if (t.modsSinceAnalyze >= 1000 && t.modsSinceAnalyze >= 0.1 * Math.max(1, t.rows)) {
    out.push({
      severity: 'warning', check: 'stale_statistics', subject,
      message: `${t.modsSinceAnalyze.toLocaleString('en')} rows changed since the last analyze (${lastAnalyze}), ` +
        `${((t.modsSinceAnalyze / Math.max(1, t.rows)) * 100).toFixed(0)} % of the table: plans use stale statistics`,
      evidence: upkeep, fix: `ANALYZE ${target}`,
    });
  }
  return out;
}

function indexFindings(t: ReadTable, builds: IndexBuildProgress[], statsAgeS: number, options: DoctorOptions): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const indexes = t.indexes;
  const q = (name: string) => quoteQualified({ schema: t.schema, name });
  const building = builds.filter((b) => b.table === t.name || b.table === `${t.schema}.${t.name}` || b.table.endsWith(`.${quoteIdent(t.name)}`));
  for (const i of indexes) {
    if (i.valid) continue;
    const inProgress = building.find((b) => b.index === null || b.index === i.name || b.index.endsWith(`.${i.name}`));
    if (inProgress) {
      out.push({
        severity: 'info', check: 'invalid_index', subject: `${t.schema}.${i.name}`,
        message: `${i.name} is not valid yet: a concurrent build is running (pid ${inProgress.pid}, ${inProgress.phase})`,
        evidence: { index: i.name, buildPid: inProgress.pid }, fix: null,
      });
      continue;
    }
    out.push({
      severity: 'error', check: 'invalid_index', subject: `${t.schema}.${i.name}`,
      message: `${i.name} is INVALID (left by a failed or cancelled CREATE INDEX CONCURRENTLY): writes still maintain it, ` +
        'queries never use it, and CREATE INDEX IF NOT EXISTS will keep it forever',
      evidence: { index: i.name, definition: i.definition, bytes: i.bytes },
      fix: `REINDEX INDEX CONCURRENTLY ${q(i.name)}  -- or, if nothing needs it: DROP INDEX CONCURRENTLY ${q(i.name)}`,
    });
  }
  const valid = indexes.filter((i) => i.valid);
  const reported = overlapFindings(t, out);
  const minAge = options.minStatsAgeS ?? 7 * 86_400;
  for (const i of valid) {
    if (i.unique || i.primary || i.scans === null || i.scans > 0 || reported.has(i.name)) continue;
    const days = statsAgeS >= 2 * 86_400 ? `${(statsAgeS / 86_400).toFixed(1)} days`
      : statsAgeS >= 2 * 3600 ? `${(statsAgeS / 3600).toFixed(1)} hours` : `${Math.round(statsAgeS / 60)} minutes`;
    const young = statsAgeS < minAge;
    out.push({
      severity: young ? 'info' : 'warning', check: 'unused_index', subject: `${t.schema}.${i.name}`,
      message: young
        ? `${i.name} has not been scanned, but the statistics only cover ${days}: too recent to call it unused`
        : `${i.name} has not been scanned in the ${days} the statistics cover (${mb(i.bytes)}); check replicas before dropping (their scans are not counted here)`,
      evidence: { index: i.name, scans: i.scans, bytes: i.bytes, statsAgeS: Math.round(statsAgeS) },
      fix: young ? null : `DROP INDEX CONCURRENTLY ${q(i.name)}`,
    });
  }
  return out;
}

/**
 * Duplicate and redundant indexes, judged on what the catalog says of every key (operator class,
 * collation, order, expression), the predicate, the method and uniqueness (see index-overlap.ts).
 * Returns the names reported.
 */
function overlapFindings(t: ReadTable, out: DoctorFinding[]): Set<string> {
  const q = (name: string) => quoteQualified({ schema: t.schema, name });
  const byName = new Map(t.indexes.map((i) => [i.name, i]));
  const valid = t.catalogIndexes.filter((i) => i.valid);
  const reported = new Set<string>();
  for (const ca of valid) {
    for (const cb of valid) {
      if (ca === cb || reported.has(ca.name) || reported.has(cb.name)) continue;
      const overlap = indexOverlap(ca, cb);
      const a = byName.get(ca.name)!;
      const b = byName.get(cb.name)!;
      // An index a constraint, a foreign key, the replica identity or a partitioned index needs is never the one to drop.
      if (overlap && ca.requiredBy.length) continue;
      if (overlap === 'duplicate') {
        // Keep the one that enforces or backs something (primary key, constraint, unique); between equals, the first by name.
        const rank = (x: CatalogIndex) => (x.primary ? 3 : x.constraint || x.requiredBy.length ? 2 : x.unique ? 1 : 0);
        if (rank(ca) > rank(cb) || (rank(ca) === rank(cb) && a.name < b.name)) continue;
        reported.add(a.name);
        out.push({
          severity: 'warning', check: 'duplicate_index', subject: `${t.schema}.${a.name}`,
          message: `${a.name} duplicates ${b.name} (${a.columns.join(', ')}): every write maintains both`,
          evidence: { index: a.name, duplicateOf: b.name, bytes: a.bytes, scans: a.scans, constraint: a.constraint, definition: a.definition, duplicateDefinition: b.definition },
          fix: a.constraint ? `ALTER TABLE ${q(t.name)} DROP CONSTRAINT ${quoteIdent(a.constraint)}` : `DROP INDEX CONCURRENTLY ${q(a.name)}`,
        });
      } else if (overlap === 'redundant') {
        reported.add(a.name);
        out.push({
          severity: 'warning', check: 'redundant_index', subject: `${t.schema}.${a.name}`,
          message: `${a.name} (${a.columns.join(', ')}) is a leading-column prefix of ${b.name} (${b.columns.join(', ')}) ` +
            `with the same operator classes, collations, order and predicate, which serves the same lookups: ${mb(a.bytes)} maintained on every write for nothing`,
          evidence: { index: a.name, coveredBy: b.name, bytes: a.bytes, scans: a.scans, definition: a.definition, coveredByDefinition: b.definition },
          fix: `DROP INDEX CONCURRENTLY ${q(a.name)}`,
        });
      }
    }
  }
  return reported;
}

async function sessionFindings(client: pg.ClientBase, ageS: number): Promise<DoctorFinding[]> {
  const { rows } = await client.query<{
    pid: number; state: string | null; xact_age_s: number | null; query_age_s: number | null; state_age_s: number | null;
    query: string | null; app: string | null; holds_snapshot: boolean; wait_event: string | null;
  }>(
    `select pid, state, extract(epoch from now() - xact_start)::float8 as xact_age_s,
            extract(epoch from now() - query_start)::float8 as query_age_s,
            extract(epoch from now() - state_change)::float8 as state_age_s,
            left(query, 300) as query, application_name as app, backend_xmin is not null as holds_snapshot, wait_event
       from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
        and xact_start is not null and extract(epoch from now() - xact_start) > $1
      order by xact_start`, [ageS]);
  const { rows: [setting] } = await client.query<{ v: string }>(`select current_setting('idle_in_transaction_session_timeout') as v`);
  return rows.map((r) => {
    const idle = r.state === 'idle in transaction' || r.state === 'idle in transaction (aborted)';
    const evidence = {
      pid: r.pid, state: r.state, xactAgeS: Math.round(r.xact_age_s ?? 0), queryAgeS: Math.round(r.query_age_s ?? 0),
      query: r.query, applicationName: r.app, holdsSnapshot: r.holds_snapshot, idleInTransactionSessionTimeout: setting?.v ?? null,
    };
    return {
      severity: 'warning' as const,
      check: idle ? 'idle_in_transaction' : 'long_running_query',
      subject: `pid ${r.pid}`,
      message: `${idle ? `idle in a transaction for ${Math.round(r.state_age_s ?? 0)} s` : `running one statement for ${Math.round(r.query_age_s ?? 0)} s`} ` +
        `(transaction open ${Math.round(r.xact_age_s ?? 0)} s${r.app ? `, ${r.app}` : ''}): a CREATE INDEX CONCURRENTLY started now would wait for it to end, ` +
        'and VACUUM cannot remove rows it might still see',
      evidence,
      fix: idle
        ? `end the transaction in the application; or SELECT pg_terminate_backend(${r.pid})` +
          (setting?.v === '0' ? `; and set idle_in_transaction_session_timeout (e.g. ALTER DATABASE … SET idle_in_transaction_session_timeout = '5min')` : '')
        : `wait for it, or SELECT pg_cancel_backend(${r.pid})`,
    };
  });
}

/** Missing indexes from the explain verdicts, and the models whose source does not fit the registry. */
async function explainFindings(db: Database, options: DoctorOptions): Promise<{ findings: DoctorFinding[]; models: ModelFit[] }> {
  const report = await explainHotQueries(db, {
    ...(options.registry ? { registry: options.registry } : {}),
    ...(options.host ? { host: options.host } : {}),
    ...(options.largeTableRows !== undefined ? { largeTableRows: options.largeTableRows } : {}),
  });
  const models = report.models ?? [];
  const findings: DoctorFinding[] = models.filter((m) => m.status !== 'ok').map((m) => ({
    // Skipped: the build cannot read this model here until the registry (--models) matches the database.
    severity: m.status === 'skipped' ? 'warning' as const : 'error' as const,
    check: m.status === 'skipped' ? 'model_skipped' : 'model_error', subject: m.name,
    message: m.status === 'skipped' ? `skipped: ${m.skippedReason}` : `its source query does not plan: ${m.error}`,
    evidence: { status: m.status, missingTables: m.missing.tables.join(', '), missingColumns: m.missing.columns.join(', ') },
    fix: 'pass the model registry that matches this database (--models FILE)',
  }));
  return { findings: [...findings, ...missingIndexFindings(report.queries)], models };
}

function missingIndexFindings(queries: QueryReport[]): DoctorFinding[] {
  const byFix = new Map<string, DoctorFinding>();
  for (const q of queries) {
    if (q.form !== 'system' || q.verdict !== 'fail') continue;
    const finding = q.findings.find((f) => f.severity === 'fail' && f.fix && /^(CREATE INDEX|REINDEX)/.test(f.fix));
    if (!finding?.fix) continue;
    const existing = byFix.get(finding.fix);
    if (existing) {
      existing.evidence.queries = `${existing.evidence.queries}, ${q.name}`;
      continue;
    }
    byFix.set(finding.fix, {
      severity: 'error', check: 'missing_index', subject: finding.relation ?? LOOKUP_TABLE,
      message: `${q.title}: ${finding.reason}`,
      evidence: { queries: q.name, plan: q.plan, reason: finding.reason },
      fix: finding.fix,
    });
  }
  return [...byFix.values()];
}

/**
 * Index bloat: the index's size against what a fresh build would take (the `index estimate` model from
 * the table's statistics). Only B-tree indexes on plain columns of at least `minBytes` are judged.
 */
async function indexBloatFindings(db: Database, tables: DoctorTable[], minBytes: number): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  for (const t of tables) {
    for (const i of t.indexes) {
      if (!i.valid || i.method !== 'btree' || i.predicate !== null || i.include.length || i.bytes < minBytes) continue;
      let expected: number;
      try {
        const e = await estimateIndex(db, {
          schema: t.schema, table: t.name, name: i.name, columns: i.columns, unique: i.unique, concurrently: true,
          fillfactor: 90, deduplicateItems: true, where: null, fromStatement: false,
        }, { measure: false });
        expected = e.estimatedBytes;
      } catch {
        continue; // expression keys and the like: no estimate, no finding
      }
      const ratio = i.bytes / Math.max(1, expected);
      if (ratio < 1.8) continue;
      out.push({
        severity: ratio >= 3 ? 'warning' : 'info', check: 'index_bloat', subject: `${t.schema}.${i.name}`,
        message: `${i.name} takes ${mb(i.bytes)}; a fresh build would take about ${mb(expected)} (${ratio.toFixed(1)}x): ` +
          'pages emptied by deletes and updates are reused only for the same key range',
        evidence: { index: i.name, bytes: i.bytes, estimatedFreshBytes: expected, ratio: Math.round(ratio * 100) / 100 },
        fix: `REINDEX INDEX CONCURRENTLY ${quoteQualified({ schema: t.schema, name: i.name })}`,
      });
    }
  }
  return out;
}
