import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import { cliBuilt, parseJsonOutput, runCli } from '../helpers/cli.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';
import { fillSyntheticLookup } from '../fixtures/plans/synthetic.js';

describe.runIf(hasServer() && cliBuilt())('diagnostics commands, as a user runs them', () => {
  it('explain, doctor, index estimate and stats export: results, exit codes and clear errors', async () => {
    const t = await createTestDatabase();
    await migrate(t.db, { migrations: builtinMigrations(), to: builtinMigrations()[0]!.name });
    await fillSyntheticLookup(t, 30_000);
    const env = { DATABASE_URL: t.url };

    const explain = await runCli(['explain', '--json', '--large-table-rows', '10000'], env);
    expect(explain.code, explain.stderr).toBe(3);
    const report = parseJsonOutput(explain.stdout).last as unknown as { verdict: string; queries: { name: string; verdict: string; fix: string | null }[] };
    expect(report.verdict).toBe('fail');
    expect(report.queries.find((q) => q.name === 'seed_purge')?.fix).toMatch(/^CREATE INDEX CONCURRENTLY "sync_lookup_record_type_updated_at_sync_tick"/);

    const human = await runCli(['explain', '--sql', "DELETE FROM sync_lookup WHERE record_type IN ('patient_program_registrations', 'encounter_medications')", '--large-table-rows', '10000'], env);
    expect(human.code).toBe(3);
    expect(human.stdout).toMatch(/FAIL +sql: .*\n +plan: Seq Scan on sync_lookup \(30 k rows\)\n +why: +.*\n +fix: +CREATE INDEX CONCURRENTLY/);

    const syntax = await runCli(['explain', '--sql', 'SELECT *\nFORM sync_lookup'], env);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(/syntax error at or near "FORM" at line 2, column 1/);
    const missing = await runCli(['explain', '--json', '--sql', 'select count(*) from sync_lookup_archive'], env);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { code: 'invalid_statement', message: 'relation "sync_lookup_archive" does not exist at line 1, column 22', details: { sqlstate: '42P01' } } });

    const estimate = await runCli(['index', 'estimate', '--json', 'CREATE INDEX CONCURRENTLY sync_lookup_rt ON sync_lookup (record_type)'], env);
    expect(estimate.code, estimate.stderr).toBe(0);
    const e = JSON.parse(estimate.stdout) as Record<string, unknown> & { inputs: Record<string, unknown> };
    expect(e.estimated_bytes).toBeGreaterThan(8192);
    expect(e.estimated_build_ms).toBeGreaterThan(0);
    expect(e.inputs).toMatchObject({ deduplication: true, distinct_keys: 20, distinct_source: 'pg_stats', concurrently: true });
    const badColumn = await runCli(['index', 'estimate', 'sync_lookup(record_kind)'], env);
    expect(badColumn.code).toBe(2);
    expect(badColumn.stderr).toMatch(/column "record_kind" not in table public.sync_lookup/);

    const doctor = await runCli(['doctor', '--json', '--no-explain'], env);
    expect(doctor.code, doctor.stderr).toBe(0);
    const d = JSON.parse(doctor.stdout) as { counts: { error: number }; tables: { name: string }[] };
    expect(d.counts.error).toBe(0);
    expect(d.tables.map((x) => x.name)).toEqual(['sync_lookup', 'sync_lookup_ticks']);
    const doctorExplain = await runCli(['doctor'], { ...env });
    // 30 k rows are below the default 100 k "large table": no missing-index error at this size.
    expect(doctorExplain.code, doctorExplain.stdout).toBe(0);

    const stats = await runCli(['stats', 'export', '--tables', 'sync_lookup,sync_lookup_ticks'], env);
    expect(stats.code).toBe(0);
    const doc = JSON.parse(stats.stdout) as { format: string; tables: { name: string; columns: { name: string; most_common_vals: string[] | null }[] }[] };
    expect(doc.format).toBe('sync-lookup-stats');
    expect(doc.tables.map((x) => x.name)).toEqual(['sync_lookup', 'sync_lookup_ticks']);
    expect(doc.tables[0]!.columns.find((c) => c.name === 'record_type')?.most_common_vals).toHaveLength(20);
    const noTable = await runCli(['stats', 'export', '--tables', 'nope'], env);
    expect(noTable.code).toBe(2);
  });
});
