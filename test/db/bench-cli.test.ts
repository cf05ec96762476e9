import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SCENARIO_NAMES } from '../../src/bench/options.js';
import type { BenchReport } from '../../src/bench/types.js';
import { quoteIdent } from '../../src/db/quote.js';
import { cliBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Drops the bench-owned databases a run left on this test server (they are kept for reuse by design). */
async function dropBenchDatabases(url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'sync\\_lookup\\_bench\\_%'`);
  for (const r of rows) await admin.query(`drop database if exists ${quoteIdent(r.datname)} with (force)`);
  await admin.end();
}

describe.runIf(cliBuilt())('bench: usage errors (exit 2, before any database is touched)', () => {
  it('rejects garbage --rows, naming the value', async () => {
    const r = await runCli(['bench', '--rows', '500k,lots'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"lots"');
  });
  it('names unknown scenarios and lists the valid ones', async () => {
    const r = await runCli(['bench', '--scenarios', 'purge-type,purge-everything'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"purge-everything"');
    for (const name of SCENARIO_NAMES) expect(r.stderr).toContain(name);
  });
  it('rejects a zero --repeat', async () => {
    const r = await runCli(['bench', '--repeat', '0'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--repeat');
  });
});

describe.runIf(hasServer() && cliBuilt())('bench end to end at 20 k rows', () => {
  it('prints the JSON contract for every scenario and writes the report files', async () => {
    const t = await createTestDatabase();
    afterAll(() => dropBenchDatabases(t.url));
    const out = await mkdtemp(path.join(tmpdir(), 'bench-out-'));
    dirs.push(out);
    const r = await runCli(['bench', '--rows', '20k', '--repeat', '1', '--json', '--out', out], { DATABASE_URL: t.url });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    const { rows: [v] } = await t.query<{ v: string }>(`select current_setting('server_version') as v`);
    expect(report.postgres).toBe(v!.v.split(' ')[0]);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.sizes).toEqual([20_000]);
    expect(report.notes).toEqual([expect.stringContaining('from pg_stat_statements')]);
    expect(report.scenarios.map((s) => s.name)).toEqual([...SCENARIO_NAMES]);
    for (const s of report.scenarios) {
      expect(Object.keys(s)).toEqual(expect.arrayContaining(
        ['name', 'rows', 'baseline_ms', 'ms', 'speedup', 'rows_affected', 'baseline_plan', 'plan', 'extra']));
      // One size: no growth exponents.
      expect(s).not.toHaveProperty('slope');
      expect(s.rows).toBeGreaterThan(19_000);
      expect(s.ms).toBeGreaterThan(0);
      if (s.name === 'seed') {
        expect(s.baseline_ms).toBeNull();
        expect(s.extra.rows_per_s).toBeGreaterThan(0);
      } else if (s.name === 'archive-type-partitioned' || s.name === 'convert') {
        // Operations that had no original form: ours only.
        expect(s.baseline_ms).toBeNull();
        expect(s.speedup).toBeNull();
      } else {
        expect(s.baseline_ms, s.name).toBeGreaterThan(0);
        expect(s.speedup).toBeCloseTo(s.baseline_ms! / s.ms, 1);
        expect(typeof s.plan, s.name).toBe('string');
        expect(typeof s.baseline_plan).toBe('string');
      }
    }
    const by = (name: string) => report.scenarios.find((s) => s.name === name)!;
    // Both purges delete exactly the type's rows, on the same data (restored between runs).
    expect(by('purge-type').rows_affected).toBe(by('purge-type').extra.baseline_rows_affected);
    expect(by('purge-type').rows_affected).toBeGreaterThan(0);
    expect(by('purge-type-partitioned').rows_affected).toBe(by('purge-type').rows_affected);
    expect(by('purge-type').baseline_plan).not.toContain('record_type_updated_at_sync_tick');
    expect(by('purge-type').extra.vacuum_ms).toEqual(expect.any(Number));
    expect(by('backfill-initial-tick').rows_affected).toBe(1);
    expect(by('archive-type-partitioned').rows_affected).toBe(by('purge-type').rows_affected);
    expect(by('archive-type-partitioned').extra.strategy).toBe('detach');
    // The contract's figures sit at the top level of a scenario; the rest stays in extra.
    expect(by('convert')).toEqual(expect.objectContaining({
      longest_write_stall_ms: expect.any(Number), pull_p99_ms: expect.any(Number), idle_pull_p99_ms: expect.any(Number) }));
    expect(by('convert').extra).toEqual(expect.objectContaining({ rows_per_s: expect.any(Number), verified: true, pull_errors: 0 }));
    expect(by('add-record-type-index')).toEqual(expect.objectContaining({
      longest_write_stall_ms: expect.any(Number), baseline_longest_write_stall_ms: expect.any(Number) }));
    // Work, counted by pg_stat_statements (the test servers load it): every scenario with an original form has both forms' counters.
    for (const s of report.scenarios.filter((x) => x.name !== 'seed' && x.baseline_ms !== null)) {
      for (const k of ['pages_read', 'pages_dirtied', 'wal_bytes', 'baseline_pages_read', 'baseline_pages_dirtied', 'baseline_wal_bytes'] as const) {
        expect(s[k], `${s.name} ${k}`).toEqual(expect.any(Number));
      }
    }
    const purge = by('purge-type');
    // Both forms must visit and dirty every page holding the type's rows (the physical limit), and write WAL for them.
    expect(purge.pages_holding_rows).toBeGreaterThan(0);
    for (const k of ['pages_read', 'baseline_pages_read'] as const) expect(purge[k]!, k).toBeGreaterThanOrEqual(purge.pages_holding_rows!);
    // "Dirtied" counts clean pages made dirty: a few may still be dirty from before the run.
    for (const k of ['pages_dirtied', 'baseline_pages_dirtied'] as const) expect(purge[k]!, k).toBeGreaterThan(0.9 * purge.pages_holding_rows!);
    expect(purge.wal_bytes!).toBeGreaterThan(0);
    expect(by('rebuild-type').pages_holding_rows).toBeGreaterThan(purge.pages_holding_rows!);
    // The report files say the same.
    expect(JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'))).toEqual(report);
    expect(await readFile(path.join(out, 'results.md'), 'utf8')).toContain('| purge-type |');
    const html = await readFile(path.join(out, 'index.html'), 'utf8');
    expect(html.match(/<svg /g)?.length).toBe(1 + SCENARIO_NAMES.length);

    // The user's database got nothing: the data lives in a bench-owned database, restored as it was.
    const { rows: tables } = await t.query(`select relname from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace`);
    expect(tables).toEqual([]);
    const bench = new pg.Client({ connectionString: t.url.replace(/\/[^/]+$/, '/sync_lookup_bench_20000') });
    await bench.connect();
    try {
      const { rows: [marker] } = await bench.query<{ state: string }>('select state from sync_lookup_bench_marker');
      expect(marker?.state).toBe('ready');
      const { rows: [counts] } = await bench.query<{ em: number; ticks: number; staged: number }>(
        `select (select count(*)::int from sync_lookup where record_type = 'encounter_medications') as em,
                (select count(*)::int from sync_lookup_ticks where source_start_tick = -1) as ticks,
                (select count(*)::int from sync_lookup where updated_at_sync_tick = -2) as staged`);
      expect(counts).toEqual({ em: by('purge-type').rows_affected, ticks: 1, staged: 0 });
    } finally {
      await bench.end();
    }

    // A second run reuses the seeded data.
    const again = await runCli(['bench', '--rows', '20k', '--repeat', '1', '--scenarios', 'backfill-initial-tick'], { DATABASE_URL: t.url });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('reusing 20k rows');
    expect(again.stdout).toMatch(/^operation\s+rows\s+original\s+ours\s+speedup/m);
  }, 400_000);

  it('--cold empties the caches before every run and says how; --project fits two sizes and labels the result', async () => {
    const t = await createTestDatabase();
    afterAll(() => dropBenchDatabases(t.url));
    const r = await runCli(['bench', '--rows', '20k,30k', '--repeat', '1', '--scenarios', 'purge-type-partitioned,backfill-initial-tick',
      '--cold', '--project', '58m', '--json'], { DATABASE_URL: t.url });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    // This machine lets root drop the page cache; the test servers are PostgreSQL 18 (evict_all) and 15 (no evict functions).
    const cold = report.notes.find((n) => n.startsWith('--cold:'));
    expect(cold).toMatch(/shared buffers (evicted with pg_buffercache_evict(_all)?\(\)|NOT evicted)/);
    expect(cold).toMatch(/OS page cache (dropped|NOT dropped)|evicted from the OS page cache one by one/);
    expect(report.projection!.size).toBe(58_000_000);
    expect(report.projection!.note).toMatch(/^a projection, not a measurement/);
    expect(report.projection!.scenarios.map((s) => s.name)).toEqual(['purge-type-partitioned', 'backfill-initial-tick']);
    for (const s of report.projection!.scenarios) {
      expect(s.ms, s.name).toBeGreaterThan(0);
      expect(s.fit_error, s.name).toEqual(expect.any(Number));
      expect(s.inputs.sizes).toHaveLength(2);
    }
    // The partition's TRUNCATE reports its rows from the statistics: the restored, analyzed partition's exact count here.
    const part = report.scenarios.filter((s) => s.name === 'purge-type-partitioned');
    for (const s of part) expect(s.rows_affected).toBe(s.extra.baseline_rows_affected);
  }, 300_000);

  it('refuses a database holding data of its own unless --force, and never touches it', async () => {
    const t = await createTestDatabase();
    afterAll(() => dropBenchDatabases(t.url));
    await t.query(`create table patients_of_a_real_site (id int primary key); insert into patients_of_a_real_site values (1)`);
    const refused = await runCli(['bench', '--rows', '20k', '--repeat', '1', '--scenarios', 'backfill-initial-tick'], { DATABASE_URL: t.url });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refusing');
    expect(refused.stderr).toContain('public.patients_of_a_real_site');
    expect(refused.stderr).toContain('--force');
    const forced = await runCli(['bench', '--rows', '20k', '--repeat', '1', '--scenarios', 'backfill-initial-tick', '--force', '--json'],
      { DATABASE_URL: t.url });
    expect(forced.code, forced.stderr).toBe(0);
    expect((JSON.parse(forced.stdout) as BenchReport).databases).toEqual(['sync_lookup_bench_20000']);
    const { rows } = await t.query(`select relname from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace order by 1`);
    expect(rows).toEqual([{ relname: 'patients_of_a_real_site' }]);
    expect((await t.query('select count(*)::int as n from patients_of_a_real_site')).rows[0]).toEqual({ n: 1 });
  });
});
