/**
 * The JSON documents of the diagnostics commands use snake_case keys (`estimated_bytes`,
 * `baseline_plan`), while the library's TypeScript objects use camelCase: this converts one to the other
 * for output. Keys that are not camelCase identifiers (EXPLAIN's "Node Type") are left alone.
 *
 * @example
 * snakeCaseKeys({ estimatedBytes: 1, findings: [{ rowsRead: 2 }] }) // { estimated_bytes: 1, findings: [{ rows_read: 2 }] }
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const snake = /^[a-z][A-Za-z0-9]*$/.test(key) ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key;
    out[snake] = snakeCaseKeys(v);
  }
  return out;
}
