import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../../src/plan/expr.js';
import { extractFile } from '../../src/lint/extract/index.js';
import { lintMigrations, type LintOptions } from '../../src/lint/index.js';

/*
 * Reduced forms of what linting a corpus of real public migrations turned up: each case is a
 * false positive or a false negative of a kind, written small, that the linter once got wrong.
 */

beforeAll(async () => { await loadSqlParser(); });

const SCHEMA = `
CREATE TABLE public.notes (id uuid PRIMARY KEY, body text, tick bigint NOT NULL);
CREATE TABLE public.visits (id uuid PRIMARY KEY, kind text);
`;
const BASE: LintOptions = { schemaSql: SCHEMA, assumeRows: { notes: 10_000_000, visits: 3_000_000 } };

async function findings(path: string, text: string): Promise<string[]> {
  const r = await lintMigrations([{ path, text }], BASE);
  return r.findings.map((f) => `${f.line} ${f.rule} ${f.level} ${f.table ?? ''}`);
}

describe('lint on shapes found in real migrations', { timeout: 60_000 }, () => {
  it('node-pg-migrate: a table made by pgm.createTable in the file is new and empty', async () => {
    const code = [
      'exports.up = (pgm) => {',
      "  pgm.createTable('sessions', { sid: { type: 'varchar', notNull: true }, expires_at: 'timestamptz' });",
      "  pgm.addConstraint('sessions', 'sessions_pkey', 'PRIMARY KEY (sid)');",
      "  pgm.createIndex('sessions', 'expires_at');",
      '};',
      "exports.down = (pgm) => { pgm.dropTable('sessions'); };",
    ].join('\n');
    const f = extractFile('1700-sessions.js', code);
    expect(f.statements.map((s) => [s.phase, s.sql])).toEqual([
      ['up', 'CREATE TABLE "sessions" ("sid" varchar NOT NULL, "expires_at" timestamptz)'],
      ['up', 'ALTER TABLE "sessions" ADD CONSTRAINT "sessions_pkey" PRIMARY KEY (sid)'],
      ['up', 'CREATE INDEX "sessions_expires_at_index" ON "sessions" ("expires_at")'],
      ['down', 'DROP TABLE "sessions"'],
    ]);
    expect(await findings('1700-sessions.js', code)).toEqual([]);
  });

  it('SQL returned by a helper function of the file, called as the query argument (in a loop over concat lists)', async () => {
    const code = [
      "const BIG = ['notes'];",
      "const MORE = ['visits'];",
      'function setDefault(table: string, column: string, fn: string) {',
      '  return `ALTER TABLE ${table} ALTER COLUMN ${column} SET DEFAULT ${fn}();`;',
      '}',
      'const dropDefault = (table: string) => `ALTER TABLE ${table} ALTER COLUMN id DROP DEFAULT`;',
      'export async function up(query) {',
      '  for (const t of BIG.concat(MORE)) {',
      "    await query.sequelize.query(setDefault(t, 'id', 'gen_random_uuid'));",
      '  }',
      '}',
      'export async function down(query) {',
      "  await query.sequelize.query(dropDefault('visits'));",
      '}',
    ].join('\n');
    const f = extractFile('1700-defaults.ts', code);
    expect(f.statements.map((s) => [s.phase, s.line, s.sql])).toEqual([
      ['up', 9, 'ALTER TABLE notes ALTER COLUMN id SET DEFAULT gen_random_uuid()'],
      ['up', 9, 'ALTER TABLE visits ALTER COLUMN id SET DEFAULT gen_random_uuid()'],
      ['down', 13, 'ALTER TABLE visits ALTER COLUMN id DROP DEFAULT'],
    ]);
    expect(await findings('1700-defaults.ts', code)).toEqual([
      '9 missing-lock-timeout warning public.notes',
      '9 missing-lock-timeout warning public.visits',
      '13 missing-lock-timeout warning public.visits',
    ]);
  });

  it('SQL file sections: the down statement is not in the up query string; goose sends each statement alone', async () => {
    const goose = [
      '-- +goose NO TRANSACTION',
      '-- +goose Up',
      '-- +goose StatementBegin',
      'CREATE INDEX CONCURRENTLY notes_body ON notes (body);',
      '-- +goose StatementEnd',
      "SET lock_timeout = '5s';",
      '-- +goose Down',
      'DROP INDEX CONCURRENTLY notes_body;',
    ].join('\n');
    expect(extractFile('0001_x.sql', goose).statements.map((s) => [s.phase, s.batchSize])).toEqual([['up', 1], ['up', 1], ['down', 1]]);
    expect(await findings('0001_x.sql', goose)).toEqual([]);
    const dbmate = [
      '-- migrate:up transaction:false',
      'CREATE INDEX CONCURRENTLY notes_body ON notes (body);',
      '-- migrate:down',
      'DROP INDEX notes_body;',
      "SET lock_timeout = '5s';",
    ].join('\n');
    expect(extractFile('0002_x.sql', dbmate).statements.map((s) => [s.phase, s.batchSize])).toEqual([['up', 1], ['down', 2], ['down', 2]]);
  });

  it('optional SQL fragments (`${flag ? \'col,\' : \'\'}`) keep the statement readable, not a parse error', async () => {
    const code = [
      'export async function up(query) {',
      "  const hasBody = await query.sequelize.query('SELECT 1');",
      "  const tickValue = hasBody ? '-1,' : '0,';",
      '  await query.sequelize.query(`',
      '    INSERT INTO notes (',
      "      id, ${hasBody ? 'body,' : ''}",
      '      tick',
      '    ) SELECT id, ${hasBody ? \'body,\' : \'\'} ${hasBody ? tickValue : \'\'} ${somethingElse ? unknownFragment : \'\'} tick FROM visits',
      '  `);',
      '}',
    ].join('\n');
    const f = extractFile('1700-fragments.ts', code);
    expect(f.errors).toEqual([]);
    expect(f.statements.map((s) => s.sql.replace(/\s+/g, ' ').trim())).toEqual([
      'SELECT 1',
      'INSERT INTO notes ( id, body, tick ) SELECT id, body, -1, tick FROM visits',
    ]);
  });

  it('UPDATE … FROM (sub-select) joined on columns reads the table by design, like a join to a table', async () => {
    const join = [
      'UPDATE notes n SET body = s.kind',
      '  FROM (SELECT kind, min(id::text) AS first_id FROM visits GROUP BY kind) s',
      '  WHERE n.body = s.first_id;',
    ].join('\n');
    expect(await findings('001.sql', join)).toEqual([]);
    // A condition of the table's own, beside the join, is still a filter no index serves.
    const filtered = `${join.slice(0, -1)} AND n.tick > 5 AND n.body = 'x';`;
    expect(await findings('002.sql', filtered)).toEqual(['1 unindexed-filter error public.notes']);
  });

  it('a folder of Prisma (`<name>/migration.sql`) and golang-migrate (`.up.sql` / `.down.sql`) migrations: all read, in order, down as down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sl-lint-layout-'));
    try {
      const file = (rel: string, text: string) => { mkdirSync(join(dir, rel, '..'), { recursive: true }); writeFileSync(join(dir, rel), text); };
      file('prisma/20240101_add/migration.sql', 'CREATE INDEX notes_body ON notes (body);\n');
      file('prisma/20240202_drop/migration.sql', 'DROP INDEX notes_body;\n');
      file('prisma/migration_lock.toml', 'provider = "postgresql"\n');
      file('golang/000001_body.up.sql', 'CREATE INDEX CONCURRENTLY notes_body ON notes (body);\n');
      file('golang/000001_body.down.sql', 'DROP INDEX CONCURRENTLY notes_body;\n');
      file('golang/000002_big.up.sql', "UPDATE notes SET body = 'x';\n");
      const prisma = await lintMigrations([join(dir, 'prisma')], BASE);
      expect(prisma.files.map((f) => f.slice(dir.length))).toEqual(['/prisma/20240101_add/migration.sql', '/prisma/20240202_drop/migration.sql']);
      // The index the first migration builds is the one the second drops (the schema followed the order).
      expect(prisma.findings.map((f) => `${f.file.slice(dir.length)} ${f.rule} ${f.level}`)).toEqual([
        '/prisma/20240101_add/migration.sql non-concurrent-index error',
        '/prisma/20240202_drop/migration.sql non-concurrent-index error',
        '/prisma/20240202_drop/migration.sql missing-lock-timeout warning',
      ]);
      const golang = await lintMigrations([join(dir, 'golang')], BASE);
      expect(golang.files.map((f) => f.slice(dir.length))).toEqual(['/golang/000001_body.up.sql', '/golang/000001_body.down.sql', '/golang/000002_big.up.sql']);
      expect(golang.findings.map((f) => `${f.file.slice(dir.length)} ${f.phase} ${f.rule}`)).toEqual([
        '/golang/000002_big.up.sql up full-table-rewrite',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a loop over a spread copy of a constant list (`[...LIST]`) runs once per element', () => {
    const code = [
      "const TABLES = [{ name: 'notes' }, { name: 'visits' }];",
      'export default {',
      '  down: async (query) => {',
      '    const copy = [...TABLES];',
      '    copy.reverse();',
      '    for (const t of copy) {',
      '      await query.sequelize.query(`ALTER TABLE ${t.name} DROP COLUMN extra`);',
      '    }',
      '  },',
      '};',
    ].join('\n');
    const f = extractFile('1700-spread.js', code);
    expect(f.statements.map((s) => [s.phase, s.sql])).toEqual([
      ['down', 'ALTER TABLE notes DROP COLUMN extra'],
      ['down', 'ALTER TABLE visits DROP COLUMN extra'],
    ]);
  });

  it('ALTER COLUMN TYPE … USING the column cast to its own target type changes no value: no rewrite when the type change needs none', async () => {
    const same = 'ALTER TABLE notes ALTER COLUMN body TYPE text USING (body::text);';
    expect(await findings('001.sql', `SET lock_timeout = '1s';\n${same}`)).toEqual([]);
    const plain = 'ALTER TABLE notes ALTER COLUMN body TYPE text USING body;';
    expect(await findings('002.sql', `SET lock_timeout = '1s';\n${plain}`)).toEqual([]);
    // A USING that computes a value does rewrite, whatever the types.
    const computed = 'ALTER TABLE notes ALTER COLUMN body TYPE text USING (lower(body));';
    expect(await findings('003.sql', `SET lock_timeout = '1s';\n${computed}`)).toEqual(['2 full-table-rewrite error public.notes']);
  });

  it('Sequelize changeColumn to an ENUM: the column becomes enum_<table>_<column> (a rewrite from text, none when it already is)', async () => {
    const code = (table: string) => [
      "const Sequelize = require('sequelize');",
      'export default {',
      "  up: async (query) => { await query.sequelize.query(\"SET lock_timeout = '1s'\");",
      `    await query.changeColumn('${table}', 'kind', { type: Sequelize.ENUM('a', 'b'), allowNull: true }); },`,
      '};',
    ].join('\n');
    const f = extractFile('1700-enum.js', code('visits'));
    expect(f.statements.at(-1)?.sql).toBe('ALTER TABLE "visits" ALTER COLUMN "kind" TYPE "enum_visits_kind" USING ("kind"::"enum_visits_kind")');
    expect(await findings('1700-enum.js', code('visits'))).toEqual(['4 full-table-rewrite error public.visits']);
    const schemaSql = `CREATE TYPE public.enum_visits_kind AS ENUM ('a', 'b');\nCREATE TABLE public.visits (id uuid PRIMARY KEY, kind public.enum_visits_kind);`;
    const r = await lintMigrations([{ path: '1700-enum.js', text: code('visits') }], { ...BASE, schemaSql });
    expect(r.findings).toEqual([]);
  });
});

