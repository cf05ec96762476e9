import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';
import { checkGolden, goldenOf } from '../helpers/golden.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

/*
 * `sync-lookup lint` as a user runs it: a folder of migrations in four styles (SQL, Sequelize, Knex,
 * TypeORM, node-pg-migrate), against a schema dump with assumed sizes and against a live database (its
 * catalog and statistics), on PostgreSQL 18 and 15.
 */

const SCHEMA = path.resolve('test/fixtures/origin/schema.sql');
const PG_DUMP_15 = '/usr/lib/postgresql/15/bin/pg_dump';

/** The migrations, written from literals into a temporary folder. */
const MIGRATIONS: Record<string, string> = {
  '001_patient_index.sql': '--! no-transaction\nCREATE INDEX CONCURRENTLY sync_lookup_patient_tick ON sync_lookup (patient_id, updated_at_sync_tick);\n',
  '002-purge-registrations.ts': [
    "import { QueryInterface } from 'sequelize';",
    'export async function up(query: QueryInterface): Promise<void> {',
    '  await query.sequelize.query(`DELETE FROM sync_lookup WHERE record_type = \'patient_program_registrations\'`);',
    '  await query.sequelize.query(`SELECT flag_lookup_model_to_rebuild(\'patient_program_registrations\')`);',
    '}',
    'export async function down(): Promise<void> {}',
  ].join('\n'),
  '003_check_empty.js': [
    'exports.up = async (knex) => {',
    "  const { rows } = await knex.raw('SELECT count(*) = 0 AS empty FROM sync_lookup');",
    '  return rows;',
    '};',
    'exports.down = async () => {};',
  ].join('\n'),
  '004-AddFacilityIndex.ts': [
    'export class AddFacilityIndex1700000000004 {',
    '  async up(queryRunner) {',
    '    await queryRunner.query(`CREATE INDEX sync_lookup_facility ON sync_lookup (facility_id)`);',
    '  }',
    '  async down(queryRunner) { await queryRunner.query(`DROP INDEX sync_lookup_facility`); }',
    '}',
  ].join('\n'),
  '005_touch_one.js': [
    'exports.up = (pgm) => {',
    "  pgm.sql(`UPDATE sync_lookup SET needs_rebuild = true WHERE record_id = 'p1' AND record_type = 'patients'`);",
    "  pgm.sql(`DELETE FROM sync_lookup WHERE patient_id = 'p1'`);",
    '};',
  ].join('\n'),
};

/** `file rule level` of each finding of a `--json` result. */
function summary(stdout: string): string[] {
  const r = JSON.parse(stdout) as { findings: { file: string; rule: string; level: string; phase: string }[] };
  return r.findings.map((f) => `${path.basename(f.file)} ${f.rule} ${f.level}${f.phase === 'down' ? ' (down)' : ''}`);
}

const EXPECTED_AT_58M = [
  '002-purge-registrations.ts unindexed-filter error',
  '003_check_empty.js count-for-emptiness error',
  '004-AddFacilityIndex.ts non-concurrent-index error',
  '004-AddFacilityIndex.ts non-concurrent-index error (down)',
  '004-AddFacilityIndex.ts missing-lock-timeout warning (down)',
];

describe.runIf(cliBuilt() && hasServer())('sync-lookup lint', () => {
  let dir = '';
  let t: TestDatabase;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sl-lint-'));
    for (const [name, text] of Object.entries(MIGRATIONS)) await writeFile(path.join(dir, name), text);
    t = await createTestDatabase();
    await t.query(readFileSync(SCHEMA, 'utf8'));
    await t.query(`INSERT INTO sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
                   SELECT 'r' || g, CASE WHEN g % 3 = 0 THEN 'notes' ELSE 'patients' END, '{}', g, 'p' || (g % 50)
                     FROM generate_series(1, 3000) g`);
    await t.query('ANALYZE sync_lookup');
  });
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('against a schema dump: errors at 58 M rows (exit 3), clean at 5 000 (exit 0)', async () => {
    const big = await runCli(['lint', dir, '--schema', SCHEMA, '--assume-rows', 'sync_lookup=58000000', '--json']);
    expect(big.stderr).toBe('');
    expect(summary(big.stdout)).toEqual(EXPECTED_AT_58M);
    expect(big.code).toBe(3);
    const r = JSON.parse(big.stdout) as Record<string, unknown>;
    expect(r).toMatchObject({ statements: 8, errors: 4, warnings: 1, schema_source: 'schema dump' });
    // The --json contract: one line, snake_case keys, the shape in test/golden/lint.json.
    expect([...big.stdout.matchAll(/"([a-z][a-z0-9]*[A-Z][A-Za-z0-9]*)":/g)].map((m) => m[1])).toEqual([]);
    const golden = goldenOf('sync-lookup lint <dir> --schema schema.sql --assume-rows sync_lookup=58000000 --json', big.code, parseJsonOutput(big.stdout));
    expect(await checkGolden('lint', golden)).toEqual([]);
    const small = await runCli(['lint', dir, '--schema', SCHEMA, '--assume-rows', 'sync_lookup=5000']);
    expect(small.code).toBe(0);
    expect(small.stdout).toMatch(/004-AddFacilityIndex.ts:5:.* warning missing-lock-timeout \(down\)/);
    expect(small.stdout).toMatch(/5 file\(s\), 8 statement\(s\): 0 error\(s\), 1 warning\(s\)/);
  });

  it('against the live database: its schema and its statistics', async () => {
    const live = await runCli(['lint', dir, '--large-table-rows', '1000', '--json'], { DATABASE_URL: t.url });
    expect(live.stderr).toBe('');
    expect(summary(live.stdout)).toEqual(EXPECTED_AT_58M);
    const r = JSON.parse(live.stdout) as { findings: { message: string; evidence: Record<string, unknown> }[]; schema_source: string };
    expect(r.schema_source).toBe('database');
    expect(r.findings[0]!.evidence.rows).toBe(3000);
    expect(r.findings[0]!.evidence.size_source).toBe('database');
    // The CREATE INDEX is estimated by index estimate itself, measured on the database.
    expect(r.findings[2]!.evidence).toMatchObject({ estimate_source: 'index estimate (measured)' });
    expect(r.findings[2]!.evidence.index_bytes).toBeGreaterThan(8192);
    expect(r.findings[2]!.message).toMatch(/index estimate on the database predicts/);
    // Below the threshold the same database is small: clean.
    const small = await runCli(['--database-url', t.url, 'lint', dir], {});
    expect(small.code).toBe(0);
  });

  it("against the same database's stats export (schema and sizes from the file)", async () => {
    const exported = await runCli(['stats', 'export'], { DATABASE_URL: t.url });
    expect(exported.code).toBe(0);
    const file = path.join(dir, '..', `${path.basename(dir)}-stats.json`);
    await writeFile(file, exported.stdout);
    const r = await runCli(['lint', dir, '--stats', file, '--large-table-rows', '1000', '--json']);
    expect(r.stderr).toBe('');
    expect(summary(r.stdout)).toEqual(EXPECTED_AT_58M);
    expect(JSON.parse(r.stdout)).toMatchObject({ schema_source: 'stats' });
    await rm(file);
  });

  // Debian's pg_dump 15 dumps a PostgreSQL 15 server only (pg_dump refuses newer servers).
  it.runIf(existsSync(PG_DUMP_15) && process.env.SYNC_LOOKUP_TEST_PG === '15')('against the database\'s own pg_dump --schema-only output (PostgreSQL 15)', async () => {
    const dump = path.join(dir, '..', `${path.basename(dir)}-schema.sql`);
    execFileSync(PG_DUMP_15, ['--schema-only', '--no-owner', '-f', dump, t.url]);
    const r = await runCli(['lint', dir, '--schema', dump, '--assume-rows', 'sync_lookup=58000000', '--json']);
    expect(r.stderr).toBe('');
    expect(summary(r.stdout)).toEqual(EXPECTED_AT_58M);
    expect(JSON.parse(r.stdout)).toMatchObject({ schema_source: 'schema dump', notes: [] });
    await rm(dump);
  });

  it('SARIF and GitHub formats; bad input exits 2', async () => {
    const sarif = await runCli(['lint', dir, '--schema', SCHEMA, '--assume-rows', 'sync_lookup=58M', '--format', 'sarif']);
    expect(sarif.code).toBe(3);
    const log = JSON.parse(sarif.stdout) as { version: string; runs: { results: unknown[] }[] };
    expect(log.version).toBe('2.1.0');
    expect(log.runs[0]!.results).toHaveLength(5);
    const gh = await runCli(['lint', dir, '--schema', SCHEMA, '--assume-rows', 'sync_lookup=58M', '--format', 'github']);
    expect(gh.stdout.split('\n').filter(Boolean)).toHaveLength(5);
    expect(gh.stdout).toMatch(/^::error file=.*002-purge-registrations.ts,line=3,col=32,title=sync-lookup lint unindexed-filter::/m);
    // --models and --config: a live type deleted without its rebuild; a config that lowers a rule, and one that is wrong.
    const one = await mkdtemp(path.join(tmpdir(), 'sl-lint-one-'));
    await writeFile(path.join(one, '001.sql'), "DELETE FROM sync_lookup WHERE record_type = 'patients';\n");
    const models = path.resolve('test/fixtures/origin/models.json');
    const live = await runCli(['lint', one, '--schema', SCHEMA, '--models', models, '--json']);
    expect(summary(live.stdout)).toEqual(['001.sql unindexed-filter warning', '001.sql sync-lookup-live-type-delete error']);
    expect(live.code).toBe(3);
    await writeFile(path.join(one, 'lint.json'), JSON.stringify({ rules: { 'sync-lookup-live-type-delete': 'warning' }, assume_rows: { sync_lookup: 10 } }));
    const lowered = await runCli(['lint', path.join(one, '001.sql'), '--schema', SCHEMA, '--models', models, '--config', path.join(one, 'lint.json'), '--json']);
    expect(summary(lowered.stdout)).toEqual(['001.sql sync-lookup-live-type-delete warning']);
    expect(lowered.code).toBe(0);
    await writeFile(path.join(one, 'bad.json'), JSON.stringify({ rules: { 'no-such-rule': 'error' }, large_table_rows: -1 }));
    const bad = await runCli(['lint', path.join(one, '001.sql'), '--config', path.join(one, 'bad.json'), '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'invalid_config' } });
    expect(JSON.stringify(JSON.parse(bad.stdout))).toMatch(/rules.*large_table_rows|largeTableRows/);
    await rm(one, { recursive: true, force: true });
    // An unparsable file exits 2, naming file, line and the parser's message; the other files are still linted.
    const mixed = await mkdtemp(path.join(tmpdir(), 'sl-lint-mixed-'));
    await writeFile(path.join(mixed, '001.sql'), 'SELECT 1;\nALTER TABLE t ADD INDEX i USING BTREE (a);\n');
    await writeFile(path.join(mixed, '002.sql'), "DELETE FROM sync_lookup WHERE record_type = 'x';\n");
    const unparsable = await runCli(['lint', mixed, '--schema', SCHEMA, '--assume-rows', 'sync_lookup=58M']);
    expect(unparsable.code).toBe(2);
    expect(unparsable.stdout).toMatch(/001\.sql:2:\d+: error parse-error: .*syntax error at or near "USING"/);
    expect(unparsable.stdout).toMatch(/002\.sql:1:1: error unindexed-filter/);
    await rm(mixed, { recursive: true, force: true });
    const missing = await runCli(['lint', path.join(dir, 'nope.sql'), '--json']);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { code: 'missing_file' } });
    const badRows = await runCli(['lint', dir, '--assume-rows', 'sync_lookup']);
    expect(badRows.code).toBe(2);
    expect(badRows.stderr).toMatch(/--assume-rows takes TABLE=N/);
  });
});
