import { describe, expect, it } from 'vitest';
import { cliBuilt, parseJsonOutput, runCli, type JsonOutput } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { checkGolden, goldenOf } from '../helpers/golden.js';

/*
 * The --json contract of every command, against a real database: NDJSON (events first, the result or the
 * error last, one line each), snake_case keys, and each command's shape as in test/golden/<name>.json
 * (values normalised to their types; SYNC_LOOKUP_UPDATE_GOLDEN=1 rewrites the files). The commands run in
 * the order a user would, on one small seeded database.
 */
describe.runIf(hasServer() && cliBuilt())('--json output of every command (golden files)', () => {
  let t: TestDatabase;
  let env: Record<string, string>;

  /** Runs `sync-lookup <args> --json`, checks it against its golden file, and returns its output. */
  async function golden(name: string, args: string[], exitCode = 0): Promise<JsonOutput> {
    const r = await runCli([...args, '--json'], env);
    expect(r.code, `${args.join(' ')}: ${r.stderr}${r.stdout.slice(-400)}`).toBe(exitCode);
    const output = parseJsonOutput(r.stdout);
    if (!output.events.length) expect(r.stdout.split('\n'), 'without events: exactly one line').toHaveLength(2);
    const camel = [...r.stdout.matchAll(/"([a-z][a-z0-9]*[A-Z][A-Za-z0-9]*)":/g)].map((m) => m[1]);
    expect(camel, `${name}: camelCase keys`).toEqual([]);
    const diffs = await checkGolden(name, goldenOf(`sync-lookup ${args.join(' ')} --json`, r.code, output));
    expect(diffs, `${name}: differs from test/golden/${name}.json`).toEqual([]);
    return output;
  }

  it('migrate --dry-run, migrate, status', async () => {
    t = await createTestDatabase();
    env = { DATABASE_URL: t.url };
    const dry = await golden('migrate-dry-run', ['migrate', '--dry-run']);
    expect(dry.last).toMatchObject({ dry_run: true, applied: [] });
    const run = await golden('migrate', ['migrate']);
    expect(run.events.map((e) => e.type)).toContain('migration_done');
    await golden('status', ['status']);
  });

  it('seed, build, pull', async () => {
    const seed = await golden('seed', ['seed', '--rows', '2000', '--seed', '7']);
    const endTick = (seed.last.build as { end_tick: number }).end_tick;
    await t.query(`update notes set content = 'edited' where id in (select id from notes order by id limit 5)`);
    const build = await golden('build', ['build']);
    expect(build.last).toMatchObject({ rows: 5, since_tick: endTick - 1 });
    const pull = await golden('pull', ['pull', '--since', String(endTick)]);
    expect(pull.last).toMatchObject({ rows: 5, types: { notes: 5 } });
  });

  it('verify, consistent and with problems; rebuild repairs; resync', async () => {
    await golden('verify', ['verify']);
    await t.query(`delete from sync_lookup where id = (select min(id) from sync_lookup where record_type = 'vitals')`);
    await t.query(`update sync_lookup set data = json_build_object('id', record_id) where id = (select min(id) from sync_lookup where record_type = 'notes')`);
    const bad = await golden('verify-problems', ['verify'], 3);
    expect(bad.last).toMatchObject({ ok: false, problems: { missing: { count: 1 }, data_differs: { count: 1 } } });
    await golden('rebuild-dry-run', ['rebuild', 'vitals', 'notes', '--dry-run']);
    const rebuild = await golden('rebuild', ['rebuild', 'vitals', 'notes']);
    expect(rebuild.last).toMatchObject({ operation: 'rebuild', rows_inserted: 1, rows_updated: 1 });
    await golden('resync', ['resync', 'patient_program_registrations']);
    expect((await runCli(['verify'], env)).code).toBe(0);
  });

  it('purge --dry-run and purge, jobs', async () => {
    await golden('purge-dry-run', ['purge', 'encounter_medications', '--dry-run']);
    const purge = await golden('purge', ['purge', 'encounter_medications']);
    expect(purge.last).toMatchObject({ operation: 'purge', record_types: ['encounter_medications'] });
    await golden('jobs', ['jobs']);
    const all = await golden('jobs-all', ['jobs', '--all']);
    expect((all.last.jobs as { operation: string }[]).map((j) => j.operation).sort()).toEqual(['purge', 'rebuild', 'resync']);
  });

  it('doctor, explain, index estimate, index watch, stats export', async () => {
    await golden('doctor', ['doctor']);
    await golden('explain', ['explain']);
    await golden('explain-sql', ['explain', '--sql', "select count(*) from sync_lookup where record_type = 'notes'"]);
    await golden('index-estimate', ['index', 'estimate', 'sync_lookup(record_type, updated_at_sync_tick)']);
    await golden('index-watch', ['index', 'watch']);
    await golden('stats-export', ['stats', 'export', '--tables', 'sync_lookup,sync_lookup_ticks']);
  });

  it('errors: a usage error from Commander, a bad value, a runtime failure; --version', async () => {
    await golden('error-unknown-option', ['migrate', '--no-such-flag'], 2);
    await golden('error-invalid-option', ['pull', '--since', 'x'], 2);
    await golden('error-sql', ['explain', '--sql', 'select * from no_such_table'], 2);
    await golden('version', ['--version']);
  });
});
