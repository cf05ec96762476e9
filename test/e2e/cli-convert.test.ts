import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, parseJsonOutput, runCli, type CliResult } from '../helpers/cli.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';

/** Kills the child with SIGKILL once `when` matches a JSON event line on its stdout. */
function killAt(when: (e: { type: string; phase?: string }) => boolean, delayMs = 0): (child: ChildProcess) => void {
  return (child) => {
    let buffer = '';
    let sent = false;
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const l of lines) {
        if (!sent && l.startsWith('{"event"') && when(JSON.parse(l).event)) {
          sent = true;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
  };
}

async function rowsText(t: TestDatabase): Promise<string[]> {
  const { rows } = await t.query<{ r: string }>(`select (l.*)::text as r from sync_lookup l order by id`);
  return rows.map((r) => r.r);
}

/** Runs the CLI again until a killed run's backend has let go of the conversion (its statement may still be running). */
async function rerun(args: string[], env: Record<string, string>): Promise<CliResult> {
  for (let i = 0; ; i++) {
    const r = await runCli(args, env);
    if (!(r.code === 1 && r.stdout.includes('conversion_running')) || i > 60) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

const ARGS = ['convert', '--to', 'partitioned', '--json', '--batch-rows', '400', '--batch-ms', '10', '--pause-ms', '5'];

describe.runIf(hasServer() && cliBuilt())('convert (CLI) killed at each phase', () => {
  it('kill -9 during capture, copy, index and verify, with writes between runs: the resumed conversion converges; rollback restores every row', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations() });
    await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id)
      select 'r' || g, (array['notes','encounters','vitals','legacy_thing'])[1 + g % 4], json_build_object('n', g), g / 10, 'p' || (g % 50)
        from generate_series(1, 20000) g`);
    const env = { DATABASE_URL: t.url };
    const kills: [string, (e: { type: string; phase?: string }) => boolean, number][] = [
      ['capture', (e) => e.type === 'phase' && e.phase === 'capture', 0],
      ['copy', (e) => e.type === 'progress' && e.phase === 'copy', 30],
      ['index', (e) => e.type === 'phase' && e.phase === 'index', 20],
      ['verify', (e) => e.type === 'phase' && e.phase === 'verify', 5],
    ];
    const landed: string[] = [];
    for (const [i, [phase, when, delay]] of kills.entries()) {
      let r = await runCli(ARGS, env, killAt(when, delay));
      // The previous killed run's backend may still hold the conversion (its statement runs on): try again.
      for (let k = 0; r.code === 1 && r.stdout.includes('conversion_running') && k < 60; k++) {
        await new Promise((res) => setTimeout(res, 500));
        r = await runCli(ARGS, env, killAt(when, delay));
      }
      // Killed by the signal, or the conversion got past the phase before the kill landed (then it finished).
      expect([null, 0], `${phase}: ${r.stderr}${r.stdout.slice(-300)}`).toContain(r.code);
      if (r.code === 0) break;
      landed.push(phase);
      // Writes between the runs: an insert, an update, a delete (the capture must have logged them if it was installed).
      await t.query(`insert into sync_lookup (record_id, record_type, data, updated_at_sync_tick) values ('w${i}', 'notes', '{"w":1}', 9000 + ${i})`);
      await t.query(`update sync_lookup set data = '{"u":1}', updated_at_sync_tick = 9100 + ${i} where record_id = 'r${100 + i}'`);
      await t.query(`delete from sync_lookup where record_id = 'r${200 + i}'`);
    }
    expect(landed.length).toBeGreaterThanOrEqual(3);
    const truth = await rowsText(t);
    const done = await rerun(ARGS, env);
    expect(done.code, done.stdout.slice(-500)).toBe(0);
    const { events, last } = parseJsonOutput(done.stdout);
    expect(last).toMatchObject({ layout: 'partitioned', verified: true });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['phase', 'progress']));
    expect((await t.query(`select relkind::text as k from pg_class where oid = 'sync_lookup'::regclass`)).rows[0]!.k).toBe('p');
    expect(await rowsText(t)).toEqual(truth);

    const rb = await rerun(['convert', '--rollback', '--json'], env);
    expect(rb.code, rb.stdout).toBe(0);
    expect(parseJsonOutput(rb.stdout).last).toMatchObject({ action: 'rollback', layout: 'plain', swapped_back: true });
    expect((await t.query(`select relkind::text as k from pg_class where oid = 'sync_lookup'::regclass`)).rows[0]!.k).toBe('r');
    expect(await rowsText(t)).toEqual(truth);
  });
});
