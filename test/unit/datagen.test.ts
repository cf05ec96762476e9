import { describe, expect, it } from 'vitest';
import { planRows, SourceRowGenerator } from '../../src/datagen/generate.js';
import { createRng } from '../../src/datagen/prng.js';
import { builtinRegistry, loadRegistry } from '../../src/lookup/registry.js';
import { STANDARD_SOURCE_COLUMNS } from '../../src/lookup/registry.js';

const registry = builtinRegistry();

function generate(rows: number, seed: number | string) {
  const gen = new SourceRowGenerator(registry, planRows(registry, rows), { seed });
  const out: { model: string; line: string }[] = [];
  for (let r = gen.next(); r; r = gen.next()) out.push({ model: r.model.name, line: r.line });
  return out;
}

describe('data generator', () => {
  it('the PRNG is deterministic per seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 5 }, () => a.uint32());
    expect(Array.from({ length: 5 }, () => b.uint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.uint32())).not.toEqual(xs);
    const r = createRng('x');
    for (let i = 0; i < 1000; i++) {
      const v = r.next();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });

  it('same seed, same rows; another seed, other rows', () => {
    const a = generate(2000, 1);
    expect(generate(2000, 1)).toEqual(a);
    expect(generate(2000, 2)).not.toEqual(a);
  });

  it('plans a skewed mix: large clinical models, ~1 % registrations and legacy medications, ~0.3 % conditions', () => {
    const plan = planRows(registry, 1_000_000);
    const share = (name: string) => plan.models.find((m) => m.name === name)!.rows / plan.totalRows;
    expect(plan.totalRows).toBeGreaterThan(990_000);
    expect(plan.totalRows).toBeLessThan(1_010_000);
    expect(share('survey_response_answers')).toBeGreaterThan(0.15);
    for (const big of ['notes', 'vitals', 'vital_logs', 'encounter_history', 'encounters', 'lab_tests']) expect(share(big)).toBeGreaterThan(0.05);
    expect(share('patient_program_registrations')).toBeCloseTo(0.01, 2);
    expect(share('encounter_medications')).toBeCloseTo(0.01, 2);
    expect(share('patient_program_registration_conditions')).toBeCloseTo(0.003, 3);
    expect(planRows(registry, 5).models.every((m) => m.rows >= 1)).toBe(true);
  });

  it('interleaves the types over time, with unique ids, well-formed COPY lines and growing ticks', () => {
    const rows = generate(20_000, 3);
    const positions = new Map<string, number[]>();
    rows.forEach((r, i) => { const p = positions.get(r.model) ?? []; p.push(i); positions.set(r.model, p); });
    for (const name of ['notes', 'encounters', 'survey_response_answers', 'encounter_medications']) {
      const p = positions.get(name)!;
      // Spread over the whole run: present in every fifth of it.
      for (let q = 0; q < 5; q++) expect(p.some((i) => i >= (q * rows.length) / 5 && i < ((q + 1) * rows.length) / 5)).toBe(true);
    }
    // Parents come first: the first rows are a bootstrap of every model in dependency order.
    expect(rows.slice(0, 20).map((r) => r.model)).toEqual(registry.names);
    let lastTick = 0;
    const ids = new Set<string>();
    for (const r of rows) {
      const fields = r.line.split('\t');
      const model = registry.get(r.model);
      expect(fields).toHaveLength(STANDARD_SOURCE_COLUMNS.length + model.columns.length);
      expect(fields[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(`${r.model}:${fields[0]}`);
      const tick = Number(fields[4]);
      expect(tick).toBeGreaterThanOrEqual(lastTick);
      lastTick = tick;
    }
    expect(ids.size).toBe(rows.length);
  }, 60_000); // 20 000 generated rows: seconds on a loaded machine

  it('references point at rows generated earlier', () => {
    const gen = new SourceRowGenerator(registry, planRows(registry, 5000), { seed: 9 });
    const seen = new Set<string>();
    const notesCols = registry.get('notes').columns.map((c) => c.name);
    for (let r = gen.next(); r; r = gen.next()) {
      const f = r.line.split('\t');
      if (r.model.name === 'notes') {
        const encounter = f[STANDARD_SOURCE_COLUMNS.length + notesCols.indexOf('record_id')]!;
        expect(seen.has(`encounters:${encounter}`)).toBe(true);
      }
      seen.add(`${r.model.name}:${f[0]}`);
    }
  });

  it('escapes user-supplied values for COPY', async () => {
    const r = await loadRegistry('test/fixtures/registry/valid.json');
    const gen = new SourceRowGenerator(r, planRows(r, 400), { seed: 1 });
    const kinds = new Set<string>();
    for (let row = gen.next(); row; row = gen.next()) if (row.model.name === 'visit_notes') kinds.add(row.line.split('\t').at(-1)!);
    expect([...kinds].sort()).toEqual(['a\\tb', 'back\\\\slash', 'plain']);
  });
});
