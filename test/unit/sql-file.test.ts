import { describe, expect, it } from 'vitest';
import { errorLine, parseSqlFile, sqlFileProblems } from '../../src/migrate/sql-file.js';

describe('sql migration files', () => {
  it('splits a file into statements with their lines and first words, comments and strings included', async () => {
    const f = await parseSqlFile([
      '-- sync-lookup: no-transaction',
      '-- é: a comment with a multi-byte character before the first statement',
      'ALTER TABLE sync_lookup ADD COLUMN note text;',
      '',
      "insert into notes values ('a;b -- not a comment');  /* c */ CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"i x\" ON s.t (a);",
      'DROP INDEX CONCURRENTLY IF EXISTS s.old_idx;',
      'REINDEX INDEX CONCURRENTLY s.other;',
      'select 1',
    ].join('\n'), 'f.sql');
    expect(f.transactional).toBe(false);
    expect(f.statements.map((s) => [s.index, s.line, s.summary])).toEqual([
      [1, 3, 'ALTER TABLE sync_lookup ADD COLUMN'],
      [2, 5, 'insert into notes values ('],
      [3, 5, 'CREATE UNIQUE INDEX CONCURRENTLY IF'],
      [4, 6, 'DROP INDEX CONCURRENTLY IF EXISTS'],
      [5, 7, 'REINDEX INDEX CONCURRENTLY s .'],
      [6, 8, 'select 1'],
    ]);
    expect(f.statements[1]!.sql).toBe("insert into notes values ('a;b -- not a comment')");
    expect(f.statements.map((s) => s.concurrentIndex)).toEqual([
      null, null,
      { kind: 'create', schema: 's', table: 't', name: 'i x', ifNotExists: true, unique: true, columns: ['a'] },
      { kind: 'drop', schema: 's', name: 'old_idx', ifExists: true },
      { kind: 'reindex', target: 'index', schema: 's', name: 'other' },
      null,
    ]);
  });

  it('takes the marker only from a comment, never from inside a string', async () => {
    expect((await parseSqlFile(`select '\n-- sync-lookup: no-transaction\n'`, 'f.sql')).transactional).toBe(true);
    expect((await parseSqlFile(`select 1; -- sync-lookup: no-transaction`, 'f.sql')).transactional).toBe(false);
  });

  it('refuses, in a transactional file, every statement PostgreSQL runs only outside a transaction block, naming line and marker', async () => {
    const kinds = ['create index concurrently i on t (a)', 'drop index concurrently i', 'reindex table concurrently t', 'reindex database d',
      'vacuum t', 'vacuum (analyze) t', 'create database d', 'drop database d', 'alter system set work_mem = 1', 'cluster',
      'alter database d set tablespace x', 'create tablespace x location \'/x\'', 'discard all'];
    for (const sql of kinds) {
      const problems = sqlFileProblems(await parseSqlFile(`select 1;\n${sql};`, 'f.sql'), 180000);
      expect(problems, sql).toEqual([{ line: 2, statement: 2, message: expect.stringContaining('-- sync-lookup: no-transaction') }]);
      expect(problems[0]!.message).toMatch(/cannot run inside a transaction block/);
    }
    for (const sql of ['analyze t', 'reindex table t', 'cluster t', 'alter type e add value \'x\'', 'create index i on t (a)']) {
      expect(sqlFileProblems(await parseSqlFile(sql, 'f.sql'), 150000), sql).toEqual([]);
    }
    expect(sqlFileProblems(await parseSqlFile(`alter type e add value 'x'`, 'f.sql'), 110000)).toHaveLength(1);
  });

  it('refuses transaction control in either mode, and an unnamed concurrent build in a no-transaction file', async () => {
    for (const sql of ['begin', 'start transaction', 'commit', 'rollback', 'savepoint a', 'release a', 'rollback to savepoint a',
      "prepare transaction 'x'", 'end', 'abort']) {
      for (const marker of ['', '-- sync-lookup: no-transaction\n']) {
        const problems = sqlFileProblems(await parseSqlFile(`${marker}create table a (id int);\n${sql};`, 'f.sql'), 180000);
        expect(problems, `${marker}${sql}`).toEqual([{ line: marker ? 3 : 2, statement: 2, message: expect.stringMatching(/transaction control/) }]);
      }
    }
    const unnamed = sqlFileProblems(await parseSqlFile('-- sync-lookup: no-transaction\ncreate index concurrently on t (a);', 'f.sql'), 180000);
    expect(unnamed).toEqual([{ line: 2, statement: 1, message: expect.stringMatching(/name the index/) }]);
  });

  it('maps an error position inside a statement to its file line, and a syntax error to file:line', async () => {
    const f = await parseSqlFile('select 1;\n\nselect\n  2,\n  nope', 'f.sql');
    expect(errorLine(f.statements[1]!, f.statements[1]!.sql.indexOf('nope') + 1)).toBe(5);
    await expect(parseSqlFile('select 1;\nselec 2;', 'dir/f.sql')).rejects.toThrow(/^dir\/f\.sql:2: PostgreSQL's parser rejects it: syntax error/);
  });

  it('reads a file saved with a byte-order mark and CRLF line ends like any other; an empty file has no statements', async () => {
    const f = await parseSqlFile('\uFEFF-- sync-lookup: no-transaction\r\nalter table t add column x int;\r\n\r\ncreate index concurrently t_x on t (x);\r\n', 'win.sql');
    expect(f.transactional).toBe(false);
    expect(f.statements.map((s) => [s.line, s.summary])).toEqual([[2, 'alter table t add column'], [4, 'create index concurrently t_x on']]);
    expect(sqlFileProblems(f, 180000)).toEqual([]);
    for (const empty of ['', '\uFEFF', '  \n']) expect(await parseSqlFile(empty, 'empty.sql')).toEqual({ transactional: true, statements: [] });
  });
});
