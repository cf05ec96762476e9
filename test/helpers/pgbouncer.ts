import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, portOpen, postgresOsUser } from '../../src/db/local-server.js';

/** Debian's PgBouncer (`apt-get install pgbouncer`; .ci/run installs it). */
export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

/** True when PgBouncer is installed. */
export function hasPgBouncer(): boolean {
  return existsSync(PGBOUNCER_BIN);
}

/** A PgBouncer started for a test: a URL per database entry, and how to stop it. */
export interface TestPgBouncer {
  /** `postgres://…@127.0.0.1:<port>/<entry>` for a database entry of the ini. */
  url(entry: string): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in a temporary folder in front of `serverUrl` (a test server's admin URL), with one
 * database entry per `entries` key: `{ app: { dbname: 't_x', poolMode: 'transaction' } }`. Client
 * authentication is `trust`; PgBouncer logs in to the server with the URL's user and password. As root it
 * runs as the `postgres` OS user (PgBouncer refuses to run as root).
 *
 * @example
 * const b = await startPgBouncer(adminUrl, { app: { dbname: t.name, poolMode: 'transaction' } });
 */
export async function startPgBouncer(
  serverUrl: string, entries: Record<string, { dbname: string; poolMode: 'transaction' | 'session' | 'statement'; poolSize?: number }>, settings: Record<string, string> = {},
): Promise<TestPgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const dir = await mkdtemp(path.join(tmpdir(), 'sl-pgbouncer-'));
  const port = await freePort();
  const ini = [
    '[databases]',
    ...Object.entries(entries).map(([name, e]) =>
      `${name} = host=${server.hostname} port=${server.port} dbname=${e.dbname} pool_mode=${e.poolMode}${e.poolSize ? ` pool_size=${e.poolSize}` : ''}`),
    '[pgbouncer]',
    'listen_addr = 127.0.0.1', `listen_port = ${port}`, 'unix_socket_dir =',
    'auth_type = trust', `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `logfile = ${path.join(dir, 'pgbouncer.log')}`, `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    'max_client_conn = 200', 'default_pool_size = 10', 'ignore_startup_parameters = extra_float_digits,options',
    ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
  ].join('\n');
  await writeFile(path.join(dir, 'pgbouncer.ini'), `${ini}\n`);
  await writeFile(path.join(dir, 'userlist.txt'), `"${user}" "${password}"\n`);
  const owner = await postgresOsUser();
  if (owner) {
    await chmod(dir, 0o755);
    for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) await chown(path.join(dir, f), owner.uid, owner.gid);
  }
  const child = spawn(PGBOUNCER_BIN, [...(owner ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 100 && !(await portOpen(port, 200)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await portOpen(port, 500))) {
    const log = await readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '');
    child.kill('SIGKILL');
    throw new Error(`pgbouncer did not start on port ${port}:\n${log}`);
  }
  return {
    url: (entry) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${entry}`,
    async stop() {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
