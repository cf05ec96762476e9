import { withClient, type Database } from '../db/connection.js';
import { toSyncLookupError } from '../db/errors.js';
import { readIndexBuilds, type IndexBuildProgress } from '../db/index-progress.js';

/*
 * `sync-lookup index watch`: polls pg_stat_progress_create_index on its own connection and turns each
 * sample into words, percentages and an ETA per phase (from the rate between samples).
 */

/** The phases of CREATE INDEX [CONCURRENTLY] / REINDEX in the order PostgreSQL goes through them. */
const PHASES: [string, string][] = [
  ['initializing', 'initializing'],
  ['waiting for writers before build', 'waiting for transactions writing to the table to end, before building'],
  ['building index', 'building the index'],
  ['waiting for writers before validation', 'waiting for transactions writing to the table to end, before validating'],
  ['index validation: scanning index', 'validating: scanning the new index'],
  ['index validation: sorting tuples', 'validating: sorting index entries'],
  ['index validation: scanning table', 'validating: scanning the table for rows the build missed'],
  ['waiting for old snapshots', 'waiting for transactions with older snapshots to end'],
  ['waiting for readers before marking dead', 'waiting for readers before marking the old index dead'],
  ['waiting for readers before dropping', 'waiting for readers before dropping the old index'],
];

/**
 * PostgreSQL's phase name explained, with its place among the phases (building sub-phases such as
 * "building index: scanning table" or "building index: loading tuples in tree" keep their detail).
 *
 * @example
 * describePhase('waiting for old snapshots') // { step: 8, steps: 10, words: 'waiting for transactions with older snapshots to end' }
 */
export function describePhase(phase: string): { step: number | null; steps: number; words: string } {
  const i = PHASES.findIndex(([name]) => phase === name || phase.startsWith(`${name}:`));
  if (i < 0) return { step: null, steps: PHASES.length, words: phase };
  const detail = phase.startsWith('building index:') ? `: ${phase.slice('building index:'.length).trim()}` : '';
  return { step: i + 1, steps: PHASES.length, words: `${PHASES[i]![1]}${detail}` };
}

/** One build at one moment, with what watching it over time adds. */
export interface IndexBuildSample extends IndexBuildProgress {
  /** The phase in words, and its place: step `phaseStep` of `phaseSteps`. */
  phaseWords: string;
  phaseStep: number | null;
  phaseSteps: number;
  /** Units (blocks, tuples or lockers) per second in this phase since it was first seen; null until measurable. */
  ratePerS: number | null;
  /** Seconds until this phase is done at that rate; null when unknown. */
  phaseEtaS: number | null;
}

/** What a finished watch saw of each build. */
export interface WatchedBuild {
  pid: number;
  table: string;
  index: string | null;
  command: string;
  /** Phases in the order they were seen, with when (seconds since the watch began). */
  phases: { phase: string; words: string; firstSeenS: number; lastSeenS: number; lastPercent: number | null }[];
  /** Whether it was gone before the watch ended (finished, failed or cancelled: the progress view cannot tell). */
  ended: boolean;
  waitedOn: number[];
}

/** Options of {@link watchIndexBuilds}. */
export interface IndexWatchOptions {
  /** Time between samples; default 1 000 ms. */
  intervalMs?: number;
  /** When no build is running at the start, wait this long for one to appear; default 0 (return at once). */
  waitMs?: number;
  /** Only the build of this backend. */
  pid?: number;
  signal?: AbortSignal;
  /** Every sample of every running build. */
  onSample?: (samples: IndexBuildSample[]) => void;
}

interface PhaseTrack { phase: string; t0: number; done0: number; lastT: number; lastDone: number }

function unitsOf(b: IndexBuildProgress): { done: number; total: number } {
  if (b.blocksTotal > 0) return { done: b.blocksDone, total: b.blocksTotal };
  if (b.tuplesTotal > 0) return { done: b.tuplesDone, total: b.tuplesTotal };
  if (b.lockersTotal > 0) return { done: b.lockersDone, total: b.lockersTotal };
  return { done: 0, total: 0 };
}

/**
 * Watches every running CREATE INDEX / REINDEX in the connected database until none remains (or `signal` aborts), reporting each
 * sample through `onSample`: phase in words, blocks and tuples done/total, percent and ETA of the phase,
 * and the session it waits for. Returns what it saw of each build.
 *
 * @example
 * const seen = await watchIndexBuilds(db, { waitMs: 10_000, onSample: (s) => console.log(s.map((b) => b.phaseWords)) });
 */
export async function watchIndexBuilds(db: Database, options: IndexWatchOptions = {}): Promise<WatchedBuild[]> {
  const interval = options.intervalMs ?? 1000;
  const started = Date.now();
  const seen = new Map<number, WatchedBuild>();
  const tracks = new Map<number, PhaseTrack>();
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    options.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
  return withClient(db, { purpose: 'index-watch' }, async (client) => {
    for (;;) {
      if (options.signal?.aborted) throw toSyncLookupError(options.signal.reason ?? new Error('cancelled'));
      const now = Date.now();
      const builds = await readIndexBuilds(client, { currentDatabaseOnly: true, ...(options.pid !== undefined ? { pid: options.pid } : {}) });
      const samples: IndexBuildSample[] = builds.map((b) => {
        const units = unitsOf(b);
        let track = tracks.get(b.pid);
        if (!track || track.phase !== b.phase || units.done < track.lastDone) {
          track = { phase: b.phase, t0: now, done0: units.done, lastT: now, lastDone: units.done };
          tracks.set(b.pid, track);
        }
        track.lastT = now;
        track.lastDone = units.done;
        const dt = (now - track.t0) / 1000;
        const rate = dt > 0 && units.done > track.done0 ? (units.done - track.done0) / dt : null;
        const eta = rate && units.total > 0 ? Math.max(0, (units.total - units.done) / rate) : null;
        const words = describePhase(b.phase);
        const elapsed = (now - started) / 1000;
        let w = seen.get(b.pid);
        if (!w) {
          w = { pid: b.pid, table: b.table, index: b.index, command: b.command, phases: [], ended: false, waitedOn: [] };
          seen.set(b.pid, w);
        }
        w.index ??= b.index;
        const last = w.phases[w.phases.length - 1];
        if (last?.phase === b.phase) {
          last.lastSeenS = elapsed;
          last.lastPercent = b.phasePercent;
        } else w.phases.push({ phase: b.phase, words: words.words, firstSeenS: elapsed, lastSeenS: elapsed, lastPercent: b.phasePercent });
        if (b.waitingOn && !w.waitedOn.includes(b.waitingOn.pid)) w.waitedOn.push(b.waitingOn.pid);
        return {
          ...b, phaseWords: words.words, phaseStep: words.step, phaseSteps: words.steps,
          ratePerS: rate === null ? null : Math.round(rate * 10) / 10, phaseEtaS: eta === null ? null : Math.round(eta * 10) / 10,
        };
      });
      for (const [pid, w] of seen) {
        if (!builds.some((b) => b.pid === pid)) { w.ended = true; tracks.delete(pid); }
      }
      if (samples.length) options.onSample?.(samples);
      const waiting = seen.size === 0 && now - started < (options.waitMs ?? 0);
      if (!samples.length && !waiting) return [...seen.values()];
      await sleep(interval);
    }
  });
}
