import type pg from 'pg';
import { advisoryUnlock, tryAdvisoryLock } from '../db/advisory.js';
import { SqlState, isPgError } from '../db/errors.js';
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
  return tryAdvisoryLock(client, BUILD_LOCK_KEY);
}

/**
 * Takes the build lock, waiting at most `waitMs` (`lock_timeout` on `pg_advisory_lock`); false when another
 * build (or a rebuild batch) still holds it then. A waiting build is granted the lock the moment the holder
 * releases it, ahead of the holder's next try: a long rebuild or resync, which takes the lock per batch, makes
 * a build wait at most about one batch instead of starving it.
 *
 * @example
 * if (!(await waitBuildLock(client, 30_000))) throw new LockNotAcquiredError('build_running', '…');
 */
export async function waitBuildLock(client: pg.ClientBase, waitMs: number): Promise<boolean> {
  const { rows: [saved] } = await client.query<{ lt: string }>(`SELECT current_setting('lock_timeout') AS lt`);
  await client.query(`SELECT set_config('lock_timeout', $1, false)`, [`${Math.max(1, waitMs)}ms`]);
  try {
    await client.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [BUILD_LOCK_KEY]);
    return true;
  } catch (err) {
    if (isPgError(err) && err.code === SqlState.lockNotAvailable) return false;
    throw err;
  } finally {
    await client.query(`SELECT set_config('lock_timeout', $1, false)`, [saved!.lt]);
  }
}

/**
 * Releases the build lock taken by `tryBuildLock` on the same session; throws SyncLookupError
 * `advisory_unlock_failed` when this backend did not hold it (see `advisoryUnlock`).
 */
export async function releaseBuildLock(client: pg.ClientBase): Promise<void> {
  await advisoryUnlock(client, BUILD_LOCK_KEY, 'the build lock');
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
 * `clearFlags` (a lookup with `needs_rebuild`) clears the flag of every row it rewrites.
 *
 * @example
 * const q = upsertLookupRows(model, { lookupTick: STAGED_TICK, sinceTick: since, beforeTick: end, limit: 20000 });
 * const { rows: [r] } = await client.query(q.text, q.values); // r.rows, r.last_tick, r.last_id
 */
export function upsertLookupRows(model: ModelDefinition, options: SelectLookupRowsOptions & { clearFlags?: boolean }): SqlQuery {
  const p = new Params();
  const select = selectLookupRowsWith(model, options, p);
  const cols = LOOKUP_WRITE_COLUMNS.join(', ');
  // A row re-derived from its source is current: a flag set on it (by a host's trigger) is cleared too.
  const updates = [...LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type')
    .map((c) => `${c} = EXCLUDED.${c}`), ...(options.clearFlags ? ['needs_rebuild = false'] : [])].join(', ');
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
 * The flag pass of a build for one chunk of flagged rows (`needs_rebuild`, set by a host's triggers for
 * writes made while its tick trigger was off, and for hard deletes): each flagged row whose source row
 * exists is re-derived in place, keeping its tick, and its flag cleared (a stub with NULL data is healed);
 * each flagged row whose source row is gone is deleted. Returns one row `{ healed, deleted }`.
 *
 * @example
 * const q = healFlaggedRows(model, { ids: ['a', 'b'], idType: 'uuid' });
 */
export function healFlaggedRows(model: ModelDefinition, recordIds: NonNullable<SelectLookupRowsOptions['recordIds']>): SqlQuery {
  const p = new Params();
  const select = selectLookupRowsWith(model, { lookupTick: 'source', recordIds }, p);
  const type = p.add(model.name);
  const ids = p.add([...recordIds.ids]);
  const sets = LOOKUP_WRITE_COLUMNS.filter((c) => c !== 'record_id' && c !== 'record_type' && c !== 'updated_at_sync_tick')
    .map((c) => `${c} = src.${c}`).join(', ');
  const text = `WITH src AS MATERIALIZED (
${select}
), healed AS (
  UPDATE ${LOOKUP_TABLE} AS l SET ${sets}, needs_rebuild = false
    FROM src
   WHERE l.record_type = ${type}::text AND l.record_id = src.record_id AND l.needs_rebuild
  RETURNING 1
), gone AS (
  DELETE FROM ${LOOKUP_TABLE} AS l
   WHERE l.record_type = ${type}::text AND l.record_id = ANY(${ids}::text[]) AND l.needs_rebuild
     AND NOT EXISTS (SELECT 1 FROM src WHERE src.record_id = l.record_id)
  RETURNING 1
)
SELECT (SELECT count(*) FROM healed)::int AS healed, (SELECT count(*) FROM gone)::int AS deleted`;
  return { text, values: p.values };
}

/**
 * Up to `limit` flagged rows (`needs_rebuild`) of a type, through the partial index hosts keep on them.
 *
 * @example
 * const q = flaggedRecordIds('notes', 5000);
 */
export function flaggedRecordIds(type: string, limit: number): SqlQuery {
  return {
    text: `SELECT record_id FROM ${LOOKUP_TABLE} WHERE record_type = $1::text AND needs_rebuild ORDER BY record_id LIMIT $2::int`,
    values: [type, limit],
  };
}

/** Patterns of the source id types a text record id is safely cast to (so the source's primary key finds it). */
const CASTABLE_IDS: Record<string, RegExp> = {
  uuid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  integer: /^-?\d{1,9}$/,
  bigint: /^-?\d{1,18}$/,
};

/**
 * The source id type to compare `ids` as (so the source's primary key answers), or undefined to compare
 * as text: text-like id columns, or ids that do not all cast to the id type.
 *
 * @example
 * castableIdType('uuid', ['0b6…']) // 'uuid'
 */
export function castableIdType(idType: string, ids: readonly string[]): string | undefined {
  if (idType === 'text' || idType.startsWith('character varying')) return idType;
  const pattern = CASTABLE_IDS[idType];
  return pattern && ids.every((id) => pattern.test(id)) ? idType : undefined;
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
  /** Hard deletes leave tombstones (the builtin host): an extra row with a tombstone after the last build is pending. */
  tombstones?: boolean;
  /** The lookup has `needs_rebuild`: flagged rows are `pending_rebuild` (the next build's flag pass re-derives them), not problems. */
  flags?: boolean;
  /** Record ids per problem kept for the column report (`sample`). Default 200. */
  sample?: number;
}

/**
 * Compares one model's source rows with its lookup rows in one pass: a hash full join of the expected
 * rows (from `selectLookupRows`) and `sync_lookup WHERE record_type = $k` (the record_type-led index),
 * grouped by problem. Rows `{ problem, count, examples, sample }`; `problem = 'pending'` counts changes after the
 * last build, `pending_rebuild` flagged rows. `data` is compared as jsonb (key order and spacing do not count:
 * a host's builder and ours may print the same object differently).
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
  const sample = p.add(options.sample ?? 200);
  const digest = (col: string) => `md5(${col}::jsonb::text)`;
  const tombstoned = options.tombstones
    ? `EXISTS (SELECT 1 FROM ${TOMBSTONES_TABLE} AS t WHERE t.record_type = ${type}::text AND t.record_id = a.record_id
                                  AND t.deleted_at_sync_tick >= ${built}::bigint)`
    : 'false';
  const text = `WITH e AS (
  SELECT record_id, ${digest('data')} AS data_md5, patient_id::text AS patient_id, encounter_id::text AS encounter_id,
         facility_id::text AS facility_id, is_lab_request, is_deleted, pushed_by_device_id::text AS pushed_by_device_id, source_tick
    FROM (
${expected}
    ) AS x
), a AS (
  SELECT record_id, ${digest('data')} AS data_md5, patient_id::text AS patient_id, encounter_id::text AS encounter_id,
         facility_id::text AS facility_id, is_lab_request, is_deleted, pushed_by_device_id::text AS pushed_by_device_id,
         updated_at_sync_tick AS tick, ${options.flags ? 'needs_rebuild' : 'false'} AS flagged
    FROM ${LOOKUP_TABLE}
   WHERE record_type = ${type}::text
), d AS (
  SELECT coalesce(e.record_id, a.record_id) AS record_id,
         CASE
           WHEN e.source_tick >= ${built}::bigint THEN 'pending'
           WHEN a.record_id IS NULL THEN 'missing'
           WHEN a.flagged THEN 'pending_rebuild'
           WHEN e.record_id IS NULL THEN CASE WHEN ${tombstoned} THEN 'pending' ELSE 'extra' END
           WHEN a.tick = ${p.add(STAGED_TICK)}::bigint THEN NULL
           WHEN a.data_md5 IS DISTINCT FROM e.data_md5 THEN 'data_differs'
           WHEN (a.patient_id, a.encounter_id, a.facility_id, a.is_lab_request, a.is_deleted, a.pushed_by_device_id)
                IS DISTINCT FROM (e.patient_id, e.encounter_id, e.facility_id, e.is_lab_request, e.is_deleted, e.pushed_by_device_id)
             THEN 'filters_differ'
           WHEN a.tick < e.source_tick THEN 'tick_behind_source'
         END AS problem
    FROM e FULL JOIN a ON a.record_id = e.record_id
)
SELECT problem, count(*)::bigint::text AS count, (array_agg(record_id ORDER BY record_id))[1:${examples}::int] AS examples,
       (array_agg(record_id ORDER BY record_id))[1:${sample}::int] AS sample
  FROM d
 WHERE problem IS NOT NULL
 GROUP BY problem`;
  return { text, values: p.values };
}

/** Filter columns `verifyColumnsQuery` compares one by one (besides each key of `data`). */
const VERIFIED_COLUMNS = ['patient_id', 'encounter_id', 'facility_id', 'is_lab_request', 'is_deleted', 'pushed_by_device_id', 'updated_at_by_field_sum'] as const;

/**
 * What differs, by column, between the expected and the actual lookup rows of these records (a sample of a
 * model's differing rows): rows `{ column, rows }`, where `column` is a filter column or `data.<key>`.
 *
 * @example
 * const q = verifyColumnsQuery(model, ['a', 'b']); // [{ column: 'data.noteType', rows: 2 }]
 */
export function verifyColumnsQuery(model: ModelDefinition, ids: readonly string[]): SqlQuery {
  const p = new Params();
  const expected = selectLookupRowsWith(model, { lookupTick: 'source', recordIds: { ids } }, p);
  const type = p.add(model.name);
  const list = p.add([...ids]);
  const text = `WITH e AS MATERIALIZED (
${expected}
), j AS (
  SELECT e.data AS e_data, a.data AS a_data,
         ${VERIFIED_COLUMNS.map((c) => `e.${c}::text AS e_${c}, a.${c}::text AS a_${c}`).join(',\n         ')}
    FROM e JOIN ${LOOKUP_TABLE} AS a ON a.record_type = ${type}::text AND a.record_id = e.record_id
   WHERE a.record_id = ANY(${list}::text[])
)
SELECT col AS column, count(*)::int AS rows FROM (
  SELECT 'data.' || k.key AS col
    FROM j, LATERAL (SELECT coalesce(x.key, y.key) AS key
                       FROM jsonb_each(j.e_data::jsonb) AS x FULL JOIN jsonb_each(j.a_data::jsonb) AS y ON x.key = y.key
                      WHERE x.value IS DISTINCT FROM y.value) AS k
  ${VERIFIED_COLUMNS.map((c) => `UNION ALL SELECT '${c}' FROM j WHERE e_${c} IS DISTINCT FROM a_${c}`).join('\n  ')}
) AS diffs
GROUP BY col ORDER BY count(*) DESC, col`;
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
