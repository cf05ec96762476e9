import type pg from 'pg';
import { foreignKeys, schemaColumns, type CatalogColumn } from '../db/catalog.js';
import { LOOKUP_TABLE, presentTypes } from '../schema/sync-lookup.js';
import type { Host } from './host.js';
import type { KeyStyle, ModelDefinition } from './registry.js';

/*
 * `models init --from-db`: a registry drafted from a live database, for a person to review. The tables are the
 * lookup-tracked ones (record types present in sync_lookup that have a table; on an empty lookup, every
 * table with `updated_at_sync_tick`); the columns and their types come from the catalog; the filter columns
 * are guessed from column names and foreign keys; the `data` key style and left-out attributes from a sample
 * of the existing rows. Every guess is written into the model's `review` list.
 */

/** Columns every source table has, which `data` and the registry's `columns` leave to the conventions. */
const STANDARD = new Set(['id', 'created_at', 'updated_at', 'deleted_at', 'updated_at_sync_tick', 'pushed_by_device_id']);

/** A drafted model: a registry entry plus the guesses to review. */
export type DraftModel = ModelDefinition & { review: string[] };

/** What `draftRegistry` found. */
export interface RegistryDraft {
  models: DraftModel[];
  /** Record types in sync_lookup without a table of that name (legacy types, or tables under other names). */
  withoutTable: string[];
}

/**
 * Drafts a registry from the database: lookup-tracked tables, their columns, linkage guessed from foreign
 * keys, key style from existing rows. Every guess is listed in the model's `review`.
 *
 * @example
 * const draft = await draftRegistry(client, tamanuHost);
 * await writeFile('models.json', JSON.stringify({ models: draft.models }, null, 2));
 */
export async function draftRegistry(client: pg.ClientBase, host: Host): Promise<RegistryDraft> {
  const present = await presentTypes(client).catch(() => [] as string[]);
  const tables = present.length ? present : await tickedTables(client);
  const columns = await schemaColumns(client, 'public', tables);
  const models: DraftModel[] = [];
  for (const name of tables) {
    const cols = columns.get(name);
    if (!cols || !cols.some((c) => c.name === 'id')) continue;
    models.push(await draftModel(client, host, name, cols, present.length > 0));
  }
  return { models, withoutTable: present.filter((t) => !models.some((m) => m.name === t)) };
}

async function tickedTables(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'updated_at_sync_tick' AND NOT a.attisdropped
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE $1
      ORDER BY c.relname`, [`${LOOKUP_TABLE}%`]);
  return rows.map((r) => r.name);
}

async function draftModel(client: pg.ClientBase, host: Host, name: string, cols: CatalogColumn[], hasRows: boolean): Promise<DraftModel> {
  const review: string[] = [];
  const own = cols.filter((c) => !STANDARD.has(c.name) && !c.generated);
  const links = await linkage(client, host, name, own.map((c) => c.name), review);
  const model: DraftModel = {
    name, direction: 'bidirectional', columns: own.map((c) => ({ name: c.name, type: c.type })), ...links, review,
  };
  review.push('direction: not read from the database (documentation only)');
  if (hasRows) Object.assign(model, await dataShape(client, host, model, review));
  if (!cols.some((c) => c.name === 'pushed_by_device_id') && host.name === 'builtin') {
    model.pushedByDeviceId = null;
    review.push('pushedByDeviceId: the table has no pushed_by_device_id column: NULL');
  }
  return model;
}

/** Filter columns guessed from column names and foreign keys. */
async function linkage(client: pg.ClientBase, host: Host, name: string, columns: string[], review: string[]): Promise<Pick<ModelDefinition, 'patientId' | 'encounterId' | 'facilityId' | 'isLabRequest' | 'joins'>> {
  const fks = await foreignKeys(client, { schema: 'public', name });
  const refersTo = (col: string, table: string) => columns.includes(col) || fks.some((f) => f.column === col && f.references.name === table);
  const out: Pick<ModelDefinition, 'patientId' | 'encounterId' | 'facilityId' | 'isLabRequest' | 'joins'> = {
    patientId: null, encounterId: null, facilityId: null, isLabRequest: name.startsWith('lab_') ? 'true' : 'false',
  };
  if (name === 'patients') {
    out.patientId = host.name === 'tamanu' ? null : 's.id';
    review.push(`patientId: ${out.patientId ?? 'NULL'} (${host.name === 'tamanu' ? 'a Tamanu server sends every patient to every facility' : 'the patient itself'})`);
  } else if (refersTo('patient_id', 'patients')) {
    out.patientId = 's.patient_id';
    review.push('patientId: guessed from column patient_id');
  } else if (refersTo('encounter_id', 'encounters')) {
    out.joins = [{ table: 'encounters', alias: 'e', on: 'e.id = s.encounter_id' }];
    out.patientId = 'e.patient_id';
    review.push('patientId: guessed through encounter_id → encounters.patient_id');
  } else {
    review.push('patientId: no patient link found: NULL (every facility gets every row)');
  }
  if (name === 'encounters') out.encounterId = 's.id';
  else if (columns.includes('encounter_id')) out.encounterId = 's.encounter_id';
  if (out.encounterId) review.push(`encounterId: guessed ${out.encounterId}`);
  if (columns.includes('facility_id') && host.name === 'builtin') out.facilityId = 's.facility_id';
  review.push(`facilityId: ${out.facilityId ?? 'NULL'}${host.name === 'tamanu' ? ' (a Tamanu server sets it only for records of a sensitive facility: write that rule if this model has one)' : ''}`);
  if (out.isLabRequest === 'true') review.push('isLabRequest: true, guessed from the table name');
  return out;
}

/** Key style and left-out attributes of `data`, read from a sample of existing rows where they differ from the host's. */
async function dataShape(client: pg.ClientBase, host: Host, model: DraftModel, review: string[]): Promise<Partial<ModelDefinition>> {
  const { rows } = await client.query<{ key: string }>(
    `SELECT DISTINCT k AS key FROM (SELECT data FROM ${LOOKUP_TABLE} WHERE record_type = $1 AND data IS NOT NULL LIMIT 50) d, jsonb_object_keys(d.data::jsonb) k`,
    [model.name]);
  if (!rows.length) return {};
  const keys = new Set(rows.map((r) => r.key));
  const style: KeyStyle = [...keys].some((k) => /[A-Z]/.test(k)) ? 'camelCase' : 'snake_case';
  const spelled = (c: string) => (style === 'camelCase' ? c.replace(/_+([a-z0-9])/g, (_, x: string) => x.toUpperCase()) : c);
  const conventions = host.conventions({ ...model });
  const out: Partial<ModelDefinition> = {};
  if (style !== conventions.keyStyle) out.keyStyle = style;
  const all = ['created_at', 'updated_at', 'deleted_at', ...model.columns.map((c) => c.name)];
  const missing = all.filter((c) => !keys.has(spelled(c)));
  const expectedMissing = new Set(conventions.excludeFromData ?? []);
  if (missing.some((c) => !expectedMissing.has(c)) || [...expectedMissing].some((c) => all.includes(c) && keys.has(spelled(c)))) {
    out.excludeFromData = missing;
  }
  review.push(`data: ${style} keys${missing.length ? `, without ${missing.join(', ')}` : ''} (read from ${rows.length} keys of up to 50 existing rows)`);
  const extra = [...keys].filter((k) => k !== 'id' && !all.some((c) => spelled(c) === k));
  if (extra.length) review.push(`data: existing rows have keys no column gives (${extra.join(', ')}): add them as computed attributes`);
  return out;
}
