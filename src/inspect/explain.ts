import { parse } from 'libpg-query';
import type pg from 'pg';
import { withClient, type Database } from '../db/connection.js';
import { ConfigError, SqlState, toSyncLookupError } from '../db/errors.js';
import { applyHost, type Host } from '../lookup/host.js';
import { resolveHost } from '../lookup/hosts/index.js';
import { builtinRegistry, type ModelDefinition, type ModelRegistry } from '../lookup/registry.js';
import {
  pullChunkQuery, publishStagedRows, selectLookupRows, upsertLookupRows, verifyModelQuery, type SqlQuery,
} from '../lookup/sql.js';
import { PURGE_SQL } from '../maintenance/purge.js';
import { LOOKUP_TABLE, STAGED_TICK, TICKS_TABLE } from '../schema/sync-lookup.js';
import { TOMBSTONES_TABLE } from '../schema/tool.js';
import {
  classifyPlan, explainStatement, readPlanContext, type ClassifyOptions, type PlanFinding, type Severity,
} from '../plan/plan.js';
import { checkModelFit, type ModelFit } from './model-fit.js';
import { loadSqlParser } from '../plan/expr.js';

/*
 * `sync-lookup explain`: EXPLAIN of every hot query of the system with parameters read from the data.
 * The lookup engine owns its queries (src/lookup/sql.ts, used verbatim here); the statements below are
 * the ones nobody else runs: the seed's original forms, kept to show what they cost, and the
 * initial-tick maxima of the seed's backfill migration.
 */

/**
 * The seed's purge: one DELETE over every row of the given types. Without a record_type-led index
 * it reads the whole table.
 *
 * @example
 * seedPurgeQuery(['patient_program_registrations', 'patient_program_registration_conditions'])
 */
export function seedPurgeQuery(types: readonly string[]): SqlQuery {
  return { text: `DELETE FROM ${LOOKUP_TABLE} WHERE record_type = ANY($1::text[])`, values: [[...types]] };
}

/**
 * The seed's emptiness test: counts every row to learn whether there is one.
 *
 * @example
 * emptinessCountQuery().text // 'SELECT count(*) = 0 AS empty FROM sync_lookup'
 */
export function emptinessCountQuery(): SqlQuery {
  return { text: `SELECT count(*) = 0 AS empty FROM ${LOOKUP_TABLE}`, values: [] };
}

/**
 * The emptiness test as it should be: stops at the first row.
 *
 * @example
 * const { rows: [r] } = await client.query(emptinessExistsQuery().text); // r.empty
 */
export function emptinessExistsQuery(): SqlQuery {
  return { text: `SELECT NOT EXISTS (SELECT 1 FROM ${LOOKUP_TABLE}) AS empty`, values: [] };
}

/**
 * The seed's backfill of the initial tick: the highest lookup tick below the first recorded build.
 * A backward scan of the tick index answers it; the seed worried it would not.
 *
 * @example
 * const { rows: [r] } = await client.query(initialTickMaximaQuery().text); // r.max_tick
 */
export function initialTickMaximaQuery(): SqlQuery {
  return {
    text: `SELECT max(updated_at_sync_tick) AS max_tick FROM ${LOOKUP_TABLE}
 WHERE updated_at_sync_tick < (SELECT min(lookup_end_tick) FROM ${TICKS_TABLE})`,
    values: [],
  };
}

/** Parameters read from the data, so each hot query is explained as it really runs. */
export interface RepresentativeParams {
  /** The least frequent record type the statistics know (a real small type). */
  smallType: string;
  /** The two least frequent types (the seed's purge named two). */
  smallTypes: string[];
  /** A tick near the top of the clock: the previous build's end tick. */
  sinceTick: number;
  /** The highest tick in the lookup. */
  topTick: number;
  /** The last build's end tick, or null before the first build. */
  lastEndTick: number | null;
  patients: string[];
  facilities: string[];
  /** The first 100 ids of the table (a purge batch's primary-key lookups). */
  sampleIds: string[];
  /** The first 100 row addresses (a plain-layout purge batch's TID lookups). */
  sampleTids: string[];
  /** `partitioned` when sync_lookup is partitioned by record_type (purge then works by id, not by ctid). */
  layout: 'plain' | 'partitioned';
  /** Where the values came from, in words. */
  notes: string[];
}

/**
 * Reads representative parameters from the statistics and the tick ledger, never by scanning the table.
 *
 * @example
 * const p = await representativeParams(client, builtinRegistry());
 * p.smallType // 'patient_program_registration_conditions'
 */
export async function representativeParams(client: pg.ClientBase, registry: ModelRegistry): Promise<RepresentativeParams> {
  const notes: string[] = [];
  const mcv = async (column: string) => {
    const { rows } = await client.query<{ vals: string[] | null; freqs: number[] | null }>(
      `select most_common_vals::text::text[] as vals, most_common_freqs::float8[] as freqs
         from pg_stats where schemaname = current_schema() and tablename = $1 and attname = $2 order by inherited limit 1`,
      [LOOKUP_TABLE, column]);
    const r = rows[0];
    return (r?.vals ?? []).map((v, i) => ({ value: v, freq: r?.freqs?.[i] ?? 0 }));
  };
  const types = (await mcv('record_type')).filter((t) => registry.has(t.value) || registry.names.length === 0);
  types.sort((a, b) => a.freq - b.freq);
  let smallTypes = types.slice(0, 2).map((t) => t.value);
  if (smallTypes.length) {
    notes.push(`record types from pg_stats: ${types.slice(0, 2).map((t) => `${t.value} (${(t.freq * 100).toFixed(2)} %)`).join(', ')}`);
  } else {
    // No statistics yet (never analyzed): the registry's smallest declared shares.
    smallTypes = [...registry.models].sort((a, b) => (a.share ?? 1) - (b.share ?? 1)).slice(0, 2).map((m) => m.name);
    notes.push(`no statistics on ${LOOKUP_TABLE}.record_type: took the registry's smallest models`);
  }
  const smallType = smallTypes[0] ?? 'patient_program_registrations';
  const { rows: [t] } = await client.query<{ top: string | null; last: string | null; prev: string | null }>(
    `select (select updated_at_sync_tick from ${LOOKUP_TABLE} order by updated_at_sync_tick desc limit 1)::text as top,
            (select lookup_end_tick from ${TICKS_TABLE} order by lookup_end_tick desc limit 1)::text as last,
            (select lookup_end_tick from ${TICKS_TABLE} order by lookup_end_tick desc offset 1 limit 1)::text as prev`);
  const topTick = Number(t?.top ?? 0);
  const lastEndTick = t?.last === null || t?.last === undefined ? null : Number(t.last);
  const sinceTick = t?.prev !== null && t?.prev !== undefined ? Number(t.prev) : Math.max(-1, topTick - 1);
  notes.push(t?.prev ? `since = the previous build's end tick ${sinceTick}` : `since = the top tick - 1 (${sinceTick})`);
  const sample = async (column: 'patient_id' | 'facility_id') => {
    const fromStats = (await mcv(column)).slice(0, 3).map((v) => v.value);
    if (fromStats.length) return fromStats;
    // No statistics: the first few values; a scan that stops after three matching rows.
    const { rows } = await client.query<{ v: string }>(
      `select ${column} as v from ${LOOKUP_TABLE} where ${column} is not null limit 3`);
    return rows.map((r) => r.v);
  };
  const { rows: ids } = await client.query<{ id_text: string }>(`select id::text as id_text from ${LOOKUP_TABLE} order by id limit 100`);
  const { rows: [kind] } = await client.query<{ partitioned: boolean }>(
    `select c.relkind = 'p' as partitioned from pg_class c where c.oid = to_regclass($1)`, [LOOKUP_TABLE]);
  const layout = kind?.partitioned ? 'partitioned' as const : 'plain' as const;
  const { rows: tids } = layout === 'plain'
    ? await client.query<{ t: string }>(`select ctid::text as t from ${LOOKUP_TABLE} limit 100`) : { rows: [] };
  return {
    smallType, smallTypes: smallTypes.length ? smallTypes : [smallType], sinceTick, topTick, lastEndTick,
    patients: await sample('patient_id'), facilities: await sample('facility_id'), sampleIds: ids.map((r) => r.id_text), sampleTids: tids.map((r) => r.t), layout, notes,
  };
}

/** One statement `explain` judges. */
export interface HotQuery {
  name: string;
  title: string;
  /** `system`: what sync-lookup runs; `seed`: the seed's original form, shown for comparison (not in the exit code). */
  form: 'system' | 'seed';
  query: SqlQuery;
  classify?: ClassifyOptions;
  /** Settings the statement runs with (`set_config(…, true)`), as its owner sets them. */
  settings?: Record<string, string>;
  /** Why it cannot be explained here (e.g. no source table), instead of a query. */
  skipped?: string;
}

/** What the engine's statements depend on besides the registry, as the engine decides it. */
export interface LookupFeatures {
  /** The lookup has `needs_rebuild`: builds clear it, verify counts flagged rows apart. */
  flags: boolean;
  /** The host signals hard deletes by tombstones and the tombstone table exists. */
  tombstones: boolean;
}

/**
 * The model whose source the build, rebuild and verify queries are explained on: the small type's when its
 * source fits, else the next that fits (small types first, then by declared share). Undefined when none fits.
 */
function sourceModel(p: RepresentativeParams, registry: ModelRegistry, fit: ReadonlyMap<string, ModelFit>): ModelDefinition | undefined {
  const byShare = [...registry.models].sort((a, b) => (a.share ?? 1) - (b.share ?? 1)).map((m) => m.name);
  const name = [p.smallType, ...p.smallTypes, ...byShare].find((n) => registry.has(n) && fit.get(n)?.status !== 'skipped');
  return name === undefined ? undefined : registry.get(name);
}

/**
 * The hot queries of the system with representative parameters: incremental and initial pull, build
 * upsert, staged-tick publish, purge and rebuild of one type, verify, the emptiness test, the
 * initial-tick maxima; plus the seed's original forms for comparison.
 *
 * @example
 * const fit = await checkModelFit(client, registry);
 * const queries = hotQueries(await representativeParams(client, registry), registry, new Map(fit.map((f) => [f.name, f])));
 */
export function hotQueries(
  p: RepresentativeParams, registry: ModelRegistry, fit: ReadonlyMap<string, ModelFit>,
  features: LookupFeatures = { flags: false, tombstones: false },
): HotQuery[] {
  const model = sourceModel(p, registry, fit);
  const noSource = model ? undefined : registry.models.length ? "no model's source matches the registry (see the skipped models)"
    : 'the model registry is empty';
  const withModel = (fn: (m: ModelDefinition) => SqlQuery): SqlQuery => (model ? fn(model) : { text: '', values: [] });
  const of = model ? {} : { skipped: noSource! };
  const modelName = model?.name ?? p.smallType;
  const qs: HotQuery[] = [
    { name: 'pull_incremental', title: `pull since ${p.sinceTick} (${p.smallTypes.join(', ')}, ${p.patients.length} patients, ${p.facilities.length} facilities)`, form: 'system',
      query: pullChunkQuery({ sinceTick: p.sinceTick, types: p.smallTypes, patients: p.patients, facilities: p.facilities, limit: 1000 }) },
    { name: 'pull_initial', title: `initial pull (since -1) of ${p.smallType}`, form: 'system',
      query: pullChunkQuery({ sinceTick: -1, types: [p.smallType], patients: p.patients, facilities: p.facilities, limit: 1000 }) },
    { name: 'build_upsert', title: `incremental build upsert of ${modelName} since ${p.lastEndTick ?? p.topTick}`, form: 'system',
      query: withModel((m) => upsertLookupRows(m, { lookupTick: STAGED_TICK, sinceTick: p.lastEndTick ?? p.topTick, limit: 20_000, clearFlags: features.flags })), ...of },
    { name: 'publish_staged', title: 'publish staged rows (tick -2) at a new end tick', form: 'system',
      query: publishStagedRows(p.topTick + 1) },
    // The maintenance purge (src/maintenance/purge.ts): row addresses (plain layout) or ids (partitioned)
    // collected once by a held cursor, planned for all its rows (cursor_tuple_fraction = 1, as the purge
    // sets it), then deleted in batches. EXPLAIN accepts the DECLARE and plans its query.
    p.layout === 'plain'
      ? { name: 'purge_type', title: `purge one type (${p.smallType}): collect its row addresses`, form: 'system',
        query: { text: PURGE_SQL.collectTids('sync_lookup_explain'), values: [[p.smallType], null] }, settings: { cursor_tuple_fraction: '1' } }
      : { name: 'purge_type', title: `purge one type (${p.smallType}): collect its ids`, form: 'system',
        query: { text: PURGE_SQL.collect('sync_lookup_explain'), values: [[p.smallType], null] }, settings: { cursor_tuple_fraction: '1' } },
    p.layout === 'plain'
      ? { name: 'purge_batch', title: `purge one type (${p.smallType}): delete one batch of ${p.sampleTids.length} rows by address`, form: 'system',
        query: { text: PURGE_SQL.deleteTids, values: [p.sampleTids, [p.smallType]] } }
      : { name: 'purge_batch', title: `purge one type (${p.smallType}): delete one batch of ${p.sampleIds.length} ids`, form: 'system',
        query: { text: PURGE_SQL.deleteBatch, values: [p.sampleIds, [p.smallType]] } },
    { name: 'rebuild_type', title: `rebuild one type: read ${modelName} from its source`, form: 'system',
      query: withModel((m) => selectLookupRows(m, { lookupTick: 'source' })),
      // A rebuild reads every source row of its model by definition.
      classify: { fullScanExpected: true }, ...of },
    { name: 'verify_type', title: `verify ${modelName}`, form: 'system',
      query: withModel((m) => verifyModelQuery(m, { builtBeforeTick: p.lastEndTick, ...features })),
      classify: { fullScanExpected: true }, ...of },
    { name: 'emptiness_exists', title: 'emptiness test by EXISTS', form: 'system', query: emptinessExistsQuery() },
    { name: 'initial_tick_maxima', title: 'initial-tick maxima (highest tick below the first build)', form: 'system', query: initialTickMaximaQuery() },
    { name: 'seed_purge', title: `the seed's purge DELETE … WHERE record_type IN (${p.smallTypes.join(', ')})`, form: 'seed',
      query: seedPurgeQuery(p.smallTypes) },
    { name: 'seed_emptiness_count', title: "the seed's emptiness test by count(*)", form: 'seed', query: emptinessCountQuery() },
  ];
  return qs;
}

/** The verdict on one statement. */
export interface QueryReport {
  name: string;
  title: string;
  form: 'system' | 'seed';
  sql: string;
  params: unknown[];
  /** ok / warn / fail from the plan; `skipped` when it could not be explained here; `error` when EXPLAIN failed. */
  verdict: Severity | 'skipped' | 'error';
  /** `verdict` with `error` counted as `fail`: what the report's verdict is made of. */
  status: Severity | 'skipped';
  /** Why it was skipped (which table or column of the source does not match the registry); null otherwise. */
  skippedReason: string | null;
  reason: string;
  fix: string | null;
  /** The plan in words. */
  plan: string | null;
  planningMs: number | null;
  executionMs: number | null;
  findings: PlanFinding[];
}

/** The result of `explain`. */
export interface ExplainReport {
  serverVersion: string;
  analyzed: boolean;
  /** The host whose conventions the models were read with (null for --sql). */
  host: string | null;
  /** Worst verdict over the system's queries (the seed's forms are shown for comparison only). */
  verdict: Severity;
  /** The representative parameters used (null for --sql). */
  params: (Omit<RepresentativeParams, 'sampleIds' | 'sampleTids'> & { sampleIdCount: number }) | null;
  /** How each registry model fits this database (null for --sql); a `fail` counts in the verdict, `skipped` does not. */
  models: ModelFit[] | null;
  queries: QueryReport[];
}

/** Options of {@link explainHotQueries} and {@link explainSql}. */
export interface ExplainRunOptions {
  /** Execute each statement (EXPLAIN ANALYZE, BUFFERS) inside a transaction that is rolled back. */
  analyze?: boolean;
  registry?: ModelRegistry;
  /** The deployment's conventions the models are read with; default: the recorded host, else detected (resolveHost). */
  host?: Host;
  /** Rows from which a table counts as large (see ClassifyOptions). */
  largeTableRows?: number;
  /** Per statement; default 0 (none) without analyze, 10 minutes with it. */
  statementTimeoutMs?: number;
  signal?: AbortSignal;
  onEvent?: (event: { type: 'query_done'; name: string; verdict: QueryReport['verdict'] }) => void;
}

async function explainOne(client: pg.ClientBase, q: HotQuery, options: ExplainRunOptions): Promise<QueryReport> {
  const report: QueryReport = {
    name: q.name, title: q.title, form: q.form, sql: q.query.text, params: q.query.values, verdict: 'skipped', status: 'skipped',
    skippedReason: q.skipped ?? null, reason: q.skipped ?? '', fix: null, plan: null, planningMs: null, executionMs: null, findings: [],
  };
  if (q.skipped) return report;
  try {
    const r = await explainStatement(client, q.query.text, q.query.values, { analyze: !!options.analyze, ...(q.settings ? { settings: q.settings } : {}) });
    const context = await readPlanContext(client, [r]);
    const v = await classifyPlan(r, context, {
      ...(options.largeTableRows !== undefined ? { largeTableRows: options.largeTableRows } : {}), ...q.classify,
    });
    return { ...report, verdict: v.verdict, status: v.verdict, skippedReason: null, reason: v.reason, fix: v.fix, plan: v.description,
      planningMs: r.planningMs, executionMs: r.executionMs, findings: v.findings };
  } catch (err) {
    const e = toSyncLookupError(err);
    if (e.code === 'cancelled') throw e;
    return { ...report, verdict: 'error', status: 'fail', reason: e.message };
  }
}

/**
 * EXPLAIN (and with `analyze`, runs and rolls back) every hot query with parameters read from the data,
 * and gives each a verdict. The report's verdict is `fail` when any of the system's queries fails.
 *
 * @example
 * const report = await explainHotQueries(db, { analyze: false });
 * for (const q of report.queries) console.log(q.name, q.verdict, q.reason);
 */
export async function explainHotQueries(db: Database, options: ExplainRunOptions = {}): Promise<ExplainReport> {
  await loadSqlParser();
  const timeout = options.statementTimeoutMs ?? (options.analyze ? 600_000 : 0);
  return withClient(db, { purpose: 'explain', statementTimeoutMs: timeout }, async (client) => {
    const { rows: [v] } = await client.query<{ v: string; lookup: boolean; flags: boolean; tombstones: boolean }>(
      `select current_setting('server_version') as v, to_regclass($1) is not null as lookup,
              exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = 'needs_rebuild' and not attisdropped) as flags,
              to_regclass($2) is not null as tombstones`, [LOOKUP_TABLE, TOMBSTONES_TABLE]);
    if (!v?.lookup) {
      throw new ConfigError('no_lookup_table', `table ${LOOKUP_TABLE} does not exist in this database (run sync-lookup migrate first)`);
    }
    // The models as the engine reads them on this deployment (key style, device-id join, …).
    const host = options.host ?? (await resolveHost(client)).host;
    const registry = applyHost(options.registry ?? builtinRegistry(), host);
    const features = { flags: v.flags, tombstones: host.description.deletes === 'tombstones' && v.tombstones };
    const params = await representativeParams(client, registry);
    const models = await checkModelFit(client, registry);
    const queries: QueryReport[] = [];
    for (const q of hotQueries(params, registry, new Map(models.map((m) => [m.name, m])), features)) {
      if (options.signal?.aborted) throw toSyncLookupError(options.signal.reason ?? new Error('cancelled'));
      const r = await explainOne(client, q, options);
      queries.push(r);
      options.onEvent?.({ type: 'query_done', name: r.name, verdict: r.verdict });
    }
    // Skipped queries and models do not count: the verdict comes from what can run here.
    const statuses = [...queries.filter((q) => q.form === 'system').map((q) => q.status), ...models.map((m) => m.status)];
    const verdict: Severity = statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'ok';
    // The sample ids are in the purge_batch query's parameters already; the summary keeps their count.
    const { sampleIds, sampleTids, ...shown } = params;
    return {
      serverVersion: v.v.split(' ')[0]!, analyzed: !!options.analyze, verdict, host: host.name,
      params: { ...shown, sampleIdCount: sampleIds.length + sampleTids.length }, models, queries,
    };
  });
}

/** Line and column (1-based) of a 1-based character position in `text`. */
export function lineColumn(text: string, position: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, position - 1)).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

/**
 * Checks that `sql` is one statement PostgreSQL can parse and returns its parse-tree kind (`SelectStmt`,
 * `DropStmt`, …); a ConfigError naming the line and column of the error otherwise.
 *
 * @example
 * await assertParses('selec 1') // throws: syntax error at or near "selec" at line 1, column 1
 */
export async function assertParses(sql: string, options: { prefixLength?: number; what?: string } = {}): Promise<string> {
  let stmts: { stmt?: Record<string, unknown> }[];
  try {
    stmts = (await parse(sql)).stmts ?? [];
  } catch (err) {
    // The position is reported in the text the user wrote, without any prefix we added to it.
    const prefix = options.prefixLength ?? 0;
    const text = sql.slice(prefix);
    const cursor = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    const position = typeof cursor === 'number' ? Math.max(1, cursor + 1 - prefix) : null;
    const lc = position === null ? null : lineColumn(text, position);
    throw new ConfigError('sql_syntax_error',
      `${err instanceof Error ? err.message : String(err)}${lc ? ` at line ${lc.line}, column ${lc.column}` : ''}`,
      { position, ...(lc ?? {}) });
  }
  if (stmts.length !== 1) throw new ConfigError('not_one_statement', `${options.what ?? '--sql'} must be exactly one statement, got ${stmts.length}`);
  return Object.keys(stmts[0]?.stmt ?? {})[0] ?? '';
}

/** The parse-tree kinds PostgreSQL's EXPLAIN accepts (SELECT and VALUES are both SelectStmt). */
const EXPLAINABLE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'ExecuteStmt', 'DeclareCursorStmt', 'CreateTableAsStmt']);

const USER_ERRORS = new Set<string>([SqlState.undefinedTable, SqlState.undefinedColumn, SqlState.syntaxError, '42883', '42P02', '42704', '42P18', '42725', '42804']);

/**
 * EXPLAIN of one statement given as text (no parameters), with the same verdicts as the hot queries.
 * A statement that does not parse, or names a missing table or column, is a ConfigError (exit 2)
 * with the line and column.
 *
 * @example
 * const r = await explainSql(db, "delete from sync_lookup where record_type = 'notes'");
 * r.verdict // 'fail' without a record_type-led index
 */
export async function explainSql(db: Database, sql: string, options: ExplainRunOptions = {}): Promise<ExplainReport> {
  const kind = await assertParses(sql);
  if (!EXPLAINABLE.has(kind)) {
    throw new ConfigError('not_explainable',
      `--sql is a valid statement (${sql.trim().split(/\s+/).slice(0, 2).join(' ').toUpperCase()} …), but not a query explain can run: ` +
      'EXPLAIN takes SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, EXECUTE, DECLARE or CREATE TABLE … AS', { kind });
  }
  await loadSqlParser();
  const timeout = options.statementTimeoutMs ?? (options.analyze ? 600_000 : 0);
  return withClient(db, { purpose: 'explain', statementTimeoutMs: timeout }, async (client) => {
    const { rows: [v] } = await client.query<{ v: string }>(`select current_setting('server_version') as v`);
    let r;
    try {
      r = await explainStatement(client, sql, [], { analyze: !!options.analyze });
    } catch (err) {
      const e = toSyncLookupError(err);
      const state = typeof e.details.sqlstate === 'string' ? e.details.sqlstate : '';
      if (USER_ERRORS.has(state)) {
        const position = typeof e.details.position === 'number' ? e.details.position : null;
        const lc = position === null ? null : lineColumn(sql, position);
        throw new ConfigError('invalid_statement', `${e.message}${lc ? ` at line ${lc.line}, column ${lc.column}` : ''}`,
          { ...e.details, ...(lc ?? {}) }, { cause: err });
      }
      throw e;
    }
    const context = await readPlanContext(client, [r]);
    const verdict = await classifyPlan(r, context, options.largeTableRows !== undefined ? { largeTableRows: options.largeTableRows } : {});
    const q: QueryReport = {
      name: 'sql', title: 'statement given with --sql', form: 'system', sql, params: [],
      verdict: verdict.verdict, status: verdict.verdict, skippedReason: null, reason: verdict.reason, fix: verdict.fix, plan: verdict.description,
      planningMs: r.planningMs, executionMs: r.executionMs, findings: verdict.findings,
    };
    return { serverVersion: v!.v.split(' ')[0]!, analyzed: !!options.analyze, verdict: verdict.verdict, host: null, params: null, models: null, queries: [q] };
  });
}
