import type pg from 'pg';
import { hasColumn } from '../db/catalog.js';
import type { Migration } from '../migrate/migration.js';
import { LOOKUP_TABLE, TICKS_TABLE } from '../schema/sync-lookup.js';

/*
 * The shape origin deployments have (ORIGIN.md), so a new system and an adopted one look the same to every
 * command: the `needs_rebuild` flag column, the unique constraint named `…_uk`, `id` from a sequence default
 * (not an identity column), and the ticks table's generated `id`. Every step checks the catalog first and only
 * adds what is missing or renames the names sync-lookup's own baseline gave: a deployment's own objects are
 * never renamed or replaced. The flag's partial index is built concurrently by the next migration.
 *
 * Locks: ADD COLUMN with a constant default and the renames are catalog-only (PostgreSQL 11+); the identity
 * swap reads max(id) through the primary key; the ticks table (one row per build) is rewritten for its
 * generated column. All inside one short transaction under the runner's lock-timeout retries.
 */

const STEPS: { sql: string; needed: (c: pg.ClientBase) => Promise<boolean> }[] = [
  {
    sql: `ALTER TABLE ${LOOKUP_TABLE} ADD COLUMN needs_rebuild boolean NOT NULL DEFAULT false`,
    needed: async (c) => !(await hasColumn(c, { schema: 'public', name: LOOKUP_TABLE }, 'needs_rebuild')),
  },
  {
    sql: `ALTER TABLE ${LOOKUP_TABLE} RENAME CONSTRAINT sync_lookup_record_id_record_type_key TO sync_lookup_record_id_record_type_uk`,
    needed: async (c) => exists(c, `SELECT 1 FROM pg_constraint WHERE conrelid = '${LOOKUP_TABLE}'::regclass AND conname = 'sync_lookup_record_id_record_type_key'`),
  },
  {
    sql: `ALTER TABLE ${LOOKUP_TABLE} ALTER COLUMN id DROP IDENTITY;
CREATE SEQUENCE ${LOOKUP_TABLE}_id_seq AS bigint OWNED BY ${LOOKUP_TABLE}.id;
SELECT setval('${LOOKUP_TABLE}_id_seq', coalesce((SELECT id FROM ${LOOKUP_TABLE} ORDER BY id DESC LIMIT 1), 0) + 1, false);
ALTER TABLE ${LOOKUP_TABLE} ALTER COLUMN id SET DEFAULT nextval('${LOOKUP_TABLE}_id_seq'::regclass)`,
    needed: async (c) => exists(c, `SELECT 1 FROM pg_attribute WHERE attrelid = '${LOOKUP_TABLE}'::regclass AND attname = 'id' AND attidentity <> ''`),
  },
  {
    sql: `ALTER TABLE ${TICKS_TABLE} ADD COLUMN id bigint GENERATED ALWAYS AS (lookup_end_tick) STORED`,
    needed: async (c) => !(await hasColumn(c, { schema: 'public', name: TICKS_TABLE }, 'id')),
  },
];

async function exists(client: pg.ClientBase, sql: string): Promise<boolean> {
  return ((await client.query(sql)).rowCount ?? 0) > 0;
}

/** The steps this database still needs. */
async function needed(client: pg.ClientBase): Promise<string[]> {
  const out: string[] = [];
  for (const step of STEPS) if (await step.needed(client)) out.push(step.sql);
  return out;
}

/**
 * Brings `sync_lookup` and its ticks table to the origin deployments' shape (see the module comment).
 *
 * @example
 * await migrate(db, { migrations: [baseline, recordTypeIndex, deploymentShape, needsRebuildIndex] });
 */
export const deploymentShape: Migration = {
  name: '0003_deployment_shape',
  transaction: true,
  source: STEPS.map((s) => s.sql).join(';\n'),
  plan: STEPS.map((s) => `-- when missing:\n${s.sql}`),
  async up(ctx) {
    for (const sql of await needed(ctx.client)) {
      await ctx.client.query(sql);
      ctx.completed.push(sql);
    }
  },
  async adoptable(client) {
    return (await needed(client)).length === 0;
  },
};
