// The seed's migration 1, fast: every facility re-pulls every patient program registration and
// condition, and the lookup matches their sources. Originally
//   DELETE FROM sync_lookup WHERE record_type IN ('patient_program_registrations', 'patient_program_registration_conditions')
// which read the whole table (no record_type-led index) and then waited for the next build.
// Here: in-place batches over the record_type index at fresh ticks; source rows are not rewritten.
// Not transactional: each batch commits on its own, so it is resumable and never holds a long transaction.
import { resyncPatientProgramRegistrations } from 'sync-lookup';

export default {
  transaction: false,
  plan: ['-- resync patient_program_registrations, patient_program_registration_conditions (in-place batches at fresh ticks)'],
  async up(ctx) {
    await resyncPatientProgramRegistrations(ctx.db, { signal: ctx.signal });
  },
};
