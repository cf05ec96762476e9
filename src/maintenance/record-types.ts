import type pg from 'pg';
import { ConfigError } from '../db/errors.js';
import { LOOKUP_TABLE, RECORD_TYPE_INDEX } from '../schema/sync-lookup.js';

/**
 * Validates record-type names given by a user: strings of 1–255 characters without NUL, each taken once
 * (a type named twice is simply taken once). Every problem is named in one ConfigError.
 *
 * @example
 * normalizeTypes(['notes', 'notes', 'vitals']) // ['notes', 'vitals']
 */
export function normalizeTypes(types: readonly unknown[]): string[] {
  const problems: string[] = [];
  const out: string[] = [];
  for (const t of types) {
    if (typeof t !== 'string') { problems.push(`${JSON.stringify(t)} is not a string`); continue; }
    if (t.length === 0) { problems.push('an empty record type'); continue; }
    if (t.length > 255) { problems.push(`${JSON.stringify(t.slice(0, 40))}… is longer than 255 characters`); continue; }
    if (t.includes('\u0000')) { problems.push(`${JSON.stringify(t)} contains a NUL character`); continue; }
    if (!out.includes(t)) out.push(t);
  }
  if (problems.length) throw new ConfigError('invalid_record_type', `invalid record type: ${problems.join('; ')}`, { problems });
  if (!out.length) throw new ConfigError('no_record_types', 'name at least one record type');
  return out;
}

/** Throws a ConfigError naming unknown types and listing the known ones. */
export function requireKnown(types: string[], known: Iterable<string>, what = 'record type'): void {
  const set = new Set(known);
  const unknown = types.filter((t) => !set.has(t));
  if (!unknown.length) return;
  const list = [...set].sort();
  const hints = unknown.map((t) => ({ type: t, closest: closest(t, list) })).filter((h) => h.closest.length);
  const hint = hints.map((h) => `${JSON.stringify(h.type)}: did you mean ${h.closest.map((c) => JSON.stringify(c)).join(' or ')}?`).join('; ');
  throw new ConfigError('unknown_record_type',
    `unknown ${what}${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => JSON.stringify(t)).join(', ')}` +
    `${hint ? ` (${hint})` : ''}; known: ${list.join(', ') || '(none)'}; with --if-present an absent type is skipped`,
    { unknown, known: list, closest: Object.fromEntries(hints.map((h) => [h.type, h.closest])) });
}

/** The known names nearest to `name` by edit distance (at most a third of its length away), best first, up to 3. */
export function closest(name: string, known: readonly string[]): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  return known.map((k) => ({ k, d: editDistance(name, k) })).filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k)).slice(0, 3).map((x) => x.k);
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The state of the record_type-led index that every record-type operation relies on. */
export interface RecordTypeIndexState {
  /** A valid index whose leading column is record_type (ours or a site's own). */
  valid: string | null;
  /** INVALID leftovers of failed concurrent builds. */
  invalid: string[];
}

/**
 * Finds an index on `sync_lookup` that leads with `record_type`, valid or not.
 *
 * @example
 * const { valid } = await recordTypeIndexState(client);
 */
export async function recordTypeIndexState(client: pg.ClientBase): Promise<RecordTypeIndexState> {
  const { rows } = await client.query<{ name: string; valid: boolean }>(
    `select c.relname as name, i.indisvalid as valid
       from pg_index i join pg_class c on c.oid = i.indexrelid
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = to_regclass($1) and a.attname = 'record_type' and i.indpred is null
      order by (c.relname = $2) desc, c.relname`, [LOOKUP_TABLE, RECORD_TYPE_INDEX.name]);
  return { valid: rows.find((r) => r.valid)?.name ?? null, invalid: rows.filter((r) => !r.valid).map((r) => r.name) };
}

/**
 * Refuses to work without a valid record_type-led index: without one, every statement that touches one
 * type reads the whole table (or the whole unique index), which is the seed's problem.
 */
export async function requireRecordTypeIndex(client: pg.ClientBase): Promise<string> {
  const { rows: [t] } = await client.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`, [LOOKUP_TABLE]);
  if (!t?.ok) throw new ConfigError('no_lookup_table', `table ${LOOKUP_TABLE} does not exist; run \`sync-lookup migrate\` first`);
  const state = await recordTypeIndexState(client);
  if (state.valid) return state.valid;
  throw new ConfigError('record_type_index_missing',
    state.invalid.length
      ? `the record_type index ${state.invalid.join(', ')} is INVALID (left by a failed concurrent build); ` +
        'run `sync-lookup migrate` to rebuild it: without it every batch would read the whole table'
      : `${LOOKUP_TABLE} has no index leading with record_type; run \`sync-lookup migrate\` to add ` +
        `${RECORD_TYPE_INDEX.name} (built concurrently): without it every batch would read the whole table`,
    { invalid: state.invalid });
}
