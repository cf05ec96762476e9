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

const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
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

/** Escapes a value for COPY text format. */
function copyEscape(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (ch) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[ch]!) : value;
}

interface ColumnState {
  column: ModelColumn;
  parent: ModelState | undefined;
  /** COPY-escaped, UTF-8 encoded choices. */
  values: Buffer[] | undefined;
}

interface ModelState {
  model: ModelDefinition;
  index: number;
  planned: number;
  generated: number;
  columns: ColumnState[];
  /** An upper bound of one row's bytes, so a row is written without bounds checks. */
  maxRowBytes: number;
}

/**
 * A growable byte buffer rows are written into (COPY text, one `\n`-terminated line per row).
 *
 * @example
 * const out = new RowBuffer(); gen.nextInto(() => out); out.take() // the bytes written so far
 */
export class RowBuffer {
  buf: Buffer;
  pos = 0;

  constructor(size = 256 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes room for `bytes` more. */
  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Hands over the bytes written so far and starts a fresh buffer (no copy). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
    return out;
  }
}

const HEX_CODES = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, '0');
  HEX_CODES[2 * i] = h.charCodeAt(0);
  HEX_CODES[2 * i + 1] = h.charCodeAt(1);
}
const TAB = 9;
const NEWLINE = 10;
const BACKSLASH = 92;
const DASH = 45;

/**
 * Generates source rows as COPY text, deterministically from the seed. Rows are written straight into
 * byte buffers (`nextInto`): building millions of lines as JS strings spends more time in V8's garbage
 * collector than in generating them. `next()` returns one row as a string, for tests and small uses.
 *
 * @example
 * const gen = new SourceRowGenerator(registry, planRows(registry, 10_000), { seed: 1 });
 * for (let r = gen.next(); r; r = gen.next()) lines.get(r.model.name)!.push(r.line);
 */
export class SourceRowGenerator {
  readonly plan: RowPlan;
  readonly #states: ModelState[];
  readonly #rng: Rng;
  readonly #seedHash: number;
  readonly #corpus: Buffer;
  readonly #bootstrap: ModelState[];
  readonly #rowsPerTick: number;
  readonly #softDeleted: number;
  readonly #devicePushed: number;
  readonly #startMs: number;
  readonly #msPerRow: number;
  readonly #scratch = new RowBuffer(64 * 1024);
  #remaining: number;
  #emitted = 0;
  #b: Buffer = Buffer.alloc(0);
  #p = 0;

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
      const state: ModelState = {
        model, index, planned: plan.models.find((m) => m.name === model.name)?.rows ?? 0, generated: 0, columns: [], maxRowBytes: 0,
      };
      byName.set(model.name, state);
      return state;
    });
    for (const s of this.#states) {
      s.columns = s.model.columns.map((column) => ({
        column, parent: column.references ? byName.get(column.references) : undefined,
        values: column.values?.map((v) => Buffer.from(copyEscape(v))),
      }));
      // id, 3 timestamps, tick, device, tabs and newline; then each column's longest value.
      s.maxRowBytes = 36 + 3 * 19 + 20 + 12 + 8 + s.columns.reduce((n, c) =>
        n + 2 + Math.max(48, c.values ? Math.max(...c.values.map((v) => v.length)) : 0, Math.ceil((c.column.textLength ?? 24) * 1.5) + 1), 0);
    }
    this.#remaining = this.#states.reduce((n, s) => n + s.planned, 0);
    // One row of every model first, parents before children, so every reference has a target.
    this.#bootstrap = topologicalOrder(this.#states).filter((s) => s.planned > 0);
    const words: string[] = [];
    let length = 0;
    const longest = Math.max(64, ...this.#states.flatMap((s) => s.columns.map((c) => Math.ceil((c.column.textLength ?? 24) * 1.5) + 1)));
    while (length < Math.max(65_536, longest * 4)) {
      const w = WORDS[this.#rng.int(WORDS.length)]!;
      words.push(w);
      length += w.length + 1;
    }
    this.#corpus = Buffer.from(words.join(' '), 'latin1');
  }

  /** The id of row `k` of model `modelIndex` (a v4-shaped uuid, unique within the model). */
  idOf(modelIndex: number, k: number): string {
    const [w0, w1, w2, w3] = this.#idWords(modelIndex, k);
    return uuidOf(w0, w1, w2, w3);
  }

  #idWords(modelIndex: number, k: number): [number, number, number, number] {
    const s = this.#seedHash;
    const w0 = mix32((k ^ s) >>> 0);
    const w1 = mix32((modelIndex * 0x9e3779b1) ^ mix32(k + s));
    const w2 = mix32(w1 ^ Math.imul(k, 0x85ebca77) ^ s);
    const w3 = mix32(w2 + w0 + modelIndex);
    return [w0, ((w1 & 0xffff0fff) | 0x00004000) >>> 0, ((w2 & 0x3fffffff) | 0x80000000) >>> 0, w3];
  }

  /** The highest tick of the rows emitted so far (0 before the first). */
  get maxTick(): number {
    return this.#emitted === 0 ? 0 : Math.floor((this.#emitted - 1) / this.#rowsPerTick) + 1;
  }

  /** Rows emitted so far. */
  get emitted(): number {
    return this.#emitted;
  }

  /** The next row (model and COPY line without its newline), or undefined when the plan is complete. */
  next(): { model: ModelDefinition; line: string } | undefined {
    const out = this.#scratch;
    out.pos = 0;
    const model = this.nextInto(() => out);
    if (!model) return undefined;
    return { model, line: out.buf.toString('utf8', 0, out.pos - 1) };
  }

  /**
   * Writes the next row, newline-terminated, into the buffer `target` returns for its model; returns the
   * model, or undefined when the plan is complete.
   */
  nextInto(target: (model: ModelDefinition) => RowBuffer): ModelDefinition | undefined {
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
    const out = target(s.model);
    out.ensure(s.maxRowBytes);
    this.#b = out.buf;
    this.#p = out.pos;
    this.#row(s);
    out.pos = this.#p;
    s.generated++;
    this.#remaining--;
    this.#emitted++;
    return s.model;
  }

  #ascii(text: string): void {
    const b = this.#b;
    let p = this.#p;
    for (let i = 0; i < text.length; i++) b[p++] = text.charCodeAt(i);
    this.#p = p;
  }

  #byte(code: number): void {
    this.#b[this.#p++] = code;
  }

  #null(): void {
    this.#b[this.#p++] = BACKSLASH;
    this.#b[this.#p++] = 78; // N
  }

  #uint(n: number): void {
    if (n < 10) { this.#b[this.#p++] = 48 + n; return; }
    this.#ascii(String(n));
  }

  #hexBytes(w: number, from: number, to: number): void {
    const b = this.#b;
    let p = this.#p;
    for (let i = from; i < to; i++) {
      const x = (w >>> (24 - 8 * i)) & 255;
      b[p++] = HEX_CODES[2 * x]!;
      b[p++] = HEX_CODES[2 * x + 1]!;
    }
    this.#p = p;
  }

  /** 8-4-4-4-12 hex digits. */
  #uuid(modelIndex: number, k: number): void {
    const [w0, w1, w2, w3] = this.#idWords(modelIndex, k);
    this.#hexBytes(w0, 0, 4);
    this.#byte(DASH);
    this.#hexBytes(w1, 0, 2);
    this.#byte(DASH);
    this.#hexBytes(w1, 2, 4);
    this.#byte(DASH);
    this.#hexBytes(w2, 0, 2);
    this.#byte(DASH);
    this.#hexBytes(w2, 2, 4);
    this.#hexBytes(w3, 0, 4);
  }

  /** `YYYY-MM-DDTHH:MM:SS` (UTC). */
  #timestamp(ms: number): void {
    const day = Math.floor(ms / 86_400_000);
    const secs = Math.floor((ms - day * 86_400_000) / 1000);
    this.#ascii(dayString(day));
    this.#byte(84); // T
    this.#ascii(TWO[Math.floor(secs / 3600)]!);
    this.#byte(58); // :
    this.#ascii(TWO[Math.floor(secs / 60) % 60]!);
    this.#byte(58);
    this.#ascii(TWO[secs % 60]!);
  }

  #row(s: ModelState): void {
    const rng = this.#rng;
    const i = this.#emitted;
    const createdMs = this.#startMs + Math.floor(i * this.#msPerRow);
    this.#uuid(s.index, s.generated);
    this.#byte(TAB);
    this.#timestamp(createdMs);
    this.#byte(TAB);
    this.#timestamp(createdMs + rng.int(3_600_000));
    this.#byte(TAB);
    if (rng.chance(this.#softDeleted)) this.#timestamp(createdMs + 3_600_000 + rng.int(86_400_000));
    else this.#null();
    this.#byte(TAB);
    this.#uint(Math.floor(i / this.#rowsPerTick) + 1);
    this.#byte(TAB);
    if (rng.chance(this.#devicePushed)) {
      this.#ascii('device-');
      this.#ascii(TWO[rng.int(64)]!);
    } else this.#null();
    for (const c of s.columns) {
      this.#byte(TAB);
      this.#value(c, createdMs);
    }
    this.#byte(NEWLINE);
  }

  #value(c: ColumnState, createdMs: number): void {
    const rng = this.#rng;
    const col = c.column;
    if (col.nullFraction && rng.chance(col.nullFraction)) return this.#null();
    if (c.values) {
      const v = c.values[rng.int(c.values.length)]!;
      v.copy(this.#b, this.#p);
      this.#p += v.length;
      return;
    }
    switch (col.type) {
      case 'uuid': {
        if (!c.parent) return this.#uuid(255, rng.uint32());
        const n = c.parent.generated;
        if (n === 0) return this.#null();
        // Mostly recent parents: notes are written on this week's encounters, not on 2020's.
        const r = rng.next();
        return this.#uuid(c.parent.index, n - 1 - Math.floor(n * r * r * r));
      }
      case 'text': {
        const target = col.textLength ?? 24;
        const len = Math.max(1, Math.round(target * (0.5 + rng.next())));
        const start = rng.int(this.#corpus.length - len);
        this.#corpus.copy(this.#b, this.#p, start, start + len);
        this.#p += len;
        return;
      }
      case 'integer':
      case 'bigint':
        return this.#uint(rng.int(200));
      case 'numeric': {
        const v = rng.int(20_000);
        this.#uint(Math.floor(v / 100));
        this.#byte(46); // .
        return this.#ascii(TWO[v % 100]!);
      }
      case 'boolean':
        return this.#byte(rng.chance(0.5) ? 116 : 102); // t / f
      case 'date':
        return this.#ascii(dayString(Math.floor(createdMs / 86_400_000) - rng.int(80 * 365)));
      case 'timestamp':
      case 'timestamptz':
        return this.#timestamp(createdMs + rng.int(7 * 86_400_000));
      case 'jsonb':
        this.#ascii('{"value": ');
        this.#uint(rng.int(1000));
        return this.#ascii(rng.chance(0.5) ? ', "enabled": true}' : ', "enabled": false}');
      default:
        return this.#null(); // a type the generator has no values for (registries drafted from a live database)
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
