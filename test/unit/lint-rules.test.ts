import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lintMigrations, parseAssumeRows, readStatsDocument, type LintOptions, type LintResult } from '../../src/lint/index.js';
import { typeChangeRewrites } from '../../src/lint/rules/rewrite.js';
import { parseLintConfig } from '../../src/lint/config.js';

/*
 * Each rule's bad and good forms, schema evolution and ignores, on inline migrations against a small
 * schema dump with assumed sizes (notes: 10 M rows, small: 100 rows, other: size unknown).
 */

const SCHEMA = `
CREATE TABLE public.notes (id uuid NOT NULL, record_id varchar(255), content varchar(255), email text, tick bigint NOT NULL, created_at timestamptz);
ALTER TABLE ONLY public.notes ADD CONSTRAINT notes_pkey PRIMARY KEY (id);
CREATE INDEX notes_tick ON public.notes USING btree (tick);
CREATE INDEX notes_lower_email ON public.notes USING btree (lower(email));
CREATE UNIQUE INDEX notes_record ON public.notes USING btree (record_id, content);
CREATE INDEX notes_flagged ON public.notes USING btree (content) WHERE (email IS NULL);
CREATE TABLE public.small (id integer PRIMARY KEY, a integer);
CREATE TABLE public.other (id integer PRIMARY KEY, a integer);
`;
const BASE: LintOptions = { schemaSql: SCHEMA, assumeRows: { notes: 10_000_000, small: 100 } };

async function lint(files: Record<string, string>, options: LintOptions = {}): Promise<LintResult> {
  return lintMigrations(Object.entries(files).map(([path, text]) => ({ path, text })), { ...BASE, ...options });
}

/** `rule level` of each finding, in order. */
async function rules(sql: string, options: LintOptions = {}): Promise<string[]> {
  const r = await lint({ '001.sql': sql }, options);
  return r.findings.map((f) => `${f.rule} ${f.level}`);
}

describe('lint rules', { timeout: 60_000 }, () => {
  it('unindexed-filter: a predicate on a second key column reads the whole large table, with the index that fixes it', async () => {
    const r = await lint({ '001.sql': "DELETE FROM notes WHERE content = 'x';" });
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0]!;
    expect(f).toMatchObject({ rule: 'unindexed-filter', level: 'error', table: 'public.notes', line: 1, column: 1 });
    expect(f.message).toMatch(/10\.0 M rows/);
    expect(f.message).toMatch(/notes_record has content as key column 2/);
    expect(f.message).toMatch(/notes_flagged leads with content but is partial/);
    expect(f.fix).toBe('CREATE INDEX CONCURRENTLY "notes_content" ON "public"."notes" ("content")');
    expect(f.evidence.maxMs).toBeGreaterThan(f.evidence.minMs as number);
  });

  it('unindexed-filter: predicates that bound a leading key are fine (equality, range, IN sub-select, expression key, OR of served arms, partial index)', async () => {
    expect(await rules([
      "DELETE FROM notes WHERE record_id = 'a' AND content = 'x';",
      'UPDATE notes SET content = NULL WHERE tick > 5;',
      'SELECT max(tick) FROM notes WHERE tick < (SELECT min(a) FROM small);',
      "DELETE FROM notes WHERE lower(email) = 'x';",
      "DELETE FROM notes WHERE tick = 1 OR record_id = 'b';",
      "SELECT id FROM notes WHERE content = 'x' AND email IS NULL;",
      "DELETE FROM notes n USING small s WHERE n.id = s.a::uuid AND s.a = 1;",
    ].join('\n'))).toEqual([]);
  });

  it('unindexed-filter: a large table only joined (a backfill from another table) is read whole by design; one filtered on its own is not', async () => {
    expect(await rules('UPDATE notes SET content = s.a::text FROM small s WHERE notes.email = s.a::text;')).toEqual([]);
    expect(await rules("UPDATE notes SET content = s.a::text FROM small s WHERE notes.email = s.a::text AND notes.content = 'x';")).toEqual(['unindexed-filter error']);
  });

  it('unindexed-filter: small tables are fine, unknown sizes are said to be unknown, a LIMIT lowers it to a warning', async () => {
    expect(await rules('DELETE FROM small WHERE a = 1;')).toEqual([]);
    const r = await lint({ '001.sql': 'DELETE FROM other WHERE a = 1;' });
    expect(r.findings.map((f) => [f.rule, f.level])).toEqual([['unindexed-filter', 'warning']]);
    expect(r.findings[0]!.message).toMatch(/size unknown/);
    expect(await rules("DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE content = 'x' LIMIT 1000);")).toEqual(['unindexed-filter warning']);
  });

  it("the seed's four migrations (TypeScript, Sequelize) are errors at 58 M rows and clean at 5 000", async () => {
    const schemaSql = readFileSync('test/fixtures/origin/schema.sql', 'utf8');
    const base = { schemaSql, assumeInTransaction: true, liveTypes: ['patient_program_registrations', 'patient_program_registration_conditions', 'prescriptions'] };
    const big = await lintMigrations(['test/fixtures/lint/seed-tamanu'], { ...base, assumeRows: { sync_lookup: 58_000_000, sync_lookup_ticks: 100 } });
    const errors = big.findings.filter((f) => f.level === 'error');
    expect(errors.map((f) => `${f.file.split('/').pop()!.slice(0, 13)} ${f.rule}`)).toEqual([
      '1748555633925 unindexed-filter', '1750719607520 count-for-emptiness', '1754351568045 unindexed-filter', '1755237235317 unindexed-filter',
    ]);
    expect(big.files).toHaveLength(4);
    const small = await lintMigrations(['test/fixtures/lint/seed-tamanu'], { ...base, assumeRows: { sync_lookup: 5000, sync_lookup_ticks: 100 } });
    expect(small.findings).toEqual([]);
    const good = await lintMigrations(['test/fixtures/lint/seed-tamanu-good'], { ...base, assumeRows: { sync_lookup: 58_000_000, sync_lookup_ticks: 100 } });
    expect(good.findings).toEqual([]);
  });

  it('count-for-emptiness: count(*) compared with 0 on a large table; EXISTS and plain counts are fine', async () => {
    expect(await rules('SELECT count(*) = 0 AS empty FROM notes;')).toEqual(['count-for-emptiness error']);
    expect(await rules('SELECT (SELECT count(*) FROM notes) > 0;')).toEqual(['count-for-emptiness error']);
    expect(await rules('SELECT EXISTS (SELECT 1 FROM notes); SELECT count(*) FROM small; SELECT count(*) = 0 FROM small;')).toEqual([]);
    expect(await rules("SELECT count(*) > 0 FROM notes WHERE record_id = 'a';")).toEqual([]);
    expect(await rules('SELECT 1 <= (SELECT count(*) FROM notes);')).toEqual(['count-for-emptiness error']);
    // Not emptiness: duplicates per group, a threshold.
    expect(await rules('SELECT record_id FROM notes GROUP BY record_id HAVING count(*) > 1; SELECT count(*) > 1 FROM notes;')).toEqual([]);
  });

  it('non-concurrent-index: CREATE/DROP INDEX and REINDEX without CONCURRENTLY on a large table, with the build time', async () => {
    const r = await lint({ '001.sql': 'CREATE INDEX notes_content ON notes (content);' });
    expect(r.findings.map((f) => f.rule)).toEqual(['non-concurrent-index']);
    expect(r.findings[0]!.message).toMatch(/blocks writes on public.notes .* the build takes .* to /);
    expect(r.findings[0]!.evidence.indexBytes).toBeGreaterThan(100_000_000);
    expect(await rules('DROP INDEX notes_tick;')).toEqual(['non-concurrent-index error', 'missing-lock-timeout warning']);
    expect(await rules('REINDEX TABLE notes;')).toEqual(['non-concurrent-index error']);
    expect(await rules('--! no-transaction\nCREATE INDEX CONCURRENTLY notes_content ON notes (content);')).toEqual([]);
    expect(await rules('CREATE TABLE fresh (id int, a int); CREATE INDEX fresh_a ON fresh (a);')).toEqual([]);
    expect(await rules('CREATE INDEX small_a ON small (a);')).toEqual([]);
    expect(await rules('CREATE INDEX IF NOT EXISTS notes_tick ON notes (tick);')).toEqual([]);
    expect(await rules('CREATE INDEX IF NOT EXISTS notes_other ON notes (tick);')).toEqual(['non-concurrent-index error']);
  });

  it('concurrent-index-in-transaction: from the runner, a multi-statement call, or an explicit BEGIN', async () => {
    const sql = 'CREATE INDEX CONCURRENTLY notes_content ON notes (content);';
    expect(await rules(sql, { assumeInTransaction: true })).toEqual(['concurrent-index-in-transaction error']);
    expect(await rules(sql)).toEqual([]);
    expect(await rules(`BEGIN; ${sql} COMMIT;`)).toEqual(['concurrent-index-in-transaction error']);
    const knex = "exports.config = { transaction: false };\nexports.up = (knex) => knex.raw('SELECT 1; CREATE INDEX CONCURRENTLY i ON notes (content)');";
    const r = await lint({ '001.js': knex });
    expect(r.findings.map((f) => f.rule)).toEqual(['concurrent-index-in-transaction']);
    expect(r.findings[0]!.message).toMatch(/one query string/);
    const typeorm = 'export class X { async up(queryRunner) { await queryRunner.query(`CREATE INDEX CONCURRENTLY i ON notes (content)`); } }';
    expect((await lint({ '001.ts': typeorm })).findings.map((f) => f.rule)).toEqual(['concurrent-index-in-transaction']);
  });

  it('full-table-rewrite: rewriting type changes, volatile defaults, VACUUM FULL, CLUSTER, UPDATE without WHERE', async () => {
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ALTER COLUMN tick TYPE integer;')).toEqual(['full-table-rewrite error']);
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ALTER COLUMN content TYPE text; ALTER TABLE notes ALTER COLUMN record_id TYPE varchar(300);')).toEqual([]);
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ADD COLUMN u uuid DEFAULT gen_random_uuid();')).toEqual(['full-table-rewrite error']);
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ADD COLUMN v timestamptz DEFAULT now(); ALTER TABLE notes ADD COLUMN w int;')).toEqual([]);
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ADD COLUMN IF NOT EXISTS id uuid DEFAULT gen_random_uuid();')).toEqual([]);
    expect(await rules('VACUUM FULL notes;')).toEqual(['full-table-rewrite error']);
    expect(await rules("UPDATE notes SET content = 'x';")).toEqual(['full-table-rewrite error']);
    expect(await rules("UPDATE small SET a = 1; VACUUM notes;")).toEqual([]);
  });

  it('full-table-rewrite: a column of unknown type is a warning in SQL, and nothing for Sequelize changeColumn (which restates types)', async () => {
    expect(await rules('SET lock_timeout = 1000; ALTER TABLE notes ALTER COLUMN gone TYPE integer;')).toEqual(['full-table-rewrite warning']);
    const code = "exports.up = async (q, S) => { await q.sequelize.query(\"SET lock_timeout = '1s'\"); await q.changeColumn('notes', 'gone', { type: S.UUID }); };";
    expect((await lint({ '001.js': code })).findings).toEqual([]);
  });

  it('typeChangeRewrites: binary-compatible changes do not rewrite', () => {
    expect(typeChangeRewrites('varchar(255)', 'text', false)).toBe(false);
    expect(typeChangeRewrites('varchar(10)', 'varchar(20)', false)).toBe(false);
    expect(typeChangeRewrites('varchar(20)', 'varchar(10)', false)).toBe(true);
    expect(typeChangeRewrites('numeric(10, 2)', 'numeric(12, 2)', false)).toBe(false);
    expect(typeChangeRewrites('numeric(10, 2)', 'numeric(12, 3)', false)).toBe(true);
    expect(typeChangeRewrites('int4', 'int8', false)).toBe(true);
    expect(typeChangeRewrites('text', 'text', true)).toBe(true);
    expect(typeChangeRewrites('cidr', 'inet', false)).toBe(false);
  });

  it('blocking-validation: SET NOT NULL, constraints without NOT VALID, keys without an index; the safe sequence is clean', async () => {
    const lt = 'SET lock_timeout = 1000;';
    expect(await rules(`${lt} ALTER TABLE notes ALTER COLUMN content SET NOT NULL;`)).toEqual(['blocking-validation error']);
    expect(await rules(`${lt} ALTER TABLE notes ADD CONSTRAINT c CHECK (content IS NOT NULL) NOT VALID; ALTER TABLE notes VALIDATE CONSTRAINT c; ALTER TABLE notes ALTER COLUMN content SET NOT NULL;`)).toEqual([]);
    expect(await rules(`${lt} ALTER TABLE notes ALTER COLUMN tick SET NOT NULL;`)).toEqual([]);
    expect(await rules(`${lt} ALTER TABLE notes ADD CONSTRAINT fk FOREIGN KEY (tick) REFERENCES small (id);`)).toEqual(['blocking-validation error']);
    expect(await rules(`${lt} ALTER TABLE notes ADD CONSTRAINT fk FOREIGN KEY (tick) REFERENCES small (id) NOT VALID;`)).toEqual([]);
    expect(await rules(`${lt} ALTER TABLE notes ADD CONSTRAINT u UNIQUE (email);`)).toEqual(['blocking-validation error']);
    expect(await rules(`${lt} ALTER TABLE notes ADD CONSTRAINT u UNIQUE USING INDEX notes_record;`)).toEqual([]);
  });

  it('missing-lock-timeout: ACCESS EXCLUSIVE on an existing table, whatever its size, unless lock_timeout is set first', async () => {
    expect(await rules('ALTER TABLE small ADD COLUMN b int;')).toEqual(['missing-lock-timeout warning']);
    expect(await rules("SET lock_timeout = '5s'; ALTER TABLE small ADD COLUMN b int;")).toEqual([]);
    expect(await rules("SELECT set_config('lock_timeout', '5s', true); ALTER TABLE small ADD COLUMN b int;")).toEqual([]);
    expect(await rules('CREATE TABLE t2 (id int); ALTER TABLE t2 ADD COLUMN b int;')).toEqual([]);
    expect(await rules('ALTER TABLE small ADD COLUMN b int;', { lockTimeoutSetByRunner: true })).toEqual([]);
  });

  it('sync-lookup-live-type-delete: a live type deleted without its rebuild', async () => {
    const schemaSql = readFileSync('test/fixtures/origin/schema.sql', 'utf8');
    const opts = { schemaSql, assumeRows: { sync_lookup: 100 }, liveTypes: ['notes', 'patients'] };
    const del = "DELETE FROM sync_lookup WHERE record_type IN ('notes', 'legacy');";
    expect((await lint({ '001.sql': del }, opts)).findings.map((f) => [f.rule, f.message.includes('notes')])).toEqual([['sync-lookup-live-type-delete', true]]);
    expect((await lint({ '001.sql': `${del} SELECT flag_lookup_model_to_rebuild('notes');` }, opts)).findings).toEqual([]);
    expect((await lint({ '001.sql': "DELETE FROM sync_lookup WHERE record_type = 'legacy';" }, opts)).findings).toEqual([]);
    const helper = `import { purgeRecordTypes } from 'sync-lookup';\nexport default { async up(ctx) { await ctx.client.query(\`${del}\`); await purgeRecordTypes(ctx.db, { types: ['x'], thenRebuild: true }); } };`;
    expect((await lint({ '001.mjs': helper }, opts)).findings).toEqual([]);
  });

  it('follows the schema: an index added by one migration serves the next; down statements do not leak', async () => {
    const r = await lint({
      '011_index.sql': '--! no-transaction\nCREATE INDEX CONCURRENTLY notes_content ON notes (content);',
      '012_delete.sql': "DELETE FROM notes WHERE content = 'x';",
    });
    expect(r.findings).toEqual([]);
    const down = await lint({
      '011_x.js': "exports.up = async (knex) => {}; exports.down = (knex) => knex.raw('CREATE INDEX CONCURRENTLY notes_content ON notes (content)');",
      '012_delete.sql': "DELETE FROM notes WHERE content = 'x';",
    });
    expect(down.findings.map((f) => `${f.file} ${f.rule}`)).toEqual(['011_x.js concurrent-index-in-transaction', '012_delete.sql unindexed-filter']);
    expect(down.findings[0]!.phase).toBe('down');
    // Files run in name order whatever order they are given in.
    const order = await lint({ '012_delete.sql': "DELETE FROM notes WHERE content = 'x';", '011_index.sql': '--! no-transaction\nCREATE INDEX CONCURRENTLY notes_content ON notes (content);' });
    expect(order.findings).toEqual([]);
  });

  it('a table created earlier in the same file is new and empty, whatever size is assumed for the name', async () => {
    expect(await rules('CREATE TABLE big2 (id int, a int); DELETE FROM big2 WHERE a = 1; UPDATE big2 SET a = 2;', { assumeRows: { big2: 50_000_000 } })).toEqual([]);
  });

  it('inline ignores need a reason; unused ones are reported', async () => {
    const bad = "DELETE FROM notes WHERE content = 'x';";
    expect(await rules(`-- sync-lookup-lint-ignore unindexed-filter runs once on an empty table at install\n${bad}`)).toEqual([]);
    expect(await rules(`-- sync-lookup-lint-ignore unindexed-filter\n${bad}`)).toEqual(['unindexed-filter error', 'ignore-without-reason error']);
    expect(await rules('-- sync-lookup-lint-ignore unindexed-filter not needed\nSELECT 1;')).toEqual(['unused-ignore warning']);
    expect(await rules('-- sync-lookup-lint-ignore no-such-rule because\nSELECT 1;')).toEqual(['unused-ignore warning']);
    const code = [
      'export async function up(q) {',
      '  // sync-lookup-lint-ignore unindexed-filter the batch helper bounds it',
      `  await q.sequelize.query(\`${bad}\`);`,
      `  await q.sequelize.query(\`${bad}\`);`,
      '}',
    ].join('\n');
    const r = await lint({ '001.ts': code });
    expect(r.findings.map((f) => [f.rule, f.line])).toEqual([['unindexed-filter', 4]]);
  });

  it('reports an unparsable file and still lints the others; configured levels apply', async () => {
    const r = await lint({ '001.sql': 'DELET FROM notes;', '002.sql': "DELETE FROM notes WHERE content = 'x';" });
    expect(r.findings.map((f) => `${f.file}:${f.line} ${f.rule}`)).toEqual(['001.sql:1 parse-error', '002.sql:1 unindexed-filter']);
    expect(r.findings[0]!.message).toMatch(/syntax error at or near "DELET"/);
    const off = await lint({ '001.sql': "ALTER TABLE small ADD COLUMN b int; DELETE FROM notes WHERE content = 'x';" },
      { rules: { 'missing-lock-timeout': 'off', 'unindexed-filter': 'warning' } });
    expect(off.findings.map((f) => `${f.rule} ${f.level}`)).toEqual(['unindexed-filter warning']);
    expect(off.errors).toBe(0);
  });
});

describe('lint inputs', { timeout: 60_000 }, () => {
  it('row comparisons bound each of their columns', async () => {
    expect(await rules("DELETE FROM notes WHERE (record_id, content) IN (('a', 'b'), ('c', 'd'));")).toEqual([]);
    expect(await rules("DELETE FROM notes WHERE (content, email) = ('a', 'b');")).toEqual(['unindexed-filter error']);
  });

  it('a stats export gives sizes, widths and (without a dump) the schema', async () => {
    const stats = readStatsDocument({
      format: 'sync-lookup-stats', version: 1, exported_at: '2026-01-01T00:00:00Z', server_version: '18.0', database: 'x', includes_values: false,
      tables: [{
        schema: 'public', name: 'events', kind: 'r', rows: 30_000_000, pages: 500_000, bytes: 4_096_000_000, total_bytes: 6e9, partition_of: null,
        last_analyzed_at: null,
        indexes: [{ name: 'events_pkey', definition: 'CREATE UNIQUE INDEX events_pkey ON public.events USING btree (id)', bytes: 1e8, valid: true },
          { name: 'events_kind', definition: 'CREATE INDEX events_kind ON public.events USING btree (kind)', bytes: 1e8, valid: false }],
        columns: [{ name: 'id', type: 'bigint', null_frac: 0, n_distinct: -1, distinct: 30_000_000, most_common_vals: null, most_common_freqs: null,
          histogram_bounds: null, avg_width: 8, correlation: 1 },
        { name: 'kind', type: 'text', null_frac: 0, n_distinct: 12, distinct: 12, most_common_vals: null, most_common_freqs: null, histogram_bounds: null, avg_width: 9, correlation: 0.1 }],
      }],
    }, 'stats.json');
    const r = await lintMigrations([{ path: '001.sql', text: "DELETE FROM events WHERE kind = 'x'; DELETE FROM events WHERE id = 1; CREATE INDEX e2 ON events (kind);" }], { stats });
    expect(r.schemaSource).toBe('stats');
    expect(r.findings.map((f) => `${f.rule} ${f.level} ${f.evidence.rows}`)).toEqual([
      'unindexed-filter error 30000000', 'non-concurrent-index error 30000000',
    ]);
    // The INVALID index serves nothing; the message says so through the fix: rebuild it.
    expect(r.findings[0]!.fix).toBe('REINDEX INDEX CONCURRENTLY "public"."events_kind"');
    expect(r.findings[0]!.evidence.bytes).toBe(4_096_000_000);
    expect(() => readStatsDocument({ tables: [] }, 'x.json')).toThrow(/not a sync-lookup stats export/);
  });

  it('--assume-rows values: TABLE=N with separators and suffixes; bad ones named together', () => {
    expect([...parseAssumeRows(['sync_lookup=58M', 'logs.events=1_500', 'x=2k'])]).toEqual([['public.sync_lookup', 58_000_000], ['logs.events', 1500], ['x', 2000].map((v, i) => (i === 0 ? 'public.x' : v))]);
    expect(() => parseAssumeRows(['a', 'b=x', 'c=1'])).toThrow(/a, b=x/);
  });

  it('statements inside a DO block are linted (a batch loop, an emptiness test in an IF)', async () => {
    const block = [
      'DO $$',
      'DECLARE n int;',
      'BEGIN',
      '  IF (SELECT count(*) FROM notes) = 0 THEN RETURN; END IF;',
      '  LOOP',
      "    DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE content = 'x' LIMIT 1000);",
      '    GET DIAGNOSTICS n = ROW_COUNT;',
      '    EXIT WHEN n = 0;',
      '  END LOOP;',
      'END $$;',
    ].join('\n');
    expect(await rules(block)).toEqual(['count-for-emptiness error', 'unindexed-filter warning']);
    expect(await rules("DO $$ BEGIN DELETE FROM notes WHERE tick < 5; END $$;")).toEqual([]);
  });

  it('config files: rule levels and settings in either key style; every bad key named at once', () => {
    expect(parseLintConfig({ rules: { 'missing-lock-timeout': 'off' }, large_table_rows: 5, readMBps: [10, 20], assume_rows: { 'logs.x': 3 } }, 'c.json'))
      .toEqual({ rules: { 'missing-lock-timeout': 'off' }, largeTableRows: 5, readMBps: [10, 20], assumeRows: { 'logs.x': 3 } });
    let message = '';
    try { parseLintConfig({ rules: { nope: 'error', 'parse-error': 'loud' }, large_table_rows: 0, extra: 1 }, 'c.json'); } catch (e) { message = (e as Error).message; }
    for (const part of [/^c\.json: /, /rules: Unrecognized key: "nope"/, /rules\.parse-error: /, /largeTableRows: /, /Unrecognized key: "extra"/]) expect(message).toMatch(part);
  });

  it('a call in a loop over a constant list runs once per element; a table name that stays unknown gives no size-based finding', async () => {
    const code = [
      "const TABLES = ['notes', 'small'];",
      'const TARGETS = [{ table: "notes", column: "content" }];',
      'module.exports = {',
      '  up: async (query) => {',
      '    for (const table of TABLES) await query.addIndex(table, { fields: ["created_at"] });',
      '    for (const t of TARGETS) await query.sequelize.query(`DELETE FROM ${t.table} WHERE ${t.column} = 1`);',
      '  },',
      '  down: async (query, table) => {',
      '    await query.sequelize.query(`ALTER TABLE ${table} ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES small (id)`);',
      '  },',
      '};',
    ].join('\n');
    const r = await lint({ '001.js': code });
    expect(r.findings.map((f) => `${f.line} ${f.rule} ${f.table}`)).toEqual([
      '5 non-concurrent-index public.notes', '6 unindexed-filter public.notes',
    ]);
    expect(r.statements).toBe(4);
  });

  it('SQL in a helper function runs at each call site, with the helper\'s parameters bound to the arguments', async () => {
    const code = [
      "const TARGETS = [{ table: 'notes', column: 'content' }, { table: 'small', column: 'a' }];",
      'async function purge(query, table, column) {',
      '  const where = `${column} = 1`;',
      '  await query.sequelize.query(`DELETE FROM ${table} WHERE ${where}`);',
      '}',
      'async function unused(query, table) {',
      "  const where = 'x = 1';",
      '  await query.sequelize.query(`DELETE FROM ${table} WHERE ${where}`);',
      '}',
      'export async function up(query) {',
      '  for (const t of TARGETS) await purge(query, t.table, t.column);',
      '}',
      "export async function down(query) { await purge(query, 'notes', 'email'); }",
    ].join('\n');
    const r = await lint({ '001.ts': code });
    expect(r.findings.map((f) => `${f.line} ${f.phase} ${f.rule} ${f.table}`)).toEqual([
      '4 up unindexed-filter public.notes', '4 down unindexed-filter public.notes',
    ]);
    // notes/content (up), small/a (up, small: fine), notes/email (down), and the uncalled helper as written.
    expect(r.statements).toBe(4);
    // The helper's statements run where it is called: its index serves the DELETE written after the call.
    const ordered = [
      "exports.config = { transaction: false };",
      'async function addIndex(knex, column) { await knex.raw(`CREATE INDEX CONCURRENTLY notes_${column} ON notes (${column})`); }',
      'exports.up = async (knex) => {',
      "  await addIndex(knex, 'content');",
      "  await knex.raw(`DELETE FROM notes WHERE content = 'x'`);",
      '};',
    ].join('\n');
    expect((await lint({ '001.js': ordered })).findings).toEqual([]);
  });

  it('Knex config.transaction = false as an assignment', async () => {
    const code = "exports.config = {};\nexports.config.transaction = false;\nexports.up = (knex) => knex.raw('CREATE INDEX CONCURRENTLY i ON notes (content)');";
    expect((await lint({ '001.js': code })).findings).toEqual([]);
  });
});
