import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';

/** Free space where a table's files live, when this machine can see that directory. */
export interface DiskSpace {
  /** The directory measured (the data directory, or the table's tablespace). */
  path: string;
  /** Bytes available to the server's OS user (statfs `bavail`). */
  freeBytes: number;
}

/**
 * Free disk space of the directory holding `table` (its tablespace, else the data directory), or null when it
 * cannot be known here: the server is on another machine, the role may not read `data_directory`, or the
 * directory is not visible from this process. The server counts as local only when it is reached over a Unix
 * socket or loopback and its data directory here holds the `postmaster.pid` of a server on the same port.
 *
 * @example
 * const d = await serverDiskSpace(client, 'public.sync_lookup'); // { path: '/var/lib/postgresql/15/main', freeBytes: 52e9 } or null
 */
export async function serverDiskSpace(client: pg.ClientBase, table: string): Promise<DiskSpace | null> {
  let dir: string | null;
  let port: string;
  try {
    const { rows: [r] } = await client.query<{ dir: string; port: string; local: boolean; spc: string | null }>(
      `SELECT current_setting('data_directory') AS dir, current_setting('port') AS port,
              coalesce(host(inet_server_addr()) IN ('127.0.0.1', '::1'), true) AS local,
              (SELECT nullif(pg_tablespace_location(c.reltablespace), '') FROM pg_class c WHERE c.oid = $1::regclass AND c.reltablespace <> 0) AS spc`,
      [table]);
    if (!r?.local) return null;
    dir = r.spc ?? r.dir;
    port = r.port;
    if (!existsSync(path.join(r.dir, 'postmaster.pid'))) return null;
    const { readFile } = await import('node:fs/promises');
    const pid = (await readFile(path.join(r.dir, 'postmaster.pid'), 'utf8')).split('\n');
    // Line 4 of postmaster.pid is the port: a different server with the same path on this machine is not it.
    if (pid[3]?.trim() !== port) return null;
  } catch {
    return null;
  }
  try {
    const s = await statfs(dir);
    return { path: dir, freeBytes: Number(s.bavail) * Number(s.bsize) };
  } catch {
    return null;
  }
}
