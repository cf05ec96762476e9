import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { builtinRegistry, loadRegistry, validateModels } from '../../src/lookup/registry.js';
import { selectLookupRows } from '../../src/lookup/sql.js';

const fixture = (name: string) => path.resolve('test/fixtures/registry', name);

describe('model registry', () => {
  it('has the ~20 built-in models of a health-records system, parents before children', () => {
    const r = builtinRegistry();
    expect(r.names).toHaveLength(20);
    for (const name of ['patients', 'encounters', 'notes', 'survey_response_answers', 'encounter_medications',
      'patient_program_registrations', 'patient_program_registration_conditions', 'reference_data', 'settings']) {
      expect(r.has(name)).toBe(true);
    }
    expect(r.get('notes').joins).toEqual([{ table: 'encounters', alias: 'e', on: 'e.id = s.record_id' }]);
    expect(r.get('notes').patientId).toBe('e.patient_id');
    for (const [i, m] of r.models.entries()) {
      for (const c of m.columns) if (c.references) expect(r.names.indexOf(c.references)).toBeLessThan(i);
    }
  });

  it('names unknown models and lists the known ones', () => {
    const r = builtinRegistry();
    const err = (() => { try { r.select(['notes', 'nope', 'zip']); } catch (e) { return e; } })() as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/unknown models "nope", "zip"; known models: facilities, users/);
    expect(err.details).toMatchObject({ unknown: ['nope', 'zip'] });
    expect(() => r.get('x')).toThrow(/unknown model "x"/);
    expect(r.select().length).toBe(20);
    expect(r.select(['notes', 'notes']).map((m) => m.name)).toEqual(['notes']);
  });

  it('loads a valid registry file', async () => {
    const r = await loadRegistry(fixture('valid.json'));
    expect(r.names).toEqual(['clinics', 'people', 'visits', 'visit_notes']);
    expect(r.get('visit_notes').isLabRequest).toBe('v.person_id IS NULL');
    expect(r.get('clinics').isLabRequest).toBe('false');
  });

  it('names every invalid entry of a registry file at once', async () => {
    const err = await loadRegistry(fixture('invalid.json')).catch((e: unknown) => e) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    const problems = err.details.problems as string[];
    const text = problems.join('\n');
    expect(text).toMatch(/models\[0\] \(Bad Name\)\.name: must be a lower-case SQL identifier/);
    expect(text).toMatch(/models\[1\] \(notes2\)\.direction/);
    expect(text).toMatch(/models\[3\] \(ok_model\): .*extra/i);
    // notes2 failed the shape check, and its SQL is examined all the same: every problem at once.
    expect(text).toMatch(/models\[1\] \(notes2\)\.patientId: (not a valid SQL expression|must be exactly one SQL expression)/);
    expect(text).toMatch(/vitals2\.patientId: not a valid SQL expression/);
    expect(text).toMatch(/vitals2\.joins\[0\]\.on: not a valid SQL expression/);
    expect(err.message.split('\n').length).toBe(problems.length + 1);
  });

  it('rejects SQL fragments that are not exactly one expression, reserved columns and dangling references', async () => {
    const base = { direction: 'bidirectional', encounterId: null, facilityId: null, columns: [] };
    const err = await validateModels([
      { ...base, name: 'a', patientId: 's.x); drop table sync_lookup; select (1' },
      { ...base, name: 'b', patientId: '(select 1) union (select 2)' },
      { ...base, name: 'c', patientId: null, columns: [{ name: 'deleted_at', type: 'timestamp' }, { name: 'p', type: 'text; drop table x', references: 'a' }] },
      { ...base, name: 'd', patientId: null, columns: [{ name: 'q', type: 'uuid', references: 'zz' }] },
      { ...base, name: 'd', patientId: null },
    ], 'inline').catch((e: unknown) => e) as ConfigError;
    const text = (err.details.problems as string[]).join('\n');
    expect(text).toMatch(/a\.patientId: must be exactly one SQL expression/);
    expect(text).toMatch(/\(c\)\.columns: "deleted_at" is a standard column/);
    // Any PostgreSQL type is allowed (text ids reference text keys), but it must parse as one type name.
    expect(text).toMatch(/c\.columns\.p: not a PostgreSQL type name: "text; drop table x"/);
    expect(text).toMatch(/d\.columns\.q: references unknown model "zz"/);
    expect(text).toMatch(/model "d" is defined twice/);
    // A scalar subquery is one expression: allowed.
    expect(text).not.toMatch(/b\.patientId/);
  });

  it('reports a file\'s top-level errors together with its entries\' SQL errors', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sl-registry-'));
    const file = path.join(dir, 'models.json');
    await writeFile(file, JSON.stringify({
      version: 2,
      models: [{ name: 'a', direction: 'bidirectional', patientId: 's.x FROM y', encounterId: null, facilityId: null, columns: [] }],
    }));
    const err = await loadRegistry(file).catch((e: unknown) => e) as ConfigError;
    const text = (err.details.problems as string[]).join('\n');
    expect(text).toMatch(/\(top level\): .*version/i);
    expect(text).toMatch(/a\.patientId: (not a valid SQL expression|must be exactly one SQL expression)/);
  });

  it('reports unreadable and malformed files', async () => {
    await expect(loadRegistry(fixture('malformed.json'))).rejects.toThrow(/malformed\.json is not valid JSON/);
    await expect(loadRegistry(fixture('missing.json'))).rejects.toThrow(/cannot read model registry/);
  });

  it('puts model names and column names into SQL only as parameters or quoted identifiers', async () => {
    const r = await validateModels([{ name: 'weird_name', direction: 'bidirectional', patientId: null, encounterId: null, facilityId: null,
      columns: [{ name: 'select', type: 'text' }] }]);
    const q = selectLookupRows(r.get('weird_name'), { lookupTick: 'source', sinceTick: 5, limit: 10 });
    expect(q.text).toContain('s."select" AS "select"');
    expect(q.text).toContain('FROM "weird_name" AS s');
    expect(q.values).toContain('weird_name');
    expect(q.values).toContain(5);
  });
});
