import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { describePhase, watchIndexBuilds, type IndexBuildSample } from '../../src/inspect/index-watch.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

async function holder(t: TestDatabase, id: number) {
  const client = new pg.Client({ connectionString: t.url, application_name: 'test-holder' });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  await client.query('begin');
  await client.query('update sync_lookup set is_deleted = is_deleted where id = $1', [id]);
  return { client, pid: rows[0]!.pid };
}

/**
 * A concurrent build that waits twice, on two sessions holding row locks: before building (the first
 * session) and before validating (the second, which started writing while the build waited). Each
 * session ends when the watcher has seen the build wait on it, so the phases are seen whatever the speed.
 */
async function twoWaitBuild(t: TestDatabase, seen: () => IndexBuildSample[]): Promise<{ buildPid: number; holders: number[] }> {
  const first = await holder(t, 1);
  const builder = new pg.Client({ connectionString: t.url });
  await builder.connect();
  const { rows } = await builder.query<{ pid: number }>('select pg_backend_pid() as pid');
  const buildPid = rows[0]!.pid;
  const done = builder.query('create index concurrently sync_lookup_encounter_id on sync_lookup (encounter_id)');
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
    if (!cond()) throw new Error('the watcher never saw the expected phase');
  };
  await until(() => seen().some((s) => s.pid === buildPid && s.waitingOn?.pid === first.pid));
  const second = await holder(t, 2);
  await first.client.query('commit');
  await until(() => seen().some((s) => s.pid === buildPid && s.waitingOn?.pid === second.pid));
  await second.client.query('commit');
  await done;
  await Promise.all([first.client.end(), second.client.end(), builder.end()]);
  return { buildPid, holders: [first.pid, second.pid] };
}

describe.runIf(hasServer())('index watch', () => {
  it('reports the phases of a concurrent build running in the background, who it waits for, and ends when it is done', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 20_000);
    const samples: IndexBuildSample[] = [];
    const watching = watchIndexBuilds(t.db, { intervalMs: 50, waitMs: 30_000, onSample: (s) => samples.push(...s) });
    const { buildPid, holders } = await twoWaitBuild(t, () => samples);
    const builds = await watching;
    const b = builds.find((x) => x.pid === buildPid)!;
    expect(b.ended).toBe(true);
    expect(b.command).toBe('CREATE INDEX CONCURRENTLY');
    const phases = b.phases.map((p) => p.phase);
    expect(phases).toContain('waiting for writers before build');
    expect(phases).toContain('waiting for writers before validation');
    expect(phases.indexOf('waiting for writers before build')).toBeLessThan(phases.indexOf('waiting for writers before validation'));
    expect(b.waitedOn).toEqual(holders);
    const waiting = samples.find((s) => s.waitingOn?.pid === holders[0])!;
    expect(waiting.phaseWords).toBe('waiting for transactions writing to the table to end, before building');
    expect(waiting.phaseStep).toBe(2);
    expect(waiting.waitingOn).toMatchObject({ state: 'idle in transaction', applicationName: 'test-holder' });
    expect(waiting.waitingOn?.query).toMatch(/update sync_lookup/);
    expect(waiting.index).toBe('sync_lookup_encounter_id');
  });

  it('returns at once when nothing is building', async () => {
    const t = await createTestDatabase();
    expect(await watchIndexBuilds(t.db, { intervalMs: 50 })).toEqual([]);
  });

  it('words every phase PostgreSQL reports', () => {
    expect(describePhase('building index: scanning table')).toEqual({ step: 3, steps: 10, words: 'building the index: scanning table' });
    expect(describePhase('waiting for old snapshots').step).toBe(8);
    expect(describePhase('something new')).toEqual({ step: null, steps: 10, words: 'something new' });
  });

  it.runIf(cliBuilt())('sync-lookup index watch --json streams progress events and ends with the builds it saw', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await fillSyntheticLookup(t, 5_000);
    const lines: string[] = [];
    let buf = '';
    const cli = runCli(['index', 'watch', '--json', '--interval-ms', '50', '--wait-ms', '30000'], { DATABASE_URL: t.url }, (child) => {
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        lines.push(...parts);
      });
    });
    const events = () => lines.filter((l) => l.startsWith('{"event"')).map((l) => (JSON.parse(l) as { event: IndexBuildSample & Record<string, unknown> }).event);
    const asSamples = () => events().map((e) => ({ ...e, pid: Number(e.pid), waitingOn: e.waiting_on as IndexBuildSample['waitingOn'] }));
    const { buildPid } = await twoWaitBuild(t, asSamples);
    const r = await cli;
    expect(r.code).toBe(0);
    const ev = events().filter((e) => Number(e.pid) === buildPid);
    expect(ev[0]).toMatchObject({ type: 'index_progress', phase: 'waiting for writers before build', phase_step: 2 });
    const result = parseJsonOutput(r.stdout).last as unknown as { builds: { pid: number; ended: boolean; phases: { phase: string }[] }[] };
    expect(result.builds.find((b) => b.pid === buildPid)?.ended).toBe(true);
  });
});
