import { describe, expect, it } from 'vitest';
import { compareGolden, compareShapes, goldenOf, mergeShapes, shapeOf } from '../helpers/golden.js';

describe('golden shapes of --json output', () => {
  it('replaces values by their types, sorts keys, merges array elements and opens data-keyed objects', () => {
    expect(shapeOf({ rows: 3, at: '2026-01-01', ok: true, tick: null, models: [{ model: 'a', rows: 1 }, { model: 'b', rows: null }], types: { notes: 1, vitals: 2 } }))
      .toEqual({ at: 'string', models: [{ model: 'string', rows: 'null|number' }], ok: 'boolean', rows: 'number', tick: 'null', types: { '*': 'number' } });
    expect(shapeOf({ list: [], types: {} })).toEqual({ list: [], types: {} });
    expect(mergeShapes({ a: 'number' }, { b: 'string' })).toEqual({ a: 'number', b: 'string' });
    expect(mergeShapes('null', { a: 'number' })).toEqual({ a: 'number' });
    expect(mergeShapes(['string'], 'number')).toBe('any');
    expect(shapeOf({ params: [['x'], 5, null] })).toEqual({ params: ['any'] });
  });

  it('finds added, missing and retyped keys, and lets null, empty arrays and "any" agree', () => {
    const golden = shapeOf({ since_tick: 1, models: [{ model: 'a' }], until_tick: 2, params: null });
    expect(compareShapes(shapeOf({ since_tick: 1, models: [{ model: 'a' }], until_tick: null, params: { x: 1 } }), golden)).toEqual([]);
    expect(compareShapes(shapeOf({ since_tick: 1, models: [], until_tick: 2, params: null }), golden)).toEqual([]);
    expect(compareShapes(shapeOf({ sinceTick: 1, models: [{ model: 7 }], until_tick: '2', params: null }), golden)).toEqual([
      '$.models[].model: number, golden says string',
      '$.sinceTick: new key (not in the golden file)',
      '$.since_tick: missing (the golden file has it)',
      '$.until_tick: string, golden says number',
    ]);
    expect(compareShapes(shapeOf({ a: [1] }), shapeOf({ a: { b: 1 } }))).toEqual(['$.a: ["number"], golden says {"b":"number"}']);
  });

  it('compares exit codes and events by type: a new event type or a changed event differs, an absent one does not', () => {
    const golden = goldenOf('x', 0, { events: [{ type: 'progress', rows_done: 1 }, { type: 'phase', phase: 'a' }], last: { rows: 1 } });
    expect(golden.events).toEqual({ phase: { phase: 'string', type: 'string' }, progress: { rows_done: 'number', type: 'string' } });
    expect(compareGolden(goldenOf('x', 0, { events: [{ type: 'phase', phase: 'b' }], last: { rows: 2 } }), golden)).toEqual([]);
    expect(compareGolden(goldenOf('x', 3, { events: [{ type: 'phase', phase: 1 }, { type: 'retry' }], last: { rows: 2 } }), golden)).toEqual([
      'exit code 3, golden says 0', 'event phase.phase: number, golden says string', 'event retry: new event type (not in the golden file)',
    ]);
  });
});
