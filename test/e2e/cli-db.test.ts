import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { cliBuilt, runCli } from '../helpers/cli.js';

// The embedded server is PostgreSQL 18 whatever the project; run this once.
describe.runIf(cliBuilt() && process.env.SYNC_LOOKUP_TEST_PG === '18')('sync-lookup db start|status|url|stop', () => {
  let root = '';
  afterAll(async () => {
    if (root) {
      await runCli(['--embedded-dir', path.join(root, 'pg'), 'db', 'stop']);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps the embedded server up after db start, prints a usable URL, and stops it', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sl-db-'));
    await chmod(root, 0o755);
    const dir = ['--embedded-dir', path.join(root, 'pg')];
    expect((await runCli([...dir, 'db', 'status'])).stdout.trim()).toBe('not running');
    const notRunning = await runCli([...dir, 'db', 'url']);
    expect(notRunning.code).toBe(2);
    expect(notRunning.stderr).toMatch(/not running; start it with `sync-lookup db start`/);

    const start = await runCli([...dir, 'db', 'start', '--json']);
    expect(start.code).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ running: true, started: true });
    const url = (await runCli([...dir, 'db', 'url'])).stdout.trim();
    expect(url).toMatch(/^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/sync_lookup$/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ v: string }>(`select current_setting('server_version_num') as v`);
    await client.end();
    expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(180000);

    // A command reuses the running server and leaves it running.
    const migrate = await runCli([...dir, 'migrate']);
    expect(migrate.code).toBe(0);
    expect(JSON.parse((await runCli([...dir, 'db', 'status', '--json'])).stdout)).toMatchObject({ running: true, url });

    expect((await runCli([...dir, 'db', 'stop'])).stdout.trim()).toBe('stopped');
    expect((await runCli([...dir, 'db', 'status'])).stdout.trim()).toBe('not running');
  });
});

describe.runIf(cliBuilt() && process.env.SYNC_LOOKUP_TEST_PG === '18')('sync-lookup db stop --force | db destroy', () => {
  let root = '';
  afterAll(async () => {
    if (root) {
      await runCli(['--embedded-dir', path.join(root, 'pg'), 'db', 'stop', '--force']);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('db stop refuses while another session uses the server, naming it; --force stops it; destroy removes only its own folders', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sl-db-'));
    await chmod(root, 0o755);
    const before = await stat(root);
    const dataDir = path.join(root, 'work', 'pg');
    const dir = ['--embedded-dir', dataDir];
    expect((await runCli([...dir, 'db', 'start'])).code).toBe(0);
    const url = (await runCli([...dir, 'db', 'url'])).stdout.trim();
    const client = new pg.Client({ connectionString: url, application_name: 'a-long-report' });
    client.on('error', () => {}); // the forced stop below ends this session on purpose
    await client.connect();
    const { rows: [me] } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    try {
      const refused = await runCli([...dir, 'db', 'stop']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`pid ${me!.pid} (a-long-report)`);
      expect(refused.stderr).toMatch(/--force/);
      const destroyRefused = await runCli([...dir, 'db', 'destroy']);
      expect(destroyRefused.code).toBe(2);
      expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
      const forced = await runCli([...dir, 'db', 'stop', '--force', '--json']);
      expect(forced.code).toBe(0);
      expect(JSON.parse(forced.stdout)).toEqual({ stopped: true });
    } finally {
      await client.end().catch(() => {});
    }
    const destroyed = await runCli([...dir, 'db', 'destroy', '--json']);
    expect(destroyed.code).toBe(0);
    expect(JSON.parse(destroyed.stdout)).toEqual({ stopped: false, removed: [dataDir, path.join(root, 'work')] });
    expect(await readdir(root)).toEqual([]);
    const after = await stat(root);
    expect([after.uid, after.mode]).toEqual([before.uid, before.mode]);

    // A folder that is not a cluster sync-lookup created is refused, and left alone.
    await mkdir(path.join(root, 'mine'));
    await writeFile(path.join(root, 'mine', 'notes.txt'), 'keep');
    const foreign = await runCli(['--embedded-dir', path.join(root, 'mine'), 'db', 'destroy']);
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toMatch(/is not a cluster sync-lookup created .*nothing was removed/);
    expect(await readdir(path.join(root, 'mine'))).toEqual(['notes.txt']);

    const devNull = await runCli(['--embedded-dir', '/dev/null/pg', 'status']);
    expect(devNull.code).toBe(2);
    expect(devNull.stderr).toMatch(/cannot create the embedded data folder \/dev\/null\/pg: \/dev\/null is not a folder/);
    expect(devNull.stderr).not.toMatch(/EEXIST/);
  });
});
