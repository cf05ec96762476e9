import { formatCount, formatSize } from '../../plan/describe.js';
import type { Rates } from '../estimates.js';
import { UNRESOLVED_NAME_PREFIX } from '../extract/sql-text.js';
import type { SchemaModel, TableModel } from '../schema/model.js';
import type { SizeMap, TableSize } from '../sizes.js';
import type { ExtractedFile, ExtractedStatement, LintLevel, RuleId } from '../types.js';

/*
 * What a rule sees: one statement, its file, the schema as it was just before the statement, and the
 * sizes; and what it returns: hits, which the engine places (file, line, column) and filters (ignores,
 * configured levels).
 */

/** A node of libpg-query's parse tree. */
export type Ast = Record<string, unknown>;
/** A relation as the parse tree names it (`RangeVar`). */
export type RangeVar = { schemaname?: string; relname?: string; alias?: { aliasname?: string } };

/** The linter's settings, resolved. */
export interface RuleSettings {
  /** From this many rows a table is large: the size-dependent rules report errors. */
  largeTableRows: number;
  rates: Rates;
  /** Record types still in the registry (`--models`); empty: the live-type rule has nothing to check. */
  liveTypes: ReadonlySet<string>;
  /** The runner sets lock_timeout itself (no warning for its absence). */
  lockTimeoutSetByRunner: boolean;
  /** `index estimate`'s measured predictions on the live database, by `file:offset` of the CREATE INDEX. */
  measuredIndexBuilds?: ReadonlyMap<string, MeasuredBuild>;
}

/** What `index estimate` predicted on the live database: bytes, and the build time when it could measure. */
export interface MeasuredBuild { indexBytes: number; buildMs: number | null }

/** What the engine tracks through one file (and phase) while it lints it. */
export interface FileState {
  lockTimeoutSet: boolean;
  /** Inside an explicit BEGIN … COMMIT of the file's own. */
  explicitTransaction: boolean;
  /** Tables created by this file: new and empty. */
  createdHere: Set<string>;
}

/** What a statement rule is given. */
export interface RuleContext {
  stmt: ExtractedStatement;
  file: ExtractedFile;
  model: SchemaModel;
  sizes: SizeMap;
  settings: RuleSettings;
  state: FileState;
}

/** One problem a rule found in the statement. */
export interface RuleHit {
  rule: RuleId;
  level: LintLevel;
  table: string | null;
  message: string;
  fix: string | null;
  evidence: Record<string, string | number | boolean | null>;
}

/** A statement rule: the problems it finds in `ctx.stmt`. */
export type Rule = (ctx: RuleContext) => RuleHit[];

/** A table's size as the rules weigh it. */
export interface Sized {
  key: string;
  table: TableModel | undefined;
  /**
   * `new`: created by this file (empty); `unknown`: no size from any source; `unresolved`: the name is an
   * interpolation the extractor could not resolve (which table it is, nobody knows: no size-based finding).
   */
  state: 'new' | 'large' | 'small' | 'unknown' | 'unresolved';
  size: TableSize | null;
}

/** Looks up a relation's table and size. */
export function sized(ctx: RuleContext, rel: RangeVar | undefined): Sized {
  const table = ctx.model.table(rel);
  const key = table ? `${table.schema}.${table.name}` : `${rel?.schemaname ?? 'public'}.${rel?.relname ?? ''}`;
  if (ctx.state.createdHere.has(key)) return { key, table, state: 'new', size: null };
  if (rel?.relname?.startsWith(UNRESOLVED_NAME_PREFIX)) return { key, table, state: 'unresolved', size: null };
  const size = ctx.sizes.get(key) ?? null;
  if (!size) return { key, table, state: 'unknown', size: null };
  return { key, table, state: size.rows >= ctx.settings.largeTableRows ? 'large' : 'small', size };
}

/** The level a size-dependent rule reports at: its own on a large table, a warning when the size is unknown, none otherwise. */
export function levelFor(s: Sized, level: LintLevel = 'error'): LintLevel | null {
  if (s.state === 'large') return level;
  if (s.state === 'unknown') return 'warning';
  return null;
}

/** `58 M rows, 7.9 GB` or `size unknown (…)`. */
export function sizeWords(s: Sized): string {
  if (!s.size) return 'size unknown: pass --database-url, --stats or --assume-rows';
  const { rows, bytes, bytesEstimated, source } = s.size;
  return `${formatCount(rows)} rows, ${bytesEstimated ? '~' : ''}${formatSize(bytes)}${source === 'assumed' ? ' (assumed)' : ''}`;
}

/** 850 ms, 12 s, 4 min, 3.5 h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The first (only) key of a statement node: `['DeleteStmt', {…}]`. */
export function stmtKind(ast: Ast): [string, Ast] {
  const [k, v] = Object.entries(ast)[0] ?? ['', {}];
  return [k, v as Ast];
}

/** Visits every node of a parse tree (objects with a single node-type key are passed as `(type, node)`). */
export function walkNodes(node: unknown, visit: (type: string, n: Ast, parents: string[]) => void, parents: string[] = []): void {
  if (Array.isArray(node)) { for (const x of node) walkNodes(x, visit, parents); return; }
  if (node === null || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node)) {
    if (v === null || typeof v !== 'object') continue;
    if (/^[A-Z]/.test(k) && !Array.isArray(v)) {
      visit(k, v as Ast, parents);
      walkNodes(v, visit, [...parents, k]);
    } else walkNodes(v, visit, parents);
  }
}
