import { describe, expect, it } from 'vitest';
import { withClient } from '../../src/db/connection.js';
import { runDoctor } from '../../src/inspect/doctor.js';
import { explainHotQueries } from '../../src/inspect/explain.js';
import { exportStats } from '../../src/inspect/stats.js';
import { builtinRegistry, ModelRegistry } from '../../src/lookup/registry.js';
import { builtinHost, tamanuHost } from '../../src/lookup/hosts/index.js';
import { setupSourceTables } from '../../src/lookup/source.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { createOrigin, ORIGIN_MODELS_FILE } from './origin-fixture.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

/**
 * A migrated lookup with every built-in source table, then two that no longer match the registry: the least
 * frequent type's (the one explain picks for the model queries) lacks its last column; `users` lacks its table.
 */
async function partlyFittingDatabase(): Promise<{ t: TestDatabase; smallest: string; column: RegExp }> {
  const t = await createTestDatabase();
  await migrate(t.db, { migrations: builtinMigrations() });
  await fillSyntheticLookup(t, 20_000);
  await withClient(t.db, { purpose: 'test' }, (c) => setupSourceTables(c, builtinRegistry()));
  const { rows: [s] } = await t.query<{ v: string }>(
    `select v from pg_stats, unnest(most_common_vals::text::text[], most_common_freqs) as u(v, f)
      where tablename = 'sync_lookup' and attname = 'record_type' order by f limit 1`);
  const smallest = s!.v;
  const dropped = builtinRegistry().get(smallest).columns.at(-1)!.name;
  await t.query(`alter table ${smallest} drop column ${dropped}`);
  await t.query('drop table users');
  return { t, smallest, column: new RegExp(`${smallest}\\.${dropped}`) };
}

const MISSING_TABLE = 'source table users does not exist';

describe.runIf(hasServer())('explain and doctor on a database whose sources partly fit the registry', () => {
  it('skips the two models with the table or column that is missing; the verdict comes from the queries that run', async () => {
    const { t, smallest, column } = await partlyFittingDatabase();
    const r = await explainHotQueries(t.db);
    const model = (name: string) => r.models!.find((m) => m.name === name)!;
    expect(model(smallest)).toMatchObject({ status: 'skipped', missing: { tables: [] } });
    expect(model(smallest).missing.columns).toHaveLength(1);
    expect(model(smallest).skippedReason).toMatch(column);
    expect(model('users')).toMatchObject({ status: 'skipped', skippedReason: MISSING_TABLE, missing: { tables: ['users'], columns: [] } });
    expect(r.models!.filter((m) => m.status === 'ok')).toHaveLength(18);
    expect(r.verdict).not.toBe('fail');
    // The small type's source does not fit: the model queries are explained on the next small type, which does.
    expect(r.params?.smallType).toBe(smallest);
    const next = r.params!.smallTypes[1]!;
    for (const name of ['build_upsert', 'rebuild_type', 'verify_type']) {
      const q = r.queries.find((x) => x.name === name)!;
      expect(q.title, name).toMatch(new RegExp(`\\b${next}\\b`));
      expect(['ok', 'warn'], `${name}: ${q.reason}`).toContain(q.status);
      expect(q.skippedReason).toBeNull();
    }
    for (const q of r.queries) expect(q.status, q.name).toBe(q.verdict === 'error' ? 'fail' : q.verdict);
  });

  it('skips a model whose join table is missing, and one the planner rejects (an unqualified column), from EXPLAIN\'s error', async () => {
    const { t } = await partlyFittingDatabase();
    const base = builtinRegistry().models;
    const registry = new ModelRegistry([
      ...base.filter((m) => m.name !== 'facilities'),
      // An unqualified column the catalog check cannot place: only the planner finds it.
      { ...base.find((m) => m.name === 'facilities')!, facilityId: 'no_such_column' },
      { ...base.find((m) => m.name === 'reference_data')!, name: 'reference_joined', joins: [{ table: 'no_such_join', alias: 'j', on: 'j.id = s.id' }], patientId: 'j.patient_id' },
    ]);
    await t.query('create table reference_joined (like reference_data including all)');
    const r = await explainHotQueries(t.db, { registry, host: builtinHost });
    const model = (name: string) => r.models!.find((m) => m.name === name)!;
    expect(model('facilities').status).toBe('skipped');
    expect(model('facilities').skippedReason).toMatch(/the planner rejects its source query: column "no_such_column" does not exist/);
    expect(model('reference_joined')).toMatchObject({ status: 'skipped', skippedReason: 'table no_such_join does not exist', missing: { tables: ['no_such_join'] } });
    expect(model('reference_data').status).toBe('ok');
    expect(r.verdict).not.toBe('fail');
  });

  it('reads the models with the host\'s conventions: sources without pushed_by_device_id fit the tamanu host, not the builtin one', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 20_000);
    await withClient(t.db, { purpose: 'test' }, (c) => setupSourceTables(c, builtinRegistry()));
    // As ORIGIN.md has it: the device comes from sync_device_ticks, not from a column of the source row.
    for (const name of builtinRegistry().names) await t.query(`alter table ${name} drop column pushed_by_device_id`);
    await t.query('create table sync_device_ticks (persisted_at_sync_tick bigint primary key, device_id text not null)');

    const builtin = await explainHotQueries(t.db, { host: builtinHost });
    expect(builtin.host).toBe('builtin');
    expect(builtin.models!.filter((m) => m.status === 'skipped')).toHaveLength(20);
    expect(builtin.models![0]!.skippedReason).toMatch(/\.pushed_by_device_id$/);
    const upsert = builtin.queries.find((q) => q.name === 'build_upsert')!;
    expect(upsert).toMatchObject({ status: 'skipped', verdict: 'skipped' });
    expect(upsert.skippedReason).toMatch(/no model's source matches the registry/);
    expect(builtin.verdict).not.toBe('fail');

    const tamanu = await explainHotQueries(t.db, { host: tamanuHost });
    expect(tamanu.host).toBe('tamanu');
    expect(tamanu.models!.filter((m) => m.status !== 'ok')).toEqual([]);
    const q = tamanu.queries.find((x) => x.name === 'build_upsert')!;
    expect(['ok', 'warn'], q.reason).toContain(q.status);
    expect(q.sql).toMatch(/LEFT JOIN "sync_device_ticks"/);
  });

  it('doctor reports the skipped models as warnings with their reasons and finds no error', async () => {
    const { t, smallest, column } = await partlyFittingDatabase();
    const d = await runDoctor(t.db);
    expect(d.counts.error, JSON.stringify(d.findings.filter((f) => f.severity === 'error'))).toBe(0);
    const skipped = d.findings.filter((f) => f.check === 'model_skipped');
    expect(skipped.map((f) => f.subject).sort()).toEqual([smallest, 'users'].sort());
    expect(skipped.find((f) => f.subject === 'users')!.message).toBe(`skipped: ${MISSING_TABLE}`);
    expect(skipped.find((f) => f.subject === smallest)!.message).toMatch(column);
    expect(skipped.every((f) => f.severity === 'warning')).toBe(true);
    expect(d.models?.filter((m) => m.status === 'skipped')).toHaveLength(2);
    expect((await runDoctor(t.db, { explain: false })).models).toBeNull();
  });

  it.runIf(cliBuilt())('explain and doctor exit 0 and list both skipped models, in JSON and in text', async () => {
    const { t, smallest, column } = await partlyFittingDatabase();
    const env = { DATABASE_URL: t.url };
    const json = await runCli(['explain', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { models: { name: string; status: string; skipped_reason: string | null }[]; queries: { status: string; skipped_reason: string | null }[] };
    const skipped = report.models.filter((m) => m.status === 'skipped');
    expect(skipped.map((m) => m.name).sort()).toEqual([smallest, 'users'].sort());
    expect(skipped.find((m) => m.name === 'users')!.skipped_reason).toBe(MISSING_TABLE);
    expect(skipped.find((m) => m.name === smallest)!.skipped_reason).toMatch(column);
    expect(report.queries.every((q) => ['ok', 'warn', 'fail', 'skipped'].includes(q.status) && 'skipped_reason' in q)).toBe(true);

    const text = await runCli(['explain'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/models: 18 of 20 fit this database/);
    expect(text.stdout).toContain(`SKIPPED users: ${MISSING_TABLE}`);
    expect(text.stdout).toMatch(new RegExp(`SKIPPED ${smallest}: .*${column.source}`));

    const doctor = await runCli(['doctor', '--json'], env);
    expect(doctor.code, doctor.stdout).toBe(0);
    const d = JSON.parse(doctor.stdout) as { models: { name: string; status: string; skipped_reason: string | null }[] };
    expect(d.models.filter((m) => m.status === 'skipped').map((m) => m.name).sort()).toEqual([smallest, 'users'].sort());
    const doctorText = await runCli(['doctor'], env);
    expect(doctorText.code).toBe(0);
    expect(doctorText.stdout).toContain(`WARNING model_skipped users: skipped: ${MISSING_TABLE}`);
    expect(doctorText.stdout).toMatch(new RegExp(`WARNING model_skipped ${smallest}: skipped: .*${column.source}`));
  });
});

describe.runIf(hasServer() && cliBuilt())('explain and doctor on an adopted origin-shaped deployment (ORIGIN.md)', () => {
  it('exit 0: the built-in models that do not match are skipped, and with the deployment\'s registry every model fits', async () => {
    const t = await createTestDatabase();
    await createOrigin(t, 300);
    const env = { DATABASE_URL: t.url };
    const adopt = await runCli(['migrate', '--adopt'], env);
    expect(adopt.code, adopt.stderr).toBe(0);

    type Report = { verdict: string; host: string; models: { name: string; status: string; skipped_reason: string | null }[]; queries: { name: string; status: string; reason: string }[] };
    const builtin = await runCli(['explain', '--json'], env);
    expect(builtin.code, builtin.stdout).toBe(0);
    const b = JSON.parse(builtin.stdout) as Report;
    expect(b.host).toBe('tamanu');
    const status = (r: Report, name: string) => r.models.find((m) => m.name === name);
    // Source tables the deployment has, with columns the built-in models name and it does not; the rest absent.
    expect(status(b, 'facilities')).toMatchObject({ status: 'skipped', skipped_reason: expect.stringMatching(/facilities\.type/) as unknown });
    expect(status(b, 'vitals')).toMatchObject({ status: 'skipped', skipped_reason: 'source table vitals does not exist' });
    expect(b.models.filter((m) => m.status === 'fail')).toEqual([]);
    for (const q of b.queries.filter((x) => x.status === 'fail')) expect.fail(`${q.name}: ${q.reason}`);

    const own = await runCli(['explain', '--json', '--models', ORIGIN_MODELS_FILE], env);
    expect(own.code, own.stdout).toBe(0);
    const o = JSON.parse(own.stdout) as Report;
    expect(o.models.map((m) => `${m.name} ${m.status}`)).toEqual(['facilities', 'patients', 'encounters', 'notes', 'lab_requests', 'patient_program_registrations'].map((n) => `${n} ok`));
    for (const name of ['build_upsert', 'rebuild_type', 'verify_type']) expect(o.queries.find((q) => q.name === name)!.status, name).not.toBe('skipped');

    const doctor = await runCli(['doctor', '--json', '--models', ORIGIN_MODELS_FILE], env);
    expect(doctor.code, doctor.stdout).toBe(0);
    const builtinDoctor = await runCli(['doctor'], env);
    expect(builtinDoctor.code, builtinDoctor.stdout).toBe(0);
    expect(builtinDoctor.stdout).toMatch(/WARNING model_skipped vitals: skipped: source table vitals does not exist/);
  });
});

const NAME = 'Quaxtonbury';

describe.runIf(hasServer())('stats export leaks no sample values by default', () => {
  it('exports most common values and histograms only for sync_lookup.record_type unless values are asked for', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    await withClient(t.db, { purpose: 'test' }, (c) => setupSourceTables(c, builtinRegistry()));
    await t.query(`insert into patients (id, first_name, last_name, notes)
      select gen_random_uuid(), case when g % 3 = 0 then $1 else 'Ann' || g end, 'Smith' || (g % 7), 'seen for cough ' || g
        from generate_series(1, 300) g`, [NAME]);
    await t.query('analyze');
    // The statistics do hold the name: an export that copied pg_stats would leak it.
    const { rows: [s] } = await t.query<{ n: string }>(
      `select count(*)::text as n from pg_stats where tablename = 'patients' and (most_common_vals::text like $1 or histogram_bounds::text like $1)`, [`%${NAME}%`]);
    expect(Number(s!.n)).toBeGreaterThan(0);

    const doc = await exportStats(t.db);
    expect(doc.includesValues).toBe(false);
    expect(JSON.stringify(doc)).not.toContain(NAME);
    expect(JSON.stringify(doc)).not.toMatch(/Smith|seen for cough/);
    const withValues = doc.tables.flatMap((x) => x.columns.filter((c) => c.mostCommonVals !== null || c.histogramBounds !== null).map((c) => `${x.name}.${c.name}`));
    expect(withValues).toEqual(['sync_lookup.record_type']);
    const patients = doc.tables.find((x) => x.name === 'patients')!;
    const first = patients.columns.find((c) => c.name === 'first_name')!;
    // What the linter needs without values is still there.
    expect(patients.rows).toBe(300);
    expect(first.nullFrac).toBe(0);
    expect(first.nDistinct).not.toBeNull();
    expect(first.avgWidth).toBeGreaterThan(0);
    expect(doc.tables.find((x) => x.name === 'sync_lookup')!.columns.find((c) => c.name === 'record_type')!.mostCommonVals).toHaveLength(20);

    const full = await exportStats(t.db, { includeValues: true });
    expect(full.includesValues).toBe(true);
    expect(JSON.stringify(full)).toContain(NAME);
    expect(full.tables.find((x) => x.name === 'patients')!.columns.find((c) => c.name === 'notes')!.histogramBounds?.length).toBeGreaterThan(10);

    if (!cliBuilt()) return;
    const cli = await runCli(['stats', 'export'], { DATABASE_URL: t.url });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).not.toContain(NAME);
    expect(JSON.parse(cli.stdout)).toMatchObject({ includes_values: false });
    const cliFull = await runCli(['stats', 'export', '--include-values'], { DATABASE_URL: t.url });
    expect(cliFull.code, cliFull.stderr).toBe(0);
    expect(cliFull.stdout).toContain(NAME);
  });

  it('keeps record_type values on the partitioned layout, for the parent and its partitions only', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations({ layout: 'partitioned', partitionTypes: ['notes', 'vitals'] }) });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
      select g::text, (array['notes', 'vitals', 'patients'])[1 + g % 3], '{}', g, $1 || (g % 5) from generate_series(1, 3000) g`, [NAME]);
    await t.query('analyze sync_lookup');
    const doc = await exportStats(t.db);
    const withValues = doc.tables.flatMap((x) => x.columns.filter((c) => c.mostCommonVals !== null).map((c) => `${x.name}.${c.name}`));
    expect(withValues.sort()).toEqual(doc.tables.filter((x) => x.name === 'sync_lookup' || x.partitionOf !== null)
      .map((x) => `${x.name}.record_type`).sort());
    expect(withValues.length).toBeGreaterThan(1);
    expect(JSON.stringify(doc)).not.toContain(NAME);
  });
});
