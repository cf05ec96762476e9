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

/** What a command wrote on stdout under `--json`: its `{"event": …}` lines, then its last line. */
export interface JsonOutput {
  events: Record<string, unknown>[];
  /** The last line: the result, or `{ error: … }`. */
  last: Record<string, unknown>;
}

/**
 * Reads `--json` output and checks the contract on the way (NDJSON: every line one JSON value, events
 * first, the result or the error last); throws naming the line that breaks it.
 *
 * @example
 * const { events, last } = parseJsonOutput((await runCli(['build', '--json'], env)).stdout);
 */
export function parseJsonOutput(stdout: string): JsonOutput {
  if (!stdout.endsWith('\n')) throw new Error(`--json output does not end with a newline: ${JSON.stringify(stdout.slice(-80))}`);
  const lines = stdout.slice(0, -1).split('\n');
  const values = lines.map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`line ${i + 1} of --json output is not one JSON value: ${line.slice(0, 120)}`);
    }
  });
  const last = values.pop()!;
  if ('event' in last) throw new Error('the last line of --json output is an event, not the result');
  values.forEach((v, i) => {
    if (Object.keys(v).length !== 1 || typeof v.event !== 'object') throw new Error(`line ${i + 1} of --json output is not an {"event": …} line`);
  });
  return { events: values.map((v) => v.event as Record<string, unknown>), last };
}
