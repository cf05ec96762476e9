import { withClient } from '../../src/db/connection.js';
import { quoteIdent } from '../../src/db/quote.js';
import { buildLookup } from '../../src/lookup/build.js';
import { ModelRegistry, builtinRegistry } from '../../src/lookup/registry.js';
import { setupSourceTables } from '../../src/lookup/source.js';
import { lastBuildTick, prepareLookupSession, verifyModelQuery } from '../../src/lookup/sql.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import type { Layout } from '../../src/schema/partitioned.js';
import type { TestDatabase } from '../helpers/db.js';

/** The models the maintenance tests seed (every one the seed's four migrations touch, and their parents). */
export const MODELS = ['facilities', 'users', 'reference_data', 'patients', 'encounters', 'notes', 'prescriptions',
  'encounter_prescriptions', 'encounter_medications', 'patient_program_registrations', 'patient_program_registration_conditions'];

/** Rows per model: small, so each test file stays fast. */
export const COUNTS: Record<string, number> = {
  facilities: 5, users: 20, reference_data: 50, patients: 300, encounters: 600, notes: 1500, prescriptions: 300,
  encounter_prescriptions: 300, encounter_medications: 250, patient_program_registrations: 200, patient_program_registration_conditions: 120,
};

export function registry(): ModelRegistry {
  return new ModelRegistry(builtinRegistry().select(MODELS));
}

/**
 * Migrates (plain or partitioned), creates the source tables and fills them deterministically (ids from
 * md5, references pointing at existing rows), then runs the initial build.
 */
export async function seedSmall(t: TestDatabase, layout: Layout = 'plain', counts = COUNTS): Promise<ModelRegistry> {
  const reg = registry();
  await migrate(t.db, { migrations: builtinMigrations({ layout, partitionTypes: reg.names }) });
  await withClient(t.db, { purpose: 'test-seed' }, async (c) => {
    await setupSourceTables(c, reg);
    for (const model of reg.models) {
      const n = counts[model.name] ?? 10;
      const cols = ['id', ...model.columns.map((col) => col.name)];
      const values = [`md5(${quoteLiteralTs(model.name)} || g)::uuid`, ...model.columns.map((col) => {
        if (col.references) return `md5(${quoteLiteralTs(col.references)} || (g % ${counts[col.references] ?? 10}))::uuid`;
        switch (col.type) {
          case 'text': return col.values ? `(${arrayLiteral(col.values)})[1 + g % ${col.values.length}]` : `'v' || g`;
          case 'uuid': return `md5('x' || g)::uuid`;
          case 'integer': case 'bigint': case 'numeric': return 'g';
          case 'boolean': return 'g % 2 = 0';
          case 'date': return `date '2020-01-01' + g`;
          case 'timestamp': case 'timestamptz': return `timestamp '2020-01-01' + g * interval '1 hour'`;
          case 'jsonb': return `jsonb_build_object('g', g)`;
        }
      })];
      await c.query(`INSERT INTO ${quoteIdent(model.name)} (${cols.map(quoteIdent).join(', ')})
                     SELECT ${values.join(', ')} FROM generate_series(0, ${n - 1}) g`);
    }
  });
  await buildLookup(t.db, { registry: reg });
  return reg;
}

function quoteLiteralTs(v: string): string {
  return `'${v.replaceAll("'", "''")}'`;
}

function arrayLiteral(values: string[]): string {
  return `ARRAY[${values.map(quoteLiteralTs).join(', ')}]`;
}

/** Runs the lookup engine's verify query for each model; returns the problems found (empty when consistent). */
export async function verifyProblems(t: TestDatabase, reg: ModelRegistry, types = reg.names): Promise<Record<string, string>> {
  return withClient(t.db, { purpose: 'test-verify' }, async (c) => {
    await prepareLookupSession(c);
    const { rows: [last] } = await c.query<{ end_tick: string }>(lastBuildTick().text);
    const problems: Record<string, string> = {};
    for (const name of types) {
      const q = verifyModelQuery(reg.get(name), { builtBeforeTick: last ? Number(last.end_tick) : null });
      const { rows } = await c.query<{ problem: string; count: string }>(q.text, q.values);
      for (const r of rows) if (r.problem !== 'pending') problems[`${name}:${r.problem}`] = r.count;
    }
    return problems;
  });
}

/** Lookup rows per type. */
export async function lookupCounts(t: TestDatabase): Promise<Record<string, number>> {
  const { rows } = await t.query<{ record_type: string; n: number }>(`select record_type, count(*)::int as n from sync_lookup group by 1`);
  return Object.fromEntries(rows.map((r) => [r.record_type, r.n]));
}
