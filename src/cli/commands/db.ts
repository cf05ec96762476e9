import type { Command } from 'commander';
import { destroyEmbedded, embeddedStatus, startEmbedded, stopEmbedded } from '../../db/embedded.js';
import { ConfigError } from '../../db/errors.js';
import { action, type CommandContext } from '../context.js';

function dirOption(ctx: CommandContext): { dataDir?: string } {
  return ctx.globals.embeddedDir ? { dataDir: ctx.globals.embeddedDir } : {};
}

/** `sync-lookup db start|stop|status|url|destroy`: manage the embedded PostgreSQL. */
export function registerDb(program: Command): void {
  const db = program.command('db').description('manage the embedded PostgreSQL (data in ./.sync-lookup/pg)');
  db.command('start').description('start the embedded server and keep it running').option('--json', 'JSON output')
    .action(action(program, async (ctx) => {
      const s = await startEmbedded(dirOption(ctx));
      ctx.out.result({ running: true, started: s.started, port: s.port, pid: s.pid, url: s.url, dataDir: s.dataDir },
        (r) => `${r.started ? 'started' : 'already running'}: ${r.url} (pid ${r.pid}, data in ${r.dataDir})`);
    }));
  db.command('stop').description('stop the embedded server (refused while other sessions use it, unless --force)')
    .option('--force', 'stop it even while other sessions use it (their open transactions roll back)')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx, opts: { force?: boolean }) => {
      const stopped = await stopEmbedded({ ...dirOption(ctx), force: !!opts.force });
      ctx.out.result({ stopped }, (r) => (r.stopped ? 'stopped' : 'not running'));
    }));
  db.command('destroy')
    .description('stop the embedded server and delete its data folder (only a cluster sync-lookup created, and the folders it made for it)')
    .option('--force', 'stop it even while other sessions use it')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx, opts: { force?: boolean }) => {
      const r = await destroyEmbedded({ ...dirOption(ctx), force: !!opts.force });
      ctx.out.result(r, (x) => `${x.stopped ? 'stopped the server; ' : ''}removed ${x.removed.join(', ')}`);
    }));
  db.command('status').description('is the embedded server running?').option('--json', 'JSON output')
    .action(action(program, async (ctx) => {
      const s = await embeddedStatus(dirOption(ctx));
      ctx.out.result(s ? { running: true, ...s } : { running: false },
        (r) => ('url' in r ? `running: ${r.url} (pid ${r.pid}, data in ${r.dataDir})` : 'not running'));
    }));
  db.command('url').description('print a connection string for psql (the server must be running: db start)')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx) => {
      const s = await embeddedStatus(dirOption(ctx));
      if (!s) throw new ConfigError('not_running', 'the embedded server is not running; start it with `sync-lookup db start`');
      ctx.out.result({ url: s.url }, (r) => r.url);
    }));
}
