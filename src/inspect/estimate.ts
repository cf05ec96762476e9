import { parse, scanSync } from 'libpg-query';
import type pg from 'pg';
import { withClient, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteQualified } from '../db/quote.js';
import { explainStatement, planNodes } from '../plan/plan.js';
import { assertParses } from './explain.js';
import { loadSqlParser } from '../plan/expr.js';
import { buildTimeModel, indexSizeModel, type EstimateColumn, type SampledGroup } from './index-size.js';

/*
 * `sync-lookup index estimate`: the size and build time of a B-tree index before it exists.
 *
 * Size: B-tree pages are laid out the way nbtsort.c builds them. Each index tuple is an 8-byte header,
 * the key columns aligned as their types require (short varlenas unaligned), MAXALIGNed, plus a 4-byte
 * line pointer; leaf pages are filled to the fillfactor (90 %), internal pages to 70 %. With
 * deduplication (PostgreSQL 13+, non-unique indexes on types with "equal image" equality) equal keys
 * share one posting-list tuple: the key once plus 6 bytes per row, each posting tuple capped at a tenth
 * of a page during a build. How many rows share a key comes from pg_stats (most common values and their
 * frequencies, then the distinct count) for one column, and from a block sample of the table for several
 * columns (per-column statistics cannot say how many combinations exist).
 *
 * Time: a short measured read and sort of the first pages of the table (EXPLAIN ANALYZE of a TID-range
 * scan sorted by the key, with work_mem = maintenance_work_mem), scaled to the table.
 */

/** An index to estimate, as parsed from a statement or `table(columns)`. */
export interface IndexTarget {
  schema: string | null;
  table: string;
  name: string | null;
  columns: string[];
  unique: boolean;
  concurrently: boolean;
  /** Leaf fillfactor (WITH (fillfactor = n)); default 90. */
  fillfactor: number;
  /** WITH (deduplicate_items = off) turns deduplication off. */
  deduplicateItems: boolean;
  /** The partial index predicate, as written. */
  where: string | null;
  /** Given as a CREATE INDEX statement (else as `table(columns)`, which sync-lookup builds concurrently). */
  fromStatement: boolean;
}

type Ast = Record<string, unknown>;

/**
 * Parses `CREATE [UNIQUE] INDEX [CONCURRENTLY] … ON table (columns) [WITH (…)] [WHERE …]` or the short
 * form `table(columns)` with PostgreSQL's parser. Only B-tree indexes on plain columns are supported.
 *
 * @example
 * await parseIndexTarget('sync_lookup(record_type, updated_at_sync_tick)')
 * // { table: 'sync_lookup', columns: ['record_type', 'updated_at_sync_tick'], fillfactor: 90, … }
 */
export async function parseIndexTarget(text: string): Promise<IndexTarget> {
  const trimmed = text.trim();
  if (!trimmed) throw new ConfigError('invalid_index', 'index estimate needs a CREATE INDEX statement or table(columns)');
  await loadSqlParser();
  let firstWord = '';
  try { firstWord = scanSync(trimmed).tokens[0]?.text.toLowerCase() ?? ''; } catch { /* reported by the parse below */ }
  const fromStatement = firstWord === 'create';
  const sql = fromStatement ? trimmed : `CREATE INDEX ON ${trimmed}`;
  await assertParses(sql, { prefixLength: sql.length - trimmed.length, what: 'the index' });
  const raw = (await parse(sql)).stmts?.[0] as { stmt: Ast; stmt_len?: number } | undefined;
  const stmt = raw && 'IndexStmt' in raw.stmt ? raw.stmt.IndexStmt as Ast : undefined;
  if (!stmt) throw new ConfigError('invalid_index', `not a CREATE INDEX statement or table(columns): ${JSON.stringify(trimmed)}`);
  const relation = stmt.relation as { relname: string; schemaname?: string };
  const method = (stmt.accessMethod as string | undefined) ?? 'btree';
  if (method !== 'btree') throw new ConfigError('unsupported_index', `only B-tree indexes can be estimated, not ${method}`);
  const columns = ((stmt.indexParams as { IndexElem: { name?: string; expr?: unknown } }[] | undefined) ?? []).map((p) => {
    if (!p.IndexElem.name) throw new ConfigError('unsupported_index', 'expression index keys cannot be estimated; name plain columns');
    return p.IndexElem.name;
  });
  if (!columns.length) throw new ConfigError('invalid_index', 'the index names no columns');
  if (((stmt.indexIncludingParams as unknown[] | undefined) ?? []).length) {
    throw new ConfigError('unsupported_index', 'INCLUDE columns cannot be estimated yet');
  }
  let fillfactor = 90;
  let deduplicateItems = true;
  for (const o of (stmt.options as { DefElem: { defname: string; arg?: Ast } }[] | undefined) ?? []) {
    const arg = o.DefElem.arg;
    // The grammar hands option values over as an Integer, a String, a Boolean, or (for bare words such
    // as `off`) a TypeName.
    const value = arg ? String((arg.Integer as { ival?: number } | undefined)?.ival ?? (arg.String as { sval?: string } | undefined)?.sval ??
      (arg.Boolean as { boolval?: boolean } | undefined)?.boolval ??
      (arg.TypeName as { names?: { String?: { sval?: string } }[] } | undefined)?.names?.[0]?.String?.sval ?? '') : '';
    if (o.DefElem.defname === 'fillfactor') {
      fillfactor = Number(value);
      if (!(fillfactor >= 10 && fillfactor <= 100)) throw new ConfigError('invalid_index', `fillfactor must be between 10 and 100, got ${value}`);
    } else if (o.DefElem.defname === 'deduplicate_items') deduplicateItems = !['off', 'false', '0'].includes(value.toLowerCase());
  }
  const where = stmt.whereClause ? whereText(sql.slice(0, raw?.stmt_len || sql.length), stmt) : null;
  return {
    schema: relation.schemaname ?? null, table: relation.relname, name: (stmt.idxname as string | undefined) ?? null, columns,
    unique: !!stmt.unique, concurrently: !!stmt.concurrent, fillfactor, deduplicateItems, where, fromStatement,
  };
}

/** The text of the WHERE clause (from after its keyword to the end of the statement). */
function whereText(sql: string, stmt: Ast): string {
  let min = Infinity;
  const walk = (v: unknown) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    for (const [k, child] of Object.entries(v)) {
      if (k === 'location' && typeof child === 'number' && child >= 0) min = Math.min(min, child);
      else walk(child);
    }
  };
  walk(stmt.whereClause);
  if (!Number.isFinite(min)) return '';
  // The clause starts after the last WHERE keyword before its first node (which may sit inside parentheses).
  const where = scanSync(sql).tokens.filter((tok) => tok.text.toLowerCase() === 'where' && tok.start < min).pop();
  return sql.slice(where ? where.end : min).trim();
}

/** The prediction and everything it was computed from. */
export interface IndexEstimate {
  /** The index as it would be created (CONCURRENTLY unless the statement said otherwise). */
  statement: string;
  estimatedBytes: number;
  estimatedBuildMs: number | null;
  inputs: {
    table: string;
    rows: number;
    /** Rows the index would hold (fewer for a partial index: the planner's estimate of its WHERE). */
    indexedRows: number;
    tablePages: number;
    tableBytes: number;
    columns: EstimateColumn[];
    unique: boolean;
    deduplication: boolean;
    /** Distinct keys and where that number came from. */
    distinctKeys: number;
    distinctSource: 'pg_stats' | 'sample' | 'unique';
    /** Bytes of one index tuple holding one key (before posting lists), line pointer excluded. */
    keyTupleBytes: number;
    /** Leaf bytes per row after deduplication, line pointers included. */
    leafBytesPerRow: number;
    fillfactor: number;
    leafPages: number;
    internalPages: number;
    /** The build-time measurement: pages read, their time, rows sorted and the sort's time. */
    sampledPages: number;
    sampleReadMs: number | null;
    sampledRows: number;
    sampleSortMs: number | null;
    maintenanceWorkMem: string;
    concurrently: boolean;
    /** The statistics are older than many of the rows (n_mod_since_analyze > 20 %): run ANALYZE first. */
    staleStatistics: boolean;
  };
}

export type { EstimateColumn } from './index-size.js';

/** Options of {@link estimateIndex}. */
export interface EstimateOptions {
  /** Measure read and sort rates for a build-time estimate (reads up to `samplePages`). Default true. */
  measure?: boolean;
  /** Pages read by the measurement; default 4 096 (32 MB). */
  samplePages?: number;
}

interface ColumnRow {
  name: string; type: string; typlen: number; typalign: string; deterministic: boolean; equalimage: boolean;
  avg_width: number | null; null_frac: number | null; n_distinct: number | null; freqs: number[] | null;
}

/**
 * Predicts the size (and, measuring a little, the build time) of a B-tree index from the table's
 * statistics, before anything is built. `target` is a CREATE INDEX statement or `table(columns)`.
 * A missing table or column is a ConfigError naming it.
 *
 * @example
 * const e = await estimateIndex(db, 'sync_lookup(record_type)');
 * console.log(e.estimatedBytes, e.estimatedBuildMs, e.inputs.deduplication);
 */
export async function estimateIndex(db: Database, target: string | IndexTarget, options: EstimateOptions = {}): Promise<IndexEstimate> {
  const t = typeof target === 'string' ? await parseIndexTarget(target) : target;
  return withClient(db, { purpose: 'index-estimate', statementTimeoutMs: 600_000 }, async (client) => {
    const rel = await readTable(client, t);
    const keyCols = await readKeyColumns(client, t, rel);
    const rows = rel.rows;
    let indexedRows = rows;
    if (t.where) {
      const r = await explainStatement(client, `SELECT 1 FROM ${quoteQualified({ schema: rel.schema, name: t.table })} WHERE ${t.where}`);
      indexedRows = Math.min(rows, r.plan['Plan Rows']);
    }
    const { columns, sample } = await keyStatistics(client, t, rel, keyCols, indexedRows);
    const deduplication = t.deduplicateItems && !t.unique && columns.every((c) => c.deduplicatable);
    const size = indexSizeModel({
      rows, indexedRows, unique: t.unique, deduplication, fillfactor: t.fillfactor,
      keys: keyCols.map((c, i) => ({ ...columns[i]!, typlen: c.typlen, typalign: c.typalign, freqs: c.freqs ?? [] })),
      ...(sample ? { sampledDistinct: sample.distinct, sampledGroups: sample.frequent } : {}),
    });
    const concurrently = t.fromStatement ? t.concurrently : true;
    let measured = { pages: 0, readMs: null as number | null, rows: 0, sortMs: null as number | null };
    if (options.measure !== false && rel.pages > 0) {
      measured = await measureRates(client, rel.schema, t.table, t.columns, Math.min(rel.pages, options.samplePages ?? 4096), rel.mwm);
    }
    return {
      statement: estimateStatement(t, rel.schema, concurrently),
      estimatedBytes: size.estimatedBytes,
      estimatedBuildMs: buildTimeModel(measured, { tablePages: rel.pages, indexedRows, indexBytes: size.estimatedBytes, concurrently }),
      inputs: {
        table: `${rel.schema}.${t.table}`, rows: Math.round(rows), indexedRows: Math.round(indexedRows), tablePages: rel.pages, tableBytes: Number(rel.bytes),
        columns, unique: t.unique, deduplication, distinctKeys: Math.round(size.distinctKeys), distinctSource: size.distinctSource,
        keyTupleBytes: size.keyTupleBytes, leafBytesPerRow: Math.round(size.leafBytesPerRow * 100) / 100, fillfactor: t.fillfactor,
        leafPages: size.leafPages, internalPages: size.internalPages, sampledPages: measured.pages, sampleReadMs: measured.readMs, sampledRows: measured.rows,
        sampleSortMs: measured.sortMs, maintenanceWorkMem: rel.mwm, concurrently,
        staleStatistics: Number(rel.mods) > 0.2 * Math.max(1, rows),
      },
    };
  });
}

/**
 * The key columns as the index would hold them. One column of a full index: pg_stats says it all. Several
 * columns (how many combinations exist) or a partial index (the statistics describe every row, the index
 * only those its WHERE admits): a row sample of the table, whose NULL shares and widths replace pg_stats'.
 */
async function keyStatistics(client: pg.ClientBase, t: IndexTarget, rel: TableRow & { oid: number }, keyCols: ColumnRow[], indexedRows: number):
  Promise<{ columns: EstimateColumn[]; sample: KeySample | null }> {
  const rows = rel.rows;
  const sample = t.where || (!t.unique && keyCols.length > 1)
    ? await sampleKeys(client, { schema: rel.schema, name: t.table, rows, pages: rel.pages }, t.columns, t.where, indexedRows) : null;
  // pg_stats describes every row: a partial index's own rows can be narrower or never NULL. (Unless the
  // sample holds too few of them to say more than the statistics do.)
  const measured = t.where && sample && sample.matchedRows >= 100 ? sample.columns : null;
  const columns = keyCols.map((c, i) => ({
    name: c.name, type: c.type,
    avgWidth: Math.floor(measured?.[i]?.avgWidth ?? c.avg_width ?? (c.typlen > 0 ? c.typlen : 32)), // truncated, as pg_stats' avg_width
    nullFrac: measured?.[i]?.nullFrac ?? c.null_frac ?? 0,
    distinct: c.n_distinct === null ? rows : c.n_distinct >= 0 ? c.n_distinct : -c.n_distinct * rows,
    deduplicatable: c.equalimage && c.deterministic,
  }));
  return { columns, sample: t.unique ? null : sample };
}

interface TableRow { oid: number | null; schema: string; rows: number; pages: number; bytes: string; mods: string; mwm: string; kind: string }

/** The table's size and statistics age; a missing table or a partitioned one is a ConfigError. */
async function readTable(client: pg.ClientBase, t: IndexTarget): Promise<TableRow & { oid: number }> {
  const qualified = t.schema ? `${quoteIdent(t.schema)}.${quoteIdent(t.table)}` : quoteIdent(t.table);
  const { rows: [rel] } = await client.query<TableRow>(
    `select c.oid::int as oid, n.nspname as schema, greatest(c.reltuples, 0)::float8 as rows, c.relpages::int as pages,
            pg_table_size(c.oid)::text as bytes, coalesce(s.n_mod_since_analyze, 0)::text as mods,
            current_setting('maintenance_work_mem') as mwm, c.relkind::text as kind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       left join pg_stat_all_tables s on s.relid = c.oid
      where c.oid = to_regclass($1)`, [qualified]);
  if (!rel?.oid) throw new ConfigError('unknown_table', `table ${t.schema ? `${t.schema}.` : ''}${t.table} does not exist`, { table: t.table });
  if (rel.kind !== 'r' && rel.kind !== 'm') {
    throw new ConfigError('unsupported_table', `${t.table} is not a plain table (relkind ${rel.kind}); estimate its partitions one by one`);
  }
  return { ...rel, oid: rel.oid };
}

/** The key columns' types and statistics, in key order; a column the table lacks is a ConfigError listing its columns. */
async function readKeyColumns(client: pg.ClientBase, t: IndexTarget, rel: { oid: number; schema: string }): Promise<ColumnRow[]> {
  const { rows: cols } = await client.query<ColumnRow>(
    `select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, t.typlen::int as typlen, t.typalign::text as typalign,
            coalesce(co.collisdeterministic, true) as deterministic,
            exists (select 1 from pg_opclass oc join pg_am am on am.oid = oc.opcmethod and am.amname = 'btree'
                      join pg_amproc p on p.amprocfamily = oc.opcfamily and p.amprocnum = 4
                     where oc.opcdefault and (oc.opcintype = a.atttypid or exists (
                       select 1 from pg_cast pc where pc.castsource = a.atttypid and pc.casttarget = oc.opcintype and pc.castmethod = 'b'))) as equalimage,
            s.avg_width::int as avg_width, s.null_frac::float8 as null_frac, s.n_distinct::float8 as n_distinct,
            s.most_common_freqs::float8[] as freqs
       from pg_attribute a join pg_type t on t.oid = a.atttypid
       left join pg_collation co on co.oid = a.attcollation
       left join pg_stats s on s.schemaname = $2 and s.tablename = $3 and s.attname = a.attname and not s.inherited
      where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum`, [rel.oid, rel.schema, t.table]);
  const byName = new Map(cols.map((c) => [c.name, c]));
  const missing = t.columns.filter((c) => !byName.has(c));
  if (missing.length) {
    throw new ConfigError('unknown_column', `column${missing.length > 1 ? 's' : ''} ${missing.map((m) => JSON.stringify(m)).join(', ')} ` +
      `not in table ${rel.schema}.${t.table}; its columns: ${cols.map((c) => c.name).join(', ')}`, { missing, table: t.table });
  }
  return t.columns.map((c) => byName.get(c)!);
}

/** The CREATE INDEX statement the estimate is for (CONCURRENTLY unless the given statement said otherwise). */
function estimateStatement(t: IndexTarget, schema: string, concurrently: boolean): string {
  const name = t.name ?? `${t.table}_${t.columns.join('_')}`.slice(0, 63);
  const storage = [t.fillfactor !== 90 ? `fillfactor = ${t.fillfactor}` : '', !t.deduplicateItems ? 'deduplicate_items = off' : ''].filter(Boolean);
  return `CREATE ${t.unique ? 'UNIQUE ' : ''}INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${quoteIdent(name)} ON ` +
    `${quoteQualified({ schema, name: t.table })} (${t.columns.map(quoteIdent).join(', ')})` +
    `${storage.length ? ` WITH (${storage.join(', ')})` : ''}` +
    `${t.where ? ` WHERE ${t.where}` : ''}`;
}

/** What a row sample of the table says about the rows an index would hold. */
interface KeySample {
  /** Rows sampled, and those the index's WHERE admits. */
  sampledRows: number;
  matchedRows: number;
  /** Distinct keys among the matched rows (Haas and Stokes' Duj1, as ANALYZE estimates one column). */
  distinct: number;
  /** Keys seen at least FREQUENT_KEY_ROWS times: sized on their own, like pg_stats' most common values. */
  frequent: SampledGroup[];
  /** Per key column, among matched rows: NULL share and average stored width of non-NULL values. */
  columns: { nullFrac: number; avgWidth: number | null }[];
}

/** Pages read at most: as many as ANALYZE reads at the default statistics target. */
const SAMPLE_PAGES = 30_000;
/** Rows kept when every page is read anyway (more rows cost CPU, not I/O); otherwise about one a page. */
const SAMPLE_ROWS = 100_000;
const FREQUENT_KEY_ROWS = 10;

/**
 * A random sample of about 30 000 rows, read the way ANALYZE reads its sample: at most 30 000 pages
 * (TABLESAMPLE SYSTEM), and within them each row kept with a probability (seeded random()), so
 * rows, not pages, are the sampling unit (on a big table about one row a page, on a small one every page
 * read and a Bernoulli share of its rows). A block sample that keeps whole pages sees the rows of a key
 * that are physically together (one build's rows of one type share a tick) as one key many times over
 * and too few keys seen once: Duj1 then counts far too few keys. Keys, NULLs and widths are measured on
 * the rows the index's WHERE admits, so a partial index is described by its own rows.
 */
async function sampleKeys(
  client: pg.ClientBase, table: { schema: string; name: string; rows: number; pages: number }, columns: string[], where: string | null, indexedRows: number,
): Promise<KeySample> {
  const pageShare = Math.min(1, SAMPLE_PAGES / Math.max(1, table.pages));
  const rowShare = Math.min(1, (pageShare < 1 ? SAMPLE_PAGES : SAMPLE_ROWS) / Math.max(1, table.rows * pageShare));
  const cols = columns.map(quoteIdent);
  // The same rows on every run: the pages come from REPEATABLE, the rows within them from a seeded random().
  await client.query('select setseed(0.5)');
  const { rows: [r] } = await client.query<{ sampled: string; matched: string; d: string; f1: string; frequent: { k: number; nulls: boolean[] }[] | null; nonnull: string[]; widths: (number | null)[] }>(
    `with s as materialized (
       select ${cols.join(', ')}, ${where ? `coalesce((${where}), false)` : 'true'} as matched
         from ${quoteQualified({ schema: table.schema, name: table.name })} tablesample system ($1) repeatable (7)
        where random() < $2),
     m as (select ${cols.join(', ')} from s where matched),
     g as (select count(*) as k, array[${cols.map((c) => `${c} is null`).join(', ')}] as nulls from m group by ${cols.join(', ')})
     select (select count(*) from s)::text as sampled, (select count(*) from m)::text as matched,
            (select count(*) from g)::text as d, (select count(*) from g where k = 1)::text as f1,
            (select json_agg(json_build_object('k', k, 'nulls', nulls)) from g where k >= ${FREQUENT_KEY_ROWS}) as frequent,
            array[${cols.map((c) => `(select count(${c}) from m)::text`).join(', ')}] as nonnull,
            array[${cols.map((c) => `(select avg(pg_column_size(${c}))::float8 from m)`).join(', ')}] as widths`,
    [pageShare * 100, rowShare]);
  const n = Number(r?.matched ?? 0);
  const d = Number(r?.d ?? 0);
  const f1 = Number(r?.f1 ?? 0);
  const scale = indexedRows / Math.max(1, n);
  return {
    sampledRows: Number(r?.sampled ?? 0), matchedRows: n,
    distinct: duj1(n, d, f1, indexedRows),
    frequent: (r?.frequent ?? []).map((g) => ({ rows: g.k * scale, nulls: g.nulls })),
    columns: columns.map((_, i) => ({
      nullFrac: n > 0 ? 1 - Number(r?.nonnull[i] ?? n) / n : 0,
      avgWidth: r?.widths[i] ?? null,
    })),
  };
}

/** Haas and Stokes' Duj1 (what ANALYZE uses for one column): n·d / (n − f1 + f1·n/N), between d and N. */
function duj1(n: number, d: number, f1: number, rows: number): number {
  if (n === 0) return rows;
  if (n >= rows) return d;
  const est = (n * d) / (n - f1 + (f1 * n) / rows);
  return Math.max(d, Math.min(rows, est));
}

/** Times a read of the first `pages` pages (TID range scan) and a sort of their keys, as a build would sort. */
async function measureRates(client: pg.ClientBase, schema: string, table: string, columns: string[], pages: number, mwm: string) {
  const cols = columns.map((c) => quoteIdent(c)).join(', ');
  const r = await explainStatement(client,
    `SELECT count(*) FROM (SELECT ${cols} FROM ${quoteQualified({ schema, name: table })} WHERE ctid < $1::tid ORDER BY ${cols} OFFSET 0) s`,
    [`(${pages},0)`], { analyze: true, settings: { work_mem: mwm, max_parallel_workers_per_gather: '0' } });
  let readMs: number | null = null;
  let sortMs: number | null = null;
  let rows = 0;
  for (const { node } of planNodes(r.plan)) {
    const total = Number(node['Actual Total Time'] ?? NaN);
    if ((node['Node Type'] === 'Tid Range Scan' || node['Node Type'] === 'Seq Scan') && readMs === null) {
      readMs = total;
      rows = Number(node['Actual Rows'] ?? 0);
    }
    if (node['Node Type'] === 'Sort' && sortMs === null) {
      const child = Number(node.Plans?.[0]?.['Actual Total Time'] ?? 0);
      sortMs = Math.max(0, total - child);
    }
  }
  const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  return { pages, readMs: round(readMs), rows, sortMs: round(sortMs) };
}
