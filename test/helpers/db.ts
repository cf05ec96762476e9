import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { databaseFromUrl, type Database } from '../../src/db/connection.js';
import { quoteIdent } from '../../src/db/quote.js';

declare module 'vitest' {
  export interface ProvidedContext { pgUrl: string }
}

/** A fresh database on this project's server (PostgreSQL 18 or 15), dropped after the file's tests. */
export interface TestDatabase {
  url: string;
  db: Database;
  /** Runs one query on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Server major version (15, 18). */
  major: number;
}

/** True when this project's server is available (PostgreSQL 15 may be absent on a dev machine). */
export function hasServer(): boolean {
  return inject('pgUrl') !== '';
}

/**
 * Creates a database for the calling test file and drops it when the file ends.
 *
 * @example
 * const t = await createTestDatabase();
 * await t.query('select 1');
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('pgUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${quoteIdent(name)}`);
  const { rows } = await admin.query<{ v: string }>(`select current_setting('server_version_num') as v`);
  await admin.end();
  const url = adminUrl.replace(/\/postgres$/, `/${name}`);
  afterAll(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`drop database if exists ${quoteIdent(name)} with (force)`);
    await c.end();
  });
  return {
    url,
    db: databaseFromUrl(url),
    major: Math.floor(Number(rows[0]!.v) / 10000),
    async query(sql, params = []) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try { return await c.query(sql, params); } finally { await c.end(); }
    },
  };
}
