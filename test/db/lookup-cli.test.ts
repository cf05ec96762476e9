import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

const json = (stdout: string): any => parseJsonOutput(stdout).last;

describe.runIf(hasServer() && cliBuilt())('sync-lookup seed / build / pull / verify (built CLI)', () => {
  it('seeds, builds, pulls and verifies, with the documented JSON shapes and exit codes', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    const seed = await runCli(['seed', '--rows', '1k', '--seed', '5', '--json'], env);
    expect(seed.code).toBe(0);
    const s = json(seed.stdout);
    expect(s).toMatchObject({ seed: '5', build: { initial: true, since_tick: -1, direct: true } });
    expect(s.build.rows).toBe(s.rows);
    expect(s.rows_per_second).toBeGreaterThan(0);
    expect(seed.stdout).toContain('"type":"seed_phase"');

    const again = await runCli(['seed', '--rows', '1k'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/seed needs an empty lookup .* --replace/);

    await t.query(`update notes set content = 'edited' where id in (select id from notes order by id limit 3)`);
    const build = await runCli(['build', '--json'], env);
    expect(build.code).toBe(0);
    const b = json(build.stdout);
    expect(b).toMatchObject({ rows: 3, initial: false, published: 3, since_tick: s.build.end_tick - 1 });
    expect(b.models.find((m: { model: string }) => m.model === 'notes').rows).toBe(3);

    const pull = await runCli(['pull', '--since', String(s.build.end_tick), '--json'], env);
    expect(pull.code).toBe(0);
    expect(json(pull.stdout)).toMatchObject({ rows: 3, types: { notes: 3 }, until_tick: b.end_tick, since_tick: s.build.end_tick });
    const nd = await runCli(['pull', '--since', '-1', '--types', 'notes,encounters', '--ndjson', '--chunk', '50'], env);
    expect(nd.code).toBe(0);
    const lines = nd.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(new Set(lines.map((l) => l.record_type))).toEqual(new Set(['notes', 'encounters']));
    expect(lines.map((l) => Number(l.id))).toEqual([...lines.map((l) => Number(l.id))].sort((x, y) => x - y));

    const ok = await runCli(['verify', '--json'], env);
    expect(ok.code).toBe(0);
    expect(json(ok.stdout)).toMatchObject({ ok: true, problems: {}, last_end_tick: b.end_tick });
    await t.query(`delete from sync_lookup where id = (select min(id) from sync_lookup where record_type = 'vitals')`);
    const bad = await runCli(['verify'], env);
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/missing\s+1\s+vitals:/);
    expect(bad.stdout).toContain('INCONSISTENT');
  });

  it('build --watch builds every interval, one build_done event per build, until Ctrl-C; the summary is the last line', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    expect((await runCli(['seed', '--rows', '300'], env)).code).toBe(0);
    let lines = 0;
    const r = await runCli(['build', '--watch', '1', '--json'], env, (child) => {
      child.stdout!.on('data', (d: Buffer) => {
        for (const l of d.toString().split('\n')) {
          if (!l.startsWith('{"event":{"type":"build_done"')) continue;
          lines++;
          if (lines === 1) void t.query(`update notes set content = 'w' where id = (select id from notes order by id limit 1)`);
          if (JSON.parse(l).event.rows === 1 || lines > 10) child.kill('SIGINT');
        }
      });
    });
    expect(r.code).toBe(130);
    const { events, last } = parseJsonOutput(r.stdout);
    const builds = events.filter((e) => e.type === 'build_done') as { since_tick: number; end_tick: number; rows: number }[];
    expect(builds.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < builds.length; i++) expect(builds[i]!.since_tick).toBe(builds[i - 1]!.end_tick - 1);
    expect(builds.reduce((n, b) => n + b.rows, 0)).toBe(1);
    expect(last).toEqual({ builds: builds.length, skipped: 0, rows: 1 });
  });

  it('rejects bad input with exit 2 and a message naming the value', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    for (const rows of ['0', '-5', 'lots']) {
      const r = await runCli(['seed', '--rows', rows], env);
      expect(r.code, rows).toBe(2);
      expect(r.stderr).toContain(`--rows must be a positive row count such as 5000, 250k or 2m, got ${JSON.stringify(rows)}`);
    }
    const since = await runCli(['pull', '--since', '12.5'], env);
    expect(since.code).toBe(2);
    expect(since.stderr).toContain('--since must be an integer tick >= -1, got "12.5"');
    const below = await runCli(['pull', '--since', '-3'], env);
    expect(below.code).toBe(2);
    const types = await runCli(['verify', '--types', 'notes,nonsense'], env);
    expect(types.code).toBe(2);
    expect(types.stderr).toMatch(/unknown model "nonsense"; known models: facilities/);
    const pullTypes = await runCli(['pull', '--since', '1', '--types', 'ghosts'], env);
    expect(pullTypes.code).toBe(2);
    const dir = await mkdtemp(path.join(tmpdir(), 'sl-reg-'));
    await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ models: [{ name: 'x y' }, { name: 'ok', direction: 'nope' }] }));
    const reg = await runCli(['seed', '--rows', '10', '--models', path.join(dir, 'bad.json'), '--json'], env);
    expect(reg.code).toBe(2);
    const err = JSON.parse(reg.stdout).error;
    expect(err.code).toBe('invalid_registry');
    expect(err.details.problems.some((p: string) => p.startsWith('models[0] (x y)'))).toBe(true);
    expect(err.details.problems.some((p: string) => p.startsWith('models[1] (ok).direction'))).toBe(true);
    const malformed = await runCli(['build', '--models', path.resolve('test/fixtures/registry/malformed.json')], env);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('is not valid JSON');
  });

  it('seeds from a registry file and verifies against it', async () => {
    const t = await createTestDatabase();
    const env = { DATABASE_URL: t.url };
    const models = path.resolve('test/fixtures/registry/valid.json');
    const seed = await runCli(['seed', '--rows', '500', '--models', models, '--json'], env);
    expect(seed.code).toBe(0);
    expect(json(seed.stdout).build.models.map((m: { model: string }) => m.model)).toEqual(['clinics', 'people', 'visits', 'visit_notes']);
    const { rows } = await t.query(`select count(*)::int as n, count(facility_id)::int as f from sync_lookup where record_type = 'visits'`);
    expect(rows[0]!.n).toBe(rows[0]!.f);
    expect((await runCli(['verify', '--models', models], env)).code).toBe(0);
    // The built-in registry does not match this database: a usage error naming the missing tables.
    const builtin = await runCli(['verify', '--types', 'notes,vitals'], env);
    expect(builtin.code).toBe(2);
    expect(builtin.stderr).toContain('source tables notes, vitals do not exist');
  });
});
