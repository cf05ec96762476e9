import { SyncLookupError, toSyncLookupError, ConfigError, CancelledError, CheckFailedError } from '../db/errors.js';
import { toSnakeCaseJson } from './json.js';

/** Exit codes (a contract): 0 ok, 1 runtime failure, 2 usage/config, 3 a check found problems, 130 interrupted. */
export const ExitCode = { ok: 0, failure: 1, usage: 2, checkFailed: 3, interrupted: 130 } as const;

/** Maps an error to its exit code. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CancelledError) return ExitCode.interrupted;
  if (err instanceof ConfigError) return ExitCode.usage;
  if (err instanceof CheckFailedError) return ExitCode.checkFailed;
  return ExitCode.failure;
}

/** Writes one line of JSON on stdout, its keys in snake_case (`toSnakeCaseJson`). */
function writeJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(toSnakeCaseJson(value))}\n`);
}

/**
 * Where a command writes: results on stdout (text, or under `--json` one line of JSON), progress on
 * stderr (a redrawn bar on a TTY, a plain line every few seconds otherwise). Under `--json` stdout is
 * NDJSON: one `{"event": …}` line per event, then the result (or `{"error": …}`) as the last line; every
 * key is snake_case.
 */
export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  private readonly tty: boolean;
  private readonly columns: number | undefined;
  private lastPlain = 0;
  private barShown = false;

  constructor(options: { json?: boolean; verbose?: boolean; tty?: boolean; columns?: number } = {}) {
    this.json = !!options.json;
    this.verbose = !!options.verbose;
    this.tty = options.tty ?? !!process.stderr.isTTY;
    this.columns = options.columns;
  }

  /** Prints the command's result: `value` as one line of snake_case JSON, or the text `human` renders. */
  result<T>(value: T, human: (value: T) => string): void {
    this.clearBar();
    if (this.json) writeJsonLine(value);
    else {
      const text = human(value);
      if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** A line of information for humans (stderr, so stdout stays clean for data). */
  info(text: string): void {
    if (this.json) return;
    this.clearBar();
    process.stderr.write(`${text}\n`);
  }

  /** A structured event: a JSON line under --json, else rendered with `human`. */
  event(event: object, human: string): void {
    if (this.json) {
      writeJsonLine({ event });
      return;
    }
    this.info(human);
  }

  /**
   * Progress of long work: a redrawn bar on a TTY, a plain line at most every `plainEveryMs` otherwise,
   * a JSON event line under --json (throttled the same way).
   */
  progress(event: object, text: string, fraction: number | null, plainEveryMs = 2000): void {
    const now = Date.now();
    if (this.json || !this.tty) {
      if (now - this.lastPlain < plainEveryMs) return;
      this.lastPlain = now;
      if (this.json) writeJsonLine({ event });
      else process.stderr.write(`${text}\n`);
      return;
    }
    const width = 24;
    const done = fraction === null ? null : Math.max(0, Math.min(1, fraction));
    const bar = done === null ? '' : `[${'#'.repeat(Math.round(done * width)).padEnd(width, '-')}] ${(done * 100).toFixed(0).padStart(3)}% `;
    // A terminal that reports 0 columns (some emulators, a pty without a size) has an unknown width, not none.
    const columns = (this.columns ?? process.stderr.columns) || 100;
    process.stderr.write(`\r\x1b[K${(bar + text).slice(0, columns - 1)}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (this.barShown) {
      process.stderr.write('\r\x1b[K');
      this.barShown = false;
    }
  }

  /** Reports a failure: `{"error": {code, message, details}}` under --json, one line otherwise. */
  error(err: unknown): void {
    this.clearBar();
    const e = err instanceof SyncLookupError ? err : toSyncLookupError(err);
    if (this.json) {
      writeJsonLine({ error: e.toJSON() });
    } else {
      const hint = typeof e.details.hint === 'string' ? ` (hint: ${e.details.hint})` : '';
      const detail = typeof e.details.detail === 'string' ? ` (${e.details.detail})` : '';
      process.stderr.write(`sync-lookup: ${e.message}${detail}${hint}\n`);
    }
    if (this.verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  }
}

/** Formats milliseconds for people: 850 ms, 12.3 s, 4 min 05 s. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Formats a byte count: 34.2 MB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
