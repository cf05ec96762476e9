import { mkdtemp, rm } from 'node:fs/promises';
import { chmod } from 'node:fs/promises';
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
