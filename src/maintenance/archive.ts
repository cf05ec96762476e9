import type pg from 'pg';
import { tableColumns } from '../db/catalog.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteQualified, type QualifiedName } from '../db/quote.js';
import type { ModelRegistry } from '../lookup/registry.js';
import { partitionName, typePartitions, type Layout, type TypePartition } from '../schema/partitioned.js';
import { LOOKUP_TABLE, presentTypes } from '../schema/sync-lookup.js';
import { ARCHIVES_TABLE, TOOL_SCHEMA, ensureToolSchema } from '../schema/tool.js';
import { CONVERSION_TABLE } from './convert-tables.js';
import { runJob, type JobHandle, type JobSpec, type OperationOptions, type OperationResult, type TypeStrategy } from './job.js';
import { knownLookupTypes, liveLookupTypes } from './models.js';
import { PURGE_SQL, preparePurge, validatePurge, type PurgeOptions } from './purge.js';
import { normalizeTypes, requireKnown } from './record-types.js';
import { declareHeldCursor, type MaintenanceTarget, type WorkSession } from './session.js';

/*
 * Archive: a record type's rows leave `sync_lookup` for a table of the tool's schema, so no pull can see them
 * (pulls read `public.sync_lookup` only), and come back with `restore`, ids and ticks intact.
 *
 * - Partitioned layout, a type with its own partition: the partition is detached and moved into the tool's
 *   schema (catalog changes only, whatever its size). `DETACH … CONCURRENTLY` cannot be used: PostgreSQL
 *   refuses it when the table has a default partition, which this layout always has; so the plain DETACH runs
 *   in one short transaction under `lock_timeout`, retried, like every batch. Restore attaches it back after a
 *   `CHECK` constraint proving its rows belong there has been validated (outside any lock on sync_lookup), so
 *   the attach itself does not scan it.
 * - Otherwise (plain layout, or a type sharing a partition): a batched move, each batch one
 *   `DELETE … RETURNING` feeding an `INSERT` in the same statement, so a row is always in exactly one place;
 *   a resumable job with the purge's cursor, throttling and lock retries.
 *
 * Ticks: restored rows keep their ticks. Facilities that pulled them before the archive still hold them (an
 * archive is not a delete: nothing tells facilities to drop the rows), so putting them back unchanged matches
 * what they hold, and no facility pulls them again. A facility that first synced while the type was archived
 * never got them; `rebuild --repull` of the type after the restore publishes them at a new tick for it.
 * A row the build wrote for the same record while the type was archived is newer: it wins over the archived one.
 */

/** One archived record type, as `status --json` lists it under `archived`. */
export interface ArchivedType {
  record_type: string;
  /** Rows in the archive (exact: counted when they were moved). */
  rows: number;
  /** The archive table, in the tool's schema. */
  table: string;
  /** `detach` (a detached partition) or `batched_move`. */
  strategy: string;
  /** The layout of sync_lookup when the type was archived. */
  layout: Layout;
  archived_at: string;
  /** False while a batched move is still in progress (an interrupted archive job). */
  complete: boolean;
}

/** Options of `archiveRecordTypes`. */
export interface ArchiveOptions extends OperationOptions {
  registry?: ModelRegistry;
  /** Archive a registered (live) type anyway: the builds keep writing its changed rows to sync_lookup. */
  force?: boolean;
  /** `purge --archive`: the purge's guards (live types need `force` or `thenRebuild`; live types are queued for a rebuild). */
  purgeGuards?: PurgeOptions;
}

/** What `archive` / `restore` did: the job's result plus the rows moved and the time of the switch. */
export interface ArchiveResult extends OperationResult {
  /** Rows taken out of sync_lookup (archive) or put back (restore). */
  rows: number;
  /** Restore: archived rows left out because sync_lookup already had a newer row for the same record. */
  superseded_rows: number;
  /** The detach / attach transaction(s), lock waits included; null for a batched move. */
  switch_ms: number | null;
}

const LOOKUP: QualifiedName = { schema: 'public', name: LOOKUP_TABLE };
const T = quoteQualified(LOOKUP);

/** The archive table of a type: its partition's name, in the tool's schema (a detached partition keeps its name). */
export function archiveTable(type: string): QualifiedName {
  return { schema: TOOL_SCHEMA, name: partitionName(type) };
}

const ARCHIVES_DDL = `CREATE TABLE IF NOT EXISTS ${ARCHIVES_TABLE} (
  record_type text PRIMARY KEY,
  table_name text NOT NULL,
  rows bigint NOT NULL DEFAULT 0,
  strategy text NOT NULL,
  layout text NOT NULL,
  complete boolean NOT NULL DEFAULT false,
  archived_at timestamptz NOT NULL DEFAULT now()
)`;

async function ensureArchivesTable(client: pg.ClientBase): Promise<void> {
  await ensureToolSchema(client);
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [ARCHIVES_TABLE]);
  if (!t?.ok) await client.query(ARCHIVES_DDL);
}

/**
 * The archived record types (empty when nothing was ever archived).
 *
 * @example
 * (await listArchives(client)).map((a) => `${a.record_type}: ${a.rows}`)
 */
export async function listArchives(client: pg.ClientBase): Promise<ArchivedType[]> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [ARCHIVES_TABLE]);
  if (!t?.ok) return [];
  const { rows } = await client.query<{ record_type: string; rows: string; table_name: string; strategy: string; layout: Layout; archived_at: Date; complete: boolean }>(
    `SELECT * FROM ${ARCHIVES_TABLE} ORDER BY record_type`);
  return rows.map((r) => ({
    record_type: r.record_type, rows: Number(r.rows), table: `${TOOL_SCHEMA}.${r.table_name}`, strategy: r.strategy,
    layout: r.layout, archived_at: r.archived_at.toISOString(), complete: r.complete,
  }));
}

/** The partition that holds exactly this one type, if any. */
function ownPartition(parts: TypePartition[], type: string): TypePartition | undefined {
  return parts.find((p) => !p.isDefault && p.types.length === 1 && p.types[0] === type);
}

/** The columns both tables share, as a quoted list (generated columns left out: they are computed). */
async function columnList(client: pg.ClientBase): Promise<string> {
  return (await tableColumns(client, LOOKUP)).filter((c) => !c.generated).map((c) => quoteIdent(c.name)).join(', ');
}

/**
 * Archive and restore detach and attach partitions, which no trigger sees: during a conversion (before its
 * `--finish`) the other table would miss them. Refused until the conversion is finished or rolled back.
 */
export async function refuseDuringConversion(client: pg.ClientBase): Promise<void> {
  // Two statements: the table is named only once it exists (a failed statement would abort the caller's transaction).
  const { rows: [e] } = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [CONVERSION_TABLE]);
  const { rows: [t] } = e?.ok ? await client.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${CONVERSION_TABLE}) AS busy`) : { rows: [] };
  if (t?.busy) {
    throw new ConfigError('conversion_in_progress', 'a layout conversion is in progress (or waiting for `convert --finish`): ' +
      'finish or roll it back before archiving or restoring. Nothing was moved');
  }
}

async function validateArchive(session: WorkSession, input: string[], options: ArchiveOptions): Promise<string[]> {
  await refuseDuringConversion(session.client);
  const types = options.purgeGuards ? await validatePurge(session, input, options.purgeGuards) : normalizeTypes(input);
  // An incomplete archive is an interrupted job's: running the command again resumes it.
  const archived = new Set((await listArchives(session.client)).filter((a) => a.complete).map((a) => a.record_type));
  const again = types.filter((t) => archived.has(t));
  if (again.length) {
    throw new ConfigError('already_archived', `${again.join(', ')} ${again.length > 1 ? 'are' : 'is'} already archived; restore first. Nothing was moved`, { types: again });
  }
  if (options.purgeGuards) return types;
  const live = types.filter((t) => liveLookupTypes(options.registry).includes(t));
  if (live.length && !options.force) {
    throw new ConfigError('live_type',
      `${live.join(', ')} ${live.length > 1 ? 'are registered models' : 'is a registered model'} (live): the builds would keep writing ` +
      'its changed rows to sync_lookup while the rest sits in the archive. Use --force to archive it anyway (restore then keeps ' +
      'the newer row of each record), or leave the model out of the registry (--models) first. Nothing was moved', { live });
  }
  if (types.some((t) => !knownLookupTypes(options.registry).includes(t))) {
    requireKnown(types, new Set([...knownLookupTypes(options.registry), ...(await presentTypes(session.client)), ...archived]));
  }
  return types;
}

async function archiveStrategies(session: WorkSession, types: string[], layout: Layout): Promise<TypeStrategy[]> {
  const parts = layout === 'partitioned' ? await typePartitions(session.client) : [];
  const detaching = new Map((await listArchives(session.client)).filter((a) => a.strategy === 'detach').map((a) => [a.record_type, a]));
  return types.map((type): TypeStrategy => {
    // An interrupted detach: the partition may already sit in the tool's schema.
    const own = ownPartition(parts, type)?.table.name ?? (detaching.has(type) ? archiveTable(type).name : undefined);
    if (own) {
      return { record_type: type, strategy: 'detach', partition: own,
        reason: `${type} has its own partition ${own}: detach it and move it into ${TOOL_SCHEMA} (catalog changes only, whatever its size)` };
    }
    const holder = parts.find((p) => p.types.includes(type)) ?? parts.find((p) => p.isDefault);
    return { record_type: type, strategy: 'batched_move', partition: holder?.table.name ?? null,
      reason: `rows moved into ${TOOL_SCHEMA}.${archiveTable(type).name} in short batches, each a DELETE … RETURNING feeding an INSERT (a row is always in exactly one place)` };
  });
}

/** Registers the archive of a type (once) and, for a batched move, creates its table shaped like sync_lookup. */
async function registerArchive(h: JobHandle, type: string, strategy: 'detach' | 'batched_move'): Promise<void> {
  await h.session.unit(h.tuning.lockTimeoutMs, async () => {
    await ensureArchivesTable(h.session.client);
    const table = archiveTable(type);
    if (strategy === 'batched_move') {
      const { rows: [t] } = await h.session.client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [quoteQualified(table)]);
      if (!t?.ok) {
        await h.session.client.query(`CREATE TABLE ${quoteQualified(table)} (LIKE ${T})`);
        await h.session.client.query(`ALTER TABLE ${quoteQualified(table)} ADD PRIMARY KEY (id)`);
      }
    }
    await h.session.client.query(
      `INSERT INTO ${ARCHIVES_TABLE} (record_type, table_name, strategy, layout) VALUES ($1, $2, $3, $4) ON CONFLICT (record_type) DO NOTHING`,
      [type, table.name, strategy, h.layout]);
  });
}

/**
 * The detach / attach waits for pulls in flight (a pull is one transaction) and queues sync traffic behind it
 * while it waits: at most 500 ms per attempt (or the batches' lock_timeout, if shorter), then it retries.
 */
export async function switchLockTimeout(h: JobHandle): Promise<void> {
  await h.session.client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.min(500, h.tuning.lockTimeoutMs)}ms`]);
}

/** Detaches a type's own partition into the tool's schema (one short transaction), then counts its rows outside any lock. */
async function detachType(h: JobHandle, type: string, partition: string, figures: MoveFigures): Promise<number> {
  const part: QualifiedName = { schema: 'public', name: partition };
  await h.phase(`detach:${type}`, async () => {
    await registerArchive(h, type, 'detach');
    const t0 = performance.now();
    await h.batch(async () => {
      await switchLockTimeout(h);
      const { rows: [p] } = await h.session.query<{ attached: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS attached`, [quoteQualified(part)]);
      if (p?.attached) {
        await h.session.query(`ALTER TABLE ${T} DETACH PARTITION ${quoteQualified(part)}`, [], h.signal);
        // Again under the lock: a conversion started since the validation would miss the detach (rolled back here).
        await refuseDuringConversion(h.session.client);
        await h.session.query(`ALTER TABLE ${quoteQualified(part)} SET SCHEMA ${quoteIdent(TOOL_SCHEMA)}`, [], h.signal);
      }
      return { rows: 0, after: null };
    });
    figures.switchMs = (figures.switchMs ?? 0) + Math.round(performance.now() - t0);
  });
  let rows = 0;
  await h.phase(`count:${type}`, async () => {
    const { rows: [n] } = await h.session.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteQualified(archiveTable(type))}`, [], h.signal);
    rows = Number(n?.n ?? 0);
    await h.batch(async () => {
      await h.session.query(`UPDATE ${ARCHIVES_TABLE} SET rows = $2, complete = true WHERE record_type = $1`, [type, rows]);
      return { rows, after: null, counts: { deleted: rows } };
    });
  });
  return rows;
}

/** Moves a type's rows into its archive table: ids collected once (the purge's cursor), moved by primary key, then a sweep. */
async function moveType(h: JobHandle, type: string): Promise<void> {
  const table = quoteQualified(archiveTable(type));
  const cols = await columnList(h.session.client);
  const moveSql = (where: string) =>
    `WITH moved AS (DELETE FROM ${T} WHERE record_type = $1 AND ${where} RETURNING ${cols}) INSERT INTO ${table} (${cols}) SELECT ${cols} FROM moved`;
  const record = (n: number) => h.session.query(`UPDATE ${ARCHIVES_TABLE} SET rows = rows + $2 WHERE record_type = $1`, [type, n]);
  await h.phase(`move:${type}`, async () => {
    await registerArchive(h, type, 'batched_move');
    const cursor = `sync_lookup_archive_${h.jobId}`;
    await declareHeldCursor(h.session, PURGE_SQL.collect(cursor), [[type], h.cursor.after], h.signal);
    try {
      const moved = await h.session.query(`MOVE FORWARD ALL IN ${quoteIdent(cursor)}`);
      await h.session.query(`MOVE ABSOLUTE 0 IN ${quoteIdent(cursor)}`);
      await h.setTotal(h.rowsDone + (moved.rowCount ?? 0));
      for (;;) {
        const { rows } = await h.session.query<{ id: string }>(`FETCH FORWARD ${h.sizer.rows} FROM ${quoteIdent(cursor)}`);
        if (!rows.length) break;
        const ids = rows.map((r) => r.id);
        await h.batch(async () => {
          const n = (await h.session.query(moveSql('id = ANY($2::bigint[])'), [type, ids], h.signal)).rowCount ?? 0;
          await record(n);
          return { rows: n, after: ids[ids.length - 1]!, counts: { deleted: n } };
        });
      }
    } finally {
      await h.session.client.query(`CLOSE ${quoteIdent(cursor)}`).catch(() => {});
    }
  });
  await h.phase(`sweep:${type}`, async () => {
    // Rows written after the ids were collected (a build of a forced live type): any left, a bounded batch at a time.
    const sweep = moveSql(`id = ANY(ARRAY(SELECT id FROM ${T} WHERE record_type = $1 LIMIT $2))`);
    for (;;) {
      const r = await h.batch(async () => {
        const n = (await h.session.query(sweep, [type, h.sizer.rows], h.signal)).rowCount ?? 0;
        await record(n);
        return { rows: n, after: null, counts: { deleted: n } };
      });
      if (r.rows === 0) break;
    }
    await h.session.query(`UPDATE ${ARCHIVES_TABLE} SET complete = true WHERE record_type = $1`, [type]);
  });
}

async function runArchive(h: JobHandle, types: string[], strategies: TypeStrategy[], options: ArchiveOptions, figures: MoveFigures): Promise<void> {
  if (options.purgeGuards) await preparePurge(h, types, options.purgeGuards);
  for (const s of strategies) {
    if (s.strategy === 'detach') await detachType(h, s.record_type, s.partition!, figures);
    else await moveType(h, s.record_type);
  }
}

/** Relations to ANALYZE / VACUUM after a move: the table (or partitions) the rows left or entered. */
async function movedRelations(h: JobHandle, strategies: TypeStrategy[]): Promise<{ analyze: QualifiedName[]; vacuum: QualifiedName[] }> {
  const moved = strategies.filter((s) => s.strategy === 'batched_move');
  if (!moved.length) return { analyze: [], vacuum: [] };
  if (h.layout === 'plain') return { analyze: [LOOKUP], vacuum: [LOOKUP] };
  const names = [...new Set(moved.map((s) => s.partition).filter((p): p is string => !!p))];
  const rels = names.map((name) => ({ schema: 'public', name }));
  return { analyze: rels, vacuum: rels };
}

function archiveSpec(options: ArchiveOptions, figures: MoveFigures): JobSpec {
  return {
    operation: 'archive', key: {},
    validate: (session, types) => validateArchive(session, types, options),
    strategies: archiveStrategies,
    run: (h, types, strategies) => runArchive(h, types, strategies, options, figures),
    changedRelations: (h, _types, strategies) => movedRelations(h, strategies),
  };
}

/**
 * Takes every row of the given record types out of `sync_lookup` into an archive table of the tool's schema:
 * excluded from every pull, listed by `status`, restorable with `restoreRecordTypes`. A type with its own
 * partition is detached (constant time); otherwise its rows are moved in resumable batches. ConfigError when a
 * type is live (registered) without `force`, unknown, or already archived.
 *
 * @example
 * const r = await archiveRecordTypes(db, { types: ['encounter_medications'] }); // r.strategy: 'detach' | 'batched_move'
 */
export async function archiveRecordTypes(target: MaintenanceTarget, options: ArchiveOptions): Promise<ArchiveResult> {
  const figures: MoveFigures = { switchMs: null, superseded: 0 };
  const r = await runJob(target, archiveSpec(options, figures), options);
  return archiveResult(r, r.rows_deleted, figures);
}

/** Figures the phases of one archive / restore run collect for its result. */
export interface MoveFigures {
  /** Time of the detach / attach transactions (this run's; null when none ran). */
  switchMs: number | null;
  superseded: number;
}

/** The job's result with the move's own figures. */
export function archiveResult(r: OperationResult, rows: number, figures: MoveFigures): ArchiveResult {
  return { ...r, rows, superseded_rows: figures.superseded, switch_ms: figures.switchMs };
}

export { ensureArchivesTable, columnList, ownPartition, movedRelations };

