import { describe, expect, it } from 'vitest';
import { indexProgressEvent } from '../../src/cli/commands/index.js';
import { DATA_KEYED_OBJECTS, snakeCaseKey, toSnakeCaseJson } from '../../src/cli/json.js';
import type { IndexBuildProgress } from '../../src/db/index-progress.js';
import type { IndexBuildSample } from '../../src/inspect/index-watch.js';

describe('the CLI edge converter (toSnakeCaseJson)', () => {
  it('turns camelCase identifiers into snake_case and keeps every other key', () => {
    expect(snakeCaseKey('sinceTick')).toBe('since_tick');
    expect(snakeCaseKey('xactAgeS')).toBe('xact_age_s');
    expect(snakeCaseKey('p95Ms')).toBe('p95_ms');
    expect(snakeCaseKey('rows_done')).toBe('rows_done');
    expect(snakeCaseKey('rows')).toBe('rows');
    expect(snakeCaseKey('Node Type')).toBe('Node Type');
    expect(snakeCaseKey('DateStyle')).toBe('DateStyle');
    expect(snakeCaseKey('firstTick:notes')).toBe('firstTick:notes');
  });

  it('converts deep, through arrays and nested arrays, and keeps values (strings that look like keys too)', () => {
    expect(toSnakeCaseJson({ lastEndTick: 3, models: [{ durationMs: 1, problems: { tickBehindSource: { count: 1, examples: ['abcDef'] } } }], m: [[{ aB: 1 }]] }))
      .toEqual({ last_end_tick: 3, models: [{ duration_ms: 1, problems: { tick_behind_source: { count: 1, examples: ['abcDef'] } } }], m: [[{ a_b: 1 }]] });
    expect(toSnakeCaseJson([1, 'x', null, true])).toEqual([1, 'x', null, true]);
  });

  it('keeps the keys of objects keyed by data, and converts their values', () => {
    expect([...DATA_KEYED_OBJECTS].sort()).toEqual(['postgres_settings', 'types']);
    expect(toSnakeCaseJson({ sinceTick: 1, types: { labRequests: 2, patient_program_registrations: 1 } }))
      .toEqual({ since_tick: 1, types: { labRequests: 2, patient_program_registrations: 1 } });
    expect(toSnakeCaseJson({ machine: { postgres_settings: { DateStyle: 'ISO', sharedBuffers: '128MB' } } }))
      .toEqual({ machine: { postgres_settings: { DateStyle: 'ISO', sharedBuffers: '128MB' } } });
    expect(toSnakeCaseJson({ types: { someType: { rowsDone: 1 } } })).toEqual({ types: { someType: { rows_done: 1 } } });
    // A data-keyed name only protects an object at that key; an array called `types` is converted as usual.
    expect(toSnakeCaseJson({ types: [{ recordType: 'a' }] })).toEqual({ types: [{ record_type: 'a' }] });
  });

  it('serialises dates (toJSON) before converting', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    expect(toSnakeCaseJson({ startedAt: at })).toEqual({ started_at: '2026-01-02T03:04:05.000Z' });
    expect(JSON.stringify(toSnakeCaseJson({ error: { code: 'x', details: { holderPid: 7 } } }))).toBe('{"error":{"code":"x","details":{"holder_pid":7}}}');
  });
});

describe('index_progress: one event shape for migrate and index watch', () => {
  const progress: IndexBuildProgress = {
    pid: 42, table: 'public.sync_lookup', index: null, command: 'CREATE INDEX CONCURRENTLY', phase: 'waiting for writers before build',
    blocksDone: 0, blocksTotal: 0, tuplesDone: 0, tuplesTotal: 0, lockersDone: 0, lockersTotal: 1, phasePercent: 0, elapsedS: 1.5,
    waitingOn: { pid: 43, state: 'idle in transaction', xactAgeS: 2, query: 'select 1', applicationName: 'psql' },
  };
  const sample: IndexBuildSample = { ...progress, phaseWords: 'w', phaseStep: 2, phaseSteps: 10, ratePerS: 1, phaseEtaS: 3 };

  it('has the same keys whichever command reports the build, with the lock wait under waiting_on', () => {
    const fromMigrate = toSnakeCaseJson(indexProgressEvent(progress, 'sync_lookup_rt')) as Record<string, unknown>;
    const fromWatch = toSnakeCaseJson(indexProgressEvent(sample)) as Record<string, unknown>;
    expect(Object.keys(fromMigrate).sort()).toEqual(Object.keys(fromWatch).sort());
    expect(fromMigrate).toMatchObject({
      type: 'index_progress', index: 'sync_lookup_rt', pid: 42, phase_step: 2, phase_steps: 10, rate_per_s: null, phase_eta_s: null,
      phase_words: 'waiting for transactions writing to the table to end, before building',
      waiting_on: { pid: 43, xact_age_s: 2, application_name: 'psql' },
    });
    expect(fromWatch).toMatchObject({ index: null, phase_words: 'w', rate_per_s: 1, waiting_on: { xact_age_s: 2 } });
  });
});
