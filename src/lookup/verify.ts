import type pg from 'pg';
import type { Database } from '../db/connection.js';
import { withSession, type Session } from '../db/session.js';
import { quoteIdent } from '../db/quote.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import { hasColumn, resolveTable } from '../db/catalog.js';
import { TOMBSTONES_TABLE } from '../schema/tool.js';
import { lastPublishedTick } from './guards.js';
import { applyHost, type Host } from './host.js';
import { resolveHost } from './hosts/index.js';
import type { ModelDefinition, ModelRegistry } from './registry.js';
import { assertSourceTables } from './source.js';
import {
  prepareLookupSession, releaseBuildLock, stagedRowsQuery, tryBuildLock, verifyColumnsQuery, verifyModelQuery, type VerifyProblem, type VerifyQueryOptions,
} from './sql.js';

/**
 * Kinds of problem `verify` reports: the per-model ones, `unknown_type` (lookup rows of a type the registry
 * lacks) and `ahead_of_clock` (source rows stamped with a tick the clock has not reached: the clock went back,
 * so no build will pick them up; they are missing from the lookup whatever the pending count says).
 */
export type VerifyProblemKind = VerifyProblem | 'unknown_type' | 'ahead_of_clock';

/** How many of a sample of a model's differing rows differ in one column (`data.<key>` for a key of `data`). */
export interface ColumnDifference {
  column: string;
  rows: number;
}

/**
 * The command that repairs each kind of difference (`<types>` stands for the affected record types). The tests
 * of rebuild check that it repairs every kind it is named for.
 */
export const REPAIRS: Record<VerifyProblemKind, string> = {
  missing: 'sync-lookup rebuild <types>',
  extra: 'sync-lookup rebuild <types>',
  data_differs: 'sync-lookup rebuild <types> (check the registry first: a wrong registry makes every row differ)',
  filters_differ: 'sync-lookup rebuild <types> (check the registry first)',
  tick_behind_source: 'sync-lookup rebuild <types> (republishes those rows at a fresh tick)',
  staged: 'sync-lookup build (its publish moves rows left staged by an interrupted build)',
  unknown_type: 'sync-lookup purge <types> (a removed model), or add the model to the registry',
  ahead_of_clock: 'move the sync clock past the highest source tick (it went back), then sync-lookup build',
};

/** One problem's count and examples. */
export interface ProblemReport {
  /** The command that repairs it (see REPAIRS). */
  repair: string;
  count: number;
  /** Up to `examples` record ids (per model) or `record_type:record_id` (in the totals). */
  examples: string[];
}

/** One model's verification. */
export interface ModelVerifyReport {
  model: string;
  /** Source changes after the last build (not problems: the next build picks them up). */
  pending: number;
  /** Rows flagged `needs_rebuild` (not problems: the next build's flag pass, or a rebuild, re-derives them). */
  pendingRebuild: number;
  problems: Partial<Record<VerifyProblemKind, ProblemReport>>;
  /** For `data_differs` and `filters_differ`: which columns differ, over a sample of up to 200 of those rows. */
  differences: ColumnDifference[];
  durationMs: number;
}

/** What `verifyLookup` found (the `--json` shape of `sync-lookup verify`). */
export interface VerifyResult {
  ok: boolean;
  /** The host whose conventions the expected rows follow. */
  host: string;
  /** The last build's end tick; source changes at or after it are `pending`. Null before the first build. */
  lastEndTick: number | null;
  /** A build held the build lock, so staged rows were not checked (they are legitimately there). */
  buildRunning: boolean;
  /** Totals per problem with up to `examples` `record_type:record_id` examples. */
  problems: Partial<Record<VerifyProblemKind, ProblemReport>>;
  models: ModelVerifyReport[];
  durationMs: number;
}

/** Progress of `verifyLookup`. */
export interface VerifyEvent { type: 'verify_model'; model: string; index: number; total: number }

/** Options of `verifyLookup`. */
export interface VerifyOptions {
  registry: ModelRegistry;
  /** Models to check (validated). Default: all, plus a check for record types the registry does not know. */
  types?: readonly string[];
  /** Examples per problem. Default 10. */
  examples?: number;
  /** The deployment's conventions; default: the host recorded in the database, else detected. */
  host?: Host;
  signal?: AbortSignal;
  onProgress?: (event: VerifyEvent) => void;
}

function addExample(into: Partial<Record<VerifyProblemKind, ProblemReport>>, kind: VerifyProblemKind, count: number, examples: string[], max: number): void {
  const r = (into[kind] ??= { repair: REPAIRS[kind], count: 0, examples: [] });
  r.count += count;
  for (const e of examples) if (r.examples.length < max) r.examples.push(e);
}

/**
 * Checks that `sync_lookup` matches its sources: per model one statement (hash full join of the expected
 * rows and the model's lookup rows), then staged rows left behind (skipped while a build runs) and, without
 * `types`, lookup rows of types the registry does not know. `ok` is false when any problem was found.
 *
 * @example
 * const r = await verifyLookup(db, { registry: builtinRegistry() });
 * if (!r.ok) console.log(r.problems);
 */
export async function verifyLookup(db: Database, options: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  options.registry.select(options.types); // unknown names: ConfigError before connecting
  const max = options.examples ?? 10;
  return withSession(db, { purpose: 'verify' }, async (session) => {
    const { client } = session;
    await prepareLookupSession(client);
    const host = options.host ?? (await resolveHost(client)).host;
    await host.assertReady(client);
    const models = applyHost(options.registry, host).select(options.types);
    await assertSourceTables(client, models);
    const lastEndTick = await lastPublishedTick(client);
    const since = await host.since(client);
    const queryOptions: VerifyQueryOptions = {
      builtBeforeTick: since === null ? null : since + 1, examples: max,
      tombstones: host.description.deletes === 'tombstones' && !!(await resolveTable(client, TOMBSTONES_TABLE)),
      flags: await hasColumn(client, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild'),
    };
    const totals: VerifyResult['problems'] = {};
    const reports: ModelVerifyReport[] = [];
    for (const [index, model] of models.entries()) {
      options.onProgress?.({ type: 'verify_model', model: model.name, index, total: models.length });
      const report = await verifyModel(session, options.signal, model, queryOptions);
      if (report.pending > 0) await reportAheadOfClock(client, model.name, await host.currentTick(client), report, max);
      for (const [kind, p] of Object.entries(report.problems)) {
        addExample(totals, kind as VerifyProblemKind, p.count, p.examples.map((id) => `${model.name}:${id}`), max);
      }
      reports.push(report);
    }

    // Staged rows are legitimate while a build runs: ours (the build lock) or the host's own builder.
    let buildRunning = false;
    if (await tryBuildLock(client)) {
      try {
        buildRunning = (await host.foreignBuilder(client)) !== null;
        if (!buildRunning) await reportStaged();
      } finally {
        await releaseBuildLock(client);
      }
    } else {
      buildRunning = true;
    }
    async function reportStaged() {
        const q = stagedRowsQuery({ types: models.map((m) => m.name), examples: max });
        const { rows } = await session.query<{ record_type: string; count: string; examples: string[] }>(q.text, q.values, options.signal);
        for (const r of rows) {
          const report = reports.find((m) => m.model === r.record_type);
          if (report) addExample(report.problems, 'staged', Number(r.count), r.examples, max);
          addExample(totals, 'staged', Number(r.count), r.examples.map((id) => `${r.record_type}:${id}`), max);
        }
    }

    if (!options.types?.length) {
      for (const u of await unknownTypes(client, options.registry.names)) addExample(totals, 'unknown_type', u.count, [`${u.type}:*`], max);
    }
    return {
      ok: Object.keys(totals).length === 0, host: host.name, lastEndTick, buildRunning, problems: totals, models: reports, durationMs: Date.now() - started,
    };
  });
}

/** One model's comparison, and for differing rows the columns that differ (over a sample). */
async function verifyModel(
  session: Session, signal: AbortSignal | undefined, model: ModelDefinition, o: VerifyQueryOptions,
): Promise<ModelVerifyReport> {
  const t0 = Date.now();
  const q = verifyModelQuery(model, o);
  const { rows } = await session.query<{ problem: string; count: string; examples: string[]; sample: string[] }>(q.text, q.values, signal);
  const report: ModelVerifyReport = { model: model.name, pending: 0, pendingRebuild: 0, problems: {}, differences: [], durationMs: 0 };
  const differing: string[] = [];
  for (const r of rows) {
    if (r.problem === 'pending') { report.pending = Number(r.count); continue; }
    if (r.problem === 'pending_rebuild') { report.pendingRebuild = Number(r.count); continue; }
    addExample(report.problems, r.problem as VerifyProblem, Number(r.count), r.examples, o.examples ?? 10);
    if (r.problem === 'data_differs' || r.problem === 'filters_differ') differing.push(...r.sample);
  }
  if (differing.length) {
    const c = verifyColumnsQuery(model, differing);
    report.differences = (await session.query<ColumnDifference>(c.text, c.values, signal)).rows;
  }
  report.durationMs = Date.now() - t0;
  return report;
}

/**
 * Moves the pending source rows stamped after the clock's current tick (through the source's tick index)
 * to the `ahead_of_clock` problem: every write is stamped with the current tick, so such rows mean the clock
 * went back, and no build covers them until it passes them again.
 */
async function reportAheadOfClock(client: pg.ClientBase, table: string, clockTick: number, report: ModelVerifyReport, max: number): Promise<void> {
  const t = quoteIdent(table);
  const { rows: [r] } = await client.query<{ count: string; examples: string[] }>(
    `SELECT (SELECT count(*) FROM ${t} WHERE updated_at_sync_tick > $1::bigint)::text AS count,
            ARRAY(SELECT id::text FROM ${t} WHERE updated_at_sync_tick > $1::bigint ORDER BY updated_at_sync_tick, id LIMIT $2) AS examples`,
    [clockTick, max]);
  const count = Number(r?.count ?? 0);
  if (!count) return;
  report.pending = Math.max(0, report.pending - count);
  addExample(report.problems, 'ahead_of_clock', count, r?.examples ?? [], max);
}

/**
 * Record types present in the lookup that the registry does not list. Walks the distinct values of a
 * record_type-led index with a recursive skip scan (one index probe per distinct type); without such an
 * index it would read the whole table, so it then reports nothing.
 */
async function unknownTypes(client: pg.ClientBase, known: string[]): Promise<{ type: string; count: number }[]> {
  const { rows: idx } = await client.query(
    `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = $1::regclass AND a.attname = 'record_type' AND i.indisvalid AND i.indpred IS NULL LIMIT 1`, [LOOKUP_TABLE]);
  if (!idx.length) return [];
  const { rows } = await client.query<{ type: string; count: string }>(
    `WITH RECURSIVE t(rt) AS (
       (SELECT record_type FROM ${LOOKUP_TABLE} ORDER BY record_type LIMIT 1)
       UNION ALL
       SELECT (SELECT record_type FROM ${LOOKUP_TABLE} WHERE record_type > t.rt ORDER BY record_type LIMIT 1) FROM t WHERE t.rt IS NOT NULL
     )
     SELECT rt AS type, (SELECT count(*) FROM ${LOOKUP_TABLE} l WHERE l.record_type = t.rt)::text AS count
       FROM t WHERE rt IS NOT NULL AND NOT (rt = ANY($1::text[]))`, [known]);
  return rows.map((r) => ({ type: r.type, count: Number(r.count) }));
}
