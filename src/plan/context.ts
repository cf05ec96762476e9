import type pg from 'pg';
import type { ExplainDocument, ExplainResult, PlanContext, PlanNode } from './types.js';
import { planNodes, rootOf } from './walk.js';

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
  const refs = relationRefs(plans);
  const { rows: v } = await client.query<{ n: string }>(`select current_setting('server_version_num') as n`);
  const context: PlanContext = { serverVersionNum: Number(v[0]?.n ?? 0), tables: {}, indexes: {} };
  if (refs.length === 0) return context;
  const oids = await readTables(client, refs, context);
  if (oids.length > 0) await readIndexes(client, oids, context);
  return context;
}

/** The relations and indexes the plans name, as EXPLAIN prints them (schema only when VERBOSE). */
function relationRefs(plans: (PlanNode | ExplainDocument | ExplainResult)[]): { schema: string | null; name: string }[] {
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
  return [...names.values()];
}

/** Reads the tables behind `refs` (an index ref stands for its table) into `context`; returns their oids. */
async function readTables(client: pg.ClientBase, refs: { schema: string | null; name: string }[], context: PlanContext): Promise<number[]> {
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
  if (tables.length === 0) return [];
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
  return tables.map((t) => t.oid);
}

/** Reads every index of the tables `oids` into `context` (after their tables: the leading column's distinct count comes from there). */
async function readIndexes(client: pg.ClientBase, oids: number[], context: PlanContext): Promise<void> {
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
    [oids]);
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
}
