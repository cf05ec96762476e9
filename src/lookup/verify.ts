import type pg from 'pg';
import { backendPid, cancellableQuery, withClient, type Database } from '../db/connection.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import type { ModelRegistry } from './registry.js';
import { assertSourceTables } from './source.js';
import {
  lastBuildTick, prepareLookupSession, releaseBuildLock, stagedRowsQuery, tryBuildLock, verifyModelQuery, type VerifyProblem,
} from './sql.js';

/** Kinds of problem `verify` reports: the per-model ones plus `unknown_type` (lookup rows of a type the registry lacks). */
export type VerifyProblemKind = VerifyProblem | 'unknown_type';

/** One problem's count and examples. */
export interface ProblemReport {
  count: number;
  /** Up to `examples` record ids (per model) or `record_type:record_id` (in the totals). */
  examples: string[];
}

/** One model's verification. */
export interface ModelVerifyReport {
  model: string;
  /** Source changes after the last build (not problems: the next build picks them up). */
  pending: number;
  problems: Partial<Record<VerifyProblemKind, ProblemReport>>;
  durationMs: number;
}

/** What `verifyLookup` found (the `--json` shape of `sync-lookup verify`). */
export interface VerifyResult {
  ok: boolean;
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
  signal?: AbortSignal;
  onProgress?: (event: VerifyEvent) => void;
}

function addExample(into: Partial<Record<VerifyProblemKind, ProblemReport>>, kind: VerifyProblemKind, count: number, examples: string[], max: number): void {
  const r = (into[kind] ??= { count: 0, examples: [] });
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
  const models = options.registry.select(options.types);
  const max = options.examples ?? 10;
  return withClient(db, { purpose: 'verify' }, async (client) => {
    await prepareLookupSession(client);
    await assertSourceTables(client, models);
    const pid = await backendPid(client);
    const last = await client.query<{ end_tick: string }>(lastBuildTick().text);
    const lastEndTick = last.rows[0] ? Number(last.rows[0].end_tick) : null;
    const dataType = await lookupDataType(client);
    const totals: VerifyResult['problems'] = {};
    const reports: ModelVerifyReport[] = [];
    for (const [index, model] of models.entries()) {
      options.onProgress?.({ type: 'verify_model', model: model.name, index, total: models.length });
      const t0 = Date.now();
      const q = verifyModelQuery(model, { builtBeforeTick: lastEndTick, examples: max, dataType });
      const { rows } = await cancellableQuery<{ problem: string; count: string; examples: string[] }>(db, client, pid, q.text, q.values, options.signal);
      const report: ModelVerifyReport = { model: model.name, pending: 0, problems: {}, durationMs: 0 };
      for (const r of rows) {
        if (r.problem === 'pending') { report.pending = Number(r.count); continue; }
        const kind = r.problem as VerifyProblem;
        addExample(report.problems, kind, Number(r.count), r.examples, max);
        addExample(totals, kind, Number(r.count), r.examples.map((id) => `${model.name}:${id}`), max);
      }
      report.durationMs = Date.now() - t0;
      reports.push(report);
    }

    let buildRunning = false;
    if (await tryBuildLock(client)) {
      try {
        const q = stagedRowsQuery({ types: models.map((m) => m.name), examples: max });
        const { rows } = await cancellableQuery<{ record_type: string; count: string; examples: string[] }>(db, client, pid, q.text, q.values, options.signal);
        for (const r of rows) {
          const report = reports.find((m) => m.model === r.record_type);
          if (report) addExample(report.problems, 'staged', Number(r.count), r.examples, max);
          addExample(totals, 'staged', Number(r.count), r.examples.map((id) => `${r.record_type}:${id}`), max);
        }
      } finally {
        await releaseBuildLock(client);
      }
    } else {
      buildRunning = true;
    }

    if (!options.types?.length) {
      for (const u of await unknownTypes(client, options.registry.names)) addExample(totals, 'unknown_type', u.count, [`${u.type}:*`], max);
    }
    return {
      ok: Object.keys(totals).length === 0, lastEndTick, buildRunning, problems: totals, models: reports, durationMs: Date.now() - started,
    };
  });
}

async function lookupDataType(client: pg.ClientBase): Promise<'json' | 'jsonb'> {
  const { rows } = await client.query<{ t: string }>(
    `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'data'`, [LOOKUP_TABLE]);
  return rows[0]?.t === 'jsonb' ? 'jsonb' : 'json';
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
