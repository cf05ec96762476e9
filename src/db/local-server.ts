import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { SyncLookupError } from './errors.js';

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

/** Creates a folder owned by `owner` (so a server running as `postgres` can write to it). */
export async function makeOwnedDir(dir: string, owner?: { uid: number; gid: number }): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (owner) await chown(dir, owner.uid, owner.gid);
}

/**
 * Creates a cluster in `dataDir` with `initdb` (unless one is there): superuser `postgres` with the given
 * password, scram-sha-256, UTF-8, C locale; run as the `postgres` OS user when we are root.
 *
 * @example
 * await initCluster({ binDir, dataDir, password: 'postgres' });
 */
export async function initCluster(options: { binDir: string; dataDir: string; password: string }): Promise<void> {
  if (existsSync(path.join(options.dataDir, 'PG_VERSION'))) return;
  const owner = await postgresOsUser();
  // The parent holds the password file and must be reachable by the server's OS user.
  const parent = path.dirname(options.dataDir);
  await makeOwnedDir(parent, owner);
  const pwFile = path.join(parent, `.initdb-pw-${process.pid}`);
  await writeFile(pwFile, `${options.password}\n`, { mode: 0o600 });
  if (owner) await chown(pwFile, owner.uid, owner.gid);
  try {
    await run(path.join(options.binDir, 'initdb'), ['-D', options.dataDir, '-U', 'postgres', '--auth=scram-sha-256',
      `--pwfile=${pwFile}`, '--locale=C', '--encoding=UTF8'], { ...(owner ?? {}), cwd: parent });
  } catch (err) {
    throw new SyncLookupError('initdb_failed', `initdb could not create a cluster in ${options.dataDir}: ` +
      `${String((err as { stderr?: string }).stderr ?? err).trim().split('\n').slice(-2).join(' | ')}`, { dataDir: options.dataDir }, { cause: err });
  } finally {
    await rm(pwFile, { force: true });
  }
}
