import type pg from 'pg';
import { ModelRegistry, type ModelDefinition } from './registry.js';

/*
 * The host seam (its implementations live in src/host/): everything the lookup engine assumes about the deployment it runs on, behind one
 * interface with one implementation per deployment (as kysely keeps one Dialect per database). The engine
 * (build, rebuild, resync, verify, purge) never asks which host it has.
 *
 * Ticks. Source writers stamp rows with the host's clock. `tock` advances the clock and waits until every
 * writer that stamped an older tick has committed: it returns E such that every source row with a tick
 * below E is committed and visible, and every later write gets a tick >= E. A build covers source ticks
 * in (since, E) and publishes its staged rows at `publishTick` (> every end tick published before), then
 * `recordBuild` writes the ledger (`sync_lookup_ticks`, and the host's own `since` where it keeps one).
 */

/** The hosts sync-lookup knows. */
export const HOST_NAMES = ['builtin', 'tamanu'] as const;
export type HostName = (typeof HOST_NAMES)[number];

/** What a build tells the host when it publishes. */
export interface BuildRecord {
  /** The build covered source ticks above this (null: the initial build). */
  since: number | null;
  /** …and below this (the `tock` result). */
  coveredBefore: number;
  /** The tick its rows were published at. */
  endTick: number;
}

/** A host's conventions in words, for `status` and error messages. */
export interface HostDescription {
  /** Where the clock lives, e.g. `sync_lookup_tool.clock` or `local_system_facts 'currentSyncTick'`. */
  clock: string;
  /** Where `since` comes from. */
  since: string;
  /** How hard deletes and out-of-band changes reach the lookup. */
  deletes: 'tombstones' | 'needs_rebuild flags';
  /** Where whole-model rebuilds are queued. */
  rebuildQueue: string;
}

/**
 * One deployment's conventions. Every method runs on the caller's connection and inside the caller's
 * transaction, if any (`tock` must run outside one: it commits the clock's advance before waiting).
 */
export interface Host {
  readonly name: HostName;
  readonly description: HostDescription;
  /** The model as this host writes it: key style, excluded attributes, `data` builder and device-id source, where the registry leaves them open. */
  conventions(model: ModelDefinition): ModelDefinition;
  /** Throws ConfigError (exit 2) naming what this host needs and the database lacks (its clock, facts, tables). */
  assertReady(client: pg.ClientBase): Promise<void>;
  /** The clock's current tick (what a source write now is stamped with). */
  currentTick(client: pg.ClientBase): Promise<number>;
  /** Advances the clock and waits for writers of older ticks; returns E (see the module comment). Autocommit only. */
  tock(client: pg.ClientBase): Promise<number>;
  /** Inside the publish transaction: the tick staged rows are published at, for a build that covered ticks below `coveredBefore`. */
  publishTick(client: pg.ClientBase, coveredBefore: number): Promise<number>;
  /** The last covered source tick (rows above it need a build), or null before the first build. */
  since(client: pg.ClientBase): Promise<number | null>;
  /** Inside the publish transaction: records the build in the ledger. */
  recordBuild(client: pg.ClientBase, build: BuildRecord): Promise<void>;
  /**
   * Inside the build transaction: removes the lookup rows of source rows hard-deleted at ticks in
   * [since, before) when this host signals deletes by tombstones; returns how many. Hosts that flag rows
   * (`needs_rebuild`) return 0: the build's flag pass handles them.
   */
  applyDeletes(client: pg.ClientBase, window: { types: string[]; since: number; before: number }): Promise<number>;
  /** Models queued for a whole rebuild by the next build. */
  queuedModels(client: pg.ClientBase): Promise<string[]>;
  /** Queues a model for a whole rebuild by the next build (a live type's purge does this). */
  queueModel(client: pg.ClientBase, model: string): Promise<void>;
  /** Inside the build transaction: removes models the build has rebuilt from the queue. */
  dequeueModels(client: pg.ClientBase, models: string[]): Promise<void>;
  /**
   * Another builder at work (the host's own), in words, or null. Builds and rebuilds refuse while there is one.
   * Staged rows of `ownTypes` are a rebuild job's own leftovers (its next batch publishes them), not a sign of another builder.
   */
  foreignBuilder(client: pg.ClientBase, ownTypes?: readonly string[]): Promise<string | null>;
  /**
   * How jobs outside a build (rebuild, resync) publish rows: `tick`, each batch writes at a freshly tocked tick
   * under the build lock (a clock whose tock fences writers, with builds publishing above it: the builtin host);
   * `staged`, each batch stages at -2 and a second transaction publishes at the host's publish tick with a ticks
   * row, as the host's own builder does.
   */
  readonly jobPublish: 'tick' | 'staged';
  /** Inside a `staged` job's publish transaction: records rows published at `endTick` without moving `since`. */
  recordPublish(client: pg.ClientBase, endTick: number): Promise<void>;
}

/**
 * The registry with the host's conventions filled in where a model leaves them open.
 *
 * @example
 * const registry = applyHost(builtinRegistry(), host);
 */
export function applyHost(registry: ModelRegistry, host: Host): ModelRegistry {
  return new ModelRegistry(registry.models.map((m) => host.conventions(m)));
}
