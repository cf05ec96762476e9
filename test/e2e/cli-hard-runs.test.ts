import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

const jsonLines = (stdout: string) => stdout.trim().split('\n').filter((l) => l.startsWith('{"event"')).map((l) => JSON.parse(l).event);
const resultOf = (stdout: string) => JSON.parse(stdout.trim().split('\n').filter((l) => !l.startsWith('{"event"')).join('\n'));

/** Lookup rows and source rows per model, counted directly (not through verify). */
async function counts(t: TestDatabase): Promise<{ lookup: number; sources: number }> {
  const names = builtinRegistry().names;
  const { rows } = await t.query<{ lookup: string; sources: string }>(
    `select (select count(*) from sync_lookup)::text as lookup, (${names.map((n) => `(select count(*) from "${n}")`).join(' + ')})::text as sources`);
  return { lookup: Number(rows[0]!.lookup), sources: Number(rows[0]!.sources) };
}

/** Kills the child with SIGKILL once `when` matches a JSON event line on its stdout. */
function killAt(when: (event: { type: string; phase?: string }) => boolean, delayMs = 0): (child: ChildProcess) => void {
  return (child) => {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('{"event"') && when(JSON.parse(l).event)) setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
  };
}

async function waitUntilNoSession(t: TestDatabase, applicationName: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const { rowCount } = await t.query('select 1 from pg_stat_activity where datname = current_database() and application_name = $1', [applicationName]);
    if (!rowCount) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${applicationName} still connected after 60 s`);
}

describe.runIf(hasServer() && cliBuilt())('hard runs (built CLI)', () => {
  for (const phase of ['load', 'build'] as const) {
    it(`seed --replace killed (-9) during its ${phase} phase: build and verify never both call a wrong lookup good`, async () => {
      const t = await createTestDatabase();
      const env = { DATABASE_URL: t.url };
      expect((await runCli(['seed', '--rows', '20k', '--seed', '1'], env)).code).toBe(0);
      const killed = await runCli(['seed', '--replace', '--rows', '60k', '--seed', '2', '--json'], env,
        killAt((e) => (phase === 'load' ? e.type === 'seed_load' : e.type === 'seed_phase' && e.phase === 'build'), phase === 'build' ? 300 : 0));
      expect(killed.code).toBeNull(); // killed by the signal, not finished
      // Right away (the killed session's backend may still be running its statement): never both green on a wrong lookup.
      const build = await runCli(['build', '--json'], env);
      const verify = await runCli(['verify', '--json'], env);
      const c = await counts(t);
      if (build.code === 0 && verify.code === 0) expect(c.lookup).toBe(c.sources);
      if (verify.code !== 0) expect(verify.stdout).toMatch(/"missing"/);
      // Once the server has rolled the dead session back, build repairs it: the replace was atomic, so the
      // sources are the old ones with their lookup, or the new ones that this build fills.
      await waitUntilNoSession(t, 'sync-lookup:seed');
      expect((await runCli(['build'], env)).code).toBe(0);
      expect((await runCli(['verify'], env)).code).toBe(0);
      const after = await counts(t);
      expect(after.lookup).toBe(after.sources);
      expect(after.sources).toBeGreaterThan(0);
    });
  }

  it('verify fails (exit 3, ahead_of_clock) on source rows a reset clock will not reach, whatever the pending count', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['seed', '--rows', '5000'], env)).code).toBe(0);
    // The state an interrupted replace used to commit: lookup and ticks emptied, clock reset, old sources kept.
    await t.query('truncate sync_lookup, sync_lookup_ticks; update sync_lookup_tool.clock set tick = 0');
    const build = await runCli(['build', '--json'], env);
    expect(build.code).toBe(0);
    expect(resultOf(build.stdout).rows).toBe(0);
    const verify = await runCli(['verify', '--json'], env);
    expect(verify.code).toBe(3);
    const r = resultOf(verify.stdout);
    expect(r.ok).toBe(false);
    const names = builtinRegistry().names;
    const { rows: [ahead] } = await t.query<{ n: string }>(
      `select (${names.map((n) => `(select count(*) from "${n}" where updated_at_sync_tick > (select tick from sync_lookup_tool.clock))`).join(' + ')})::text as n`);
    expect(Number(ahead!.n)).toBeGreaterThan(4000);
    expect(r.problems.ahead_of_clock.count).toBe(Number(ahead!.n));
    const text = await runCli(['verify'], env);
    expect(text.stdout).toMatch(/ahead_of_clock .*move the sync clock past the highest source tick/);
    expect(r.problems.ahead_of_clock.repair).toMatch(/move the sync clock past the highest source tick/);
  });

  it('the first SIGTERM ends a command stuck on a lock (exit 130) and publishes nothing', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['seed', '--rows', '2000'], env)).code).toBe(0);
    const ticksBefore = (await t.query('select * from sync_lookup_ticks')).rowCount;
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('select tick from sync_lookup_tool.clock for share'); // a writer that never commits: the tock waits
    try {
      let sentAt = 0;
      const r = await runCli(['build'], env, (child) => {
        const poll = setInterval(async () => {
          const { rowCount } = await t.query(`select 1 from pg_stat_activity where datname = current_database() and application_name = 'sync-lookup:build' and wait_event_type = 'Lock'`);
          if (rowCount) { clearInterval(poll); sentAt = Date.now(); child.kill('SIGTERM'); }
        }, 200);
        child.on('close', () => clearInterval(poll));
      });
      expect(sentAt).toBeGreaterThan(0);
      expect(r.code).toBe(130);
      expect(Date.now() - sentAt).toBeLessThan(9000);
      expect(r.stderr).toMatch(/terminated: cancelling/);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    expect((await t.query('select * from sync_lookup_ticks')).rowCount).toBe(ticksBefore);
    expect((await runCli(['verify'], env)).code).toBe(0);
  });

  it('progress never shows more rows done than the total (a stale estimate), and jobs --resume ID finishes an interrupted job', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['seed', '--rows', '20k'], env)).code).toBe(0);
    // Statistics that know ~200 encounter_medications rows, then 1,500 more of them: the estimate is far too low.
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, is_lab_request, is_deleted)
                   select 'extra-' || g, 'encounter_medications', '{}', 1, false, false from generate_series(1, 1500) g`);
    const purge = await runCli(['purge', 'encounter_medications', '--json', '--no-vacuum', '--batch-rows', '5000'], env);
    expect(purge.code).toBe(0);
    const progress = jsonLines(purge.stdout).filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(p.rows_done).toBeLessThanOrEqual(p.rows_total ?? Infinity);
    const jobs = JSON.parse((await runCli(['jobs', '--all', '--json'], env)).stdout).jobs;
    for (const j of jobs) expect(j.rows_done).toBeLessThanOrEqual(j.rows_total ?? Infinity);

    // An interrupted rebuild (Ctrl-C after its first batch), continued by id.
    let interruptedId = 0;
    const first = await runCli(['rebuild', 'notes', '--repull', '--json', '--batch-rows', '200', '--pause-ms', '300', '--no-vacuum'], env, (child) => {
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('"type":"progress"')) child.kill('SIGINT'); });
    });
    expect(first.code).toBe(130);
    interruptedId = JSON.parse(first.stdout.trim().split('\n').at(-1)!).error?.details?.jobId ?? jsonLines(first.stdout).find((e) => e.type === 'job_started').job_id;
    const resumed = await runCli(['jobs', '--resume', String(interruptedId), '--json'], env);
    expect(resumed.code).toBe(0);
    const r = resultOf(resumed.stdout);
    expect(r).toMatchObject({ job_id: interruptedId, resumed: true, operation: 'rebuild', record_types: ['notes'] });
    // The purge above emptied a type that still has sources: only the rebuilt type is checked.
    expect((await runCli(['verify', '--types', 'notes'], env)).code).toBe(0);
    const again = await runCli(['jobs', '--resume', String(interruptedId)], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`job ${interruptedId} is already done`));
  });

  it('errors name their cause: --database-url, a migration module, a --patients file, explain of a DROP', async () => {
    const t = await createTestDatabase();
    const bad = await runCli(['--database-url', 'not a url', 'status']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--database-url is not a valid URL/);
    expect(bad.stderr).not.toMatch(/DATABASE_URL is/);

    const dir = await mkdtemp(path.join(tmpdir(), 'sl-errs-'));
    await writeFile(path.join(dir, '0100_throws.mjs'), "throw new Error('boom at import');\nexport default { up() {} };\n");
    const mig = await runCli(['migrate', '--dir', dir], { DATABASE_URL: t.url });
    expect(mig.code).toBe(2);
    expect(mig.stderr).toContain(path.join(dir, '0100_throws.mjs'));
    expect(mig.stderr).toContain('boom at import');

    expect((await runCli(['migrate'], { DATABASE_URL: t.url })).code).toBe(0);
    const truncated = path.join(dir, 'patients.json');
    await writeFile(truncated, '["p1", "p2"');
    const pull = await runCli(['pull', '--since', '-1', '--patients', truncated], { DATABASE_URL: t.url });
    expect(pull.code).toBe(2);
    expect(pull.stderr).toContain(`--patients file ${truncated} is not valid JSON`);
    const object = path.join(dir, 'object.json');
    await writeFile(object, '{"patients": ["p1"]}');
    const pullObject = await runCli(['pull', '--since', '-1', '--patients', object], { DATABASE_URL: t.url });
    expect(pullObject.code).toBe(2);
    expect(pullObject.stderr).toMatch(/must hold a JSON array of strings/);

    const drop = await runCli(['explain', '--sql', 'DROP TABLE sync_lookup'], { DATABASE_URL: t.url });
    expect(drop.code).toBe(2);
    expect(drop.stderr).toMatch(/is a valid statement \(DROP TABLE …\), but not a query explain can run/);
    expect(drop.stderr).not.toMatch(/syntax error/);
    expect((await t.query(`select to_regclass('sync_lookup') is not null as ok`)).rows[0]!.ok).toBe(true);
  });
});
