import { applySessionSettings, type Database, type Lease } from '../db/connection.js';
import { quoteIdent } from '../db/quote.js';
import { buildLookup } from '../lookup/build.js';
import type { ModelRegistry } from '../lookup/registry.js';
import { pullChunkQuery } from '../lookup/sql.js';
import { liveLookupTypes } from '../maintenance/models.js';
import { TRAFFIC_MARK } from './work.js';

/*
 * Sync traffic beside an operation: a fleet of facilities pulling, a writer changing source rows (what
 * facilities push) and a builder publishing them (build --watch), with the latencies each saw. Their
 * statements carry TRAFFIC_MARK, so the work counters leave them out (the builder's cannot: its work is counted).
 */

/** Rows per pull request (one page of a facility's pull). */
export const TRAFFIC_PULL_ROWS = 1_000;
/** Simulated facilities. */
export const FLEET_SIZE = 3;
/** The source table the writer changes. */
export const WRITER_TABLE = 'encounters';

/** What the traffic saw between `mark()` and `stop()`. */
export interface TrafficFigures {
  /** Latency of every pull request (one chunk of up to TRAFFIC_PULL_ROWS rows), in ms. */
  pullMs: number[];
  /** The longest single source write. */
  longestWriteMs: number;
  writes: number;
  /** The longest time from a source write to its first appearance in a facility's pull. */
  buildLagMaxMs: number;
  /** Writes not seen in any pull when the traffic stopped. */
  unseenWrites: number;
}

/** Running traffic: `mark()` starts a measurement window, `stop()` ends it (waiting for the last writes to be pulled). */
export interface Traffic {
  mark(): void;
  /** The figures since the last `mark()`, the traffic going on. */
  peek(): TrafficFigures;
  stop(options?: { drainMs?: number }): Promise<TrafficFigures>;
}

interface State {
  stopped: boolean;
  stopWrites: boolean;
  pullMs: number[];
  longestWriteMs: number;
  writes: number;
  /** record id → time of its oldest write not yet seen in a pull. */
  pending: Map<string, number>;
  lagMaxMs: number;
}

async function lease(db: Database, purpose: string): Promise<Lease> {
  const l = await db.acquire();
  await applySessionSettings(l.client, { purpose, lockTimeoutMs: 0, statementTimeoutMs: 0 });
  return l;
}

async function facility(db: Database, types: string[], st: State): Promise<void> {
  const l = await lease(db, 'bench-fleet');
  try {
    const { rows: [top] } = await l.client.query<{ t: string | null }>(`select max(lookup_end_tick)::text as t from sync_lookup_ticks ${TRAFFIC_MARK}`);
    let since = Number(top?.t ?? -1);
    let afterId: string | undefined;
    let maxSeen = since;
    while (!st.stopped) {
      const q = pullChunkQuery({ sinceTick: since, types, limit: TRAFFIC_PULL_ROWS, ...(afterId ? { afterId } : {}) });
      const started = performance.now();
      const { rows } = await l.client.query<{ id: string; record_id: string; updated_at_sync_tick: string }>(`${q.text} ${TRAFFIC_MARK}`, q.values);
      const now = performance.now();
      st.pullMs.push(now - started);
      for (const r of rows) {
        maxSeen = Math.max(maxSeen, Number(r.updated_at_sync_tick));
        const wrote = st.pending.get(r.record_id);
        if (wrote !== undefined) { st.lagMaxMs = Math.max(st.lagMaxMs, now - wrote); st.pending.delete(r.record_id); }
      }
      if (rows.length === TRAFFIC_PULL_ROWS) { afterId = rows[rows.length - 1]!.id; continue; }
      // Caught up: the next pull asks for what is newer than everything seen.
      since = maxSeen;
      afterId = undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await l.release();
  }
}

async function writer(db: Database, st: State): Promise<void> {
  const l = await lease(db, 'bench-writer');
  try {
    const { rows: ids } = await l.client.query<{ id: string }>(
      `select id::text as id from ${quoteIdent(WRITER_TABLE)} order by id limit 2000 ${TRAFFIC_MARK}`);
    for (let i = 0; !st.stopped && !st.stopWrites && ids.length; i++) {
      const id = ids[(i * 7919) % ids.length]!.id;
      const started = performance.now();
      // The tick trigger stamps the row: the next build publishes it.
      await l.client.query(`update ${quoteIdent(WRITER_TABLE)} set updated_at = updated_at where id = $1 ${TRAFFIC_MARK}`, [id]);
      const ms = performance.now() - started;
      st.longestWriteMs = Math.max(st.longestWriteMs, ms);
      st.writes++;
      if (!st.pending.has(id)) st.pending.set(id, started);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await l.release();
  }
}

async function builder(db: Database, registry: ModelRegistry, st: State, signal?: AbortSignal): Promise<void> {
  while (!st.stopped) {
    await buildLookup(db, { registry, acceptShapeChange: true, ...(signal ? { signal } : {}) }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Starts the traffic: {@link FLEET_SIZE} facilities pulling every live type incrementally, a writer changing
 * one {@link WRITER_TABLE} row every ~20 ms, and a builder publishing every ~250 ms.
 *
 * @example
 * const t = startTraffic(db, registry); t.mark(); await operation(); const figures = await t.stop();
 */
export function startTraffic(db: Database, registry: ModelRegistry, signal?: AbortSignal): Traffic {
  const st: State = { stopped: false, stopWrites: false, pullMs: [], longestWriteMs: 0, writes: 0, pending: new Map(), lagMaxMs: 0 };
  const types = liveLookupTypes(registry);
  const loops = [
    ...Array.from({ length: FLEET_SIZE }, () => facility(db, types, st)),
    writer(db, st),
    builder(db, registry, st, signal),
  ].map((p) => p.catch((err: unknown) => err));
  return {
    mark() {
      st.pullMs = [];
      st.longestWriteMs = 0;
      st.writes = 0;
      st.lagMaxMs = 0;
      st.pending.clear();
    },
    peek: () => ({
      pullMs: [...st.pullMs], longestWriteMs: st.longestWriteMs, writes: st.writes, buildLagMaxMs: st.lagMaxMs, unseenWrites: st.pending.size,
    }),
    async stop(options = {}) {
      // The last writes must reach a pull before the lag is known: stop writing, let builds and pulls drain.
      st.stopWrites = true;
      const deadline = performance.now() + (options.drainMs ?? 10_000);
      while (st.pending.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const figures: TrafficFigures = {
        pullMs: [...st.pullMs], longestWriteMs: st.longestWriteMs, writes: st.writes, buildLagMaxMs: st.lagMaxMs, unseenWrites: st.pending.size,
      };
      st.stopped = true;
      await Promise.all(loops);
      return figures;
    },
  };
}

/**
 * The `p`-th percentile (0–100) of `values` by the nearest-rank method; null for an empty list.
 *
 * @example
 * percentile([1, 2, 3, 4], 50) // 2
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
