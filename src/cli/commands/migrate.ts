import type { Command } from 'commander';
import { describeHolder } from '../../db/advisory.js';
import { withClient } from '../../db/connection.js';
import type { MigrationEvent } from '../../migrate/events.js';
import { loadMigrationsDir, type Migration } from '../../migrate/migration.js';
import { migrate, migrationStatus } from '../../migrate/runner.js';
import { builtinMigrations } from '../../migrations/index.js';
import { ensureLayoutPartitions, layoutMigrations } from '../../maintenance/layout.js';
import { detectLayout, parseLayout } from '../../schema/partitioned.js';
import { listArchives } from '../../maintenance/archive.js';
import type { Database } from '../../db/connection.js';
import type { HostName } from '../../lookup/host.js';
import { recordHost, resolveHost } from '../../lookup/hosts/index.js';
import { hostStatus } from '../../lookup/status.js';
import { action, forcedHost, withDatabase, type CommandContext } from '../context.js';
import { formatBytes, formatMs, table, type Output } from '../output.js';
import { indexProgressEvent } from './index.js';

async function allMigrations(dir: string | undefined): Promise<Migration[]> {
  return [...builtinMigrations(), ...(dir ? await loadMigrationsDir(dir) : [])];
}

/** Renders runner events for people (and as JSON lines under --json). */
export function renderMigrationEvent(out: Output, e: MigrationEvent): void {
  switch (e.type) {
    case 'migration_start':
      return out.event(e, `applying ${e.name}${e.transactional ? '' : ' (not transactional)'} …`);
    case 'migration_done':
      return out.event(e, `applied ${e.name} in ${formatMs(e.durationMs)}`);
    case 'migration_adopted':
      return out.event(e, `adopted ${e.name}: the existing tables have its shape; recorded as applied`);
    case 'tool_table_moved':
      return out.event(e, `moved ${e.from} to ${e.to} (${e.rows} rows kept): the tool keeps its tables in its own schema`);
    case 'host_trigger_dropped':
      return out.event(e, `dropped trigger ${e.trigger}: a host hook added it; it reads columns the tool's table does not have`);
    case 'lock_retry':
      return out.event(e, `lock not granted within ${e.lock_timeout_ms} ms (attempt ${e.attempt}/${e.attempts}); retrying in ${e.sleep_ms} ms`);
    case 'advisory_lock_wait':
      return out.event(e, e.holder && !e.holderIsMigrate
        ? `waiting for the migration lock, held by ${describeHolder(e.holder)}: not a migrate session …`
        : `waiting for another migrate run${e.holderPid ? ` (pid ${e.holderPid})` : ''} to finish …`);
    case 'invalid_index_dropped':
      return out.event(e, `dropped INVALID index ${e.index} left by a failed build; rebuilding it`);
    case 'index_exists':
      return out.event(e, `index ${e.index} already exists and is valid`);
    case 'index_build_start':
      return out.event(e, `building: ${e.sql}`);
    case 'index_build_done':
      return out.event(e, `built ${e.index} (${formatBytes(e.bytes)}) in ${formatMs(e.durationMs)}`);
    case 'index_progress': {
      const p = e.progress;
      const counts = p.blocksTotal > 0 ? ` ${p.blocksDone}/${p.blocksTotal} blocks`
        : p.tuplesTotal > 0 ? ` ${p.tuplesDone}/${p.tuplesTotal} tuples`
          : p.lockersTotal > 0 ? ` ${p.lockersDone}/${p.lockersTotal} lockers` : '';
      const wait = p.waitingOn ? `; waiting on pid ${p.waitingOn.pid} (${p.waitingOn.state ?? '?'}, ` +
        `${Math.round(p.waitingOn.xactAgeS ?? 0)} s in transaction): ${(p.waitingOn.query ?? '').slice(0, 60)}` : '';
      return out.progress(indexProgressEvent(p, e.index), `${e.index}: ${p.phase}${counts}${wait}`, p.phasePercent === null ? null : p.phasePercent / 100);
    }
  }
}

/** `sync-lookup migrate` and `sync-lookup status`. */
export function registerMigrate(program: Command): void {
  program.command('migrate')
    .description('apply pending migrations (advisory-locked, checksummed, concurrent index builds with progress)')
    .option('--to <name>', 'stop after this migration')
    .option('--dry-run', 'print the SQL of each pending migration and whether it is transactional; change nothing')
    .option('--adopt', 'record the baseline as applied when sync_lookup already exists with the expected shape')
    .option('--dir <folder>', 'also apply the migrations in this folder (*.sql, *.js, *.mjs), after the built-in ones')
    .option('--layout <layout>', 'plain or partitioned (by record_type): the layout the baseline creates; later runs keep the existing one')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { to?: string; dryRun?: boolean; adopt?: boolean; dir?: string; layout?: string }) => {
      const layout = opts.layout === undefined ? undefined : parseLayout(opts.layout);
      const extra = opts.dir ? await loadMigrationsDir(opts.dir) : [];
      const result = await withDatabase(ctx, async (db) => ({ ...(await migrate(db, {
        migrations: [...(await layoutMigrations(db, layout ? { layout } : {})).migrations, ...extra],
        ...(opts.to ? { to: opts.to } : {}),
        dryRun: !!opts.dryRun,
        adopt: !!opts.adopt,
        signal: ctx.signal,
        onEvent: (e) => renderMigrationEvent(ctx.out, e),
      })), ...(opts.dryRun ? {} : { partitions: await ensureLayoutPartitions(db), host: await recordedHost(ctx, db) }) }));
      ctx.out.result(result, (r) => {
        if (r.dryRun) {
          if (!r.pending.length) return 'nothing to apply';
          const problems = r.pending.flatMap((p) => p.adoption && !p.adoption.adoptable ? [`-- ${p.name} cannot be adopted: ${p.adoption.problems.join('; ')}`] : []);
          if (problems.length) return [...problems, ''].join('\n') + r.pending.map((p) => `-- ${p.name}\n${p.sql.join(';\n')}`).join('\n\n');
          return r.pending.map((p) =>
            `-- ${p.name} (${p.transactional ? 'in one transaction' : 'not transactional'})\n${p.sql.map((s) => s.replace(/;\s*$/, '')).join(';\n')};`).join('\n\n');
        }
        return `${r.applied.length ? `applied ${r.applied.length} migration(s)` : 'already up to date'}; host: ${r.host}`;
      });
    }));

  program.command('status')
    .description('the host (clock, since, last end tick, flagged rows) and whether each migration is applied')
    .option('--dir <folder>', 'include the migrations in this folder')
    .option('--json', 'JSON output')
    .action(action(program, async (ctx: CommandContext, opts: { dir?: string }) => {
      const migrations = await allMigrations(opts.dir);
      const forced = forcedHost(ctx).host?.name;
      const status = await withDatabase(ctx, (db) => withClient(db, { purpose: 'status' }, async (client) => ({
        host: await hostStatus(client, forced), migrations: await migrationStatus(client, migrations),
        layout: await detectLayout(client), archived: await listArchives(client),
      })));
      ctx.out.result(status, (r) => [
        `host: ${r.host.host} (${r.host.source}); clock ${r.host.description.clock} at ${r.host.clockTick ?? '?'}; since ${r.host.since ?? 'none (no build yet)'}; ` +
          `last end tick ${r.host.lastEndTick ?? 'none'}`,
        ...(r.host.ready ? [] : [`  not ready: ${r.host.reason}`]),
        ...(r.host.flaggedRows === null ? [] : [`flagged rows (needs_rebuild): ${r.host.flaggedRows}; upgrade gate ${r.host.upgradeGate}`]),
        ...(r.host.queuedModels.length ? [`queued for a whole rebuild: ${r.host.queuedModels.join(', ')}`] : []),
        `layout: ${r.layout}` + (r.archived.length ? `; archived: ${r.archived.map((a) => `${a.record_type} (${a.rows.toLocaleString('en')} rows${a.complete ? '' : ', incomplete'})`).join(', ')}` : ''),
        ...(r.host.stagedRows ? [`rows staged at -2 (not yet published): ${r.host.stagedRows}${r.host.stagedBy ? `, left by an interrupted ${r.host.stagedBy}: run sync-lookup build` : ''}`] : []),
        '',
        table(['migration', 'status', 'transactional', 'applied at'],
          r.migrations.map((s) => [s.name, s.adopted ? 'applied (adopted)' : s.status, s.transactional ? 'yes' : 'no', s.appliedAt ?? ''])),
      ].join('\n'));
      return status.migrations.some((s) => s.status === 'changed') ? 3 : 0;
    }));
}

/** After a migrate run: the host to record (forced, else already recorded, else detected), recorded. */
async function recordedHost(ctx: CommandContext, db: Database): Promise<HostName> {
  return withClient(db, { purpose: 'migrate' }, async (client) => {
    const { host } = await resolveHost(client, forcedHost(ctx).host?.name);
    await recordHost(client, host.name);
    return host.name;
  });
}
