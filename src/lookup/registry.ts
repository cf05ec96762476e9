import { readFile } from 'node:fs/promises';
import { parse } from 'libpg-query';
import { z } from 'zod';
import { ConfigError } from '../db/errors.js';

/**
 * Column types the data generator fills with values. A registry column may have any PostgreSQL type (as the
 * catalog's `format_type` prints it: `character varying(255)`, `text[]`, an enum or a domain); the generator
 * leaves columns of other types NULL.
 */
export const COLUMN_TYPES = ['text', 'uuid', 'integer', 'bigint', 'numeric', 'boolean', 'date', 'timestamp', 'timestamptz', 'jsonb'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/** How the keys of a lookup row's `data` are spelled: the source column's name, or its camelCase form (a Tamanu model's attribute). */
export const KEY_STYLES = ['snake_case', 'camelCase'] as const;
export type KeyStyle = (typeof KEY_STYLES)[number];

/**
 * How `data` is built: `row_to_json` (compact, no per-argument type lookup; the builtin host) or
 * `json_build_object` (what a Tamanu server's own builder writes, so its rows and ours are byte-identical).
 */
export const DATA_BUILDERS = ['row_to_json', 'json_build_object'] as const;
export type DataBuilder = (typeof DATA_BUILDERS)[number];

/** Which way a model's records travel (kept for documentation and filtering; the lookup holds pull-side models). */
export const SYNC_DIRECTIONS = ['pull_from_central', 'push_to_central', 'bidirectional', 'push_to_central_then_delete', 'do_not_sync'] as const;
export type SyncDirection = (typeof SYNC_DIRECTIONS)[number];

/** One data column of a source table; it is copied into the lookup row's `data` json under its name. */
export interface ModelColumn {
  name: string;
  /** Any PostgreSQL type (`text`, `character varying(255)`, `numeric`, `text[]`, an enum, a domain). */
  type: string;
  /** The model whose `id` this column holds: the generator fills it with an existing row of that model. */
  references?: string;
  /** Generator hint for text columns: typical length in characters (default 24). */
  textLength?: number;
  /** Generator hint: pick one of these values (text columns). */
  values?: string[];
  /** Generator hint: fraction of rows where the value is NULL (default 0). */
  nullFraction?: number;
}

/**
 * A join that derives filter columns, always a LEFT JOIN to one row (join on the joined table's key):
 * `LEFT JOIN <table> AS <alias> ON <on>`. Later joins may refer to earlier aliases.
 */
export interface ModelJoin {
  table: string;
  alias: string;
  /** SQL boolean expression over `s` (the source row) and earlier aliases, e.g. `e.id = s.encounter_id`. */
  on: string;
}

/**
 * A lookup-tracked model. `name` is at once the record type, the source table's name and the
 * `record_type` of its lookup rows. Filter columns are SQL expressions over the source row, aliased `s`,
 * and the aliases of `joins`; `null` means the column is NULL for every row.
 *
 * @example
 * const notes: ModelDefinition = {
 *   name: 'notes', direction: 'bidirectional',
 *   columns: [{ name: 'encounter_id', type: 'uuid', references: 'encounters' }, { name: 'content', type: 'text' }],
 *   joins: [{ table: 'encounters', alias: 'e', on: 'e.id = s.encounter_id' }],
 *   patientId: 'e.patient_id', encounterId: 's.encounter_id', facilityId: null, isLabRequest: 'false',
 * };
 */
export interface ModelDefinition {
  name: string;
  direction: SyncDirection;
  /** Data columns besides the standard ones every source table has (`id`, `created_at`, `updated_at`, `deleted_at`). */
  columns: ModelColumn[];
  joins?: ModelJoin[];
  patientId: string | null;
  encounterId: string | null;
  facilityId: string | null;
  /** SQL boolean expression; `'false'` for most models. */
  isLabRequest: string;
  /** SQL expression of the lookup row's `record_id` (cast to text); default `s.id`. A composite key: `s.patient_id || ';' || s.program_registry_id`. */
  recordId?: string;
  /** Key spelling in `data`; default from the host (builtin: `snake_case`, tamanu: `camelCase`). */
  keyStyle?: KeyStyle;
  /** Source columns left out of `data` (by column name); default from the host (tamanu: the timestamps and `updated_at_sync_tick`). */
  excludeFromData?: string[];
  /** Extra `data` attributes computed by SQL over `s` and the joins' aliases, in this order after the columns. */
  computed?: { name: string; sql: string }[];
  /** How `data` is built; default from the host. */
  dataBuilder?: DataBuilder;
  /** SQL expression of `pushed_by_device_id`; default from the host (builtin `s.pushed_by_device_id`, tamanu a join on `sync_device_ticks`). `null`: always NULL. */
  pushedByDeviceId?: string | null;
  /** SQL expression of `updated_at_by_field_sum` (models with field-level merging); default NULL. */
  updatedAtByFieldSum?: string | null;
  /** SQL boolean expression: only source rows where it holds have lookup rows. */
  filter?: string;
  /**
   * A model that no longer syncs (the seed's `encounter_medications`): its lookup rows are leftovers that
   * `purge` removes without a rebuild (ORIGIN.md: a legacy type is deleted without queueing it). Every other
   * registered model is live, and purging it needs `--then-rebuild` or `--force`.
   */
  legacy?: boolean;
  /** Generator hint: this model's share of lookup rows (relative weight). */
  share?: number;
  /** Notes for people (a drafted registry lists its guesses here); the engine ignores them. */
  review?: string[];
}

/** Columns every source table has, in this order, before the model's own columns. */
export const STANDARD_SOURCE_COLUMNS = ['id', 'created_at', 'updated_at', 'deleted_at', 'updated_at_sync_tick', 'pushed_by_device_id'] as const;

/**
 * The models that feed the lookup, by name.
 *
 * @example
 * const registry = builtinRegistry();
 * registry.get('notes').patientId // 'e.patient_id'
 * registry.select(['notes', 'nope']) // throws ConfigError naming "nope" and listing the known names
 */
export class ModelRegistry {
  readonly #models = new Map<string, ModelDefinition>();

  constructor(models: readonly ModelDefinition[]) {
    for (const m of models) {
      if (this.#models.has(m.name)) throw new ConfigError('duplicate_model', `model "${m.name}" is defined twice`, { model: m.name });
      this.#models.set(m.name, m);
    }
  }

  /** Model names in definition order (parents before children in the built-in registry). */
  get names(): string[] {
    return [...this.#models.keys()];
  }

  get models(): ModelDefinition[] {
    return [...this.#models.values()];
  }

  has(name: string): boolean {
    return this.#models.has(name);
  }

  /** The model called `name`; ConfigError naming it and the known names when there is none. */
  get(name: string): ModelDefinition {
    const m = this.#models.get(name);
    if (!m) throw unknownModels([name], this.names);
    return m;
  }

  /** The named models (all when `names` is undefined or empty); every unknown name reported at once. */
  select(names?: readonly string[]): ModelDefinition[] {
    if (!names || names.length === 0) return this.models;
    const unknown = names.filter((n) => !this.#models.has(n));
    if (unknown.length) throw unknownModels(unknown, this.names);
    return [...new Set(names)].map((n) => this.#models.get(n)!);
  }
}

function unknownModels(unknown: string[], known: string[]): ConfigError {
  return new ConfigError('unknown_model',
    `unknown model${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')}; known models: ${known.join(', ')}`,
    { unknown, known });
}

// ---------------------------------------------------------------------------------------------------
// Built-in registry: a health-records system's syncable models.

const uuid = (name: string, references?: string, nullFraction?: number): ModelColumn =>
  ({ name, type: 'uuid', ...(references ? { references } : {}), ...(nullFraction ? { nullFraction } : {}) });
const text = (name: string, textLength = 24, nullFraction?: number): ModelColumn =>
  ({ name, type: 'text', textLength, ...(nullFraction ? { nullFraction } : {}) });
const pick = (name: string, values: string[]): ModelColumn => ({ name, type: 'text', values });
const col = (name: string, type: ColumnType, nullFraction?: number): ModelColumn =>
  ({ name, type, ...(nullFraction ? { nullFraction } : {}) });

const viaEncounter = (fk = 's.encounter_id'): Pick<ModelDefinition, 'joins' | 'patientId' | 'encounterId'> =>
  ({ joins: [{ table: 'encounters', alias: 'e', on: `e.id = ${fk}` }], patientId: 'e.patient_id', encounterId: fk });

const BUILTIN_MODELS: ModelDefinition[] = [
  { name: 'facilities', direction: 'pull_from_central', share: 0.0005, patientId: null, encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [text('code', 8), text('name', 40), pick('type', ['hospital', 'clinic', 'health_post']), text('address', 120)] },
  { name: 'users', direction: 'pull_from_central', share: 0.001, patientId: null, encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [text('email', 30), text('display_name', 30), pick('role', ['practitioner', 'admin', 'reception', 'lab']), text('phone', 14, 0.3)] },
  { name: 'reference_data', direction: 'pull_from_central', share: 0.004, patientId: null, encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [pick('type', ['diagnosis', 'drug', 'village', 'labTestCategory', 'allergy', 'procedureType']), text('code', 10), text('name', 60),
      pick('visibility_status', ['current', 'historical'])] },
  { name: 'settings', direction: 'pull_from_central', share: 0.0005, patientId: null, encounterId: null, facilityId: 's.facility_id', isLabRequest: 'false',
    columns: [uuid('facility_id', 'facilities', 0.5), text('key', 40), col('value', 'jsonb'), pick('scope', ['global', 'facility', 'central'])] },
  { name: 'patients', direction: 'bidirectional', share: 0.04, patientId: 's.id', encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [text('display_id', 10), text('first_name', 12), text('middle_name', 12, 0.6), text('last_name', 14), col('date_of_birth', 'date'),
      pick('sex', ['female', 'male', 'other']), uuid('village_id', 'reference_data', 0.2), text('email', 30, 0.7), text('notes', 140, 0.5)] },
  { name: 'encounters', direction: 'bidirectional', share: 0.085, encounterId: 's.id', patientId: 's.patient_id', facilityId: 's.facility_id', isLabRequest: 'false',
    columns: [uuid('patient_id', 'patients'), uuid('facility_id', 'facilities'), uuid('examiner_id', 'users'),
      pick('encounter_type', ['admission', 'clinic', 'triage', 'observation', 'emergency', 'surveyResponse']),
      col('start_date', 'timestamp'), col('end_date', 'timestamp', 0.4), text('reason_for_encounter', 130, 0.2), text('device_id', 20, 0.5)] },
  { name: 'encounter_history', direction: 'bidirectional', share: 0.09, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), uuid('examiner_id', 'users'), pick('encounter_type', ['admission', 'clinic', 'triage', 'observation']),
      col('date', 'timestamp'), pick('change_type', ['encounter_type', 'location', 'department', 'examiner']), text('actor_note', 190, 0.3)] },
  { name: 'notes', direction: 'bidirectional', share: 0.12, ...viaEncounter('s.record_id'), facilityId: null, isLabRequest: 'false',
    columns: [uuid('record_id', 'encounters'), pick('record_type', ['Encounter']), pick('note_type', ['treatmentPlan', 'admission', 'other', 'nursing']),
      col('date', 'timestamp'), uuid('author_id', 'users'), text('content', 250)] },
  { name: 'vitals', direction: 'bidirectional', share: 0.10, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), col('date_recorded', 'timestamp'), col('temperature', 'numeric'), col('heart_rate', 'integer'),
      col('respiratory_rate', 'integer'), col('sbp', 'integer'), col('dbp', 'integer'), col('spo2', 'integer'), col('weight', 'numeric', 0.3),
      text('comment', 150, 0.5)] },
  { name: 'survey_responses', direction: 'bidirectional', share: 0.04, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), text('survey_id', 20), col('start_time', 'timestamp'), col('end_time', 'timestamp'),
      col('result', 'numeric', 0.5), text('result_text', 60, 0.5), uuid('user_id', 'users')] },
  { name: 'survey_response_answers', direction: 'bidirectional', share: 0.22,
    joins: [{ table: 'survey_responses', alias: 'sr', on: 'sr.id = s.response_id' }, { table: 'encounters', alias: 'e', on: 'e.id = sr.encounter_id' }],
    patientId: 'e.patient_id', encounterId: 'sr.encounter_id', facilityId: null, isLabRequest: 'false',
    columns: [uuid('response_id', 'survey_responses'), text('data_element_id', 24), text('name', 40), text('body', 230)] },
  { name: 'vital_logs', direction: 'bidirectional', share: 0.12,
    joins: [{ table: 'vitals', alias: 'v', on: 'v.id = s.vital_id' }, { table: 'encounters', alias: 'e', on: 'e.id = v.encounter_id' }],
    patientId: 'e.patient_id', encounterId: 'v.encounter_id', facilityId: null, isLabRequest: 'false',
    columns: [uuid('vital_id', 'vitals'), col('date', 'timestamp'), text('previous_value', 12, 0.5), text('new_value', 12), text('reason_for_change', 170, 0.3),
      uuid('recorded_by_id', 'users')] },
  { name: 'lab_requests', direction: 'bidirectional', share: 0.03, ...viaEncounter(), facilityId: null, isLabRequest: 'true',
    columns: [uuid('encounter_id', 'encounters'), text('display_id', 10), pick('status', ['reception_pending', 'results_pending', 'verified', 'published']),
      col('requested_date', 'timestamp'), uuid('requested_by_id', 'users'), pick('priority', ['routine', 'urgent']), text('note', 200, 0.4)] },
  { name: 'lab_tests', direction: 'bidirectional', share: 0.07,
    joins: [{ table: 'lab_requests', alias: 'lr', on: 'lr.id = s.lab_request_id' }, { table: 'encounters', alias: 'e', on: 'e.id = lr.encounter_id' }],
    patientId: 'e.patient_id', encounterId: 'lr.encounter_id', facilityId: null, isLabRequest: 'true',
    columns: [uuid('lab_request_id', 'lab_requests'), uuid('lab_test_type_id', 'reference_data'), col('date', 'timestamp'), text('result', 40, 0.3),
      pick('status', ['reception_pending', 'results_pending', 'verified']), text('laboratory_officer', 30, 0.5), text('verification', 170, 0.4)] },
  { name: 'administered_vaccines', direction: 'bidirectional', share: 0.03, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), text('batch', 12), pick('status', ['GIVEN', 'NOT_GIVEN', 'RECORDED_IN_ERROR']), col('date', 'timestamp'),
      pick('injection_site', ['left_arm', 'right_arm', 'left_thigh', 'right_thigh', 'oral']), text('given_by', 30), text('reason', 180, 0.6)] },
  { name: 'prescriptions', direction: 'bidirectional', share: 0.025, patientId: 's.patient_id', encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [uuid('patient_id', 'patients'), uuid('medication_id', 'reference_data'), uuid('prescriber_id', 'users'), text('dose_amount', 6),
      pick('units', ['mg', 'ml', 'tablet', 'drop']), pick('frequency', ['daily', 'twice daily', 'as needed']), pick('route', ['oral', 'iv', 'topical']),
      col('start_date', 'timestamp'), col('end_date', 'timestamp', 0.5), text('indication', 80, 0.3), text('notes', 140, 0.5)] },
  { name: 'encounter_prescriptions', direction: 'bidirectional', share: 0.025, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), uuid('prescription_id', 'prescriptions'), col('is_selected_for_discharge', 'boolean'), text('note', 260, 0.3)] },
  { name: 'encounter_medications', direction: 'bidirectional', share: 0.01, legacy: true, ...viaEncounter(), facilityId: null, isLabRequest: 'false',
    columns: [uuid('encounter_id', 'encounters'), uuid('medication_id', 'reference_data'), col('date', 'timestamp'), text('prescription', 60),
      text('note', 200, 0.4), col('qty_morning', 'integer'), col('qty_evening', 'integer'), col('discontinued', 'boolean')] },
  { name: 'patient_program_registrations', direction: 'bidirectional', share: 0.01, patientId: 's.patient_id', encounterId: null,
    facilityId: 's.registering_facility_id', isLabRequest: 'false',
    columns: [uuid('patient_id', 'patients'), text('program_registry_id', 20), uuid('registering_facility_id', 'facilities'),
      pick('registration_status', ['active', 'inactive', 'recordedInError']), col('date', 'timestamp'), uuid('clinician_id', 'users'), text('notes', 180, 0.4)] },
  { name: 'patient_program_registration_conditions', direction: 'bidirectional', share: 0.003,
    joins: [{ table: 'patient_program_registrations', alias: 'ppr', on: 'ppr.id = s.patient_program_registration_id' }],
    patientId: 'ppr.patient_id', encounterId: null, facilityId: null, isLabRequest: 'false',
    columns: [uuid('patient_program_registration_id', 'patient_program_registrations'), uuid('condition_id', 'reference_data'),
      pick('condition_category', ['confirmed', 'suspected', 'disproven']), col('date', 'timestamp'), text('reason_for_change', 200, 0.5)] },
];

/**
 * The ~20 models of a health-records system that feed `sync_lookup` by default.
 *
 * @example
 * builtinRegistry().names.length // 20
 */
export function builtinRegistry(): ModelRegistry {
  return new ModelRegistry(structuredClone(BUILTIN_MODELS));
}

// ---------------------------------------------------------------------------------------------------
// Registry files.

const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/,
  'must be a lower-case SQL identifier (letters, digits, _; at most 63 characters)');

const columnSchema = z.object({
  name: identifier,
  type: z.string().min(1).max(200),
  references: identifier.optional(),
  textLength: z.number().int().positive().max(100_000).optional(),
  values: z.array(z.string()).min(1).optional(),
  nullFraction: z.number().min(0).max(1).optional(),
}).strict();

const expression = z.string().min(1);

const modelSchema = z.object({
  name: identifier,
  direction: z.enum(SYNC_DIRECTIONS),
  columns: z.array(columnSchema).max(40, 'at most 40 data columns per model'),
  joins: z.array(z.object({ table: identifier, alias: identifier, on: expression }).strict()).optional(),
  patientId: expression.nullable(),
  encounterId: expression.nullable(),
  facilityId: expression.nullable(),
  isLabRequest: expression.default('false'),
  share: z.number().positive().optional(),
  recordId: expression.optional(),
  keyStyle: z.enum(KEY_STYLES).optional(),
  excludeFromData: z.array(identifier).optional(),
  computed: z.array(z.object({ name: z.string().min(1).max(63), sql: expression }).strict()).optional(),
  dataBuilder: z.enum(DATA_BUILDERS).optional(),
  pushedByDeviceId: expression.nullable().optional(),
  updatedAtByFieldSum: expression.nullable().optional(),
  filter: expression.optional(),
  legacy: z.boolean().optional(),
  review: z.array(z.string()).optional(),
}).strict();

/** The schema of a registry file: `{ "models": [ModelDefinition, …] }`. */
export const registryFileSchema = z.object({ models: z.array(z.unknown()).min(1, 'must list at least one model') }).strict();

/**
 * Validates model definitions (shape, reserved and duplicate column names, references, aliases, and
 * that every SQL fragment parses as exactly one expression with PostgreSQL's parser), collecting every
 * problem and throwing one ConfigError that names each bad entry.
 *
 * @example
 * const registry = await validateModels([{ name: 'notes', … }], 'models.json');
 */
export async function validateModels(input: unknown[], source = 'registry'): Promise<ModelRegistry> {
  const problems: string[] = [];
  const models: ModelDefinition[] = [];
  const malformed: { label: string; raw: unknown }[] = [];
  input.forEach((raw, i) => {
    const label = `models[${i}]${typeof (raw as { name?: unknown })?.name === 'string' ? ` (${(raw as { name: string }).name})` : ''}`;
    const parsed = modelSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`${label}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
      malformed.push({ label, raw });
      return;
    }
    const m = parsed.data as ModelDefinition;
    for (const key of Object.keys(m) as (keyof ModelDefinition)[]) if (m[key] === undefined) delete m[key];
    const seen = new Set<string>(STANDARD_SOURCE_COLUMNS);
    for (const c of m.columns) {
      if (seen.has(c.name)) problems.push(`${label}.columns: "${c.name}" is ${STANDARD_SOURCE_COLUMNS.includes(c.name as never) ? 'a standard column every source table has' : 'defined twice'}`);
      seen.add(c.name);
    }
    const aliases = new Set(['s']);
    for (const j of m.joins ?? []) {
      if (aliases.has(j.alias)) problems.push(`${label}.joins: alias "${j.alias}" is used twice (s is the source row)`);
      aliases.add(j.alias);
    }
    models.push(m);
  });
  const names = new Set<string>();
  for (const m of models) {
    if (names.has(m.name)) problems.push(`model "${m.name}" is defined twice`);
    names.add(m.name);
  }
  for (const m of models) {
    for (const c of m.columns) {
      if (c.references && !names.has(c.references)) problems.push(`${m.name}.columns.${c.name}: references unknown model "${c.references}"`);
    }
    for (const [key, sql] of sqlFragments(m)) {
      const problem = await expressionProblem(sql);
      if (problem) problems.push(`${m.name}.${key}: ${problem}`);
    }
    for (const c of m.columns) {
      const problem = await typeProblem(c.type);
      if (problem) problems.push(`${m.name}.columns.${c.name}: ${problem}`);
    }
  }
  // An entry with a structural error still has its SQL fragments checked: every problem is named at once.
  for (const { label, raw } of malformed) {
    for (const [key, sql] of sqlFragments(raw)) {
      const problem = await expressionProblem(sql);
      if (problem) problems.push(`${label}.${key}: ${problem}`);
    }
  }
  if (problems.length) {
    throw new ConfigError('invalid_registry', `invalid model registry ${source}:\n  ${problems.join('\n  ')}`, { source, problems });
  }
  return new ModelRegistry(models);
}

/** Why `type` is not a PostgreSQL type name (checked with PostgreSQL's parser), or undefined when it is. */
async function typeProblem(type: string): Promise<string | undefined> {
  const bad = `not a PostgreSQL type name: ${JSON.stringify(type)}`;
  if (await expressionProblem(`NULL::${type}`)) return bad;
  const { stmts } = await parse(`SELECT (NULL::${type})`);
  const target = stmts?.[0]?.stmt && 'SelectStmt' in stmts[0].stmt ? stmts[0].stmt.SelectStmt.targetList?.[0] : undefined;
  const val = target && 'ResTarget' in target ? target.ResTarget.val : undefined;
  return val && 'TypeCast' in val ? undefined : bad;
}

/** The SQL fragments of a model entry (valid or not: those that are at least non-empty strings), by key. */
function sqlFragments(entry: unknown): [string, string][] {
  if (typeof entry !== 'object' || entry === null) return [];
  const r = entry as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? (v as unknown[]) : []);
  return [
    ...(['patientId', 'encounterId', 'facilityId', 'isLabRequest', 'recordId', 'pushedByDeviceId', 'updatedAtByFieldSum', 'filter'] as const)
      .map((k): [string, unknown] => [k, r[k]]),
    ...list(r.joins).map((j, k): [string, unknown] => [`joins[${k}].on`, (j as { on?: unknown } | null)?.on]),
    ...list(r.computed).map((c, k): [string, unknown] => [`computed[${k}].sql`, (c as { sql?: unknown } | null)?.sql]),
  ].filter((f): f is [string, string] => typeof f[1] === 'string' && f[1] !== '');
}

/** Why `sql` is not exactly one scalar SQL expression, or undefined when it is. */
async function expressionProblem(sql: string): Promise<string | undefined> {
  let result: Awaited<ReturnType<typeof parse>>;
  try {
    result = await parse(`SELECT (${sql})`);
  } catch (err) {
    return `not a valid SQL expression: ${(err as Error).message} in ${JSON.stringify(sql)}`;
  }
  const stmts = result.stmts ?? [];
  const select = stmts[0]?.stmt && 'SelectStmt' in stmts[0].stmt ? stmts[0].stmt.SelectStmt : undefined;
  if (stmts.length !== 1 || !select || (select.targetList?.length ?? 0) !== 1 || select.fromClause || select.whereClause ||
      select.groupClause || select.havingClause || select.sortClause || select.limitCount || select.op !== 'SETOP_NONE') {
    return `must be exactly one SQL expression, got ${JSON.stringify(sql)}`;
  }
  return undefined;
}

/**
 * Reads and validates a registry file (JSON: `{ "models": [...] }`); every invalid entry is named in one
 * ConfigError (exit 2).
 *
 * @example
 * const registry = await loadRegistry('models.json');
 */
export async function loadRegistry(file: string): Promise<ModelRegistry> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('registry_unreadable', `cannot read model registry ${file}: ${(err as Error).message}`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('invalid_registry', `model registry ${file} is not valid JSON: ${(err as Error).message}`, { file });
  }
  const top = registryFileSchema.safeParse(json);
  if (!top.success) {
    const problems = top.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    const models = (json as { models?: unknown } | null)?.models;
    if (Array.isArray(models) && models.length) {
      await validateModels(models, file).catch((err: unknown) => {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(...(err.details.problems as string[]));
      });
    }
    throw new ConfigError('invalid_registry', `invalid model registry ${file}:\n  ${problems.join('\n  ')}`, { file, problems });
  }
  return validateModels(top.data.models, file);
}

/**
 * The registry a command uses: the file's when given, else the built-in one.
 *
 * @example
 * const registry = await resolveRegistry(opts.models);
 */
export async function resolveRegistry(file?: string): Promise<ModelRegistry> {
  return file ? loadRegistry(file) : builtinRegistry();
}
