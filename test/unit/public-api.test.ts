import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportedNames, ROOT, withProject } from '../helpers/source.js';

/*
 * Every name the package exports is a promise to keep: the lists are committed in
 * test/fixtures/public-api/, so adding or removing an export is a decision made in the same change.
 * To accept a change, update the list (one name a line, sorted).
 */

const ENTRIES = {
  '.': 'src/index.ts',
  './bench': 'src/bench/index.ts',
  './datagen': 'src/datagen/index.ts',
} as const;

const listFile = (entry: string) => resolve(ROOT, 'test/fixtures/public-api', `${entry === '.' ? 'index' : entry.slice(2)}.txt`);
const committed = (entry: string) => readFileSync(listFile(entry), 'utf8').split('\n').filter(Boolean);

// Loading the whole program (the compiler, or every src module through vite) takes seconds on a busy machine.
describe('public API', { timeout: 60_000 }, () => {
  const actual = withProject((project) =>
    Object.fromEntries(Object.entries(ENTRIES).map(([entry, file]) => [entry, exportedNames(project, file)])));

  it.each(Object.keys(ENTRIES))('%s exports exactly the committed list', (entry) => {
    expect(actual[entry]).toEqual(committed(entry));
  });

  it.each(Object.entries(ENTRIES))('%s loads, and every runtime export is on its list', async (entry, file) => {
    const module = await import(resolve(ROOT, file)) as Record<string, unknown>;
    const values = Object.keys(module);
    expect(values.length).toBeGreaterThan(0);
    expect(values.filter((name) => !committed(entry).includes(name))).toEqual([]);
  });

  it('package.json maps each entry to the built file of the same module, with its types', () => {
    const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; import: string }> };
    expect(Object.keys(pkg.exports).sort()).toEqual(Object.keys(ENTRIES).sort());
    for (const [entry, file] of Object.entries(ENTRIES)) {
      const built = file.replace(/^src\//, './dist/').replace(/\.ts$/, '');
      expect(pkg.exports[entry]).toEqual({ types: `${built}.d.ts`, import: `${built}.js` });
    }
  });
});
