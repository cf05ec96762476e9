import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JsonOutput } from './cli.js';

/*
 * Golden files of the CLI's JSON (test/golden/*.json). A golden file holds the *shape* of a command's
 * output, not its values: every value becomes its JSON type ("number", "string", "boolean", "null", or a
 * union such as "null|number"), so timings, ticks, pids, dates and sizes are normalised away and the key
 * structure is what is compared. Arrays hold the merged shape of their elements; events are grouped by
 * their `type`. Set SYNC_LOOKUP_UPDATE_GOLDEN=1 to rewrite the files from a run, deliberately.
 */

/** A value's shape: a type name (or `a|b` union), `[element shape]`, or an object of shapes. */
export type Shape = string | Shape[] | { [key: string]: Shape };

/**
 * Objects whose key set is not part of the contract: record types (`types`), server settings, a finding's
 * `evidence` (its keys depend on the check), a job's resume `state`. Their keys become `"*"`.
 */
export const OPEN_OBJECTS: ReadonlySet<string> = new Set(['types', 'postgres_settings', 'evidence', 'state']);

const isObject = (s: Shape): s is { [key: string]: Shape } => typeof s === 'object' && !Array.isArray(s);

/**
 * The shape of a JSON value.
 *
 * @example
 * shapeOf({ rows: 3, models: [{ model: 'notes' }] }) // { models: [{ model: 'string' }], rows: 'number' }
 */
export function shapeOf(value: unknown): Shape {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length ? [value.map(shapeOf).reduce(mergeShapes)] : [];
  if (typeof value === 'object') {
    const out: { [key: string]: Shape } = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      out[key] = OPEN_OBJECTS.has(key) && v !== null && typeof v === 'object' && !Array.isArray(v)
        ? (Object.keys(v).length ? { '*': Object.values(v).map(shapeOf).reduce(mergeShapes) } : {})
        : shapeOf(v);
    }
    return out;
  }
  return typeof value;
}

/**
 * Two shapes as one (array elements, repeated events): objects take the union of their keys, type names
 * their union; `null` joins anything; anything else that disagrees (a list and a number) becomes "any".
 */
export function mergeShapes(a: Shape, b: Shape): Shape {
  if (JSON.stringify(a) === JSON.stringify(b)) return a;
  if (a === 'null') return typeof b === 'string' ? union(a, b) : b;
  if (b === 'null') return typeof a === 'string' ? union(a, b) : a;
  if (typeof a === 'string' && typeof b === 'string') return union(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return !a.length ? b : !b.length ? a : [mergeShapes(a[0]!, b[0]!)];
  if (isObject(a) && isObject(b)) {
    const out: { [key: string]: Shape } = {};
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      out[key] = key in a && key in b ? mergeShapes(a[key]!, b[key]!) : (a[key] ?? b[key])!;
    }
    return out;
  }
  return 'any';
}

function union(a: string, b: string): string {
  const types = new Set([...a.split('|'), ...b.split('|')]);
  return types.has('any') ? 'any' : [...types].sort().join('|');
}

/**
 * Where `actual` departs from `golden`, one line per difference (empty: they agree). A key added or gone
 * is a difference; so is a type that changed. Values that are null in one of the two, empty arrays and
 * "any" agree with everything (a run cannot show what is not there).
 */
export function compareShapes(actual: Shape, golden: Shape, at = '$'): string[] {
  if (actual === 'null' || golden === 'null' || actual === 'any' || golden === 'any') return [];
  if (typeof actual === 'string' && typeof golden === 'string') {
    const strip = (s: string) => s.split('|').filter((t) => t !== 'null').join('|');
    return strip(actual) === strip(golden) ? [] : [`${at}: ${actual}, golden says ${golden}`];
  }
  if (Array.isArray(actual) && Array.isArray(golden)) {
    return actual.length && golden.length ? compareShapes(actual[0]!, golden[0]!, `${at}[]`) : [];
  }
  if (isObject(actual) && isObject(golden)) {
    const keys = [...new Set([...Object.keys(actual), ...Object.keys(golden)])].sort();
    return keys.flatMap((k) => {
      if (!(k in golden)) return [`${at}.${k}: new key (not in the golden file)`];
      if (!(k in actual)) return [`${at}.${k}: missing (the golden file has it)`];
      return compareShapes(actual[k]!, golden[k]!, `${at}.${k}`);
    });
  }
  return [`${at}: ${JSON.stringify(actual)}, golden says ${JSON.stringify(golden)}`];
}

/** A command's golden document: how it was run, its exit code, its events by type and its last line. */
export interface Golden {
  command: string;
  exit_code: number | null;
  events: { [type: string]: Shape };
  result: Shape;
}

/** The golden document of one run. */
export function goldenOf(command: string, exitCode: number | null, output: JsonOutput): Golden {
  const events: { [type: string]: Shape } = {};
  for (const e of output.events) {
    const type = String(e.type);
    events[type] = type in events ? mergeShapes(events[type]!, shapeOf(e)) : shapeOf(e);
  }
  return { command, exit_code: exitCode, events: Object.fromEntries(Object.entries(events).sort()), result: shapeOf(output.last) };
}

/**
 * Differences between a run and its golden document. Every event type the run wrote must be in the golden
 * file with the same shape; golden event types the run did not write are fine (progress is throttled by
 * time, slow-model lines appear only past a second).
 */
export function compareGolden(actual: Golden, golden: Golden): string[] {
  const diffs = actual.exit_code === golden.exit_code ? [] : [`exit code ${actual.exit_code}, golden says ${golden.exit_code}`];
  for (const [type, shape] of Object.entries(actual.events)) {
    const g = golden.events[type];
    if (g === undefined) diffs.push(`event ${type}: new event type (not in the golden file)`);
    else diffs.push(...compareShapes(shape, g, `event ${type}`));
  }
  return [...diffs, ...compareShapes(actual.result, golden.result, 'result')];
}

/** Folder of the golden files. */
export const GOLDEN_DIR = path.resolve('test/golden');

/** True when this run rewrites the golden files (SYNC_LOOKUP_UPDATE_GOLDEN=1). */
export const updatingGoldens = process.env.SYNC_LOOKUP_UPDATE_GOLDEN === '1';

/**
 * Checks a run against `test/golden/<name>.json` (or writes it, under SYNC_LOOKUP_UPDATE_GOLDEN=1) and
 * returns the differences.
 */
export async function checkGolden(name: string, actual: Golden): Promise<string[]> {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  if (updatingGoldens) {
    await mkdir(GOLDEN_DIR, { recursive: true });
    await writeFile(file, `${JSON.stringify(actual, null, 2)}\n`);
    return [];
  }
  if (!existsSync(file)) return [`no golden file ${path.relative(process.cwd(), file)}; run with SYNC_LOOKUP_UPDATE_GOLDEN=1 to write it`];
  return compareGolden(actual, JSON.parse(await readFile(file, 'utf8')) as Golden);
}
