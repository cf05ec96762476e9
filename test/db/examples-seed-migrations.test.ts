import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrationsDir } from '../../src/migrate/migration.js';
import { migrate } from '../../src/migrate/runner.js';
import { builtinMigrations } from '../../src/migrations/index.js';
import type { Layout } from '../../src/schema/partitioned.js';
import { createTestDatabase, hasServer, type TestDatabase } from '../helpers/db.js';
import { COUNTS, lookupCounts, seedSmall, verifyProblems } from './maintenance-fixtures.js';

const DIR = path.resolve(import.meta.dirname, '../../examples/seed-migrations');

async function maxTick(t: TestDatabase, types: string[]): Promise<number> {
  const { rows } = await t.query<{ m: string }>(`select min(updated_at_sync_tick)::text as m from sync_lookup where record_type = any($1)`, [types]);
  return Number(rows[0]!.m);
}

describe.runIf(hasServer())('the seed\'s four migrations as example migrations, through the runner', () => {
  for (const layout of ['plain', 'partitioned'] as const satisfies Layout[]) {
    it(`run end to end on a seeded ${layout} database and leave the lookup consistent`, async () => {
      const t = await createTestDatabase();
      const reg = await seedSmall(t, layout);
      // Migration 3's premise: prescriptions changed behind the lookup's back.
      await t.query(`alter table prescriptions disable trigger user`);
      await t.query(`update prescriptions set dose_amount = 'x' || dose_amount where id in (select id from prescriptions order by id limit 25)`);
      await t.query(`alter table prescriptions enable trigger user`);
      // Migration 4's premise: a lookup built before its initial build was recorded; a later build is recorded.
      const { rows: [first] } = await t.query<{ e: string }>(`delete from sync_lookup_ticks where source_start_tick = -1 returning lookup_end_tick::text as e`);
      const initialEnd = Number(first!.e);
      await t.query(`insert into sync_lookup_ticks (source_start_tick, lookup_end_tick) values ($1, $2)`, [initialEnd, initialEnd + 1000]);
      // …by a clock that has moved on since (an end tick above the clock would be refused: ticks never regress).
      await t.query(`update sync_lookup_tool.clock set tick = $1`, [initialEnd + 1001]);
      const ppr = ['patient_program_registrations', 'patient_program_registration_conditions'];
      const tickBefore = await maxTick(t, ppr);
      expect(Object.keys(await verifyProblems(t, reg, ['prescriptions']))).toEqual(['prescriptions:data_differs']);

      const examples = await loadMigrationsDir(DIR);
      expect(examples.map((m) => [m.name.slice(0, 13), m.transaction])).toEqual([
        ['1748555633925', false], ['1750719607520', true], ['1754351568045', false], ['1755237235317', false]]);
      const r = await migrate(t.db, { migrations: [...builtinMigrations({ layout }), ...examples] });
      expect(r.applied.map((a) => a.name.slice(0, 13))).toEqual(['1748555633925', '1750719607520', '1754351568045', '1755237235317']);

      const counts = await lookupCounts(t);
      expect(counts.encounter_medications).toBeUndefined();
      expect(counts.prescriptions).toBe(COUNTS.prescriptions);
      expect(counts.patient_program_registrations).toBe(COUNTS.patient_program_registrations);
      // Every registration and condition re-published (twice: migrations 1 and 2) above its old tick.
      expect(await maxTick(t, ppr)).toBeGreaterThan(tickBefore);
      const { rows: initial } = await t.query<{ e: string }>(`select lookup_end_tick::text as e from sync_lookup_ticks where source_start_tick = -1`);
      expect(initial).toHaveLength(1);
      expect(Number(initial[0]!.e)).toBeGreaterThanOrEqual(initialEnd);
      expect(Number(initial[0]!.e)).toBeLessThan(initialEnd + 1000);
      const jobs = await t.query<{ operation: string; status: string }>(`select operation, status from sync_lookup_tool.jobs order by id`);
      expect(jobs.rows).toEqual([
        { operation: 'resync', status: 'done' }, { operation: 'resync', status: 'done' },
        { operation: 'purge', status: 'done' }, { operation: 'rebuild', status: 'done' }]);
      // The lookup matches the sources (encounter_medications was removed from the lookup on purpose).
      expect(await verifyProblems(t, reg, reg.names.filter((n) => n !== 'encounter_medications'))).toEqual({});
    });
  }
});
