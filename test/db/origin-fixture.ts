import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { loadRegistry, type ModelRegistry } from '../../src/lookup/registry.js';
import type { TestDatabase } from '../helpers/db.js';

/*
 * An origin-shaped database (../../shared/ORIGIN.md): the schema of test/fixtures/origin/schema.sql, source
 * rows in the deployment's shapes, and the lookup rows its own builder would have written (camelCase keys, no
 * timestamps, json_build_object, device ids joined from sync_device_ticks), published up to end tick 40 003,
 * with the clock fact ahead of it. Every figure below is deterministic.
 */

const dir = fileURLToPath(new URL('../fixtures/origin/', import.meta.url));

/** The registry a user keeps for the fixture (what `models init --from-db` drafts, reviewed). */
export async function originRegistry(): Promise<ModelRegistry> {
  return loadRegistry(`${dir}models.json`);
}

/** Path of the fixture's registry file (for CLI runs). */
export const ORIGIN_MODELS_FILE = `${dir}models.json`;

/** The deployment's published state after the fixture: last end tick, its covered tick, the clock. */
export const ORIGIN_TICKS = { lastEndTick: 40_003, since: 40_002, clock: 40_010 } as const;

/** The deployment's lookup row per model, as its builder writes it (SQL over the source alias s). */
const LOOKUP_SQL: Record<string, { data: string; patient: string; encounter: string; facility: string; lab: string; from: string }> = {
  facilities: {
    data: `json_build_object('id', s.id, 'code', s.code, 'name', s.name, 'isSensitive', s.is_sensitive)`,
    patient: 'NULL', encounter: 'NULL', facility: 'NULL', lab: 'false', from: 'facilities s',
  },
  patients: {
    data: `json_build_object('id', s.id, 'displayId', s.display_id, 'firstName', s.first_name, 'lastName', s.last_name,
             'dateOfBirth', s.date_of_birth, 'sex', s.sex, 'villageId', s.village_id)`,
    patient: 'NULL', encounter: 'NULL', facility: 'NULL', lab: 'false', from: 'patients s',
  },
  encounters: {
    data: `json_build_object('id', s.id, 'patientId', s.patient_id, 'facilityId', s.facility_id, 'encounterType', s.encounter_type,
             'startDate', s.start_date, 'reasonForEncounter', s.reason_for_encounter)`,
    patient: 's.patient_id', encounter: 's.id', facility: 'CASE WHEN f.is_sensitive THEN s.facility_id END', lab: 'false',
    from: 'encounters s LEFT JOIN facilities f ON f.id = s.facility_id',
  },
  notes: {
    data: `json_build_object('id', s.id, 'recordId', s.record_id, 'recordType', s.record_type, 'noteType', s.note_type,
             'content', s.content, 'date', s.date, 'authorId', s.author_id)`,
    patient: 'e.patient_id', encounter: 's.record_id', facility: 'NULL', lab: 'false',
    from: `notes s LEFT JOIN encounters e ON e.id = s.record_id AND s.record_type = 'Encounter'`,
  },
  lab_requests: {
    data: `json_build_object('id', s.id, 'encounterId', s.encounter_id, 'displayId', s.display_id, 'status', s.status,
             'priorityWeight', s.priority_weight, 'score', s.score, 'testCodes', s.test_codes)`,
    patient: 'e.patient_id', encounter: 's.encounter_id', facility: 'NULL', lab: 'true',
    from: 'lab_requests s LEFT JOIN encounters e ON e.id = s.encounter_id',
  },
  patient_program_registrations: {
    data: `json_build_object('id', s.id, 'patientId', s.patient_id, 'programRegistryId', s.program_registry_id,
             'registrationStatus', s.registration_status, 'registeringFacilityId', s.registering_facility_id, 'date', s.date)`,
    patient: 'NULL', encounter: 'NULL', facility: 'NULL', lab: 'false', from: 'patient_program_registrations s',
  },
};

/** Source rows per model for `patients` patients (the other models scale with it). */
export function originCounts(patients: number): { facilities: number; patients: number; encounters: number; notes: number; lab_requests: number; patient_program_registrations: number } {
  return {
    facilities: 5, patients, encounters: patients * 2, notes: patients * 3, lab_requests: Math.floor(patients / 2),
    patient_program_registrations: Math.floor(patients / 5),
  };
}

/**
 * Creates the origin-shaped schema and data in `t`. Source ticks lie in 1..39 990; each lookup row was
 * published at its source tick + 1; builds are recorded every 1 000 ticks up to (40 002, 40 003).
 * `encounter_medications` has 500 lookup rows and no source: a legacy type.
 */
export async function createOrigin(t: TestDatabase, patients = 1000): Promise<void> {
  await t.query(await readFile(`${dir}schema.sql`, 'utf8'));
  const tick = (n: string) => `((${n})::bigint * 7919 % 39990 + 1)`;
  await t.query(`ALTER TABLE facilities DISABLE TRIGGER USER; ALTER TABLE patients DISABLE TRIGGER USER; ALTER TABLE encounters DISABLE TRIGGER USER;
    ALTER TABLE notes DISABLE TRIGGER USER; ALTER TABLE lab_requests DISABLE TRIGGER USER; ALTER TABLE patient_program_registrations DISABLE TRIGGER USER`);
  await t.query(`
    INSERT INTO facilities (id, code, name, is_sensitive, updated_at_sync_tick)
      SELECT 'facility-' || g, 'F' || g, 'Facility ' || g, g = 5, ${tick('g')} FROM generate_series(1, 5) g;
    INSERT INTO patients (id, display_id, first_name, last_name, date_of_birth, sex, village_id, updated_at_sync_tick)
      SELECT md5('p' || g)::uuid::text, 'P' || lpad(g::text, 6, '0'), 'First' || g, 'Last' || g,
             to_char(date '1950-01-01' + (g * 37 % 20000), 'YYYY-MM-DD'), (ARRAY['male', 'female', 'other']::enum_patients_sex[])[g % 3 + 1],
             CASE WHEN g % 4 = 0 THEN NULL ELSE 'village-' || (g % 20) END, ${tick('g + 100')}
        FROM generate_series(1, $1::int) g;
    INSERT INTO encounters (id, patient_id, facility_id, encounter_type, start_date, reason_for_encounter, updated_at_sync_tick)
      SELECT md5('e' || g)::uuid::text, md5('p' || (g % $1::int + 1))::uuid::text, 'facility-' || (g % 5 + 1),
             (ARRAY['admission', 'clinic', 'triage'])[g % 3 + 1], to_char(timestamp '2024-01-01' + g * interval '1 hour', 'YYYY-MM-DD HH24:MI:SS'),
             'reason ' || g, ${tick('g + 200000')}
        FROM generate_series(1, $1::int * 2) g;
    INSERT INTO notes (id, record_id, record_type, note_type, content, date, author_id, updated_at_sync_tick)
      SELECT md5('n' || g)::uuid, md5('e' || (g % ($1::int * 2) + 1))::uuid::text, 'Encounter', (ARRAY['treatmentPlan', 'nursing', 'other'])[g % 3 + 1],
             'note text ' || g, to_char(timestamp '2024-02-01' + g * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS'), 'user-' || (g % 9), ${tick('g + 400000')}
        FROM generate_series(1, $1::int * 3) g;
    INSERT INTO lab_requests (id, encounter_id, display_id, status, priority_weight, score, test_codes, updated_at_sync_tick)
      SELECT 'lab-' || g, md5('e' || (g % ($1::int * 2) + 1))::uuid::text, 'L' || g, 'reception_pending', g % 7 + 0.5, g / 3.0::float8,
             ARRAY['T' || g % 5, 'T' || g % 11], ${tick('g + 700000')}
        FROM generate_series(1, $1::int / 2) g;
    INSERT INTO patient_program_registrations (id, patient_id, program_registry_id, registration_status, registering_facility_id, date, updated_at_sync_tick)
      SELECT md5('p' || g)::uuid::text || ';registry-' || (g % 3), md5('p' || g)::uuid::text, 'registry-' || (g % 3), 'active', 'facility-' || (g % 5 + 1),
             '2024-03-01 10:00:00', ${tick('g + 900000')}
        FROM generate_series(1, $1::int / 5) g;
    INSERT INTO sync_device_ticks (persisted_at_sync_tick, device_id) SELECT g, 'device-' || (g % 4) FROM generate_series(7, 39990, 7) g;
  `.replaceAll('$1::int', String(Math.floor(patients))));
  for (const [model, l] of Object.entries(LOOKUP_SQL)) {
    await t.query(`INSERT INTO sync_lookup (record_id, record_type, data, updated_at_sync_tick, patient_id, encounter_id, facility_id, is_lab_request,
                                             is_deleted, pushed_by_device_id)
      SELECT s.id::text, '${model}', ${l.data}, s.updated_at_sync_tick + 1, ${l.patient}, ${l.encounter}, ${l.facility}, ${l.lab},
             s.deleted_at IS NOT NULL, d.device_id
        FROM ${l.from} LEFT JOIN sync_device_ticks d ON d.persisted_at_sync_tick = s.updated_at_sync_tick`);
  }
  await t.query(`
    INSERT INTO sync_lookup (record_id, record_type, data, updated_at_sync_tick)
      SELECT md5('m' || g)::uuid::text, 'encounter_medications', json_build_object('id', md5('m' || g)::uuid::text, 'qtyMorning', g % 3), ${tick('g + 950000')}
        FROM generate_series(1, 500) g;
    INSERT INTO sync_lookup_ticks (source_start_tick, lookup_end_tick) SELECT k * 1000 - 1000, k * 1000 + 1 FROM generate_series(1, 40) k;
    INSERT INTO sync_lookup_ticks (source_start_tick, lookup_end_tick) VALUES (40002, 40003);
    INSERT INTO local_system_facts (key, value) VALUES ('currentSyncTick', '${ORIGIN_TICKS.clock}'),
      ('lastSuccessfulLookupTableUpdate', '${ORIGIN_TICKS.since}'), ('syncTrigger', 'enabled');
    ALTER TABLE facilities ENABLE TRIGGER USER; ALTER TABLE patients ENABLE TRIGGER USER; ALTER TABLE encounters ENABLE TRIGGER USER;
    ALTER TABLE notes ENABLE TRIGGER USER; ALTER TABLE lab_requests ENABLE TRIGGER USER; ALTER TABLE patient_program_registrations ENABLE TRIGGER USER;
    ANALYZE;
  `);
}
