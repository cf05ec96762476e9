// The seed's migration 4, fast: record the initial build (-1, end) in sync_lookup_ticks. Originally
// `SELECT count(*) = 0 FROM sync_lookup` (reads every row) and two MAX() queries; here an EXISTS probe and
// the maxima read from the tick index (each O(1)). Safe inside the runner's transaction.
import { backfillInitialSyncLookupTick } from 'sync-lookup';

export default {
  transaction: true,
  plan: ['-- EXISTS probe + backward scans of the tick index, then INSERT INTO sync_lookup_ticks (-1, end)'],
  async up(ctx) {
    await backfillInitialSyncLookupTick(ctx.client);
  },
};
