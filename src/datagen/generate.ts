import type { ModelColumn, ModelDefinition, ModelRegistry } from '../lookup/registry.js';
import { createRng, hashSeed, mix32, type Rng } from './prng.js';

/*
 * Deterministic source rows for the registry's models (SYSTEM.md §3): a skewed mix by each model's
 * `share`, the types interleaved over the whole life of the data (each next row's model is drawn with
 * probability proportional to the rows it still has to produce: a uniform random interleaving), foreign
 * keys pointing at existing, mostly recent parents, ~0.5 KB of `data`, ticks and timestamps growing with
 * insertion. Output is PostgreSQL COPY text, one line per row, in `sourceTableDdl` column order.
 */

/** How many rows each model gets. */
export interface RowPlan {
  models: { name: string; rows: number }[];
  totalRows: number;
}

/**
 * Splits `totalRows` over the models by their `share` (equal shares when none is given), at least one row
 * each, so every parent exists.
 *
 * @example
 * planRows(builtinRegistry(), 1_000_000).models.find((m) => m.name === 'notes')?.rows
 */
export function planRows(registry: ModelRegistry, totalRows: number): RowPlan {
  const models = registry.models;
  const weights = models.map((m) => m.share ?? 1 / models.length);
  const sum = weights.reduce((a, b) => a + b, 0);
  const counts = models.map((m, i) => ({ name: m.name, rows: Math.max(1, Math.round((totalRows * weights[i]!) / sum)) }));
  return { models: counts, totalRows: counts.reduce((n, c) => n + c.rows, 0) };
}

/** Options of `SourceRowGenerator`. */
export interface GeneratorOptions {
  seed: string | number;
  /** Rows that share one sync tick (ticks grow with insertion). Default 64. */
  rowsPerTick?: number;
  /** Fraction of rows soft-deleted (`deleted_at` set). Default 0.015. */
  softDeletedFraction?: number;
  /** Fraction of rows with `pushed_by_device_id`. Default 0.25. */
  devicePushedFraction?: number;
  /** First timestamp (ms since epoch). Default 2020-01-01. */
  startMs?: number;
  /** Time the data spans. Default 5 years. */
  spanMs?: number;
}

const WORDS = ('patient reported mild pain since yesterday afternoon; vitals stable, afebrile, tolerating oral fluids. ' +
  'plan review in clinic, continue current medication, advise rest and hydration, return if symptoms worsen. ' +
  'history of hypertension and type two diabetes, adherent to treatment, no known drug allergies. ' +
  'examination unremarkable apart from tenderness over the right lower quadrant, bowel sounds present. ' +
  'family members informed, follow up with community health worker, referral letter written for specialist. ' +
  'laboratory sample collected and labelled, sent to the district laboratory with the courier this morning. ' +
  'immunisation schedule reviewed, catch up doses recorded, next appointment booked in four weeks.').split(/\s+/);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex32(w: number): string {
  return HEX[w >>> 24]! + HEX[(w >>> 16) & 255]! + HEX[(w >>> 8) & 255]! + HEX[w & 255]!;
}

function uuidOf(w0: number, w1: number, w2: number, w3: number): string {
  const a = hex32(w0);
  const b = hex32(((w1 & 0xffff0fff) | 0x00004000) >>> 0);
  const c = hex32(((w2 & 0x3fffffff) | 0x80000000) >>> 0);
  const d = hex32(w3);
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
}

const TWO = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const DAYS = new Map<number, string>();

/** `YYYY-MM-DD` of a UTC day number; cached (a Date per row costs more than generating the row). */
function dayString(day: number): string {
  let s = DAYS.get(day);
  if (s === undefined) {
    s = new Date(day * 86_400_000).toISOString().slice(0, 10);
    DAYS.set(day, s);
  }
  return s;
}

/** `YYYY-MM-DDTHH:MM:SS` (UTC) of milliseconds since the epoch. */
function timestampString(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  const secs = Math.floor((ms - day * 86_400_000) / 1000);
  return `${dayString(day)}T${TWO[Math.floor(secs / 3600)]}:${TWO[Math.floor(secs / 60) % 60]}:${TWO[secs % 60]}`;
}

/** Escapes a value for COPY text format. */
function copyEscape(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (ch) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[ch]!) : value;
}

interface ModelState {
  model: ModelDefinition;
  index: number;
  planned: number;
  generated: number;
  columns: { column: ModelColumn; parent: ModelState | undefined; values: string[] | undefined }[];
}

/**
 * Generates source rows as COPY text lines, deterministically from the seed.
 *
 * @example
 * const gen = new SourceRowGenerator(registry, planRows(registry, 10_000), { seed: 1 });
 * for (let r = gen.next(); r; r = gen.next()) buffers.get(r.model)!.push(r.line);
 */
export class SourceRowGenerator {
  readonly plan: RowPlan;
  readonly #states: ModelState[];
  readonly #rng: Rng;
  readonly #seedHash: number;
  readonly #corpus: string;
  readonly #bootstrap: ModelState[];
  readonly #rowsPerTick: number;
  readonly #softDeleted: number;
  readonly #devicePushed: number;
  readonly #startMs: number;
  readonly #msPerRow: number;
  #remaining: number;
  #emitted = 0;

  constructor(registry: ModelRegistry, plan: RowPlan, options: GeneratorOptions) {
    this.plan = plan;
    this.#rng = createRng(options.seed);
    this.#seedHash = hashSeed(options.seed);
    this.#rowsPerTick = options.rowsPerTick ?? 64;
    this.#softDeleted = options.softDeletedFraction ?? 0.015;
    this.#devicePushed = options.devicePushedFraction ?? 0.25;
    this.#startMs = options.startMs ?? Date.UTC(2020, 0, 1);
    this.#msPerRow = (options.spanMs ?? 5 * 365 * 86_400_000) / Math.max(1, plan.totalRows);
    const byName = new Map<string, ModelState>();
    this.#states = registry.models.map((model, index) => {
      const state: ModelState = { model, index, planned: plan.models.find((m) => m.name === model.name)?.rows ?? 0, generated: 0, columns: [] };
      byName.set(model.name, state);
      return state;
    });
    for (const s of this.#states) {
      s.columns = s.model.columns.map((column) => ({
        column, parent: column.references ? byName.get(column.references) : undefined, values: column.values?.map(copyEscape),
      }));
    }
    this.#remaining = this.#states.reduce((n, s) => n + s.planned, 0);
    // One row of every model first, parents before children, so every reference has a target.
    this.#bootstrap = topologicalOrder(this.#states).filter((s) => s.planned > 0);
    const words: string[] = [];
    let length = 0;
    while (length < 65_536) {
      const w = WORDS[this.#rng.int(WORDS.length)]!;
      words.push(w);
      length += w.length + 1;
    }
    this.#corpus = words.join(' ');
  }

  /** The id of row `k` of model `modelIndex` (a v4-shaped uuid, unique within the model). */
  idOf(modelIndex: number, k: number): string {
    const s = this.#seedHash;
    const w0 = mix32((k ^ s) >>> 0);
    const w1 = mix32((modelIndex * 0x9e3779b1) ^ mix32(k + s));
    const w2 = mix32(w1 ^ Math.imul(k, 0x85ebca77) ^ s);
    const w3 = mix32(w2 + w0 + modelIndex);
    return uuidOf(w0, w1, w2, w3);
  }

  /** The highest tick of the rows emitted so far (0 before the first). */
  get maxTick(): number {
    return this.#emitted === 0 ? 0 : Math.floor((this.#emitted - 1) / this.#rowsPerTick) + 1;
  }

  /** Rows emitted so far. */
  get emitted(): number {
    return this.#emitted;
  }

  /** The next row (model name and COPY line), or undefined when the plan is complete. */
  next(): { model: ModelDefinition; line: string } | undefined {
    if (this.#remaining <= 0) return undefined;
    let state = this.#bootstrap.shift();
    if (!state) {
      let r = this.#rng.int(this.#remaining);
      for (const s of this.#states) {
        const left = s.planned - s.generated;
        if (r < left) { state = s; break; }
        r -= left;
      }
    }
    const s = state!;
    const line = this.#row(s);
    s.generated++;
    this.#remaining--;
    this.#emitted++;
    return { model: s.model, line };
  }

  #row(s: ModelState): string {
    const rng = this.#rng;
    const i = this.#emitted;
    const createdMs = this.#startMs + Math.floor(i * this.#msPerRow);
    const created = timestampString(createdMs);
    const updated = timestampString(createdMs + rng.int(3_600_000));
    const deleted = rng.chance(this.#softDeleted) ? timestampString(createdMs + 3_600_000 + rng.int(86_400_000)) : '\\N';
    const tick = Math.floor(i / this.#rowsPerTick) + 1;
    const device = rng.chance(this.#devicePushed) ? `device-${String(rng.int(64)).padStart(2, '0')}` : '\\N';
    let line = `${this.idOf(s.index, s.generated)}\t${created}\t${updated}\t${deleted}\t${tick}\t${device}`;
    for (const c of s.columns) line += `\t${this.#value(c, createdMs)}`;
    return line;
  }

  #value(c: ModelState['columns'][number], createdMs: number): string {
    const rng = this.#rng;
    const col = c.column;
    if (col.nullFraction && rng.chance(col.nullFraction)) return '\\N';
    if (c.values) return c.values[rng.int(c.values.length)]!;
    switch (col.type) {
      case 'uuid': {
        if (!c.parent) return this.idOf(255, rng.uint32());
        const n = c.parent.generated;
        if (n === 0) return '\\N';
        // Mostly recent parents: notes are written on this week's encounters, not on 2020's.
        const r = rng.next();
        return this.idOf(c.parent.index, n - 1 - Math.floor(n * r * r * r));
      }
      case 'text': {
        const target = col.textLength ?? 24;
        const len = Math.max(1, Math.round(target * (0.5 + rng.next())));
        const start = rng.int(this.#corpus.length - len);
        return this.#corpus.slice(start, start + len);
      }
      case 'integer':
      case 'bigint':
        return String(rng.int(200));
      case 'numeric':
        return (rng.int(20_000) / 100).toFixed(2);
      case 'boolean':
        return rng.chance(0.5) ? 't' : 'f';
      case 'date':
        return dayString(Math.floor(createdMs / 86_400_000) - rng.int(80 * 365));
      case 'timestamp':
      case 'timestamptz':
        return timestampString(createdMs + rng.int(7 * 86_400_000));
      case 'jsonb':
        return `{"value": ${rng.int(1000)}, "enabled": ${rng.chance(0.5)}}`;
    }
  }
}

function topologicalOrder(states: ModelState[]): ModelState[] {
  const order: ModelState[] = [];
  const seen = new Set<ModelState>();
  const visit = (s: ModelState, path: Set<ModelState>) => {
    if (seen.has(s) || path.has(s)) return; // a reference cycle: that column starts NULL
    path.add(s);
    for (const c of s.columns) if (c.parent && c.parent !== s) visit(c.parent, path);
    path.delete(s);
    seen.add(s);
    order.push(s);
  };
  for (const s of states) visit(s, new Set());
  return order;
}
