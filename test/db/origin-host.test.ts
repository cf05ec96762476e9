import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { buildLookup } from '../../src/lookup/build.js';
import { builtinHost } from '../../src/lookup/hosts/index.js';
import { pullSummary } from '../../src/lookup/pull.js';
import { ModelRegistry, type ModelRegistry as Registry } from '../../src/lookup/registry.js';
import { CLOCK_SETUP_SQL } from '../../src/lookup/source.js';
import { markStaging } from '../../src/lookup/staging.js';
import { REPAIRS, verifyLookup } from '../../src/lookup/verify.js';
import { purgeRecordTypes } from '../../src/maintenance/purge.js';
import { rebuildRecordTypes, resyncRecordTypes } from '../../src/maintenance/rebuild.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { createOrigin, ORIGIN_MODELS_FILE, ORIGIN_TICKS, originCounts, originRegistry } from './origin-fixture.js';

const PATIENTS = 1000;
const COUNTS = originCounts(PATIENTS);

/** Where the deployment's ticks stand: the clock fact, its since fact, the last published end tick. */
async function ticks(t: TestDatabase): Promise<{ clock: number; since: number; last_end: number; ledger_rows: number }> {
  const { rows: [r] } = await t.query<{ clock: string; since: string; last_end: string; ledger_rows: number }>(
    `SELECT (SELECT value FROM local_system_facts WHERE key = 'currentSyncTick') AS clock,
            (SELECT value FROM local_system_facts WHERE key = 'lastSuccessfulLookupTableUpdate') AS since,
            (SELECT max(lookup_end_tick)::text FROM sync_lookup_ticks) AS last_end, (SELECT count(*)::int FROM sync_lookup_ticks) AS ledger_rows`);
  return { clock: Number(r!.clock), since: Number(r!.since), last_end: Number(r!.last_end), ledger_rows: r!.ledger_rows };
}

/** A fingerprint of the whole lookup: rows, the tick sum and the data (nothing written means it is unchanged). */
async function lookupFingerprint(t: TestDatabase): Promise<string> {
  const { rows: [r] } = await t.query<{ f: string }>(
    `SELECT count(*) || ':' || coalesce(sum(updated_at_sync_tick), 0) || ':' || md5(string_agg(md5(coalesce(data::text, '')) || needs_rebuild, '' ORDER BY id)) AS f FROM sync_lookup`);
  return r!.f;
}

async function count(t: TestDatabase, sql: string, params: unknown[] = []): Promise<number> {
  return Number(Object.values((await t.query(sql, params)).rows[0]!)[0]);
}

/** Relations and functions in public, to show the tool put nothing there but sync_lookup's own index. */
async function publicObjects(t: TestDatabase): Promise<string[]> {
  const { rows } = await t.query<{ name: string }>(
    `SELECT c.relkind::text || ':' || c.relname AS name FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
      UNION ALL SELECT 'f:' || p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1`);
  return rows.map((r) => r.name);
}

const log = (label: string, before: object, after: object) => console.info(`[origin ${label}] before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);

describe.runIf(hasServer() && cliBuilt())('an origin-shaped deployment (tamanu host)', () => {
  it('adopts, builds beside a concurrent writer, rebuilds, resyncs, purges and heals flags without damaging ticks or data', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, PATIENTS);
    const registry = await originRegistry();
    const env = { DATABASE_URL: t.url };
    const publicBefore = await publicObjects(t);

    // Adopt: the host is detected and recorded; the record_type index is built; nothing else lands in public.
    const adopt = await runCli(['migrate', '--adopt'], env);
    expect(adopt.code, adopt.stderr).toBe(0);
    expect(adopt.stdout).toMatch(/host: tamanu/);
    expect(await publicObjects(t)).toEqual([...publicBefore, 'i:sync_lookup_record_type_updated_at_sync_tick'].sort());
    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(/host: tamanu \(recorded\).*currentSyncTick.*at 40010; since 40002; last end tick 40003/);

    // The server's post-migration hook adds triggers to every table in public: none of ours is there any more.
    await t.query('SELECT run_post_migration_hooks()');
    expect((await runCli(['migrate'], env)).code).toBe(0);

    // The adopted lookup matches its sources (a legacy type's leftover rows aside).
    const v0 = await verifyLookup(t.db, { registry });
    expect(Object.keys(v0.problems)).toEqual(['unknown_type']);
    expect(v0.models.every((m) => Object.keys(m.problems).length === 0)).toBe(true);

    // Builds while a writer stamps ticks: no change missed, end ticks strictly increasing, the ledger consistent.
    let before = await ticks(t);
    const written = await buildsBesideWriter(t, registry);
    let after = await ticks(t);
    log('build x4 beside a writer', before, after);
    const ledger = (await t.query<{ s: string; e: string }>(`SELECT source_start_tick::text AS s, lookup_end_tick::text AS e FROM sync_lookup_ticks WHERE lookup_end_tick > $1 ORDER BY lookup_end_tick`, [before.last_end])).rows;
    expect(ledger.length).toBe(4);
    for (const [i, r] of ledger.entries()) {
      expect(Number(r.e)).toBeGreaterThan(Number(r.s));
      expect(Number(r.e)).toBeGreaterThan(i ? Number(ledger[i - 1]!.e) : before.last_end);
    }
    expect(after.since).toBe(Number(ledger.at(-1)!.s));
    expect(await count(t, `SELECT count(*) FROM sync_lookup l JOIN notes n ON l.record_id = n.id::text AND l.record_type = 'notes'
                            WHERE l.data->>'content' = n.content AND n.id = ANY($1::uuid[])`, [written.notes])).toBe(written.notes.length);
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE record_type = 'encounters' AND record_id = ANY($1::text[]) AND updated_at_sync_tick > $2`,
      [written.encounters, before.last_end])).toBe(written.encounters.length);
    expect((await verifyLookup(t.db, { registry })).models.every((m) => Object.keys(m.problems).length === 0)).toBe(true);

    // Rebuild of an unchanged model writes nothing (same shape, same values) and publishes no ticks row.
    before = await ticks(t);
    const rebuild = await rebuildRecordTypes(t.db, { types: ['notes'], registry, vacuum: false });
    expect(rebuild).toMatchObject({ rows_inserted: 0, rows_updated: 0, rows_deleted: 0 });
    after = await ticks(t);
    log('rebuild notes', before, after);
    expect(after.last_end).toBe(before.last_end);

    // Resync: every row republished above the last end tick through staged-then-published; pull --since sees them all.
    before = await ticks(t);
    const resync = await resyncRecordTypes(t.db, { types: ['patient_program_registrations'], registry, vacuum: false, initialBatchRows: 50, batchMs: 5 });
    after = await ticks(t);
    log('resync patient_program_registrations', before, after);
    expect(resync.rows_updated).toBe(COUNTS.patient_program_registrations);
    expect(after.last_end).toBeGreaterThan(before.last_end);
    expect(after.since).toBe(before.since); // a resync republishes; it does not move the build's since
    const pulled = await pullSummary(t.db, { registry, sinceTick: before.last_end, types: ['patient_program_registrations'] });
    expect(pulled.rows).toBe(COUNTS.patient_program_registrations);
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE updated_at_sync_tick = -2`)).toBe(0);
    const v1 = await verifyLookup(t.db, { registry });
    expect(v1.models.every((m) => Object.keys(m.problems).length === 0)).toBe(true);

    // Purges: the legacy type goes; a live type is refused (nothing deleted) unless --then-rebuild, which restores every row.
    before = await ticks(t);
    expect((await purgeRecordTypes(t.db, { types: ['encounter_medications'], registry, vacuum: false })).rows_deleted).toBe(500);
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);
    const live = await purgeRecordTypes(t.db, { types: ['notes'], registry }).catch((e: unknown) => e);
    expect(live).toBeInstanceOf(ConfigError);
    expect((live as ConfigError).code).toBe('live_type');
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE record_type = 'notes'`)).toBe(COUNTS.notes + written.inserted);
    const cli = await runCli(['purge', 'notes', '--models', ORIGIN_MODELS_FILE], env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/"notes" is a registered model \(live\).*--then-rebuild/);
    const restored = await purgeRecordTypes(t.db, { types: ['notes'], registry, thenRebuild: true, vacuum: false });
    expect(restored.rows_deleted).toBe(COUNTS.notes + written.inserted);
    expect(restored.rebuild?.rows_inserted).toBe(COUNTS.notes + written.inserted);
    expect(await count(t, `SELECT count(*) FROM local_system_facts WHERE key = 'lookupModelsToRebuild' AND value <> ''`)).toBe(0);
    log('purge legacy + purge notes --then-rebuild', before, await ticks(t));
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);

    // Self-heal: writes with the tick trigger off flag rows; verify counts them as pending, the build heals them.
    await t.query(`UPDATE local_system_facts SET value = 'disabled' WHERE key = 'syncTrigger'`);
    await t.query(`UPDATE notes SET content = 'migrated ' || id WHERE id IN (SELECT id FROM notes ORDER BY id LIMIT 5)`);
    await t.query(`INSERT INTO notes (id, record_id, record_type, content) SELECT md5('stub')::uuid, id, 'Encounter', 'inserted by a migration' FROM encounters ORDER BY id LIMIT 1`);
    await t.query(`DELETE FROM notes WHERE id = (SELECT id FROM notes ORDER BY id DESC LIMIT 1)`);
    await t.query(`UPDATE local_system_facts SET value = 'enabled' WHERE key = 'syncTrigger'`);
    const flagged = await verifyLookup(t.db, { registry, types: ['notes'] });
    expect(flagged.ok).toBe(true);
    expect(flagged.models[0]!.pendingRebuild).toBe(7);
    expect((await runCli(['status'], env)).stdout).toMatch(/flagged rows \(needs_rebuild\): 7; upgrade gate shut/);
    const doctor = await runCli(['doctor', '--models', ORIGIN_MODELS_FILE], env);
    expect(doctor.stdout).toMatch(/7 flagged rows · upgrade gate shut/);
    expect(doctor.stdout).toMatch(/7 rows are flagged needs_rebuild/);
    before = await ticks(t);
    const healed = await buildLookup(t.db, { registry });
    expect(healed).toMatchObject({ flagsHealed: 6, flagsDeleted: 1, host: 'tamanu' });
    log('build with 7 flagged rows', before, await ticks(t));
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE needs_rebuild`)).toBe(0);
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE record_type = 'notes' AND data->>'content' LIKE 'migrated %'`)).toBe(5);
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);

    // A purge reports the flagged rows it removes (here with --then-rebuild, which restores them unflagged).
    await t.query(`UPDATE local_system_facts SET value = 'disabled' WHERE key = 'syncTrigger'`);
    await t.query(`UPDATE lab_requests SET status = 'verified' WHERE id IN (SELECT id FROM lab_requests ORDER BY id LIMIT 2)`);
    await t.query(`UPDATE local_system_facts SET value = 'enabled' WHERE key = 'syncTrigger'`);
    const purgedFlagged = await purgeRecordTypes(t.db, { types: ['lab_requests'], registry, thenRebuild: true, vacuum: false });
    expect(purgedFlagged).toMatchObject({ flagged_rows_removed: 2, rows_deleted: COUNTS.lab_requests });
    expect(purgedFlagged.rebuild?.rows_inserted).toBe(COUNTS.lab_requests);

    // A rebuild clears flags too.
    await t.query(`UPDATE local_system_facts SET value = 'disabled' WHERE key = 'syncTrigger'`);
    await t.query(`UPDATE notes SET content = 'again ' || id WHERE id IN (SELECT id FROM notes ORDER BY id LIMIT 3)`);
    await t.query(`UPDATE local_system_facts SET value = 'enabled' WHERE key = 'syncTrigger'`);
    expect((await rebuildRecordTypes(t.db, { types: ['notes'], registry, vacuum: false })).rows_updated).toBe(3);
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE needs_rebuild`)).toBe(0);
    expect((await verifyLookup(t.db, { registry })).ok).toBe(true);

    // The hook again between commands breaks nothing.
    await t.query('SELECT run_post_migration_hooks()');
    expect((await runCli(['migrate'], env)).code).toBe(0);
    expect((await runCli(['verify', '--models', ORIGIN_MODELS_FILE], env)).code).toBe(0);
  });

  it('refuses, writing nothing: a second clock behind the published ticks, a data shape change, unknown and hostile types', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, 200);
    const registry = await originRegistry();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['migrate', '--adopt'], env)).code).toBe(0);
    await t.query(`UPDATE notes SET content = 'changed' WHERE id IN (SELECT id FROM notes ORDER BY id LIMIT 3)`);

    // The builtin host's clock created beside the deployment's, at 0: building with it would publish at tick 1.
    await t.query(CLOCK_SETUP_SQL);
    const fingerprint = await lookupFingerprint(t);
    const ledger = await ticks(t);
    const behind = await buildLookup(t.db, { registry, host: builtinHost }).catch((e: unknown) => e);
    expect(behind).toBeInstanceOf(ConfigError);
    expect((behind as ConfigError).code).toBe('tick_regression');
    expect((behind as Error).message).toMatch(/not above the last published end tick 40003.*--host tamanu/);
    const cli = await runCli(['--host', 'builtin', 'rebuild', 'notes', '--models', ORIGIN_MODELS_FILE], env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/refusing to rebuild notes at tick \d+: it is not above the last published end tick 40003/);
    expect(await lookupFingerprint(t)).toBe(fingerprint);
    expect(await ticks(t)).toEqual(ledger);
    await t.query(`DROP TABLE sync_lookup_tool.clock, sync_lookup_tool.tombstones, sync_lookup_tool.rebuild_queue;
                   DROP FUNCTION sync_lookup_tool.sync_lookup_set_sync_tick(), sync_lookup_tool.sync_lookup_record_tombstones()`);

    // A registry whose data keys differ from the rows' (snake_case on a camelCase deployment).
    const snake = new ModelRegistry(registry.models.map((m) => ({ ...m, keyStyle: 'snake_case' as const })));
    const shape = await rebuildRecordTypes(t.db, { types: ['notes'], registry: snake }).catch((e: unknown) => e);
    expect((shape as ConfigError).code).toBe('data_shape_change');
    expect((shape as Error).message).toMatch(/notes: adds .*note_type.*; removes .*noteType/);
    const built = await buildLookup(t.db, { registry: snake }).catch((e: unknown) => e);
    expect((built as ConfigError).code).toBe('data_shape_change');
    expect(await lookupFingerprint(t)).toBe(fingerprint);
    expect(await ticks(t)).toEqual(ledger);

    // Unknown types name the closest; --if-present makes an absent type a no-op; hostile names never reach SQL.
    const typo = await runCli(['purge', 'note', '--models', ORIGIN_MODELS_FILE], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/"note": did you mean "notes"/);
    const hostile = `x'); DROP TABLE notes; --`;
    const absent = await purgeRecordTypes(t.db, { types: ['encounter_diagnoses', hostile], registry, ifPresent: true });
    expect(absent).toMatchObject({ rows_deleted: 0, skipped_types: ['encounter_diagnoses', hostile] });
    expect((await runCli(['purge', hostile, '--models', ORIGIN_MODELS_FILE], env)).code).toBe(2);
    expect(await count(t, `SELECT count(*) FROM notes`)).toBe(originCounts(200).notes);
    expect(await lookupFingerprint(t)).toBe(fingerprint);
  });

  it('models init --from-db drafts a registry that loads, marks its guesses, and verify names the columns it got wrong', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, 200);
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['migrate', '--adopt'], env)).code).toBe(0);
    const init = await runCli(['models', 'init', '--from-db'], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toMatch(/drafted 6 models for the tamanu host[\s\S]*without a table \(legacy types\?\): encounter_medications/);
    const draft = JSON.parse(init.stdout) as { models: { name: string; review: string[]; columns: { name: string; type: string }[]; keyStyle?: string }[] };
    expect(draft.models.map((m) => m.name).sort()).toEqual(['encounters', 'facilities', 'lab_requests', 'notes', 'patient_program_registrations', 'patients']);
    expect(draft.models.every((m) => m.review.length > 0 && m.keyStyle === undefined)).toBe(true);
    expect(draft.models.find((m) => m.name === 'patients')!.columns).toContainEqual({ name: 'date_of_birth', type: 'date_string' });
    expect(draft.models.find((m) => m.name === 'lab_requests')!.columns).toContainEqual({ name: 'test_codes', type: 'text[]' });
    const dir = await mkdtemp(path.join(tmpdir(), 'sync-lookup-draft-'));
    await writeFile(path.join(dir, 'models.json'), init.stdout);
    const verify = await runCli(['verify', '--models', path.join(dir, 'models.json')], env);
    // The draft cannot know the encounters' sensitive-facility rule nor that a note's patient comes through its record_id.
    expect(verify.code).toBe(3);
    expect(verify.stdout).toMatch(/encounters: differing columns .*facility_id \d+/);
    expect(verify.stdout).toMatch(/notes: differing columns .*patient_id \d+/);
    expect(verify.stdout).not.toMatch(/data\./);
  });

  it('tells its own staged leftovers from the host builder\'s: publishes the first, waits for and then refuses the second', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, 200);
    const registry = await originRegistry();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['migrate', '--adopt'], env)).code).toBe(0);

    // Rows staged by the host's own builder (no record of ours): a build waits, then refuses naming them; nothing written.
    await t.query(`UPDATE sync_lookup SET updated_at_sync_tick = -2 WHERE record_type = 'notes' AND id IN (SELECT id FROM sync_lookup WHERE record_type = 'notes' ORDER BY id LIMIT 5)`);
    const fingerprint = await lookupFingerprint(t);
    const foreign = await buildLookup(t.db, { registry, buildLockWaitMs: 500 }).catch((e: unknown) => e);
    expect((foreign as ConfigError).code).toBe('host_builder_running');
    expect((foreign as Error).message).toMatch(/5 rows are staged at tick -2/);
    expect(await lookupFingerprint(t)).toBe(fingerprint);

    // The same rows left by an interrupted sync-lookup run (its record names a backend that is gone): reported, then published.
    const gone = new pg.Client({ connectionString: t.url });
    await gone.connect();
    await markStaging(gone, 'resync of notes');
    await gone.end();
    await new Promise((r) => setTimeout(r, 300));
    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(/rows staged at -2 \(not yet published\): 5, left by an interrupted resync of notes: run sync-lookup build/);
    const verify = await verifyLookup(t.db, { registry, types: ['notes'] });
    expect(verify.problems.staged).toMatchObject({ count: 5, repair: REPAIRS.staged });
    const last = (await ticks(t)).last_end;
    const built = await buildLookup(t.db, { registry });
    expect(built.published).toBeGreaterThanOrEqual(5);
    expect(built.endTick).toBeGreaterThan(last);
    expect(await count(t, `SELECT count(*) FROM sync_lookup WHERE updated_at_sync_tick = -2`)).toBe(0);
    expect((await verifyLookup(t.db, { registry, types: ['notes'] })).ok).toBe(true);

    // A few damaged rows do not block the rebuild that repairs them (the common key set is compared, not the union).
    await t.query(`UPDATE sync_lookup SET data = json_build_object('id', record_id, 'bogus', 1) WHERE record_type = 'notes' AND id IN (SELECT id FROM sync_lookup WHERE record_type = 'notes' ORDER BY id LIMIT 3)`);
    expect((await rebuildRecordTypes(t.db, { types: ['notes'], registry, vacuum: false })).rows_updated).toBe(3);
    expect((await verifyLookup(t.db, { registry, types: ['notes'] })).ok).toBe(true);
  });
});

/**
 * Four builds while another connection inserts encounters and edits notes (each write in its own transaction,
 * stamped by the deployment's tick trigger under its shared advisory lock), then one build after the writer stops.
 * Returns what the writer wrote.
 */
async function buildsBesideWriter(t: TestDatabase, registry: Registry): Promise<{ notes: string[]; encounters: string[]; inserted: number }> {
  const writer = new pg.Client({ connectionString: t.url });
  await writer.connect();
  const notes: string[] = [];
  const encounters: string[] = [];
  let stop = false;
  const writing = (async () => {
    for (let i = 0; !stop || i < 20; i++) {
      const { rows: [n] } = await writer.query<{ id: string }>(
        `UPDATE notes SET content = 'written ' || $1 WHERE id = (SELECT id FROM notes ORDER BY md5(id::text || $1) LIMIT 1) RETURNING id::text`, [i]);
      if (n && !notes.includes(n.id)) notes.push(n.id);
      const id = `writer-encounter-${i}`;
      await writer.query(`INSERT INTO encounters (id, patient_id, encounter_type) SELECT $1, id, 'clinic' FROM patients ORDER BY id LIMIT 1`, [id]);
      encounters.push(id);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    for (let b = 0; b < 3; b++) await buildLookup(t.db, { registry, chunkRows: 50 });
  } finally {
    stop = true;
    await writing;
    await writer.end();
  }
  await buildLookup(t.db, { registry });
  return { notes, encounters, inserted: 0 };
}
