import { describe, expect, it } from 'vitest';
import { relativeImports, srcFiles, srcFolder, withProject } from '../helpers/source.js';

/*
 * The top-level folders of src/ form layers: a folder may import from another only if that one never
 * imports back, directly or through others. The imports are read by the TypeScript compiler.
 */

type Graph = Map<string, Map<string, string[]>>;

/** Folder → folder edges, each with the files that make it (for the failure message). */
function folderGraph(): Graph {
  return withProject((project) => {
    const graph: Graph = new Map();
    for (const file of srcFiles(project)) {
      const from = srcFolder(file.fileName);
      for (const target of relativeImports(file)) {
        const to = srcFolder(target);
        if (to === from || to.startsWith('..')) continue;
        const edges = graph.get(from) ?? new Map<string, string[]>();
        edges.set(to, [...(edges.get(to) ?? []), `${file.fileName.split('/src/')[1]} -> ${target.split('/src/')[1]}`]);
        graph.set(from, edges);
      }
    }
    return graph;
  });
}

/** Strongly connected components with more than one folder (Tarjan). */
function folderCycles(graph: Map<string, Iterable<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do { w = stack.pop()!; component.push(w); } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) strong(v);
  return cycles;
}

describe('folder layers', { timeout: 60_000 }, () => {
  it('finds a cycle when there is one (the check itself)', () => {
    const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(folderCycles(graph)).toEqual([['a', 'b', 'c']]);
    expect(folderCycles(new Map([['a', ['b']], ['b', []], ['c', ['a', 'b']]]))).toEqual([]);
  });

  it('src/ has no import cycle between its top-level folders', () => {
    const graph = folderGraph();
    expect(graph.size).toBeGreaterThan(5);
    const cycles = folderCycles(new Map([...graph].map(([from, edges]) => [from, edges.keys()])));
    const explain = cycles.map((folders) => folders.join(' <-> ') + '\n' + folders.flatMap((from) =>
      [...graph.get(from) ?? []].filter(([to]) => folders.includes(to)).flatMap(([, why]) => why)).join('\n'));
    expect(explain).toEqual([]);
  });
});
