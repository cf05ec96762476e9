import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError } from '../../db/errors.js';
import { pullSummary } from '../../lookup/pull.js';
import { resolveRegistry } from '../../lookup/registry.js';
import { action, positiveInt, withDatabase, type CommandContext } from '../context.js';
import { formatMs, table } from '../output.js';

/** Parses `--since`: an integer >= -1. */
export function parseSince(value: string): number {
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < -1) {
    throw new ConfigError('invalid_option', `--since must be an integer tick >= -1, got ${JSON.stringify(value)}`, { value });
  }
  return Number(value);
}

const list = (value: string, previous: string[] = []): string[] =>
  [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

async function readIds(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('unreadable_file', `cannot read --patients file ${file}: ${(err as Error).message}`, { file });
  }
  const trimmed = text.trim();
  // JSON (an array, or anything else that looks like JSON and must then be refused), else one id per line.
  if (/^[[{"]/.test(trimmed)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new ConfigError('invalid_option', `--patients file ${file} is not valid JSON: ${(err as Error).message}`, { file });
    }
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
      throw new ConfigError('invalid_option', `--patients file ${file} must hold a JSON array of strings or one id per line`, { file });
    }
    return parsed as string[];
  }
  return trimmed.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/** `sync-lookup pull`: the outgoing snapshot reader. */
export function registerPull(program: Command): void {
  program.command('pull')
    .description('read the changes a facility would pull since a tick (chunked by an id cursor, one snapshot)')
    .requiredOption('--since <tick>', 'rows with updated_at_sync_tick > TICK (-1: everything)', parseSince)
    .option('--types <t,...>', 'record types (default: every model of the registry)', list)
    .option('--facility <f,...>', 'facility ids of the puller (rows without a facility always qualify)', list)
    .option('--patient <p,...>', 'patient ids of the puller (rows without a patient always qualify)', list)
    .option('--patients <file>', 'patient ids from a file (one per line, or a JSON array)')
    .option('--device <id>', 'skip rows this device pushed itself')
    .option('--chunk <n>', 'rows per chunk (default 1000)', positiveInt('--chunk'))
    .option('--models <file>', 'model registry file (JSON); default: the built-in registry')
    .option('--ndjson', 'stream every row as one JSON line on stdout')
    .option('--json', 'JSON output: counts per type')
    .action(action(program, async (ctx: CommandContext, opts: {
      since: number; types?: string[]; facility?: string[]; patient?: string[]; patients?: string; device?: string; chunk?: number;
      models?: string; ndjson?: boolean; json?: boolean;
    }) => {
      if (opts.ndjson && opts.json) throw new ConfigError('invalid_option', '--ndjson and --json cannot be combined');
      if (opts.patient && opts.patients) throw new ConfigError('invalid_option', '--patient and --patients cannot be combined');
      const registry = await resolveRegistry(opts.models);
      const patients = opts.patients ? await readIds(opts.patients) : opts.patient;
      const summary = await withDatabase(ctx, (db) => pullSummary(db, {
        registry, sinceTick: opts.since, signal: ctx.signal,
        ...(opts.types ? { types: opts.types } : {}),
        ...(patients ? { patients } : {}),
        ...(opts.facility ? { facilities: opts.facility } : {}),
        ...(opts.device !== undefined ? { deviceId: opts.device } : {}),
        ...(opts.chunk ? { chunkRows: opts.chunk } : {}),
        onChunk: async (chunk) => {
          if (!opts.ndjson || !chunk.rows.length) return;
          const text = `${chunk.rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
          if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
        },
      }));
      if (opts.ndjson) {
        ctx.out.info(`pulled ${summary.rows} rows in ${summary.chunks} chunks in ${formatMs(summary.durationMs)}; next --since ${summary.untilTick ?? opts.since}`);
        return 0;
      }
      ctx.out.result(summary, (s) => [
        ...(s.rows ? [table(['type', 'rows'], Object.entries(s.types).sort((a, b) => b[1] - a[1]).map(([t, n]) => [t, n])), ''] : []),
        `${s.rows} rows since tick ${s.sinceTick} in ${s.chunks} chunks (${formatMs(s.durationMs)}); next pull: --since ${s.untilTick ?? s.sinceTick}`,
      ].join('\n'));
      return 0;
    }));
}
