/**
 * The one place where the library's camelCase objects become the CLI's snake_case JSON (a contract, see
 * the README's "JSON output"). `Output` applies it to every result, event and error it writes.
 *
 * The rule:
 * - a key that is a camelCase identifier (`sinceTick`, `xactAgeS`) becomes snake_case (`since_tick`,
 *   `xact_age_s`); keys that are already snake_case, or not identifiers at all (EXPLAIN's `"Node Type"`,
 *   a resume key such as `firstTick:notes`), are kept;
 * - the objects below are keyed by data, not by field names: their keys are kept as they are (their values
 *   are still converted). Record types and setting names must reach the reader exactly as PostgreSQL and
 *   the registry spell them.
 * - record ids and lookup rows are never keys here: `pull --ndjson` streams rows as the table holds them,
 *   outside this converter.
 */
export const DATA_KEYED_OBJECTS: ReadonlySet<string> = new Set([
  // `pull`: rows per record type.
  'types',
  // `bench`, `demo`: server settings by name (`DateStyle`, `shared_buffers`).
  'postgres_settings',
]);

/** `sinceTick` → `since_tick`; a key that is not a camelCase identifier is returned unchanged. */
export function snakeCaseKey(key: string): string {
  return /^[a-z][A-Za-z0-9]*$/.test(key) ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key;
}

/**
 * Converts every key of `value` (deep, arrays included) to snake_case by the rule above; values are kept.
 * Objects with a `toJSON` (dates) are converted to what they serialise to first.
 *
 * @example
 * toSnakeCaseJson({ sinceTick: 3, types: { labRequests: 2 } }) // { since_tick: 3, types: { labRequests: 2 } }
 */
export function toSnakeCaseJson(value: unknown, keepKeys = false): unknown {
  if (Array.isArray(value)) return value.map((v) => toSnakeCaseJson(v));
  if (value === null || typeof value !== 'object') return value;
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return toSnakeCaseJson(withToJson.toJSON(), keepKeys);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = keepKeys ? key : snakeCaseKey(key);
    out[name] = toSnakeCaseJson(v, !keepKeys && DATA_KEYED_OBJECTS.has(name));
  }
  return out;
}
