import { describe, expect, it } from 'vitest';
import { statementReferences } from '../../src/inspect/model-fit.js';
import { loadSqlParser } from '../../src/plan/expr.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { selectLookupRows } from '../../src/lookup/sql.js';

describe('statementReferences', () => {
  it('resolves alias.column references to their tables, and leaves sub-select aliases and CTE names out', async () => {
    await loadSqlParser();
    const r = statementReferences(`WITH up AS (SELECT 1 AS x)
      SELECT s.a, s.a, e.patient_id, d.whatever, (SELECT row_to_json(d) FROM (SELECT s.b AS b) AS d), plain, x.*
        FROM app."Notes" AS s LEFT JOIN encounters e ON e.id = s.encounter_id CROSS JOIN up CROSS JOIN up AS x`);
    expect(r.tables).toEqual([
      { schema: 'app', name: 'Notes', alias: 's' },
      { schema: null, name: 'encounters', alias: 'e' },
    ]);
    expect(r.columns.map((c) => `${c.table.name}.${c.column}`).sort())
      .toEqual(['Notes.a', 'Notes.b', 'Notes.encounter_id', 'encounters.id', 'encounters.patient_id']);
  });

  it('names every source column and join table of a built-in model\'s source query', async () => {
    await loadSqlParser();
    const model = builtinRegistry().get('survey_response_answers');
    const r = statementReferences(selectLookupRows(model, { lookupTick: 'source' }).text);
    expect(r.tables.map((t) => `${t.name} ${t.alias}`)).toEqual(['survey_response_answers s', 'survey_responses sr', 'encounters e']);
    const source = r.columns.filter((c) => c.table.alias === 's').map((c) => c.column);
    for (const c of ['id', 'created_at', 'updated_at', 'deleted_at', 'updated_at_sync_tick', ...model.columns.map((x) => x.name)]) {
      expect(source, c).toContain(c);
    }
    expect(r.columns.filter((c) => c.table.alias === 'e').map((c) => c.column).sort()).toEqual(['id', 'patient_id']);
  });
});
