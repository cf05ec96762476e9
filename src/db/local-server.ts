import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, SyncLookupError } from './errors.js';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster on this machine, driven by `pg_ctl` so that it outlives the process that
 * started it (`db start`) and so that start has a hard deadline (`pg_ctl -w -t`).
 */
export interface LocalServerOptions {
  /** Data directory (the cluster). */
  dataDir: string;
  /** Folder holding `pg_ctl` and `postgres`. */
  binDir: string;
  /** Start deadline; past it the start fails instead of hanging. Default 60 000 ms. */
  startTimeoutMs?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** OS user to run the server as when we are root (PostgreSQL refuses root). */
  runAs?: { uid: number; gid: number };
}

/** A running local server. */
export interface RunningServer {
  port: number;
  pid: number;
}

/** The server of `dataDir` if it is running and accepting connections, read from `postmaster.pid`. */
export async function runningServer(dataDir: string): Promise<RunningServer | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !port || !processAlive(pid)) return undefined;
  return (await portOpen(port)) ? { pid, port } : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the cluster on a free port unless it already runs; waits until it accepts connections or the
 * deadline passes.
 *
 * @example
 * const { port } = await startLocalServer({ dataDir, binDir });
 */
export async function startLocalServer(options: LocalServerOptions): Promise<RunningServer & { started: boolean }> {
  const existing = await runningServer(options.dataDir);
  if (existing) return { ...existing, started: false };
  const port = await freePort();
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const settings = { listen_addresses: '127.0.0.1', port, unix_socket_directories: '', ...options.settings };
  const serverArgs = Object.entries(settings).map(([k, v]) => `-c ${k}=${v === '' ? "''" : v}`).join(' ');
  const logFile = path.join(options.dataDir, 'server.log');
  try {
    await run(path.join(options.binDir, 'pg_ctl'),
      ['start', '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-D', options.dataDir, '-l', logFile, '-o', serverArgs],
      { timeout: timeoutMs + 5000, ...(options.runAs ?? {}) });
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    throw new SyncLookupError('server_start_failed',
      `PostgreSQL in ${options.dataDir} did not start within ${timeoutMs} ms: ${log.trim().split('\n').slice(-3).join(' | ')}`,
      { dataDir: options.dataDir, logFile }, { cause: err });
  }
  // pg_ctl -w already waited for readiness; the port check guards against a server that came up elsewhere.
  const deadline = Date.now() + timeoutMs;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline) {
      throw new SyncLookupError('server_start_failed', `PostgreSQL started but port ${port} does not answer`, { port });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const server = await runningServer(options.dataDir);
  return { port, pid: server?.pid ?? 0, started: true };
}

/**
 * Stops the cluster with a fast shutdown (open transactions roll back, data is safe).
 *
 * @example
 * await stopLocalServer({ dataDir, binDir });
 */
export async function stopLocalServer(options: Pick<LocalServerOptions, 'dataDir' | 'binDir' | 'runAs'>): Promise<boolean> {
  if (!(await runningServer(options.dataDir))) return false;
  await run(path.join(options.binDir, 'pg_ctl'), ['stop', '-w', '-t', '60', '-m', 'fast', '-D', options.dataDir],
    { timeout: 65_000, ...(options.runAs ?? {}) });
  return true;
}

/**
 * The uid/gid of the OS user `postgres` when we are root (PostgreSQL refuses to run as root), creating the
 * user on first use; undefined when we are not root.
 */
export async function postgresOsUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => {
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid), gid: Number(gid) };
  };
  try {
    return await ids();
  } catch {
    await run('groupadd', ['-f', 'postgres']);
    await run('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']);
    return ids();
  }
}

/** The file `initCluster` writes into a cluster it created; `destroyCluster` removes only such a cluster. */
export const CLUSTER_MARKER = 'sync-lookup-cluster.json';

type OsUser = { uid: number; gid: number };

/**
 * Creates a cluster in `dataDir` with `initdb` (unless one is there): superuser `postgres` with the given
 * password, scram-sha-256, UTF-8, C locale; run as the `postgres` OS user when we are root. Only folders it
 * creates get a new owner: `dataDir` itself and any missing parents (made traversable). The password file
 * lives in a private temporary folder of its own, removed afterwards. Throws ConfigError when `dataDir`
 * cannot be created, exists without being an empty folder of ours, or lies under a folder the `postgres`
 * OS user cannot traverse (a project under a 0700 home when run as root).
 *
 * @example
 * await initCluster({ binDir, dataDir, password: 'postgres' });
 */
export async function initCluster(options: { binDir: string; dataDir: string; password: string }): Promise<void> {
  const dataDir = path.resolve(options.dataDir);
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return;
  const owner = await postgresOsUser();
  const createdFolders = await createDataDir(dataDir, owner);
  const pwDir = await mkdtemp(path.join(tmpdir(), 'sync-lookup-initdb-'));
  try {
    const pwFile = path.join(pwDir, 'pwfile');
    await writeFile(pwFile, `${options.password}\n`, { mode: 0o600 });
    if (owner) {
      await chown(pwDir, owner.uid, owner.gid);
      await chown(pwFile, owner.uid, owner.gid);
    }
    await run(path.join(options.binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256',
      `--pwfile=${pwFile}`, '--locale=C', '--encoding=UTF8'], { ...(owner ?? {}), cwd: pwDir });
  } catch (err) {
    throw new SyncLookupError('initdb_failed', `initdb could not create a cluster in ${dataDir}: ` +
      `${String((err as { stderr?: string }).stderr ?? err).trim().split('\n').slice(-2).join(' | ')}`, { dataDir }, { cause: err });
  } finally {
    await rm(pwDir, { recursive: true, force: true });
  }
  const marker = path.join(dataDir, CLUSTER_MARKER);
  await writeFile(marker, `${JSON.stringify({ created_by: 'sync-lookup', created_at: new Date().toISOString(), created_folders: createdFolders }, null, 2)}\n`);
  if (owner) await chown(marker, owner.uid, owner.gid);
}

/**
 * Makes `dataDir` (an empty folder the server's OS user owns) and its missing parents; returns the parents
 * it created, outermost first. Refuses, naming the folder and what to do, where the server could not work.
 */
async function createDataDir(dataDir: string, owner: OsUser | undefined): Promise<string[]> {
  const parent = path.dirname(dataDir);
  let first: string | undefined;
  try {
    first = await mkdir(parent, { recursive: true });
  } catch (err) {
    throw await unusableDir(dataDir, err);
  }
  const created = first ? ancestorsFrom(first, parent) : [];
  // Our own folders only: readable and traversable by the server's OS user whatever the umask.
  if (owner) for (const dir of created) await chmod(dir, 0o755);
  try {
    if (owner && !(await canTraverse(parent, owner))) throw await unreachable(dataDir, owner);
    await prepareEmptyDir(dataDir, owner);
  } catch (err) {
    if (first) await rm(first, { recursive: true, force: true });
    throw err;
  }
  return created;
}

/** `from` and each folder below it down to `to` (both included). */
function ancestorsFrom(from: string, to: string): string[] {
  const dirs = [to];
  while (dirs[0] !== from && path.dirname(dirs[0]!) !== dirs[0]) dirs.unshift(path.dirname(dirs[0]!));
  return dirs;
}

/** Creates `dataDir`, or accepts an empty one left by an earlier failed initdb of ours; chowns only what it created. */
async function prepareEmptyDir(dataDir: string, owner: OsUser | undefined): Promise<void> {
  try {
    await mkdir(dataDir, { mode: 0o700 });
    if (owner) await chown(dataDir, owner.uid, owner.gid);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw await unusableDir(dataDir, err);
  }
  const info = await stat(dataDir);
  if (!info.isDirectory()) throw new ConfigError('embedded_dir_invalid', `the embedded data folder ${dataDir} exists and is not a folder; choose another --embedded-dir`, { dataDir });
  if ((await readdir(dataDir)).length) {
    throw new ConfigError('embedded_dir_invalid',
      `the embedded data folder ${dataDir} is not empty and holds no PostgreSQL cluster; choose another --embedded-dir (sync-lookup creates the folder)`, { dataDir });
  }
  if (owner && info.uid !== owner.uid) {
    throw new ConfigError('embedded_dir_invalid',
      `the embedded data folder ${dataDir} exists and belongs to uid ${info.uid}, but the server runs as the OS user postgres and ` +
      'sync-lookup never changes the owner of a folder it did not create: remove the empty folder (sync-lookup then creates it) or choose another --embedded-dir',
      { dataDir });
  }
}

/** The error for a data folder that cannot be created: names the path component that is in the way. */
async function unusableDir(dataDir: string, err: unknown): Promise<SyncLookupError> {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  let blocker = dataDir;
  while (path.dirname(blocker) !== blocker && !existsSync(blocker)) blocker = path.dirname(blocker);
  const notFolder = existsSync(blocker) && !(await stat(blocker)).isDirectory();
  const reason = notFolder ? `${blocker} is not a folder`
    : code === 'EACCES' || code === 'EPERM' ? `permission denied in ${blocker}`
      : code === 'EROFS' ? `${blocker} is on a read-only file system` : (err as Error).message;
  return new ConfigError('embedded_dir_invalid', `cannot create the embedded data folder ${dataDir}: ${reason}; choose another --embedded-dir`,
    { dataDir, errno: code }, { cause: err });
}

/** Whether `owner` can reach `dir` (search permission on it and every folder above it), asked as that user. */
async function canTraverse(dir: string, owner: OsUser): Promise<boolean> {
  try {
    await run('test', ['-x', dir], owner);
    return true;
  } catch {
    return false;
  }
}

/** The error for a data folder under a folder the server's OS user cannot traverse, naming that folder. */
async function unreachable(dataDir: string, owner: OsUser): Promise<ConfigError> {
  let blocker = path.dirname(dataDir);
  for (let dir = blocker; ; dir = path.dirname(dir)) {
    if (!(await canTraverse(dir, owner))) blocker = dir;
    if (path.dirname(dir) === dir) break;
  }
  const info = await stat(blocker);
  return new ConfigError('embedded_dir_unreachable',
    `the embedded server runs as the OS user postgres (PostgreSQL refuses to run as root), which cannot enter ${blocker} ` +
    `(mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${info.uid}); sync-lookup never changes the owner or mode ` +
    'of a folder it did not create: put the data folder where that user can reach it (e.g. --embedded-dir /var/tmp/sync-lookup/pg), ' +
    'or run sync-lookup as a user other than root', { dataDir, blocker });
}

/**
 * The marker `initCluster` left in a cluster it created; ConfigError `not_an_embedded_cluster` when there is none.
 *
 * @example
 * await readClusterMarker('.sync-lookup/pg'); // { created_by: 'sync-lookup', created_folders: [...] }
 */
export async function readClusterMarker(dataDir: string): Promise<{ created_folders?: unknown }> {
  try {
    return JSON.parse(await readFile(path.join(dataDir, CLUSTER_MARKER), 'utf8')) as { created_folders?: unknown };
  } catch {
    throw new ConfigError('not_an_embedded_cluster', existsSync(dataDir)
      ? `${dataDir} is not a cluster sync-lookup created (no ${CLUSTER_MARKER} in it); nothing was removed`
      : `${dataDir} does not exist; nothing to remove`, { dataDir });
  }
}

/**
 * Removes a cluster `initCluster` created (it must hold the marker file, else ConfigError and nothing is
 * touched): the data folder, then each parent folder `initCluster` created, where it is now empty. The
 * server must be stopped first. Returns the folders removed.
 *
 * @example
 * await destroyCluster({ dataDir: '.sync-lookup/pg' });
 */
export async function destroyCluster(options: { dataDir: string }): Promise<string[]> {
  const dataDir = path.resolve(options.dataDir);
  const marker = await readClusterMarker(dataDir);
  if (await runningServer(dataDir)) throw new ConfigError('server_running', `the server of ${dataDir} is running; stop it first`, { dataDir });
  await rm(dataDir, { recursive: true, force: true });
  const removed = [dataDir];
  const parents = Array.isArray(marker.created_folders) ? marker.created_folders.filter((d): d is string => typeof d === 'string') : [];
  for (const dir of [...parents].reverse()) {
    try {
      await rmdir(dir);
      removed.push(dir);
    } catch {
      break; // not empty (or gone): it holds something else now, leave it and everything above it
    }
  }
  return removed;
}
