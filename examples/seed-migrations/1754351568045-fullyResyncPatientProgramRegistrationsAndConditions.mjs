// The seed's migration 2 (the same intent as migration 1, run again after a later data change).
// With a plain `pg` pool, as an umzug/Knex/Sequelize migration would pass it, the call is the same:
//   await resyncRecordTypes(pool, { types: [...] })
import { resyncRecordTypes, PATIENT_PROGRAM_REGISTRATION_TYPES } from 'sync-lookup';

export default {
  transaction: false,
  plan: ['-- resync patient_program_registrations, patient_program_registration_conditions (in-place batches at fresh ticks)'],
  async up(ctx) {
    await resyncRecordTypes(ctx.db, { types: PATIENT_PROGRAM_REGISTRATION_TYPES, signal: ctx.signal });
  },
};
