import type pg from 'pg';
import { SyncLookupError, toSyncLookupError } from '../db/errors.js';
import { createIndexSql } from '../db/index-ddl.js';
import { RECORD_TYPE_INDEX } from '../schema/sync-lookup.js';
import { conditionConjuncts, expressionColumns, loadSqlParser, type ColumnName, type Conjunct } from './expr.js';

/*
 * The one plan reader of sync-lookup: runs EXPLAIN (FORMAT JSON), gathers what the classifier needs to
 * know about the tables and indexes a plan touches (sizes, index columns, distinct counts), classifies
 * every node and says the verdict in words. The classifier is pure: everything it knows about the
 * database comes in a PlanContext, so saved EXPLAIN documents can be judged without a server.
 */

/** One node of `EXPLAIN (FORMAT JSON)`, keys exactly as PostgreSQL prints them. */
export interface PlanNode {
  'Node Type': string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Operation'?: string;
  'Strategy'?: string;
  'Relation Name'?: string;
  'Schema'?: string;
  'Alias'?: string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  'Filter'?: string;
  'Startup Cost': number;
  'Total Cost': number;
  'Plan Rows': number;
  'Plan Width': number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  /** PostgreSQL 18: B-tree descents (more than 1 per loop for a skip scan or an `= ANY` list). */
  'Index Searches'?: number;
  'Heap Fetches'?: number;
  'Exact Heap Blocks'?: number;
  'Lossy Heap Blocks'?: number;
  'Sort Key'?: string[];
  'Sort Method'?: string;
  'Sort Space Used'?: number;
  'Sort Space Type'?: string;
  'Hash Batches'?: number;
  'Original Hash Batches'?: number;
  'Peak Memory Usage'?: number;
  'HashAgg Batches'?: number;
  'Disk Usage'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  'Temp Read Blocks'?: number;
  'Temp Written Blocks'?: number;
  'Plans'?: PlanNode[];
  [key: string]: unknown;
}

/** The document `EXPLAIN (FORMAT JSON)` returns: a one-element array. */
export type ExplainDocument = {
  'Plan': PlanNode;
  'Planning Time'?: number;
  'Execution Time'?: number;
  [key: string]: unknown;
}[];

/** What the classifier knows about one table a plan reads. */
export interface PlanTableInfo {
  schema: string;
  name: string;
  /** Row estimate (`reltuples`, or live tuples when the table was never analyzed). */
  rows: number;
  pages: number;
  bytes: number;
  /** Rows changed since the last (auto)analyze; null when unknown. */
  modsSinceAnalyze: number | null;
  lastAnalyzedAt: string | null;
  /** Column names (to keep suggested indexes to real columns). */
  columns: string[];
  /** Per column: absolute distinct count from `pg_stats` (negative `n_distinct` scaled by rows). */
  distinct: Record<string, number>;
}

/** What the classifier knows about one index. */
export interface PlanIndexInfo {
  schema: string;
  name: string;
  table: string;
  /** Key columns in order; an expression key is its text, e.g. `lower((email)::text)`. */
  columns: string[];
  include: string[];
  unique: boolean;
  primary: boolean;
  /** False for the leftover of a failed concurrent build. */
  valid: boolean;
  method: string;
  predicate: string | null;
  bytes: number;
  pages: number;
  /** Distinct values of the leading key column (from `pg_stats`), null when unknown. */
  leadingDistinct: number | null;
  definition: string;
}

/**
 * Everything the pure classifier needs to know about the database, keyed by the names EXPLAIN prints
 * (`Relation Name`, `Index Name`). Build it with {@link readPlanContext}, or by hand in tests.
 */
export interface PlanContext {
  /** `server_version_num`, e.g. 180004: skip scans exist from 180000. */
  serverVersionNum: number;
  tables: Record<string, PlanTableInfo>;
  indexes: Record<string, PlanIndexInfo>;
}

/** Tuning of the verdicts. */
export interface ClassifyOptions {
  /** A table with at least this many rows is large: reading all of it is a finding. Default 100 000. */
  largeTableRows?: number;
  /** The query reads the whole table by design (e.g. verify): an unfiltered full read is ok. */
  fullScanExpected?: boolean;
  /** Indexes to propose when one leading with the same column is missing. Default: the project's record_type index. */
  recommendedIndexes?: { schema?: string; table: string; name: string; columns: string[] }[];
  /** Leading-column distinct count up to which a PostgreSQL 18 skip scan is reported as a skip scan. Default 1 000. */
  skipScanMaxDistinct?: number;
}

/** Severity of a finding and of a verdict. */
export type Severity = 'ok' | 'warn' | 'fail';

/** What kind of access or problem a plan node shows. */
export type FindingKind =
  | 'seq_scan' | 'full_index_scan' | 'skip_scan' | 'index_range_scan' | 'index_scan' | 'bitmap_scan'
  | 'sort_spill' | 'hash_spill' | 'misestimate';

/** The classification of one plan node. */
export interface PlanFinding {
  /** Position in the tree: child indexes from the root, e.g. "0.1" (root is ""). */
  path: string;
  nodeType: string;
  kind: FindingKind;
  severity: Severity;
  relation: string | null;
  index: string | null;
  /** One line, in words. */
  reason: string;
  /** The exact statement or setting that fixes it, when there is one. */
  fix: string | null;
  evidence: Record<string, string | number | boolean | null>;
}

/** The verdict on one statement's plan. */
export interface PlanVerdict {
  verdict: Severity;
  /** One line: the worst finding's reason (or what the plan does, when ok). */
  reason: string;
  fix: string | null;
  /** The plan in a few words, for reports. */
  description: string;
  analyzed: boolean;
  findings: PlanFinding[];
}

/** One executed EXPLAIN. */
export interface ExplainResult {
  sql: string;
  params: unknown[];
  analyzed: boolean;
  plan: PlanNode;
  planningMs: number | null;
  executionMs: number | null;
  document: ExplainDocument;
}

/** Options of {@link explainStatement}. */
export interface ExplainOptions {
  /** Execute the statement (EXPLAIN ANALYZE, BUFFERS); it runs inside a transaction that is rolled back. */
  analyze?: boolean;
  /** Settings for this statement only (`set_config(name, value, true)`), e.g. `{ work_mem: '64kB' }`. */
  settings?: Record<string, string>;
  /** The client is already inside a transaction: use a savepoint instead of BEGIN/ROLLBACK. */
  inTransaction?: boolean;
}

/**
 * Runs `EXPLAIN (FORMAT JSON[, ANALYZE, BUFFERS])` for one statement with `$n` parameters. Always inside
 * a transaction (or savepoint) that is rolled back, so an analyzed DELETE/UPDATE/INSERT changes nothing.
 *
 * @example
 * const r = await explainStatement(client, 'delete from sync_lookup where record_type = $1', ['notes'], { analyze: true });
 * console.log(r.plan['Node Type'], r.executionMs);
 */
export async function explainStatement(
  client: pg.ClientBase, sql: string, params: unknown[] = [], options: ExplainOptions = {},
): Promise<ExplainResult> {
  const analyze = !!options.analyze;
  const begin = options.inTransaction ? 'savepoint sync_lookup_explain' : 'begin';
  const rollback = options.inTransaction ? 'rollback to savepoint sync_lookup_explain' : 'rollback';
  const prefix = `EXPLAIN (FORMAT JSON${analyze ? ', ANALYZE, BUFFERS' : ''}) `;
  await client.query(begin);
  try {
    for (const [name, value] of Object.entries(options.settings ?? {})) {
      await client.query('select set_config($1, $2, true)', [name, value]);
    }
    const { rows } = await client.query<{ 'QUERY PLAN': ExplainDocument | string }>(`${prefix}${sql}`, params);
    const raw = rows[0]?.['QUERY PLAN'];
    const document = (typeof raw === 'string' ? JSON.parse(raw) : raw) as ExplainDocument | undefined;
    const top = document?.[0];
    if (!document || !top) throw new SyncLookupError('explain_failed', 'EXPLAIN returned no plan', { sql: sql.slice(0, 500) });
    return {
      sql, params, analyzed: analyze, plan: top.Plan, document,
      planningMs: top['Planning Time'] ?? null,
      executionMs: top['Execution Time'] ?? null,
    };
  } catch (err) {
    const e = toSyncLookupError(err, { sql: sql.slice(0, 500) });
    // PostgreSQL counts the error position from the start of what it received: make it the caller's.
    if (typeof e.details.position === 'number') e.details.position = Math.max(1, e.details.position - prefix.length);
    throw e;
  } finally {
    await client.query(rollback).catch(() => {});
    if (options.inTransaction) await client.query('release savepoint sync_lookup_explain').catch(() => {});
  }
}

/** Every node of a plan with its path, depth-first (init plans and sub-plans included). */
export function planNodes(plan: PlanNode): { node: PlanNode; path: string; parent: PlanNode | null }[] {
  const out: { node: PlanNode; path: string; parent: PlanNode | null }[] = [];
  const walk = (node: PlanNode, path: string, parent: PlanNode | null) => {
    out.push({ node, path, parent });
    (node.Plans ?? []).forEach((child, i) => walk(child, path === '' ? String(i) : `${path}.${i}`, node));
  };
  walk(plan, '', null);
  return out;
}

function rootOf(input: PlanNode | ExplainDocument | ExplainResult): PlanNode {
  if (Array.isArray(input)) {
    const top = input[0];
    if (!top) throw new SyncLookupError('invalid_plan', 'empty EXPLAIN document');
    return top.Plan;
  }
  if ('plan' in input && 'document' in input) return (input as ExplainResult).plan;
  return input as PlanNode;
}

/**
 * Reads from the catalog what {@link classifyPlan} needs about every table and index the plans name:
 * row and page estimates, sizes, index key columns, validity, distinct counts of leading columns.
 *
 * @example
 * const r = await explainStatement(client, sql, params);
 * const context = await readPlanContext(client, [r.plan]);
 * const verdict = await classifyPlan(r.plan, context);
 */
export async function readPlanContext(client: pg.ClientBase, plans: (PlanNode | ExplainDocument | ExplainResult)[]): Promise<PlanContext> {
  const names = new Map<string, { schema: string | null; name: string }>();
  for (const p of plans) {
    for (const { node } of planNodes(rootOf(p))) {
      const rel = node['Relation Name'];
      if (rel) names.set(`${node.Schema ?? ''}.${rel}`, { schema: node.Schema ?? null, name: rel });
      const idx = node['Index Name'];
      // A bitmap index scan names no relation: find its table through the index.
      if (idx) names.set(`idx:${node.Schema ?? ''}.${idx}`, { schema: node.Schema ?? null, name: idx });
    }
  }
  const { rows: v } = await client.query<{ n: string }>(`select current_setting('server_version_num') as n`);
  const context: PlanContext = { serverVersionNum: Number(v[0]?.n ?? 0), tables: {}, indexes: {} };
  if (names.size === 0) return context;
  const refs = [...names.values()];
  const { rows: tables } = await client.query<{
    oid: number; schema: string; name: string; rows: number; pages: number; bytes: string; mods: string | null;
    analyzed: Date | null; columns: string[];
  }>(
    `with refs as (
       select to_regclass(case when s is null then quote_ident(r) else quote_ident(s) || '.' || quote_ident(r) end) as oid
         from unnest($1::text[], $2::text[]) as u(s, r)),
     rels as (
       select distinct coalesce(i.indrelid, c.oid) as oid
         from refs join pg_class c on c.oid = refs.oid left join pg_index i on i.indexrelid = c.oid)
     select c.oid::int as oid, n.nspname as schema, c.relname as name,
            (case when c.reltuples >= 0 then c.reltuples else coalesce(s.n_live_tup, 0) end)::float8 as rows,
            c.relpages::int as pages, pg_table_size(c.oid)::text as bytes, s.n_mod_since_analyze::text as mods,
            greatest(s.last_analyze, s.last_autoanalyze) as analyzed,
            array(select a.attname::text from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns
       from rels join pg_class c on c.oid = rels.oid
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_stat_all_tables s on s.relid = c.oid`,
    [refs.map((r) => r.schema), refs.map((r) => r.name)]);
  if (tables.length === 0) return context;
  const { rows: stats } = await client.query<{ oid: number; column: string; n_distinct: number }>(
    `select c.oid::int as oid, s.attname::text as column, s.n_distinct::float8 as n_distinct
       from pg_stats s
       join pg_namespace n on n.nspname = s.schemaname
       join pg_class c on c.relnamespace = n.oid and c.relname = s.tablename
      where c.oid = any($1::oid[])
      order by s.inherited`,
    [tables.map((t) => t.oid)]);
  for (const t of tables) {
    const distinct: Record<string, number> = {};
    for (const s of stats) {
      if (s.oid !== t.oid || s.column in distinct) continue;
      distinct[s.column] = s.n_distinct >= 0 ? s.n_distinct : Math.round(-s.n_distinct * t.rows);
    }
    context.tables[t.name] = {
      schema: t.schema, name: t.name, rows: Math.round(t.rows), pages: t.pages, bytes: Number(t.bytes),
      modsSinceAnalyze: t.mods === null ? null : Number(t.mods),
      lastAnalyzedAt: t.analyzed ? t.analyzed.toISOString() : null,
      columns: t.columns, distinct,
    };
  }
  const { rows: indexes } = await client.query<{
    schema: string; name: string; table: string; keys: number; cols: string[]; unique: boolean; primary: boolean;
    valid: boolean; method: string; predicate: string | null; bytes: string; pages: number; definition: string;
  }>(
    `select n.nspname as schema, ic.relname as name, t.relname as table, i.indnkeyatts::int as keys,
            array(select case when k.attnum <> 0 then a.attname::text else pg_get_indexdef(i.indexrelid, k.ord::int, true) end
                    from unnest(i.indkey) with ordinality k(attnum, ord)
                    left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                   order by k.ord) as cols,
            i.indisunique as unique, i.indisprimary as primary, i.indisvalid and i.indisready as valid,
            am.amname as method, pg_get_expr(i.indpred, i.indrelid, true) as predicate,
            pg_relation_size(ic.oid)::text as bytes, ic.relpages::int as pages, pg_get_indexdef(i.indexrelid) as definition
       from pg_index i
       join pg_class ic on ic.oid = i.indexrelid
       join pg_namespace n on n.oid = ic.relnamespace
       join pg_class t on t.oid = i.indrelid
       join pg_am am on am.oid = ic.relam
      where i.indrelid = any($1::oid[])`,
    [tables.map((t) => t.oid)]);
  for (const i of indexes) {
    const columns = i.cols.slice(0, i.keys);
    const leading = columns[0];
    const table = context.tables[i.table];
    context.indexes[i.name] = {
      schema: i.schema, name: i.name, table: i.table, columns, include: i.cols.slice(i.keys),
      unique: i.unique, primary: i.primary, valid: i.valid, method: i.method, predicate: i.predicate,
      bytes: Number(i.bytes), pages: i.pages,
      leadingDistinct: leading !== undefined && table ? table.distinct[leading] ?? null : null,
      definition: i.definition,
    };
  }
  return context;
}

/** Formats a row count for people: 812, 150 k, 5.0 M. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)} k`;
  return String(Math.round(n));
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} kB`;
  return `${bytes} B`;
}

const SCAN_TYPES = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan', 'Bitmap Index Scan']);
const MODIFY = 'ModifyTable';
const JOIN_TYPES = new Set(['Hash Join', 'Merge Join', 'Nested Loop', 'Hash']);

/**
 * The plan in a few words, for reports: its scans (with the table's size for sequential scans) and
 * any spill to disk.
 *
 * @example
 * describePlan(plan, context) // 'Seq Scan on sync_lookup (5.0 M rows)'
 */
export function describePlan(input: PlanNode | ExplainDocument | ExplainResult, context?: PlanContext): string {
  const root = rootOf(input);
  const parts: string[] = [];
  for (const { node, fraction } of walkWithFractions(root)) {
    const type = node['Node Type'];
    const rel = node['Relation Name'];
    const idx = node['Index Name'];
    if (type === 'Seq Scan' && rel) {
      const tableRows = context?.tables[rel]?.rows ?? node['Plan Rows'];
      if (isAnalyzed(node)) {
        const read = ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1);
        parts.push(`Seq Scan on ${rel} (${formatCount(read)} rows read)`);
      } else if (fraction < 0.5) {
        parts.push(`Seq Scan on ${rel} (stops after ~${formatCount(Math.max(1, tableRows * fraction))} of ${formatCount(tableRows)} rows)`);
      } else parts.push(`Seq Scan on ${rel} (${formatCount(tableRows)} rows)`);
    } else if ((type === 'Index Scan' || type === 'Index Only Scan') && idx) {
      parts.push(`${type}${node['Scan Direction'] === 'Backward' ? ' Backward' : ''} using ${idx}`);
    } else if (type === 'Bitmap Heap Scan' && rel) {
      const used = new Set((node.Plans ?? []).flatMap((c) => planNodes(c).map((n) => n.node['Index Name']).filter((n): n is string => !!n)));
      parts.push(`Bitmap Heap Scan on ${rel}${used.size ? ` (${[...used].join(', ')})` : ''}`);
    } else if ((type === 'Sort' || type === 'Incremental Sort') && node['Sort Space Type'] === 'Disk') {
      parts.push(`Sort spilling ${formatSize((node['Sort Space Used'] ?? 0) * 1024)} to disk`);
    } else if ((type === 'Hash' && (node['Hash Batches'] ?? 1) > 1) || (type === 'Aggregate' && (node['HashAgg Batches'] ?? 1) > 1)) {
      parts.push(`${type === 'Hash' ? 'Hash' : 'HashAggregate'} spilling to disk (${node['Hash Batches'] ?? node['HashAgg Batches']} batches)`);
    } else if (rel && !SCAN_TYPES.has(type) && type !== MODIFY) {
      parts.push(`${type} on ${rel}`);
    }
  }
  return parts.length ? parts.join(' + ') : root['Node Type'];
}

interface Walked {
  node: PlanNode;
  path: string;
  parent: Walked | null;
  /** Share of this node's full output its ancestors are expected to consume (row goals: LIMIT, EXISTS). */
  fraction: number;
  /** Alias of the relation this node's conditions refer to (a bitmap index scan takes its heap scan's). */
  alias: string | null;
  /** A parallel-aware node's `Plan Rows` is per process: multiply by this for the whole (PostgreSQL's divisor). */
  parallelDivisor: number;
}

function walkWithFractions(root: PlanNode): Walked[] {
  const out: Walked[] = [];
  const walk = (node: PlanNode, path: string, parent: Walked | null) => {
    let fraction = 1;
    if (parent) {
      // A parent that costs less than its child stops reading early (LIMIT, an EXISTS init plan, a
      // merge join): the planner costs a row goal as a share of the child's run cost.
      const childCost = node['Total Cost'];
      const ratio = childCost > 0 ? Math.min(1, parent.node['Total Cost'] / childCost) : 1;
      fraction = parent.fraction * ratio;
    }
    const alias = node.Alias ?? node['Relation Name'] ?? (node['Node Type'] === 'Bitmap Index Scan' ? parent?.alias ?? null : null);
    let parallelDivisor = 1;
    if (node['Parallel Aware'] === true) {
      for (let p = parent; p; p = p.parent) {
        const workers = p.node['Workers Planned'];
        if (typeof workers === 'number') {
          // costsize.c: the leader contributes 1 - 0.3 × workers of a worker's share while that is positive.
          parallelDivisor = workers + Math.max(0, 1 - 0.3 * workers);
          break;
        }
      }
    }
    const w: Walked = { node, path, parent, fraction, alias: alias ?? null, parallelDivisor };
    out.push(w);
    (node.Plans ?? []).forEach((child, i) => walk(child, path === '' ? String(i) : `${path}.${i}`, w));
  };
  walk(root, '', null);
  return out;
}

const isAnalyzed = (node: PlanNode) => node['Actual Loops'] !== undefined;

function conjunctsOf(text: string | undefined): Conjunct[] {
  return text ? conditionConjuncts(text) ?? [] : [];
}

/** Columns of `alias`'s relation that conjuncts bound, equality ones first, then the first range one. */
function candidateColumns(conjuncts: Conjunct[], alias: string | null, relation: string, table: PlanTableInfo | undefined): string[] {
  const ownColumn = (c: { qualifier: string | null; column: string }) =>
    (c.qualifier === null || c.qualifier === alias || c.qualifier === relation) &&
    (!table || table.columns.length === 0 || table.columns.includes(c.column));
  const eq: string[] = [];
  const range: string[] = [];
  for (const c of conjuncts) {
    const cols = c.bound.filter(ownColumn).map((x) => x.column);
    // A condition between two of the table's own columns (a = b) is not something an index bound serves.
    if (cols.length !== 1 || c.columns.filter(ownColumn).length !== 1) continue;
    const col = cols[0]!;
    if (c.kind === 'eq' && !eq.includes(col)) eq.push(col);
    else if (c.kind === 'range' && !range.includes(col)) range.push(col);
  }
  const out = [...eq];
  const firstRange = range.find((r) => !eq.includes(r));
  if (firstRange) out.push(firstRange);
  return out;
}

function indexName(table: string, columns: string[]): string {
  const name = `${table}_${columns.join('_')}`;
  // PostgreSQL truncates identifiers to 63 bytes; do it ourselves so the statement says the real name.
  return Buffer.from(name).subarray(0, 63).toString().replace(/\uFFFD+$/, '');
}

/** The fix for a filter no index serves: an existing INVALID index to rebuild, or the index to create. */
function missingIndexFix(
  relation: string, columns: string[], context: PlanContext, options: ClassifyOptions,
): { fix: string | null; reason: string } | null {
  if (columns.length === 0) return null;
  const table = context.tables[relation];
  const schema = table?.schema ?? 'public';
  const leading = columns[0]!;
  const sameTable = Object.values(context.indexes).filter((i) => i.table === relation && i.schema === schema);
  const invalid = sameTable.find((i) => !i.valid && i.columns[0] === leading);
  if (invalid) {
    return {
      fix: `REINDEX INDEX CONCURRENTLY ${quoteName(invalid.schema)}.${quoteName(invalid.name)}`,
      reason: `index ${invalid.name} leads with ${leading} but is INVALID (a failed concurrent build)`,
    };
  }
  const usable = sameTable.find((i) => i.valid && i.columns[0] === leading && i.predicate === null);
  if (usable) {
    // The index exists: the plan chose not to use it. Stale statistics, or a row goal (LIMIT, a cursor
    // planned for its first cursor_tuple_fraction of rows) that made an ordered walk of another index look cheaper.
    const stale = table !== undefined && table.modsSinceAnalyze !== null && table.modsSinceAnalyze > 0.1 * Math.max(1, table.rows);
    return {
      fix: stale ? `ANALYZE ${quoteName(schema)}.${quoteName(relation)}` : null,
      reason: `index ${usable.name} leads with ${leading} but this plan does not use it` +
        (stale ? ' (statistics are stale)' : ' (a row goal such as LIMIT or a cursor\'s cursor_tuple_fraction made another path look cheaper)'),
    };
  }
  const recommendations: NonNullable<ClassifyOptions['recommendedIndexes']> = options.recommendedIndexes ?? [RECORD_TYPE_INDEX];
  const recommended = recommendations
    .find((r) => r.table === relation && r.columns[0] === leading && (r.schema ?? 'public') === schema);
  if (recommended) {
    return { fix: createIndexSql({ ...recommended, schema }), reason: `no index leads with ${leading}` };
  }
  return {
    fix: createIndexSql({ schema, table: relation, name: indexName(relation, columns), columns }),
    reason: `no index leads with ${leading}`,
  };
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function severityRank(s: Severity): number {
  return s === 'fail' ? 2 : s === 'warn' ? 1 : 0;
}

/**
 * Classifies every node of a plan and gives the statement a verdict: full sequential scans of large
 * tables, full index scans (an index used without a bound on its leading column, such as an `Index Cond`
 * on `record_type` over the unique `(record_id, record_type)` index), PostgreSQL 18 skip scans, index
 * range scans, bitmap scans, sorts and hashes spilling to disk, and (analyzed plans) row estimates off by
 * more than 10x. Pure: everything about the database comes from `context`.
 *
 * @example
 * const r = await explainStatement(client, 'delete from sync_lookup where record_type = $1', ['notes']);
 * const v = await classifyPlan(r, await readPlanContext(client, [r]));
 * if (v.verdict === 'fail') console.log(v.reason, v.fix);
 */
export async function classifyPlan(
  input: PlanNode | ExplainDocument | ExplainResult, context: PlanContext, options: ClassifyOptions = {},
): Promise<PlanVerdict> {
  await loadSqlParser();
  const root = rootOf(input);
  const large = options.largeTableRows ?? 100_000;
  const walked = walkWithFractions(root);
  const analyzed = walked.some((w) => isAnalyzed(w.node));
  const outputNode = root['Node Type'] === MODIFY ? root.Plans?.[0] ?? root : root;
  const queryRows = analyzed ? (outputNode['Actual Rows'] ?? 0) : outputNode['Plan Rows'];
  const findings: PlanFinding[] = [];
  const misestimated = new Set<Walked>();

  for (const w of walked) {
    const { node } = w;
    const type = node['Node Type'];
    const base: MakeFinding = (kind, severity, reason, fix, evidence, relation = node['Relation Name'] ?? null) =>
      ({ path: w.path, nodeType: type, kind, severity, relation, index: node['Index Name'] ?? null, reason, fix, evidence });

    if (type === 'Seq Scan' && node['Relation Name']) findings.push(classifySeqScan(w, base));
    else if ((type === 'Index Scan' || type === 'Index Only Scan' || type === 'Bitmap Index Scan') && node['Index Name']) {
      findings.push(classifyIndexScan(w, base));
    } else if (type === 'Bitmap Heap Scan') {
      const lossy = node['Lossy Heap Blocks'] ?? 0;
      findings.push(lossy > 0
        ? base('bitmap_scan', 'warn', `Bitmap Heap Scan on ${node['Relation Name']} went lossy (${lossy} blocks rechecked row by row): the bitmap did not fit in work_mem`,
          `SET work_mem = '${suggestWorkMem(4096)}'`, { lossyHeapBlocks: lossy, exactHeapBlocks: node['Exact Heap Blocks'] ?? null })
        : base('bitmap_scan', 'ok', `Bitmap Heap Scan on ${node['Relation Name']}`, null,
          { planRows: node['Plan Rows'], exactHeapBlocks: node['Exact Heap Blocks'] ?? null }));
    }
    if ((type === 'Sort' || type === 'Incremental Sort') && node['Sort Space Type'] === 'Disk') {
      const kb = node['Sort Space Used'] ?? 0;
      findings.push(base('sort_spill', 'warn',
        `${type} spilled ${formatSize(kb * 1024)} to disk (${node['Sort Method'] ?? 'external'}): work_mem is too small for it`,
        `SET work_mem = '${suggestWorkMem(kb)}'  -- for this session or statement; or an index in ${(node['Sort Key'] ?? []).join(', ')} order avoids the sort`,
        { sortSpaceKb: kb, sortMethod: node['Sort Method'] ?? null }, null));
    }
    const hashBatches = node['Hash Batches'] ?? 1;
    if (type === 'Hash' && hashBatches > 1) {
      const kb = (node['Peak Memory Usage'] ?? 0) * hashBatches;
      findings.push(base('hash_spill', 'warn', `Hash spilled to disk in ${hashBatches} batches (originally planned ${node['Original Hash Batches'] ?? '?'})`,
        `SET work_mem = '${suggestWorkMem(kb)}'`, { hashBatches, originalHashBatches: node['Original Hash Batches'] ?? null, peakMemoryKb: node['Peak Memory Usage'] ?? null }, null));
    }
    const aggBatches = node['HashAgg Batches'] ?? 1;
    if (type === 'Aggregate' && (aggBatches > 1 || (node['Disk Usage'] ?? 0) > 0)) {
      const kb = (node['Peak Memory Usage'] ?? 0) + (node['Disk Usage'] ?? 0);
      findings.push(base('hash_spill', 'warn', `HashAggregate spilled ${formatSize((node['Disk Usage'] ?? 0) * 1024)} to disk in ${aggBatches} batches`,
        `SET work_mem = '${suggestWorkMem(kb)}'`, { hashAggBatches: aggBatches, diskUsageKb: node['Disk Usage'] ?? null }, null));
    }
    if (analyzed && isMisestimated(w)) misestimated.add(w);
  }

  // Report a misestimate where it starts: a node whose own children estimated well (the error then
  // propagates upwards and every ancestor repeats it).
  for (const w of misestimated) {
    if ((w.node.Plans ?? []).some((c) => [...misestimated].some((m) => m.node === c))) continue;
    findings.push(misestimateFinding(w));
  }

  findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity));
  const worst = findings[0];
  const verdict: Severity = worst?.severity ?? 'ok';
  const description = describePlan(root, context);
  const problems = findings.filter((f) => f.severity !== 'ok').length;
  return {
    verdict,
    reason: verdict === 'ok' || !worst ? description : `${worst.reason}${problems > 1 ? ` (+${problems - 1} more)` : ''}`,
    fix: verdict === 'ok' ? null : worst?.fix ?? null,
    description,
    analyzed,
    findings,
  };

  function rowsRead(w: Walked, entries: number): number {
    const n = w.node;
    if (isAnalyzed(n)) return ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1);
    return entries * w.fraction;
  }

  function classifySeqScan(w: Walked, base: MakeFinding): PlanFinding {
    const n = w.node;
    const rel = n['Relation Name']!;
    const table = context.tables[rel];
    const tableRows = table?.rows ?? n['Plan Rows'];
    const read = rowsRead(w, tableRows);
    const out = isAnalyzed(n) ? (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1) : n['Plan Rows'] * w.parallelDivisor * w.fraction;
    const evidence = { tableRows, rowsRead: Math.round(read), rowsOut: Math.round(out), filter: n.Filter ?? null, tableBytes: table?.bytes ?? null };
    if (tableRows < large) return base('seq_scan', 'ok', `Seq Scan on ${rel}: small table (${formatCount(tableRows)} rows)`, null, evidence);
    if (read < large / 10) return base('seq_scan', 'ok', `Seq Scan on ${rel} stops after ~${formatCount(read)} rows (row goal)`, null, evidence);
    if (n.Filter) {
      const selectivity = read > 0 ? out / read : 1;
      if (selectivity <= 0.3) {
        const cols = candidateColumns(conjunctsOf(n.Filter), w.alias, rel, table);
        const missing = missingIndexFix(rel, cols, context, options);
        // Without an index that could serve the filter, the finding is real but nothing simple fixes it.
        const severity: Severity = selectivity <= 0.1 && missing ? 'fail' : 'warn';
        return base('seq_scan', severity,
          `Seq Scan on ${rel} reads all ${formatCount(read)} rows to keep ~${formatCount(out)} (${(selectivity * 100).toFixed(selectivity < 0.01 ? 2 : 1)} %)` +
          (missing ? `: ${missing.reason}` : ': no index can serve this filter as written'),
          missing?.fix ?? null, { ...evidence, selectivity: round3(selectivity) });
      }
      return base('seq_scan', 'ok', `Seq Scan on ${rel} keeps ${(selectivity * 100).toFixed(0)} % of its rows: reading it all is the right plan`, null, evidence);
    }
    if (options.fullScanExpected) return base('seq_scan', 'ok', `Seq Scan on ${rel} reads the whole table by design (${formatCount(read)} rows)`, null, evidence);
    if (queryRows * 10 < read) {
      return base('seq_scan', 'fail', `Seq Scan on ${rel} reads every row (${formatCount(read)}) to return ${formatCount(queryRows)} row(s)`,
        wholeTableFix(w, rel), evidence);
    }
    return base('seq_scan', 'warn', `Seq Scan on ${rel} reads the whole table (${formatCount(read)} rows) and returns it`, null, evidence);
  }

  function classifyIndexScan(w: Walked, base: MakeFinding): PlanFinding {
    const n = w.node;
    const type = n['Node Type'];
    const name = n['Index Name']!;
    const idx = context.indexes[name];
    const rel = n['Relation Name'] ?? idx?.table ?? null;
    const table = rel ? context.tables[rel] : undefined;
    const cond = n['Index Cond'];
    const conjuncts = conjunctsOf(cond);
    const evidence: PlanFinding['evidence'] = {
      indexCond: cond ?? null, filter: n.Filter ?? null, indexBytes: idx?.bytes ?? null, tableRows: table?.rows ?? null,
      indexSearches: n['Index Searches'] ?? null,
      blocks: n['Shared Hit Blocks'] !== undefined ? (n['Shared Hit Blocks'] ?? 0) + (n['Shared Read Blocks'] ?? 0) : null,
      indexPages: idx?.pages ?? null,
    };
    if (!idx || !rel) return base('index_scan', 'ok', `${type} using ${name}`, null, evidence, rel);
    const first = idx.columns[0];
    // An expression key (lower(email)) is bounded through the columns it names.
    const leadingCols = first === undefined ? [] : table?.columns.includes(first) ? [first] : expressionColumns(first);
    const mine = (c: { qualifier: string | null }) => c.qualifier === null || c.qualifier === w.alias || c.qualifier === rel;
    const bounds = (col: string) => conjuncts.some((c) => (c.kind === 'eq' || c.kind === 'range') &&
      c.bound.some((x) => mine(x) && x.column === col));
    const leading = idx.columns[0] ?? '?';
    // An expression key is bounded when a condition compares the expression, which EXPLAIN prints
    // with the columns inside it; a plain key needs the bare column on one side.
    const exprBound = first !== undefined && !table?.columns.includes(first) && conjuncts.some((c) =>
      (c.kind === 'eq' || c.kind === 'range') && c.columns.some((x) => mine(x) && leadingCols.includes(x.column)));
    if (leadingCols.length > 0 && (exprBound || leadingCols.some(bounds))) {
      const kind = conjuncts.some((c) => c.kind === 'eq' && c.bound.some((x) => mine(x) && leadingCols.includes(x.column))) ? 'lookup' : 'range';
      return base('index_range_scan', 'ok', `${type} using ${name}: Index Cond bounds the leading column ${leading} (${kind})`, null, evidence, rel);
    }
    const tableRows = table?.rows ?? n['Plan Rows'];
    const entries = rowsRead(w, tableRows);
    const read = isAnalyzed(n) ? Math.max(entries, tableRows * w.fraction) : entries;
    evidence.indexEntriesRead = Math.round(read);
    const laterBound = idx.columns.slice(1).filter(bounds);
    // PostgreSQL 18 skips through a multicolumn index when its leading column has few distinct values:
    // one descent per value. EXPLAIN shows the same Index Cond as a full scan; the distinct count
    // (and, analyzed, "Index Searches") tells them apart.
    const searches = n['Index Searches'];
    const skipMax = options.skipScanMaxDistinct ?? 1000;
    if (context.serverVersionNum >= 180000 && laterBound.length > 0 && idx.method === 'btree' &&
      ((searches !== undefined && searches > 1 && searches <= skipMax * (n['Actual Loops'] ?? 1)) ||
        (searches === undefined && idx.leadingDistinct !== null && idx.leadingDistinct <= skipMax))) {
      const cols = candidateColumns([...conjuncts, ...conjunctsOf(n.Filter)], w.alias, rel, table);
      const missing = missingIndexFix(rel, cols, context, options);
      return base('skip_scan', tableRows < large ? 'ok' : 'warn',
        `${type} using ${name} is a skip scan: ${idx.leadingDistinct ?? '?'} distinct values of its leading column ${leading}, one descent each` +
        `${searches !== undefined ? ` (Index Searches: ${searches})` : ''}; cheap only while ${leading} stays low-cardinality`,
        missing?.fix ?? null, { ...evidence, leadingColumn: leading, leadingDistinct: idx.leadingDistinct }, rel);
    }
    if (tableRows < large) return base('index_scan', 'ok', `${type} using ${name} on a small table (${formatCount(tableRows)} rows)`, null, evidence, rel);
    if (read < large / 10) {
      return base('index_scan', 'ok', `${type} using ${name} without a bound on ${leading}, but stops after ~${formatCount(read)} entries (row goal)`, null, evidence, rel);
    }
    const cols = candidateColumns([...conjuncts, ...conjunctsOf(n.Filter)], w.alias, rel, table);
    const missing = missingIndexFix(rel, cols, context, options);
    if (!cond && !n.Filter && !(n['Node Type'] === 'Bitmap Index Scan')) {
      if (options.fullScanExpected || queryRows * 10 >= read) {
        return base('full_index_scan', options.fullScanExpected ? 'ok' : 'warn',
          `${type} using ${name} reads the whole index in order (${formatCount(read)} entries)`, null, evidence, rel);
      }
    }
    const why = cond
      ? `its Index Cond (${cond}) does not bound the leading column ${leading}`
      : n.Filter ? 'it has no Index Cond: it walks the index in order and filters every row'
        : `it has no Index Cond: it reads every entry to return ${formatCount(queryRows)} row(s)`;
    return base('full_index_scan', 'fail',
      `${type} using ${name} reads the whole index (${formatCount(read)} entries${idx.bytes ? `, ${formatSize(idx.bytes)}` : ''}): ${why}` +
      (missing ? `; ${missing.reason}` : ''),
      missing?.fix ?? (!cond && !n.Filter ? wholeTableFix(w, rel) : null),
      { ...evidence, leadingColumn: leading, leadingDistinct: idx.leadingDistinct }, rel);
  }

  function isMisestimated(w: Walked): boolean {
    const n = w.node;
    const loops = n['Actual Loops'];
    if (loops === undefined || loops === 0) return false;
    // BitmapAnd/BitmapOr always report 0 rows: they pass bitmaps, not rows.
    if (n['Node Type'] === 'BitmapAnd' || n['Node Type'] === 'BitmapOr') return false;
    const actual = n['Actual Rows'] ?? 0;
    // Under a row goal the planner expects only part of the node's rows to be produced.
    const expected = n['Plan Rows'] * Math.min(1, w.fraction * 1.0001);
    const hi = Math.max(actual, expected);
    const lo = Math.max(1, Math.min(actual, expected));
    // Small counts off by 10x (3 rows instead of 200) rarely change a plan; below 1 000 rows they are noise.
    return hi >= 1000 && hi / lo > 10;
  }

  function misestimateFinding(w: Walked): PlanFinding {
    const n = w.node;
    const rel = n['Relation Name'] ?? null;
    const table = rel ? context.tables[rel] : undefined;
    const loops = n['Actual Loops'] ?? 1;
    // Whole-node totals: Plan Rows is per loop (per process for parallel nodes), Actual Rows a per-loop average.
    const actual = (n['Actual Rows'] ?? 0) * loops;
    const expected = n['Plan Rows'] * w.fraction * (n['Parallel Aware'] === true ? w.parallelDivisor : loops);
    const ratio = Math.max(actual, expected) / Math.max(1, Math.min(actual, expected));
    let fix: string | null = null;
    if (rel && table) {
      const target = `${quoteName(table.schema)}.${quoteName(rel)}`;
      const stale = table.modsSinceAnalyze !== null && table.modsSinceAnalyze > 0.1 * Math.max(1, table.rows);
      const own = (c: ColumnName) => (c.qualifier === null || c.qualifier === w.alias || c.qualifier === rel) &&
        (table.columns.length === 0 || table.columns.includes(c.column));
      const conjuncts = [...conjunctsOf(n.Filter), ...conjunctsOf(n['Index Cond']), ...conjunctsOf(n['Recheck Cond'])]
        .filter((c) => c.columns.some(own));
      // Extended statistics on plain columns cannot model a condition on an expression (tick % 30 = 0).
      const plain = conjuncts.every((c) => c.kind !== 'other' && c.bound.some(own));
      const cols = [...new Set(conjuncts.flatMap((c) => c.bound.filter(own).map((x) => x.column)))];
      if (stale) fix = `ANALYZE ${target}`;
      else if (plain && cols.length >= 2) {
        fix = `CREATE STATISTICS ${quoteName(`${rel}_${cols.join('_')}_stats`.slice(0, 63))} (dependencies, ndistinct, mcv) ON ${cols.map(quoteName).join(', ')} FROM ${target}; ANALYZE ${target}`;
      } else if (plain && cols.length === 1) fix = `ALTER TABLE ${target} ALTER COLUMN ${quoteName(cols[0]!)} SET STATISTICS 1000; ANALYZE ${target}`;
      else if (conjuncts.length === 0) fix = `ANALYZE ${target}`;
    }
    return {
      path: w.path, nodeType: n['Node Type'], kind: 'misestimate', severity: 'warn', relation: rel, index: n['Index Name'] ?? null,
      reason: `${n['Node Type']}${rel ? ` on ${rel}` : ''}: estimated ${formatCount(expected)} rows, got ${formatCount(actual)} (${Math.round(ratio)}x off)` +
        (fix === null && rel ? ': its conditions (expressions, OR-ed or correlated columns) are beyond what per-column statistics model' : ''),
      fix,
      evidence: { estimatedRows: Math.round(expected), actualRows: Math.round(actual), loops, ratio: round3(ratio),
        modsSinceAnalyze: table?.modsSinceAnalyze ?? null },
    };
  }
}

type MakeFinding = (kind: FindingKind, severity: Severity, reason: string, fix: string | null,
  evidence: PlanFinding['evidence'], relation?: string | null) => PlanFinding;

/** The fix for reading a whole table to compute a little: for aggregates, the usual culprits. */
function wholeTableFix(w: Walked, rel: string): string | null {
  for (let p = w.parent; p; p = p.parent) {
    if (JOIN_TYPES.has(p.node['Node Type'])) return null;
    if (p.node['Node Type'] === 'Aggregate') {
      return `to test emptiness use SELECT NOT EXISTS (SELECT 1 FROM ${rel}) (reads one row); ` +
        'to find a maximum or minimum, read it from an index (ORDER BY … LIMIT 1, or max() over an indexed column)';
    }
  }
  return null;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A work_mem comfortably above `kb` (×2, rounded up to MB). */
function suggestWorkMem(kb: number): string {
  return `${Math.max(4, Math.ceil((kb * 2) / 1024))}MB`;
}
