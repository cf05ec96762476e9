import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { seedDatabase } from '../../src/datagen/seed.js';
import { watchBuild } from '../../src/lookup/build.js';
import { builtinRegistry } from '../../src/lookup/registry.js';
import { createTestDatabase, hasServer } from '../helpers/db.js';

const registry = builtinRegistry();

describe.runIf(hasServer())('build --watch and seed timings', () => {
  it('20 rounds of watchBuild leave no abort listener behind', async () => {
    const t = await createTestDatabase();
    const seed = await seedDatabase(t.db, { rows: 2000, seed: 3, registry });
    // One statement wrote every model's rows (history order): there is no per-model time to report.
    expect(seed.build.models.every((m) => m.durationMs === null)).toBe(true);

    const controller = new AbortController();
    const listeners: number[] = [];
    const builds = await watchBuild(t.db, {
      registry, intervalMs: 1, signal: controller.signal,
      onBuild: () => {
        listeners.push(getEventListeners(controller.signal, 'abort').length);
        if (listeners.length === 20) controller.abort();
      },
    });
    expect(builds).toBe(20);
    expect(listeners).toEqual(new Array(20).fill(0));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
