import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { LOOKUP_TABLE, STAGED_TICK, TICKS_TABLE } from '../schema/sync-lookup.js';
import type { ModelDefinition } from './registry.js';
import { TOMBSTONES_TABLE } from './source.js';

/*
 * The lookup engine's hot queries, as builders returning `{ text, values }`. build, pull and verify run
 * exactly these; maintenance (rebuild) and diagnostics (EXPLAIN) reuse them verbatim. Values are always
 * `$n` parameters; identifiers go through quoteIdent; SQL expressions come from the model registry
 * (validated there with PostgreSQL's parser as single expressions).
 */

/** A statement and its parameters, ready for `client.query(q.text, q.values)` or `EXPLAIN`. */
export interface SqlQuery {
  text: string;
  values: unknown[];
}

/** Columns of `sync_lookup` the engine writes, in insert order. */
export const LOOKUP_WRITE_COLUMNS = [
  'record_id', 'record_type', 'data', 'updated_at_sync_tick', 'patient_id', 'encounter_id', 'facility_id',
  'is_lab_request', 'is_deleted', 'updated_at_by_field_sum', 'pushed_by_device_id',
] as const;

/** Key of the session-level advisory lock every build (and anything that publishes ticks) holds. */
export const BUILD_LOCK_KEY = 'sync-lookup:build';

/**
 * Takes the build lock (session level) without waiting; false when another build holds it.
 * Whoever writes lookup rows at a new tick (build, rebuild with repull) must hold it, so published end
 * ticks only grow and a pull's `since` never skips rows published later at a lower tick.
 *
 * @example
 * if (!(await tryBuildLock(client))) throw new LockNotAcquiredError('build_running', 'a build is running');
 */
export async function tryBuildLock(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [BUILD_LOCK_KEY]);
  return !!rows[0]?.ok;
}

/** Releases the build lock taken by `tryBuildLock` on the same session. */
export async function releaseBuildLock(client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [BUILD_LOCK_KEY]);
}

/**
 * Session settings every lookup writer and verifier uses, so `data` json is byte-identical whoever
 * builds it (timestamptz values render in the session's TimeZone).
 *
 * @example
 * await prepareLookupSession(client);
 */
export async function prepareLookupSession(client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, YMD', false)`);
}

/** Appends values and hands out `$n` placeholders. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** A keyset position in a source table: rows after `(tick, id)` in `(updated_at_sync_tick, id)` order. */
export interface SourceCursor {
  tick: string;
  id: string;
}

/** Which source rows of a model `selectLookupRows` reads, and the tick the lookup rows get. */
export interface SelectLookupRowsOptions {
  /**
   * `updated_at_sync_tick` of the produced lookup rows: a number (STAGED_TICK for a build, a fresh tick for
   * a rebuild with repull) or `'source'` to keep each source row's own tick (rebuild without repull).
   */
  lookupTick: number | 'source';
  /** Only source rows with `updated_at_sync_tick > sinceTick`. */
  sinceTick?: number;
  /** Only source rows with `updated_at_sync_tick < beforeTick`. */
  beforeTick?: number;
  /** Only rows after this keyset position (ordering by `(updated_at_sync_tick, id)`, the tick index). */
  after?: SourceCursor;
  /** At most this many rows, in `(updated_at_sync_tick, id)` order. */
  limit?: number;
  /**
   * Only these records (lookup `record_id`s). With `idType` (the source `id` column's type, when the model's
   * record id is its plain `id` and every value casts to it) the source's primary key finds them.
   */
  recordIds?: { ids: readonly string[]; idType?: string };
}

function recordIdsCondition(model: ModelDefinition, r: NonNullable<SelectLookupRowsOptions['recordIds']>, p: Params): string {
  if (r.idType && model.recordId === undefined) return `s.id = ANY(${p.add([...r.ids])}::${r.idType}[])`;
  return `(${model.recordId ?? 's.id'})::text = ANY(${p.add([...r.ids])}::text[])`;
}

function fragment(sql: string | null, cast: string): string {
  return sql === null ? `NULL::${cast}` : `(${sql})::${cast}`;
}

/** `registration_status` → `registrationStatus` (a Sequelize model's attribute for an underscored column). */
export function camelCase(name: string): string {
  return name.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** One attribute of a lookup row's `data`: its key and the SQL that computes it. */
export interface DataAttribute {
  key: string;
  sql: string;
}

/**
 * The attributes of a model's `data`, in order: `id`, the timestamps and the model's columns, less
 * `excludeFromData`, keys spelled in `keyStyle`; then `computed`. The key set is what the shape guard compares.
 *
 * @example
 * dataAttributes({ ...notes, keyStyle: 'camelCase', excludeFromData: ['created_at', 'updated_at', 'deleted_at'] })
 * // [{ key: 'id', sql: 's."id"' }, { key: 'encounterId', sql: 's."encounter_id"' }, …]
 */
export function dataAttributes(model: ModelDefinition): DataAttribute[] {
  const excluded = new Set(model.excludeFromData ?? []);
  const key = (name: string) => (model.keyStyle === 'camelCase' ? camelCase(name) : name);
  return [
    ...['id', 'created_at', 'updated_at', 'deleted_at', ...model.columns.map((c) => c.name)]
      .filter((name) => !excluded.has(name)).map((name) => ({ key: key(name), sql: `s.${quoteIdent(name)}` })),
    ...(model.computed ?? []).map((c) => ({ key: c.name, sql: `(${c.sql})` })),
  ];
}

/**
 * The SQL of a model's `data` json. `row_to_json` of a one-row sub-select by default: measured 40 % faster
 * than json_build_object on the initial build (json_build_object resolves the type of every variadic argument
 * per row), no 100-argument limit, compact output. `json_build_object` where the host's own builder uses it,
 * so the text of our rows and the host's is the same.
 */
function dataSql(model: ModelDefinition): string {
  const attrs = dataAttributes(model);
  if (model.dataBuilder === 'json_build_object') {
    return `json_build_object(${attrs.map((a) => `${quoteLiteral(a.key)}, ${a.sql}`).join(', ')})`;
  }
  return `(SELECT row_to_json(d) FROM (SELECT ${attrs.map((a) => `${a.sql} AS ${quoteIdent(a.key)}`).join(', ')}) AS d)`;
}

/** An optional SQL fragment of a model: the builtin default when undefined, NULL when null. */
function optionalFragment(sql: string | null | undefined, builtin: string, cast: string): string {
  return sql === undefined ? builtin : fragment(sql, cast);
}

function selectLookupRowsWith(model: ModelDefinition, options: SelectLookupRowsOptions, p: Params): string {
  const tick = options.lookupTick === 'source' ? 's.updated_at_sync_tick' : `${p.add(options.lookupTick)}::bigint`;
  const select = [
    `(${model.recordId ?? 's.id'})::text AS record_id`,
    `${p.add(model.name)}::varchar(255) AS record_type`,
    `${dataSql(model)} AS data`,
    `${tick} AS updated_at_sync_tick`,
    `${fragment(model.patientId, 'varchar(255)')} AS patient_id`,
    `${fragment(model.encounterId, 'varchar(255)')} AS encounter_id`,
    `${fragment(model.facilityId, 'varchar(255)')} AS facility_id`,
    `coalesce((${model.isLabRequest})::boolean, false) AS is_lab_request`,
    `s.deleted_at IS NOT NULL AS is_deleted`,
    `${optionalFragment(model.updatedAtByFieldSum, 'NULL::bigint', 'bigint')} AS updated_at_by_field_sum`,
    `${optionalFragment(model.pushedByDeviceId, 's.pushed_by_device_id', 'text')} AS pushed_by_device_id`,
    `s.updated_at_sync_tick AS source_tick`,
    `s.id AS source_id`,
  ];
  const joins = (model.joins ?? []).map((j) => `LEFT JOIN ${quoteIdent(j.table)} AS ${quoteIdent(j.alias)} ON ${j.on}`);
  const where: string[] = model.filter ? [`(${model.filter})`] : [];
  if (options.recordIds) where.push(recordIdsCondition(model, options.recordIds, p));
  if (options.sinceTick !== undefined) where.push(`s.updated_at_sync_tick > ${p.add(options.sinceTick)}::bigint`);
  if (options.beforeTick !== undefined) where.push(`s.updated_at_sync_tick < ${p.add(options.beforeTick)}::bigint`);
  if (options.after) where.push(`(s.updated_at_sync_tick, s.id) > (${p.add(options.after.tick)}::bigint, ${p.add(options.after.id)})`);
  const ordered = options.limit !== undefined || options.after !== undefined;
  return [
    `SELECT ${select.join(',\n       ')}`,
    `  FROM ${quoteIdent(model.name)} AS s`,
    ...joins.map((j) => `  ${j}`),
    ...(where.length ? [` WHERE ${where.join('\n   AND ')}`] : []),
    ...(ordered ? [` ORDER BY s.updated_at_sync_tick, s.id`] : []),
    ...(options.limit !== undefined ? [` LIMIT ${p.add(options.limit)}::bigint`] : []),
  ].join('\n');
}

/**
 * "Select lookup rows from the source" for one model: each source row as the lookup row it should be
 * (`record_id`, `record_type`, `data` json, tick, filter columns, `is_deleted`, …) plus `source_tick` and
 * `source_id` for cursors. Without options besides `lookupTick` it covers the whole model (a rebuild).
 *
 * @example
 * const q = selectLookupRows(registry.get('notes'), { lookupTick: 'source' });
 * const { rows } = await client.query(q.text, q.values);
 */
export function selectLookupRows(model: ModelDefinition, options: SelectLookupRowsOptions): SqlQuery {
  const p = new Params();
  return { text: selectLookupRowsWith(model, options, p), values: p.values };
}

/**
 * The build upsert: writes the rows `selectLookupRows(model, options)` selects into `sync_lookup`,
 * `INSERT … ON CONFLICT (record_id, record_type) DO UPDATE`, and returns one row
 * `{ rows, last_tick, last_id }` (the keyset position of the last source row read; null when none).
 * With `lookupTick: STAGED_TICK` and a `(sinceTick, beforeTick, after, limit)` window it is one chunk
 * of an incremental build.
 *
 * @example
 * const q = upsertLookupRows(model, { lookupTick: STAGED_TICK, sinceTick: since, beforeTick: end, limit: 20000 });
 * const { rows: [r] } = await client.query(q.text, q.values); // r.rows, r.last_tick, r.last_id
 */
export function upsertLookupRows(model: ModelDefinition, options: SelectLookupRowsOptions): SqlQuery {
  const p = new Params();
  const select = selectLookupRowsWith(model, options, p);
  const cols = LOOKUP_WRITE_COLUMNS.join(', ');
  const updates = LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type')
    .map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  const text = `WITH src AS MATERIALIZED (
${select}
), up AS (
  INSERT INTO ${LOOKUP_TABLE} (${cols})
  SELECT ${cols} FROM src
  ON CONFLICT (record_id, record_type) DO UPDATE SET ${updates}
  RETURNING 1
)
SELECT (SELECT count(*) FROM up)::int AS rows, last.source_tick::text AS last_tick, last.source_id::text AS last_id
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT source_tick, source_id FROM src ORDER BY source_tick DESC, source_id DESC LIMIT 1) AS last ON true`;
  return { text, values: p.values };
}

/**
 * Plain insert of a whole model at one tick, for an initial load into an empty lookup (no conflict
 * handling, no cursor: one set-based statement).
 *
 * @example
 * const q = insertLookupRows(model, { lookupTick: endTick });
 */
export function insertLookupRows(model: ModelDefinition, options: SelectLookupRowsOptions): SqlQuery {
  const p = new Params();
  const select = selectLookupRowsWith(model, options, p);
  const cols = LOOKUP_WRITE_COLUMNS.join(', ');
  return { text: `INSERT INTO ${LOOKUP_TABLE} (${cols})\nSELECT ${cols} FROM (\n${select}\n) AS src`, values: p.values };
}

/**
 * Insert of several whole models in one statement, in source-tick order and at each row's source tick:
 * the heap then holds record types interleaved, as a lookup grown by incremental builds does. Returns
 * `{ record_type, rows }` per type. For the generator's initial load into an empty lookup.
 *
 * @example
 * const q = insertLookupRowsInTickOrder(registry.models, { beforeTick: endTick });
 */
export function insertLookupRowsInTickOrder(models: readonly ModelDefinition[], options: { beforeTick: number }): SqlQuery {
  const p = new Params();
  const selects = models.map((m) => `(${selectLookupRowsWith(m, { lookupTick: 'source', beforeTick: options.beforeTick }, p)})`);
  const cols = LOOKUP_WRITE_COLUMNS.join(', ');
  const text = `WITH ins AS (
  INSERT INTO ${LOOKUP_TABLE} (${cols})
  SELECT ${cols} FROM (
${selects.join('\nUNION ALL\n')}
  ) AS src
  ORDER BY source_tick, record_id
  RETURNING record_type
)
SELECT record_type::text AS record_type, count(*)::int AS rows FROM ins GROUP BY record_type`;
  return { text, values: p.values };
}

/**
 * Removes the lookup rows of hard-deleted source rows whose tombstones lie in `(sinceTick, beforeTick)`,
 * through the unique index `(record_id, record_type)`; never scans the lookup table.
 *
 * @example
 * const q = deleteTombstonedRows({ types: ['notes'], sinceTick: 10, beforeTick: 20 });
 */
export function deleteTombstonedRows(options: { types: string[]; sinceTick: number; beforeTick: number }): SqlQuery {
  return {
    text: `DELETE FROM ${LOOKUP_TABLE} AS l
 USING (SELECT DISTINCT record_type, record_id FROM ${TOMBSTONES_TABLE}
         WHERE deleted_at_sync_tick > $1::bigint AND deleted_at_sync_tick < $2::bigint AND record_type = ANY($3::text[])) AS t
 WHERE l.record_id = t.record_id AND l.record_type = t.record_type`,
    values: [options.sinceTick, options.beforeTick, options.types],
  };
}

/**
 * Deletes tombstones a completed build has applied (ticks below `beforeTick`).
 *
 * @example
 * const q = pruneTombstones({ types, beforeTick: endTick });
 */
export function pruneTombstones(options: { types: string[]; beforeTick: number }): SqlQuery {
  return {
    text: `DELETE FROM ${TOMBSTONES_TABLE} WHERE deleted_at_sync_tick < $1::bigint AND record_type = ANY($2::text[])`,
    values: [options.beforeTick, options.types],
  };
}

/**
 * The publish step of a build: moves every staged row (tick -2) to `endTick`. Served by the tick index.
 *
 * @example
 * const q = publishStagedRows(endTick);
 */
export function publishStagedRows(endTick: number): SqlQuery {
  return {
    text: `UPDATE ${LOOKUP_TABLE} SET updated_at_sync_tick = $1::bigint WHERE updated_at_sync_tick = $2::bigint`,
    values: [endTick, STAGED_TICK],
  };
}

/**
 * Records a completed build in `sync_lookup_ticks`: it covered source ticks in `(sourceStartTick, lookupEndTick)`
 * and published its rows at `lookupEndTick`. The first build records `sourceStartTick = -1`.
 *
 * @example
 * const q = recordBuildTick({ sourceStartTick: -1, lookupEndTick: endTick });
 */
export function recordBuildTick(options: { sourceStartTick: number; lookupEndTick: number }): SqlQuery {
  return {
    text: `INSERT INTO ${TICKS_TABLE} (source_start_tick, lookup_end_tick) VALUES ($1::bigint, $2::bigint)`,
    values: [options.sourceStartTick, options.lookupEndTick],
  };
}

/**
 * The last completed build's end tick (backward scan of the ticks table's primary key), or null before the first build.
 *
 * @example
 * const { rows } = await client.query(lastBuildTick().text);
 */
export function lastBuildTick(): SqlQuery {
  return { text: `SELECT lookup_end_tick::text AS end_tick FROM ${TICKS_TABLE} ORDER BY lookup_end_tick DESC LIMIT 1`, values: [] };
}

/** Filters of a pull (SYSTEM.md's outgoing snapshot). */
export interface PullQueryOptions {
  /** Rows with `updated_at_sync_tick > sinceTick` (a previous pull's `untilTick`, or -1 for everything). */
  sinceTick: number;
  /** Record types the puller syncs. */
  types: readonly string[];
  /** Patients the puller syncs; rows without a patient always qualify. Omitted: every patient. */
  patients?: readonly string[];
  /** Facilities of the puller; rows without a facility always qualify. Omitted: every facility. */
  facilities?: readonly string[];
  /** Skip rows this device pushed itself. */
  deviceId?: string;
  /** Keyset cursor: rows with `id > afterId` (a bigint as string or number). */
  afterId?: string | number;
  /** Rows per chunk. */
  limit: number;
}

/** Columns a pull returns, in order. */
export const PULL_COLUMNS = ['id', 'record_type', 'record_id', 'is_deleted', 'updated_at_sync_tick', 'patient_id', 'encounter_id', 'facility_id', 'data'] as const;

/**
 * One chunk of the outgoing pull: SYSTEM.md's snapshot query, ordered by `id`, read by an `id` cursor.
 * `updated_at_sync_tick > since` (since >= -1) excludes staged rows (-2) by construction.
 *
 * @example
 * const q = pullChunkQuery({ sinceTick: 120, types: ['notes'], patients: ['p1'], limit: 1000 });
 */
export function pullChunkQuery(options: PullQueryOptions): SqlQuery {
  const p = new Params();
  const where = [
    `updated_at_sync_tick > ${p.add(options.sinceTick)}::bigint`,
    `data IS NOT NULL`,
    `record_type = ANY(${p.add([...options.types])}::text[])`,
  ];
  if (options.patients) where.push(`(patient_id IS NULL OR patient_id = ANY(${p.add([...options.patients])}::text[]))`);
  if (options.facilities) where.push(`(facility_id IS NULL OR facility_id = ANY(${p.add([...options.facilities])}::text[]))`);
  if (options.deviceId !== undefined) where.push(`pushed_by_device_id IS DISTINCT FROM ${p.add(options.deviceId)}::text`);
  if (options.afterId !== undefined) where.push(`id > ${p.add(String(options.afterId))}::bigint`);
  const text = `SELECT ${PULL_COLUMNS.join(', ')}
  FROM ${LOOKUP_TABLE}
 WHERE ${where.join('\n   AND ')}
 ORDER BY id
 LIMIT ${p.add(options.limit)}::bigint`;
  return { text, values: p.values };
}

/** Kinds of inconsistency `verify` reports. */
export const VERIFY_PROBLEMS = ['missing', 'extra', 'data_differs', 'filters_differ', 'tick_behind_source', 'staged'] as const;
export type VerifyProblem = (typeof VERIFY_PROBLEMS)[number];

/** Options of `verifyModelQuery`. */
export interface VerifyQueryOptions {
  /**
   * The last build's end tick: source rows with a tick at or above it, and tombstones at or above it, changed
   * after that build and are counted as `pending`, not as problems. Null before the first build.
   */
  builtBeforeTick: number | null;
  /** Examples per problem. Default 10. */
  examples?: number;
  /** `format_type` of `sync_lookup.data` (json or jsonb); jsonb is compared after normalising both sides. */
  dataType?: 'json' | 'jsonb';
}

/**
 * Compares one model's source rows with its lookup rows in one pass: a hash full join of the expected
 * rows (from `selectLookupRows`) and `sync_lookup WHERE record_type = $k` (the record_type-led index),
 * grouped by problem. Rows `{ problem, count, examples }`; `problem = 'pending'` counts changes after the last build.
 *
 * @example
 * const q = verifyModelQuery(model, { builtBeforeTick: 1234 });
 */
export function verifyModelQuery(model: ModelDefinition, options: VerifyQueryOptions): SqlQuery {
  const p = new Params();
  const expected = selectLookupRowsWith(model, { lookupTick: 'source' }, p);
  const type = p.add(model.name);
  const built = p.add(options.builtBeforeTick);
  const examples = p.add(options.examples ?? 10);
  const digest = (col: string) => options.dataType === 'jsonb' ? `md5(${col}::jsonb::text)` : `md5(${col}::text)`;
  const text = `WITH e AS (
  SELECT record_id, ${digest('data')} AS data_md5, patient_id::text AS patient_id, encounter_id::text AS encounter_id,
         facility_id::text AS facility_id, is_lab_request, is_deleted, pushed_by_device_id::text AS pushed_by_device_id, source_tick
    FROM (
${expected}
    ) AS x
), a AS (
  SELECT record_id, ${digest('data')} AS data_md5, patient_id::text AS patient_id, encounter_id::text AS encounter_id,
         facility_id::text AS facility_id, is_lab_request, is_deleted, pushed_by_device_id::text AS pushed_by_device_id,
         updated_at_sync_tick AS tick
    FROM ${LOOKUP_TABLE}
   WHERE record_type = ${type}::text
), d AS (
  SELECT coalesce(e.record_id, a.record_id) AS record_id,
         CASE
           WHEN e.source_tick >= ${built}::bigint THEN 'pending'
           WHEN a.record_id IS NULL THEN 'missing'
           WHEN e.record_id IS NULL THEN
             CASE WHEN EXISTS (SELECT 1 FROM ${TOMBSTONES_TABLE} AS t
                                WHERE t.record_type = ${type}::text AND t.record_id = a.record_id
                                  AND t.deleted_at_sync_tick >= ${built}::bigint)
                  THEN 'pending' ELSE 'extra' END
           WHEN a.tick = ${p.add(STAGED_TICK)}::bigint THEN NULL
           WHEN a.data_md5 IS DISTINCT FROM e.data_md5 THEN 'data_differs'
           WHEN (a.patient_id, a.encounter_id, a.facility_id, a.is_lab_request, a.is_deleted, a.pushed_by_device_id)
                IS DISTINCT FROM (e.patient_id, e.encounter_id, e.facility_id, e.is_lab_request, e.is_deleted, e.pushed_by_device_id)
             THEN 'filters_differ'
           WHEN a.tick < e.source_tick THEN 'tick_behind_source'
         END AS problem
    FROM e FULL JOIN a ON a.record_id = e.record_id
)
SELECT problem, count(*)::bigint::text AS count, (array_agg(record_id ORDER BY record_id))[1:${examples}::int] AS examples
  FROM d
 WHERE problem IS NOT NULL
 GROUP BY problem`;
  return { text, values: p.values };
}

/**
 * Staged rows (tick -2) of the given types: counts per type and examples, through the tick index.
 * Outside a running build there must be none.
 *
 * @example
 * const q = stagedRowsQuery({ types: ['notes'] });
 */
export function stagedRowsQuery(options: { types: readonly string[]; examples?: number }): SqlQuery {
  return {
    text: `SELECT record_type, count(*)::bigint::text AS count, (array_agg(record_id ORDER BY record_id))[1:$3::int] AS examples
  FROM ${LOOKUP_TABLE}
 WHERE updated_at_sync_tick = $1::bigint AND record_type = ANY($2::text[])
 GROUP BY record_type`,
    values: [STAGED_TICK, [...options.types], options.examples ?? 10],
  };
}
