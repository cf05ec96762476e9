import os from 'node:os';
import type pg from 'pg';
import type { MachineInfo } from './types.js';

/** Server settings that move benchmark figures most; reported beside them. */
const SETTINGS = ['shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_parallel_workers_per_gather',
  'max_wal_size', 'effective_cache_size', 'random_page_cost', 'fsync', 'synchronous_commit'];

/**
 * Describes the machine and the server a benchmark ran on.
 *
 * @example
 * const machine = await machineInfo(client);
 */
export async function machineInfo(client: pg.ClientBase): Promise<MachineInfo> {
  const { rows } = await client.query<{ name: string; setting: string }>(
    `select name, current_setting(name) as setting from pg_settings where name = any($1::text[]) order by name`, [SETTINGS]);
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu_model: (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    memory_bytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    node: process.versions.node,
    postgres_settings: Object.fromEntries(rows.map((r) => [r.name, r.setting])),
  };
}
