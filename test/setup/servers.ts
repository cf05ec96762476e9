import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmbedded, stopEmbedded } from '../../src/db/embedded.js';
import { makeOwnedDir, postgresOsUser, startLocalServer, stopLocalServer } from '../../src/db/local-server.js';

const run = promisify(execFile);

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
  return {
    url: server.url.replace(/\/sync_lookup$/, '/postgres'),
    async stop() { await stopEmbedded({ dataDir }); await rm(path.dirname(dataDir), { recursive: true, force: true }); },
  };
}

/** Starts Debian's PostgreSQL 15 in a temporary folder, or returns undefined when it is not installed. */
export async function startPg15(): Promise<TestServer | undefined> {
  if (!existsSync(path.join(PG15_BIN, 'initdb'))) return undefined;
  const owner = await postgresOsUser();
  const root = await mkdtemp(path.join(tmpdir(), 'sync-lookup-pg15-'));
  await makeOwnedDir(root, owner);
  const dataDir = path.join(root, 'pg');
  const pwFile = path.join(root, 'pw');
  await import('node:fs/promises').then(async (fs) => {
    await fs.writeFile(pwFile, 'postgres\n');
    if (owner) await fs.chown(pwFile, owner.uid, owner.gid);
  });
  await run(path.join(PG15_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwFile}`,
    '--locale=C.UTF-8', '-E', 'UTF8'], { ...(owner ?? {}), cwd: root });
  const opts = { dataDir, binDir: PG15_BIN, ...(owner ? { runAs: owner } : {}) };
  const server = await startLocalServer({ ...opts, settings: { shared_buffers: '256MB', max_wal_size: '4GB', fsync: 'off' } });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${server.port}/postgres`,
    async stop() { await stopLocalServer(opts); await rm(root, { recursive: true, force: true }); },
  };
}
