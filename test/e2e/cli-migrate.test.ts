import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, hasServer } from '../helpers/db.js';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';

describe.runIf(hasServer() && cliBuilt())('sync-lookup migrate / status (built CLI)', () => {
  it('migrates, reports status as JSON, and is a no-op the second time', async () => {
    const t = await createTestDatabase();
    const dry = await runCli(['migrate', '--dry-run'], { DATABASE_URL: t.url });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('-- 0002_sync_lookup_record_type_index (not transactional)');
    expect(dry.stdout).toContain('CREATE INDEX CONCURRENTLY "sync_lookup_record_type_updated_at_sync_tick"');

    const run = await runCli(['migrate', '--json'], { DATABASE_URL: t.url });
    expect(run.code).toBe(0);
    const { events, last: result } = parseJsonOutput(run.stdout);
    expect(events.map((e) => e.type)).toContain('index_build_done');
    expect(events.find((e) => e.type === 'migration_done')).toMatchObject({ name: '0001_baseline', duration_ms: expect.any(Number) });
    expect(result.dry_run).toBe(false);
    expect((result.applied as { name: string }[]).map((a) => a.name)).toEqual(['0001_baseline', '0002_sync_lookup_record_type_index', '0003_deployment_shape', '0004_sync_lookup_needs_rebuild_index']);

    const status = await runCli(['status', '--json'], { DATABASE_URL: t.url });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).migrations.map((m: { status: string }) => m.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
    const again = await runCli(['migrate'], { DATABASE_URL: t.url });
    expect(again.stdout.trim()).toBe('already up to date; host: builtin');
  });

  it('Ctrl-C cancels the running migration, exits 130 and leaves the ledger consistent', async () => {
    const t = await createTestDatabase();
    const dir = await mkdtemp(path.join(tmpdir(), 'sl-mig-'));
    await writeFile(path.join(dir, '0100_slow.sql'), 'create table slow_marker (id int);\nselect pg_sleep(60);\n');
    const started = Date.now();
    const r = await runCli(['migrate', '--dir', dir], { DATABASE_URL: t.url }, (child) => {
      child.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('applying 0100_slow')) setTimeout(() => child.kill('SIGINT'), 300); });
    });
    expect(r.code).toBe(130);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/0100_slow was cancelled and rolled back; the ledger is unchanged/);
    const { rows } = await t.query(`select array_agg(name order by name) as names, to_regclass('slow_marker') as marker from sync_lookup_tool.migrations`);
    expect(rows[0]).toEqual({ names: ['0001_baseline', '0002_sync_lookup_record_type_index', '0003_deployment_shape', '0004_sync_lookup_needs_rebuild_index'], marker: null });
  });

  it('names each bad DATABASE_URL problem in one line, without a stack trace', async () => {
    const t = await createTestDatabase();
    const wrongPassword = t.url.replace('postgres:postgres@', 'postgres:wrong@');
    const missingDb = t.url.replace(/\/[^/]+$/, '/no_such_db');
    const cases: [string, number, RegExp][] = [
      ['not a url', 2, /DATABASE_URL is not a valid URL: "not a url"/],
      ['mysql://u@localhost/db', 2, /must start with postgres:\/\/ or postgresql:\/\/, got "mysql:"/],
      ['postgres://u@127.0.0.1:1/db', 1, /cannot connect to postgres:\/\/u@127\.0\.0\.1:1\/db: connection refused/],
      [wrongPassword, 2, /cannot log in to .*password authentication failed for user "postgres"/],
      [missingDb, 2, /database "no_such_db" does not exist/],
    ];
    for (const [url, code, message] of cases) {
      const r = await runCli(['status'], { DATABASE_URL: url });
      expect({ url, code: r.code }).toEqual({ url, code });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain('wrong'); // the password is never echoed
    }
    const json = await runCli(['status', '--json'], { DATABASE_URL: 'not a url' });
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'invalid_database_url', message: expect.any(String), details: {} } });
  });

  it('usage errors exit 2; under --json as one {"error"} line on stdout, not Commander\'s text', async () => {
    const r = await runCli(['migrate', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
    const cases: [string[], string, string][] = [
      [['migrate', '--no-such-flag', '--json'], 'unknown_option', "unknown option '--no-such-flag'"],
      [['seed', '--json'], 'missing_mandatory_option_value', "required option '--rows <n>' not specified"],
      [['pull', '--json', '--since'], 'option_missing_argument', "option '--since <tick>' argument missing"],
      [['no-such-command', '--json'], 'unknown_command', "unknown command 'no-such-command'"],
    ];
    for (const [args, code, message] of cases) {
      const j = await runCli(args);
      expect({ args, code: j.code, stderr: j.stderr }).toEqual({ args, code: 2, stderr: '' });
      expect(j.stdout.split('\n')).toHaveLength(2); // one line and its newline
      expect(JSON.parse(j.stdout)).toEqual({ error: { code, message, details: {} } });
    }
  });

  it('--version prints the version of package.json (as {"version"} under --json)', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    const plain = await runCli(['--version']);
    expect({ code: plain.code, stdout: plain.stdout }).toEqual({ code: 0, stdout: `${version}\n` });
    const json = await runCli(['--version', '--json']);
    expect({ code: json.code, stdout: json.stdout }).toEqual({ code: 0, stdout: `${JSON.stringify({ version })}\n` });
    // Read at run time, not built in: a copy of dist/ beside another package.json reports that one's version.
    const root = await mkdtemp(path.join(tmpdir(), 'sl-version-'));
    await cp('dist', path.join(root, 'dist'), { recursive: true });
    await symlink(path.resolve('node_modules'), path.join(root, 'node_modules'));
    await writeFile(path.join(root, 'package.json'), JSON.stringify({ name: 'sync-lookup', version: '9.8.7-test', type: 'module' }));
    const copy = spawnSync(process.execPath, [path.join(root, 'dist/cli/main.js'), '--version'], { encoding: 'utf8' });
    await rm(root, { recursive: true, force: true });
    expect(copy.stdout).toBe('9.8.7-test\n');
  });
});
