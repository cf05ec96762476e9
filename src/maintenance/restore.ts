import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteLiteral, quoteQualified, type QualifiedName } from '../db/quote.js';
import { typePartitions, type Layout } from '../schema/partitioned.js';
import { LOOKUP_TABLE } from '../schema/sync-lookup.js';
import { ARCHIVES_TABLE, TOOL_SCHEMA } from '../schema/tool.js';
import {
  archiveResult, archiveTable, columnList, listArchives, movedRelations, refuseDuringConversion, switchLockTimeout, type ArchiveResult, type ArchivedType, type MoveFigures,
} from './archive.js';
import { runJob, type JobHandle, type JobSpec, type OperationOptions, type TypeStrategy } from './job.js';
import { ensureJobsTable, lockRecordTypes, unfinishedJobsFor } from './jobs.js';
import { normalizeTypes } from './record-types.js';
import { openWorkSession, type MaintenanceTarget, type WorkSession } from './session.js';

/** Options of `restoreRecordTypes`. */
export type RestoreOptions = OperationOptions;

const T = quoteQualified({ schema: 'public', name: LOOKUP_TABLE });
/** The constraint that proves an archived partition's rows belong to its type, so ATTACH need not scan it. */
const CHECK_NAME = 'sync_lookup_archive_record_type';

async function validateRestore(session: WorkSession, input: string[]): Promise<string[]> {
  await refuseDuringConversion(session.client);
  const types = normalizeTypes(input);
  const archived = new Set((await listArchives(session.client)).map((a) => a.record_type));
  const missing = types.filter((t) => !archived.has(t));
  if (missing.length) {
    throw new ConfigError('not_archived', `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not archived (see \`sync-lookup status\`). Nothing was restored`, { types: missing });
  }
  return types;
}

/**
 * Attach when the archive can become the type's partition again as it is: a detached partition, the partitioned
 * layout, no partition for the type now, no row of it in sync_lookup (the default partition) and no table of that
 * name in public.
 */
async function restoreStrategies(session: WorkSession, types: string[], layout: Layout): Promise<TypeStrategy[]> {
  const parts = layout === 'partitioned' ? await typePartitions(session.client) : [];
  // Only a detached partition has the partitioned table's keys; a moved archive has the plain table's primary key.
  const detached = new Set((await listArchives(session.client)).filter((a) => a.strategy === 'detach').map((a) => a.record_type));
  const out: TypeStrategy[] = [];
  for (const type of types) {
    const name = archiveTable(type).name;
    const holder = parts.find((p) => p.types.includes(type)) ?? parts.find((p) => p.isDefault);
    const { rows: [c] } = await session.client.query<{ rows: boolean; clash: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${T} WHERE record_type = $1) AS rows, to_regclass($2) IS NOT NULL AS clash`,
      [type, quoteQualified({ schema: 'public', name })]);
    const attach = layout === 'partitioned' && detached.has(type) && !parts.some((p) => p.types.includes(type)) && !c?.rows && !c?.clash;
    out.push(attach
      ? { record_type: type, strategy: 'attach', partition: name,
        reason: `attach ${TOOL_SCHEMA}.${name} back as the partition of ${type} (a validated CHECK constraint spares the attach a scan)` }
      : { record_type: type, strategy: 'batched_move', partition: holder?.table.name ?? null,
        reason: (layout === 'partitioned' ? `${type} cannot be attached as it is (it has a partition or rows in sync_lookup now): ` : '') +
          'rows moved back in short batches (DELETE … RETURNING feeding an INSERT); a record sync_lookup already has a newer row for keeps that row' });
  }
  return out;
}

/** Validates the CHECK constraint (a scan of the archive, under no lock on sync_lookup), then attaches in one short transaction. */
async function attachType(h: JobHandle, type: string, archive: ArchivedType, figures: MoveFigures): Promise<void> {
  const table = archiveTable(type);
  await h.phase(`check:${type}`, async () => {
    const { rows: [c] } = await h.session.query<{ ok: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2) AS ok`, [quoteQualified(table), CHECK_NAME]);
    if (!c?.ok) {
      await h.session.query(`ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(CHECK_NAME)} ` +
        `CHECK (record_type IS NOT NULL AND record_type::text = ${quoteLiteral(type)}::text) NOT VALID`, [], h.signal);
    }
    await h.session.query(`ALTER TABLE ${quoteQualified(table)} VALIDATE CONSTRAINT ${quoteIdent(CHECK_NAME)}`, [], h.signal);
  });
  await h.phase(`attach:${type}`, async () => {
    const part: QualifiedName = { schema: 'public', name: table.name };
    const t0 = performance.now();
    await h.batch(async () => {
      await switchLockTimeout(h);
      // ATTACH alone takes only SHARE UPDATE EXCLUSIVE on sync_lookup: a pull in flight (one REPEATABLE READ
      // transaction over several chunks) would see the partition appear between two chunks, long-committed rows
      // and all, and return part of the type. The exclusive lock waits for pulls in flight (under lock_timeout).
      await h.session.query(`LOCK TABLE ${T} IN ACCESS EXCLUSIVE MODE`, [], h.signal);
      // Again under the lock: a conversion started during the CHECK's validation would miss the attach.
      await refuseDuringConversion(h.session.client);
      await h.session.query(`ALTER TABLE ${quoteQualified(table)} SET SCHEMA public`, [], h.signal);
      await h.session.query(`ALTER TABLE ${T} ATTACH PARTITION ${quoteQualified(part)} FOR VALUES IN (${quoteLiteral(type)})`, [], h.signal);
      await h.session.query(`ALTER TABLE ${quoteQualified(part)} DROP CONSTRAINT ${quoteIdent(CHECK_NAME)}`, [], h.signal);
      await h.session.query(`DELETE FROM ${ARCHIVES_TABLE} WHERE record_type = $1`, [type]);
      return { rows: archive.rows, after: null, counts: { inserted: archive.rows } };
    });
    figures.switchMs = (figures.switchMs ?? 0) + Math.round(performance.now() - t0);
  });
}

/** Moves an archive's rows back in keyset batches over its primary key; a record sync_lookup has meanwhile keeps its row. */
async function moveBack(h: JobHandle, type: string, archive: ArchivedType, figures: MoveFigures): Promise<void> {
  const table = quoteQualified(archiveTable(type));
  const cols = await columnList(h.session.client);
  const sql = `WITH moved AS (DELETE FROM ${table} WHERE id = ANY(ARRAY(SELECT id FROM ${table} WHERE ($1::bigint IS NULL OR id > $1) ORDER BY id LIMIT $2)) RETURNING ${cols}),
  ins AS (INSERT INTO ${T} (${cols}) SELECT ${cols} FROM moved ON CONFLICT (record_id, record_type) DO NOTHING RETURNING 1)
  SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM ins)::int AS inserted, (SELECT max(id) FROM moved)::text AS last`;
  await h.phase(`move:${type}`, async () => {
    if (h.rowsTotal === null) await h.setTotal(archive.rows);
    for (;;) {
      const r = await h.batch(async () => {
        const { rows: [m] } = await h.session.query<{ moved: number; inserted: number; last: string | null }>(sql, [h.cursor.after, h.sizer.rows], h.signal);
        await h.session.query(`UPDATE ${ARCHIVES_TABLE} SET rows = rows - $2 WHERE record_type = $1`, [type, m!.moved]);
        return { rows: m!.moved, after: m!.last ?? h.cursor.after, counts: { inserted: m!.inserted } };
      });
      if (r.rows === 0) break;
    }
    // Every row a move batch took out of the archive and did not insert was superseded by a newer one.
    figures.superseded = h.rowsDone - h.counts.inserted;
  });
  await h.phase(`drop:${type}`, async () => {
    await h.batch(async () => {
      await h.session.query(`DROP TABLE ${table}`, [], h.signal);
      await h.session.query(`DELETE FROM ${ARCHIVES_TABLE} WHERE record_type = $1`, [type]);
      return { rows: 0, after: null };
    });
  });
}

function restoreSpec(figures: MoveFigures): JobSpec {
  return {
    operation: 'restore', key: {},
    validate: (session, types) => validateRestore(session, types),
    strategies: restoreStrategies,
    async run(h, _types, strategies) {
      const archives = new Map((await listArchives(h.session.client)).map((a) => [a.record_type, a]));
      for (const s of strategies) {
        const archive = archives.get(s.record_type);
        if (!archive) continue; // restored by an earlier run of this job
        if (s.strategy === 'attach') await attachType(h, s.record_type, archive, figures);
        else await moveBack(h, s.record_type, archive, figures);
      }
    },
    changedRelations: (h, _types, strategies) => movedRelations(h, strategies),
  };
}

/**
 * Puts archived record types back into `sync_lookup` with their ids and ticks: on the partitioned layout the
 * archived partition is attached again (constant time once its CHECK constraint is validated); otherwise the
 * rows are moved back in resumable batches. ConfigError `not_archived` for a type that is not archived.
 *
 * @example
 * const r = await restoreRecordTypes(db, { types: ['encounter_medications'] }); // r.rows, r.strategy
 */
export async function restoreRecordTypes(target: MaintenanceTarget, options: RestoreOptions): Promise<ArchiveResult> {
  const figures: MoveFigures = { switchMs: null, superseded: 0 };
  const r = await runJob(target, restoreSpec(figures), { ...options, vacuum: options.vacuum ?? false });
  return archiveResult(r, r.rows_inserted, figures);
}

/** What `dropArchives` removed (or would remove, with `dryRun`). */
export interface DropArchivesResult {
  dry_run: boolean;
  older_than_days: number;
  dropped: ArchivedType[];
}

/**
 * Drops the archives older than `olderThanDays` (their rows are gone for good): the archive retention of
 * `archive --older-than-days N --drop`. Each archive is dropped in its own short transaction.
 *
 * @example
 * const r = await dropArchives(db, { olderThanDays: 90 }); // r.dropped: [{ record_type, rows, … }]
 */
export async function dropArchives(target: MaintenanceTarget, options: { olderThanDays: number; dryRun?: boolean; lockTimeoutMs?: number }): Promise<DropArchivesResult> {
  if (!Number.isFinite(options.olderThanDays) || options.olderThanDays < 0) {
    throw new ConfigError('invalid_option', `olderThanDays must be a number >= 0, got ${String(options.olderThanDays)}`);
  }
  const session = await openWorkSession(target, 'archive-drop', options.lockTimeoutMs ?? 2000);
  try {
    const cutoff = Date.now() - options.olderThanDays * 86_400_000;
    const old = (await listArchives(session.client)).filter((a) => Date.parse(a.archived_at) <= cutoff);
    if (options.dryRun || !old.length) return { dry_run: !!options.dryRun, older_than_days: options.olderThanDays, dropped: old };
    const unlock = await lockArchivesIdle(session, old.map((a) => a.record_type));
    try {
      for (const a of old) await dropOne(session, a, options.lockTimeoutMs ?? 2000);
    } finally {
      await unlock();
    }
    return { dry_run: false, older_than_days: options.olderThanDays, dropped: old };
  } finally {
    await session.close();
  }
}

/**
 * Takes the types' locks (LockNotAcquiredError while an archive or restore of one runs) and refuses, dropping
 * nothing, when one has an interrupted archive or restore job: its rows are half moved, and a restore under way
 * says they are wanted back.
 */
async function lockArchivesIdle(session: WorkSession, types: string[]): Promise<() => Promise<void>> {
  const unlock = await lockRecordTypes(session.client, types);
  try {
    await ensureJobsTable(session.client);
    const busy = (await unfinishedJobsFor(session.client, types)).filter((j) => j.operation === 'archive' || j.operation === 'restore');
    if (busy.length) {
      throw new ConfigError('archive_in_use', `${busy.map((j) => `job ${j.id} (${j.operation} of ${j.record_types.join(', ')}, ${j.status})`).join('; ')} ` +
        'is unfinished: resume it (run the same command again) or abandon it (`sync-lookup jobs`), then drop. Nothing was dropped',
      { jobs: busy.map((j) => j.id) });
    }
    return unlock;
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function dropOne(session: WorkSession, a: ArchivedType, lockTimeoutMs: number): Promise<void> {
  await session.unit(lockTimeoutMs, async () => {
    await session.client.query(`DROP TABLE IF EXISTS ${quoteQualified(archiveTable(a.record_type))}`);
    await session.client.query(`DELETE FROM ${ARCHIVES_TABLE} WHERE record_type = $1`, [a.record_type]);
  });
}
