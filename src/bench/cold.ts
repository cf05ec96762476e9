import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';

/*
 * `--cold`: before every timed run, the reads must come from disk, as on a production server whose table does
 * not fit in memory. Two caches hold the pages:
 *
 * - PostgreSQL's shared buffers: evicted with pg_buffercache_evict_all() (PostgreSQL 18) or buffer by buffer
 *   with pg_buffercache_evict() (17), right after the CHECKPOINT that precedes each run (so no buffer is dirty).
 *   That empties the buffer pool as a restart would, without breaking the benchmark's own sessions (a restart
 *   would close the connection that holds the benchmark's lock and the datasets' control sessions).
 * - The operating system's page cache: `echo 3 > /proc/sys/vm/drop_caches` when allowed (root, a writable
 *   /proc/sys); otherwise each of the database's relation files is evicted with `dd iflag=nocache count=0`
 *   (posix_fadvise DONTNEED on the whole file); on a server whose files are not on this machine, not at all
 *   (said in the notes).
 */

const run = promisify(execFile);

/** How the caches were emptied before each run (reported in the notes). */
export interface ColdMethod {
  buffers: 'pg_buffercache_evict_all' | 'pg_buffercache_evict' | 'none';
  osCache: 'drop_caches' | 'dd_nocache' | 'none';
}

/** Empties the caches before a timed run. */
export interface Cold {
  method: ColdMethod;
  evict(): Promise<void>;
}

async function bufferMethod(client: pg.ClientBase): Promise<ColdMethod['buffers']> {
  try {
    await client.query('create extension if not exists pg_buffercache');
  } catch {
    return 'none';
  }
  const { rows } = await client.query<{ name: string }>(
    `select proname as name from pg_proc where proname in ('pg_buffercache_evict_all', 'pg_buffercache_evict')`);
  const names = rows.map((r) => r.name);
  return names.includes('pg_buffercache_evict_all') ? 'pg_buffercache_evict_all' : names.includes('pg_buffercache_evict') ? 'pg_buffercache_evict' : 'none';
}

async function evictBuffers(client: pg.ClientBase, method: ColdMethod['buffers']): Promise<void> {
  if (method === 'pg_buffercache_evict_all') await client.query('select pg_buffercache_evict_all()');
  else if (method === 'pg_buffercache_evict') await client.query('select pg_buffercache_evict(bufferid) from pg_buffercache where relfilenode is not null');
}

async function dropCaches(): Promise<boolean> {
  try {
    await run('sync');
    await writeFile('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Every file of the database's relations (all segments), when the data folder is on this machine. */
async function relationFiles(client: pg.ClientBase): Promise<string[]> {
  const { rows: [dir] } = await client.query<{ d: string | null }>(`select current_setting('data_directory', true) as d`);
  if (!dir?.d || !existsSync(dir.d)) return [];
  const { rows } = await client.query<{ p: string }>(
    `select pg_relation_filepath(c.oid) as p from pg_class c where c.relkind in ('r', 'i', 't', 'm') and pg_relation_filepath(c.oid) is not null`);
  const files: string[] = [];
  for (const r of rows) {
    const base = path.join(dir.d, r.p);
    for (let seg = 0; ; seg++) {
      const f = seg === 0 ? base : `${base}.${seg}`;
      if (!existsSync(f)) break;
      files.push(f);
    }
  }
  return files;
}

async function ddNocache(files: string[]): Promise<boolean> {
  try {
    for (const f of files) await run('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    return files.length > 0;
  } catch {
    return false;
  }
}

/**
 * Prepares `--cold` on a dataset's control session: finds how each cache can be emptied here.
 *
 * @example
 * const cold = await openCold(data.control); await cold.evict(); // before a timed run
 */
export async function openCold(client: pg.ClientBase): Promise<Cold> {
  const method: ColdMethod = { buffers: await bufferMethod(client), osCache: 'none' };
  if (await dropCaches()) method.osCache = 'drop_caches';
  else if (await ddNocache(await relationFiles(client))) method.osCache = 'dd_nocache';
  return {
    method,
    async evict() {
      await evictBuffers(client, method.buffers);
      if (method.osCache === 'drop_caches') await dropCaches();
      else if (method.osCache === 'dd_nocache') await ddNocache(await relationFiles(client));
    },
  };
}

/** The notes line that says how `--cold` emptied the caches. */
export function coldNote(m: ColdMethod): string {
  const buffers = m.buffers === 'none' ? 'shared buffers NOT evicted (pg_buffercache without evict functions: PostgreSQL < 17)' : `shared buffers evicted with ${m.buffers}()`;
  const os = { drop_caches: 'the OS page cache dropped (/proc/sys/vm/drop_caches)', dd_nocache: 'the relation files evicted from the OS page cache one by one (dd iflag=nocache)', none: 'the OS page cache NOT dropped (not allowed here, and the data files are not on this machine)' }[m.osCache];
  return `--cold: before every timed run, after its CHECKPOINT: ${buffers}; ${os}`;
}
