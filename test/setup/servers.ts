import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded, stopEmbedded } from '../../src/db/embedded.js';
import { initCluster, postgresOsUser, startLocalServer, stopLocalServer } from '../../src/db/local-server.js';

/** Settings of the throwaway test servers (never of a user's server). */
const TEST_SETTINGS = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } as const;

/** Debian's PostgreSQL 15 (production sites run versions without skip scan). */
export const PG15_BIN = process.env.PG15_BIN ?? '/usr/lib/postgresql/15/bin';

/** A throwaway server for one test run: its admin URL and how to stop it. */
export interface TestServer { url: string; stop(): Promise<void> }

/** Starts the embedded PostgreSQL 18 in a temporary folder. */
export async function startPg18(): Promise<TestServer> {
  const root = await mkdtemp(path.join(tmpdir(), 'sync-lookup-pg18-'));
  await chmod(root, 0o755); // the server runs as the postgres OS user when we are root
  const dataDir = path.join(root, 'pg');
  const server = await startEmbedded({ dataDir });
  // Throwaway test clusters skip fsync: timing assertions (insert stalls) must not measure the disk of a
  // busy CI machine. Reloadable settings, so the embedded server's own start is left unchanged.
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  for (const [name, value] of Object.entries(TEST_SETTINGS)) await admin.query(`alter system set ${name} = '${value}'`);
  await admin.query('select pg_reload_conf()');
  await admin.end();
  return {
    url: server.url.replace(/\/sync_lookup$/, '/postgres'),
    async stop() { await stopEmbedded({ dataDir, force: true }); await rm(path.dirname(dataDir), { recursive: true, force: true }); },
  };
}

/** Starts Debian's PostgreSQL 15 in a temporary folder, or returns undefined when it is not installed. */
export async function startPg15(): Promise<TestServer | undefined> {
  if (!existsSync(path.join(PG15_BIN, 'initdb'))) return undefined;
  const root = await mkdtemp(path.join(tmpdir(), 'sync-lookup-pg15-'));
  await chmod(root, 0o755); // the server runs as the postgres OS user when we are root
  const dataDir = path.join(root, 'pg');
  await initCluster({ binDir: PG15_BIN, dataDir, password: 'postgres' });
  const owner = await postgresOsUser();
  const opts = { dataDir, binDir: PG15_BIN, ...(owner ? { runAs: owner } : {}) };
  const server = await startLocalServer({ ...opts, settings: { shared_buffers: '256MB', max_wal_size: '4GB', shared_preload_libraries: 'pg_stat_statements', ...TEST_SETTINGS } });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${server.port}/postgres`,
    async stop() { await stopLocalServer(opts); await rm(root, { recursive: true, force: true }); },
  };
}
