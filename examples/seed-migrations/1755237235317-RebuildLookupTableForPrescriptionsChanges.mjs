// The seed's migration 3, fast: remove the legacy encounter_medications lookup rows (originally
// `DELETE FROM sync_lookup WHERE record_type = 'encounter_medications'`, a full read) and re-materialise
// prescriptions and encounter_prescriptions from their changed sources: keyset batches over the
// record_type index (or TRUNCATE of the type's partition), then in-place upserts of only the rows that differ.
import { rebuildForPrescriptionsChange } from 'sync-lookup';

export default {
  transaction: false,
  plan: ['-- purge encounter_medications; rebuild prescriptions, encounter_prescriptions (in place)'],
  async up(ctx) {
    await rebuildForPrescriptionsChange(ctx.db, { signal: ctx.signal });
  },
};
