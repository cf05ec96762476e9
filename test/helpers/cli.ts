import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The built CLI, as a user runs it (`npm test` builds it first). */
export const CLI = path.resolve('dist/cli/main.js');

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Whether the CLI is built (e2e tests skip with a hint when it is not). */
export function cliBuilt(): boolean {
  return existsSync(CLI);
}

/**
 * Spawns the built CLI with `args` and the given environment additions (DATABASE_URL unset unless given).
 *
 * @example
 * const r = await runCli(['status', '--json'], { DATABASE_URL: url });
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, onSpawn?: (child: ChildProcess) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const { DATABASE_URL: _ignored, ...base } = process.env;
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    onSpawn?.(child);
  });
}
