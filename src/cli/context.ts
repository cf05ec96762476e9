import type { Command } from 'commander';
import { databaseFromUrl, withClient, type Database } from '../db/connection.js';
import { startEmbedded, stopEmbedded } from '../db/embedded.js';
import { CancelledError, ConfigError } from '../db/errors.js';
import type { Host } from '../lookup/host.js';
import { HOSTS, parseHostName } from '../lookup/hosts/index.js';
import { Output, exitCodeOf } from './output.js';

/** Options every command accepts (defined on the program). */
export interface GlobalOptions {
  databaseUrl?: string;
  host?: string;
  verbose?: boolean;
  embeddedDir?: string;
}

/** What a command's action receives. */
export interface CommandContext {
  out: Output;
  globals: GlobalOptions;
  /** Aborted on Ctrl-C; long operations cancel their backend and leave a resumable state. */
  signal: AbortSignal;
}

/**
 * Opens the target database: `--database-url`, else `DATABASE_URL`, else the embedded server (started
 * for this command and stopped afterwards, unless it was already running).
 */
export async function withDatabase<T>(ctx: CommandContext, fn: (db: Database) => Promise<T>): Promise<T> {
  const url = ctx.globals.databaseUrl ?? process.env.DATABASE_URL;
  if (url !== undefined) {
    const source = ctx.globals.databaseUrl !== undefined ? '--database-url' : 'DATABASE_URL';
    if (url.trim() === '') throw new ConfigError('invalid_database_url', `${source} is set but empty`);
    return fn(databaseFromUrl(url, { source }));
  }
  const dirOption = ctx.globals.embeddedDir ? { dataDir: ctx.globals.embeddedDir } : {};
  const server = await startEmbedded(dirOption);
  if (server.started && ctx.out.verbose) ctx.out.info(`started embedded PostgreSQL on port ${server.port}`);
  const db = databaseFromUrl(server.url);
  try {
    return await fn(db);
  } finally {
    if (server.started) {
      // Another command may have started using the server meanwhile: never pull it from under it.
      const others = await otherSessions(db).catch(() => 0);
      if (others > 0) ctx.out.info(`leaving the embedded server running: ${others} other session(s) use it (sync-lookup db stop ends it)`);
      else await stopEmbedded({ ...dirOption, force: true });
    }
  }
}

async function otherSessions(db: Database): Promise<number> {
  return withClient(db, { purpose: 'shutdown-check' }, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`);
    return rows[0]?.n ?? 0;
  });
}

/** After a SIGTERM, how long a command may take to wind down before it exits anyway. */
export const TERM_GRACE_MS = 5000;

/**
 * Wraps a command action: builds its context, maps errors to exit codes, and turns Ctrl-C and SIGTERM
 * into an AbortSignal. A second Ctrl-C exits at once; after a SIGTERM (sent once, by a service manager)
 * a command still busy after TERM_GRACE_MS (a statement waiting for a lock) exits the same way: its
 * connections close and the server rolls back what was in flight.
 */
export function action<A extends unknown[]>(
  program: Command,
  fn: (ctx: CommandContext, ...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const opts = command.opts<{ json?: boolean }>();
    const globals = program.opts<GlobalOptions>();
    const out = new Output({ json: !!opts.json, verbose: !!globals.verbose });
    const controller = new AbortController();
    let interrupts = 0;
    let termTimer: NodeJS.Timeout | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      if (signal === 'SIGTERM') {
        out.info(`terminated: cancelling (exiting in ${TERM_GRACE_MS / 1000} s at the latest)`);
        termTimer = setTimeout(() => {
          out.error(new CancelledError(`terminated: still busy ${TERM_GRACE_MS / 1000} s after SIGTERM, exiting; the server rolls back what was in flight`));
          process.exit(130);
        }, TERM_GRACE_MS);
        termTimer.unref();
      } else {
        out.info('interrupted: cancelling (press Ctrl-C again to exit at once)');
      }
      controller.abort(new CancelledError(signal === 'SIGTERM' ? 'terminated' : 'interrupted'));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const code = await fn({ out, globals, signal: controller.signal }, ...args);
      process.exitCode = controller.signal.aborted ? 130 : (code ?? 0);
    } catch (err) {
      out.error(err);
      process.exitCode = controller.signal.aborted ? 130 : exitCodeOf(err);
    } finally {
      clearTimeout(termTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };
}

/**
 * The host the user forced (`--host`, else `SYNC_LOOKUP_HOST`), or undefined: the library then uses the one
 * recorded in the database, else the detected one.
 */
export function forcedHost(ctx: CommandContext): { host?: Host } {
  const flag = ctx.globals.host;
  const env = process.env.SYNC_LOOKUP_HOST;
  if (flag !== undefined) return { host: HOSTS[parseHostName(flag, '--host')] };
  if (env !== undefined && env.trim() !== '') return { host: HOSTS[parseHostName(env, 'SYNC_LOOKUP_HOST')] };
  return {};
}

/** Parses a positive integer option, naming the option and the bad value on failure. */
export function positiveInt(name: string): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) <= 0) {
      throw new ConfigError('invalid_option', `${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return Number(value);
  };
}
