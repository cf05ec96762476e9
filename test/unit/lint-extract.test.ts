import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../../src/plan/expr.js';
import { extractFile } from '../../src/lint/extract/index.js';
import { queryInterfaceSql } from '../../src/lint/extract/sequelize.js';

/* Extraction of SQL from migrations as people write them: every style the linter reads, on inline sources. */

beforeAll(async () => { await loadSqlParser(); });

const kinds = (f: ReturnType<typeof extractFile>) => f.statements.map((s) => Object.keys(s.ast)[0]);

describe('lint extraction', { timeout: 60_000 }, () => {
  it('reads a SQL file statement by statement, with line and column of each', () => {
    const f = extractFile('001.sql', "-- first\nSET lock_timeout = '5s';\n\n  CREATE INDEX i ON t (a);\n");
    expect(kinds(f)).toEqual(['VariableSetStmt', 'IndexStmt']);
    expect(f.statements.map((s) => [s.line, s.column])).toEqual([[2, 1], [4, 3]]);
    expect(f.transaction.inTransaction).toBeNull();
  });

  it('psql meta-commands in a SQL file are skipped, positions kept', () => {
    const f = extractFile('002.sql', '\\set ON_ERROR_STOP on\nDELETE FROM t WHERE a = 1;\n');
    expect(f.errors).toEqual([]);
    expect(f.statements.map((s) => [s.line, s.column, s.sql])).toEqual([[2, 1, 'DELETE FROM t WHERE a = 1']]);
  });

  it('Sequelize: query.sequelize.query with templates, constants and replacements; up and down', () => {
    const code = [
      "import { QueryInterface } from 'sequelize';",
      "const TABLE = 'sync_lookup';",
      'export async function up(query: QueryInterface): Promise<void> {',
      '  await query.sequelize.query(`DELETE FROM ${TABLE} WHERE record_type = :type AND id > ?`, { replacements: { type: "x" } });',
      '}',
      'export async function down(query: QueryInterface): Promise<void> {',
      "  await query.sequelize.query('SELECT 1');",
      '}',
    ].join('\n');
    const f = extractFile('001-x.ts', code);
    expect(f.errors).toEqual([]);
    expect(f.statements.map((s) => [s.phase, s.line, s.column, s.sql])).toEqual([
      ['up', 4, 32, 'DELETE FROM sync_lookup WHERE record_type = $101 AND id > $102'],
      ['down', 7, 32, 'SELECT 1'],
    ]);
    expect(f.statements[0]!.via).toBe('query.sequelize.query()');
  });

  it('Sequelize QueryInterface calls become the SQL they run', () => {
    const code = [
      "const { DataTypes } = require('sequelize');",
      'module.exports = {',
      '  async up(queryInterface, Sequelize) {',
      "    await queryInterface.addColumn('notes', 'flag', { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false });",
      "    await queryInterface.changeColumn('notes', 'content', { type: DataTypes.STRING(50), allowNull: false });",
      "    await queryInterface.addIndex('notes', ['record_id'], { concurrently: true });",
      "    await queryInterface.bulkDelete('notes', { record_id: ['a', 'b'] });",
      '  },',
      "  async down(queryInterface) { await queryInterface.removeIndex('notes', 'notes_record_id'); await queryInterface.removeColumn('notes', 'flag'); },",
      '};',
    ].join('\n');
    const f = extractFile('002.js', code);
    expect(f.statements.map((s) => [s.phase, s.sql])).toEqual([
      ['up', 'ALTER TABLE "notes" ADD COLUMN "flag" boolean NOT NULL DEFAULT false'],
      ['up', 'ALTER TABLE "notes" ALTER COLUMN "content" SET NOT NULL'],
      ['up', 'ALTER TABLE "notes" ALTER COLUMN "content" TYPE varchar(50)'],
      ['up', 'CREATE INDEX CONCURRENTLY "notes_record_id" ON "notes" ("record_id")'],
      ['up', 'DELETE FROM "notes" WHERE "record_id" IN (\'a\', \'b\')'],
      ['down', 'DROP INDEX "notes_record_id"'],
      ['down', 'ALTER TABLE "notes" DROP COLUMN "flag"'],
    ]);
    // Each points at its call.
    expect(f.statements[0]!.line).toBe(4);
    expect(f.statements[5]!.line).toBe(9);
  });

  it('QueryInterface: addConstraint forms and unknown values as parameters', () => {
    expect(queryInterfaceSql('addConstraint', ['t', { type: 'foreign key', fields: ['a'], references: { table: 'u', field: 'id' }, name: 'fk' }]))
      .toEqual(['ALTER TABLE "t" ADD CONSTRAINT "fk" FOREIGN KEY ("a") REFERENCES "u" ("id")']);
    expect(queryInterfaceSql('addConstraint', ['t', ['a'], { type: 'unique' }])).toEqual(['ALTER TABLE "t" ADD UNIQUE ("a")']);
    expect(queryInterfaceSql('bulkUpdate', ['t', { a: 1 }, {}])).toEqual(['UPDATE "t" SET "a" = $1']);
    expect(queryInterfaceSql('addColumn', [Symbol.for('x') as never, 'a', {}])).toBeNull();
  });

  it('TypeORM: queryRunner.query in a class, transaction = false', () => {
    const code = [
      "import { MigrationInterface, QueryRunner } from 'typeorm';",
      'export class AddIndex1700000000000 implements MigrationInterface {',
      '  transaction = false;',
      '  public async up(queryRunner: QueryRunner): Promise<void> {',
      '    await queryRunner.query(`CREATE INDEX CONCURRENTLY "idx" ON "notes" ("tick")`);',
      '  }',
      '  public async down(queryRunner: QueryRunner): Promise<void> {',
      '    await queryRunner.query(`DROP INDEX CONCURRENTLY "idx"`);',
      '  }',
      '}',
    ].join('\n');
    const f = extractFile('1700000000000-AddIndex.ts', code);
    expect(kinds(f)).toEqual(['IndexStmt', 'DropStmt']);
    expect(f.statements.map((s) => s.phase)).toEqual(['up', 'down']);
    expect(f.transaction).toEqual({ inTransaction: false, source: 'transaction = false' });
    // Without the property, TypeORM's default: a transaction.
    expect(extractFile('x.ts', code.replace('  transaction = false;\n', '')).transaction.inTransaction).toBe(true);
  });

  it('Knex: knex.raw and knex.schema.raw; config.transaction = false', () => {
    const code = [
      'exports.config = { transaction: false };',
      'exports.up = async function (knex) {',
      "  await knex.raw('CREATE INDEX CONCURRENTLY i ON notes (tick)');",
      '  await knex.schema.raw(`ALTER TABLE notes ADD COLUMN x int`);',
      '};',
      "exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY i');",
    ].join('\n');
    const f = extractFile('20240101_x.js', code);
    expect(f.statements.map((s) => [s.phase, Object.keys(s.ast)[0], s.via])).toEqual([
      ['up', 'IndexStmt', 'knex.raw()'], ['up', 'AlterTableStmt', 'knex.schema.raw()'], ['down', 'DropStmt', 'knex.raw()'],
    ]);
    expect(f.transaction.inTransaction).toBe(false);
    expect(extractFile('x.js', code.replace('exports.config = { transaction: false };', '')).transaction).toEqual({ inTransaction: true, source: 'default of knex migrations' });
  });

  it('node-pg-migrate: pgm.sql and pgm.noTransaction()', () => {
    const code = [
      'exports.up = (pgm) => {',
      '  pgm.noTransaction();',
      "  pgm.sql('CREATE INDEX CONCURRENTLY i ON notes (tick)');",
      '};',
    ].join('\n');
    const f = extractFile('1700-x.js', code);
    expect(kinds(f)).toEqual(['IndexStmt']);
    expect(f.transaction).toEqual({ inTransaction: false, source: 'pgm.noTransaction()' });
  });

  it('node-pg-migrate: pgm builder calls become the SQL they generate', () => {
    const code = [
      'exports.up = (pgm) => {',
      "  pgm.createIndex('notes', ['record_id', 'tick'], { concurrently: true, unique: true });",
      "  pgm.addColumns('notes', { seen_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') } });",
      "  pgm.alterColumn('notes', 'content', { notNull: true, type: 'text' });",
      "  pgm.addConstraint('notes', 'notes_fk', { foreignKeys: { columns: 'author_id', references: 'users' }, notValid: true });",
      '};',
      "exports.down = (pgm) => { pgm.dropIndex('notes', ['record_id', 'tick'], { unique: true }); };",
    ].join('\n');
    const f = extractFile('1700-x.js', code);
    expect(f.statements.map((s) => [s.phase, s.sql])).toEqual([
      ['up', 'CREATE UNIQUE INDEX CONCURRENTLY "notes_record_id_tick_unique_index" ON "notes" ("record_id", "tick")'],
      ['up', 'ALTER TABLE "notes" ADD COLUMN "seen_at" timestamptz NOT NULL DEFAULT now()'],
      ['up', 'ALTER TABLE "notes" ALTER COLUMN "content" SET NOT NULL'],
      ['up', 'ALTER TABLE "notes" ALTER COLUMN "content" TYPE text'],
      ['up', 'ALTER TABLE "notes" ADD CONSTRAINT "notes_fk" FOREIGN KEY ("author_id") REFERENCES "users" NOT VALID'],
      ['down', 'DROP INDEX "notes_record_id_tick_unique_index"'],
    ]);
    expect(f.statements[0]!.line).toBe(2);
    expect(f.transaction).toEqual({ inTransaction: true, source: 'default of node-pg-migrate migrations' });
  });

  it('pg: client.query with $n parameters; strings that are not SQL are left alone', () => {
    const code = [
      "import pg from 'pg';",
      'export async function up(client) {',
      "  await client.query('UPDATE notes SET content = $1 WHERE id = $2', ['x', 1]);",
      "  await cache.query('some key');",
      '}',
    ].join('\n');
    const f = extractFile('003.mjs', code);
    expect(f.statements.map((s) => s.sql)).toEqual(['UPDATE notes SET content = $1 WHERE id = $2']);
    expect(f.errors).toEqual([]);
  });

  it("sync-lookup's .mjs migrations: transaction: false, ctx.client.query, library rebuilds", () => {
    const code = [
      "import { rebuildRecordTypes } from 'sync-lookup';",
      'export default {',
      '  transaction: false,',
      '  async up(ctx) {',
      "    await ctx.client.query(`DELETE FROM sync_lookup WHERE record_type = 'notes'`);",
      "    await rebuildRecordTypes(ctx.db, { types: ['notes'] });",
      '  },',
      '};',
    ].join('\n');
    const f = extractFile('0004_x.mjs', code);
    expect(kinds(f)).toEqual(['DeleteStmt']);
    expect(f.transaction.inTransaction).toBe(false);
    expect(f.rebuilds).toEqual([{ phase: 'up', types: ['*'] }]);
  });

  it('an unknown interpolation keeps the statement parseable: a parameter, or an identifier where a name must be', () => {
    const code = [
      'export async function up(q, table, ids) {',
      '  await q.sequelize.query(`DELETE FROM ${table} WHERE id IN (${ids})`);',
      '}',
    ].join('\n');
    const f = extractFile('005.ts', code);
    expect(f.errors).toEqual([]);
    expect(f.statements[0]!.sql).toBe('DELETE FROM __sync_lookup_lint_1 WHERE id IN (__sync_lookup_lint_2)');
  });

  it('reports where SQL and code do not parse, and keeps the statements that do', () => {
    const bad = extractFile('006.sql', 'SELECT 1;\nSELEC 2;\nSELECT 3;');
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors[0]).toMatchObject({ line: 2 });
    expect(bad.errors[0]!.message).toMatch(/syntax error/);
    expect(kinds(bad)).toEqual(['SelectStmt', 'SelectStmt']);
    const code = extractFile('007.ts', 'export async function up( {');
    expect(code.errors[0]).toMatchObject({ line: 1 });
    expect(code.statements).toEqual([]);
  });

  it('finds ignore comments in SQL and in code, with the range they cover', () => {
    const sql = extractFile('008.sql', 'SELECT 1;\n-- sync-lookup-lint-ignore unindexed-filter the table is tiny\nDELETE FROM t WHERE a = 1;');
    expect(sql.ignores).toMatchObject([{ line: 2, rules: ['unindexed-filter'], reason: 'the table is tiny' }]);
    expect(sql.ignores[0]!.from).toBe(sql.statements[1]!.offset);
    const code = extractFile('009.ts', [
      'export async function up(q) {',
      '  // sync-lookup-lint-ignore count-for-emptiness,unindexed-filter',
      "  await q.sequelize.query('SELECT count(*) = 0 FROM t');",
      '}',
    ].join('\n'));
    expect(code.ignores).toMatchObject([{ line: 2, rules: ['count-for-emptiness', 'unindexed-filter'], reason: '' }]);
    expect(code.ignores[0]!.from).toBeLessThanOrEqual(code.statements[0]!.offset);
    expect(code.ignores[0]!.to).toBeGreaterThan(code.statements[0]!.offset);
  });

  it('SQL files with up and down sections (node-pg-migrate, dbmate, goose)', () => {
    const pgm = extractFile('1_x.sql', '-- Up Migration\nCREATE INDEX i ON t (a);\n-- Down Migration\nDROP INDEX i;\n');
    expect(pgm.statements.map((s) => s.phase)).toEqual(['up', 'down']);
    const dbmate = extractFile('2_x.sql', '-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;');
    expect(dbmate.statements.map((s) => s.phase)).toEqual(['up', 'down']);
    expect(dbmate.transaction).toEqual({ inTransaction: false, source: 'dbmate transaction:false' });
    const goose = extractFile('3_x.sql', '-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;');
    expect(goose.statements.map((s) => s.phase)).toEqual(['up', 'down']);
    expect(goose.transaction.inTransaction).toBe(false);
  });

  it('reads no-transaction markers from SQL comments', () => {
    expect(extractFile('a.sql', '--! no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);').transaction)
      .toEqual({ inTransaction: false, source: '--! no-transaction' });
    expect(extractFile('a.sql', '-- no-transaction\nSELECT 1;', { assumeInTransaction: true }).transaction.inTransaction).toBe(false);
    expect(extractFile('a.sql', 'SELECT 1;', { assumeInTransaction: true }).transaction.inTransaction).toBe(true);
  });
});
