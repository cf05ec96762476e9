import type pg from 'pg';
import { tableIndexes } from '../db/catalog.js';
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
  const tableNames = new Map(Object.values(context.tables).map((t) => [t.name, t]));
  const { rows: owners } = await client.query<{ oid: number; name: string }>(
    'select oid::int as oid, relname as name from pg_class where oid = any($1::oid[])', [oids]);
  const ownerName = new Map(owners.map((o) => [o.oid, o.name]));
  for (const i of await tableIndexes(client, oids)) {
    const tableName = ownerName.get(i.tableOid) ?? '';
    const columns = i.keys.map((k) => k.key);
    const leading = columns[0];
    const table = tableNames.get(tableName);
    context.indexes[i.name] = {
      schema: i.schema, name: i.name, table: tableName, columns, include: i.include,
      unique: i.unique, primary: i.primary, valid: i.valid, method: i.method, predicate: i.predicate,
      bytes: i.bytes, pages: i.pages, entries: i.entries,
      leadingDistinct: leading !== undefined && table ? table.distinct[leading] ?? null : null,
      definition: i.definition,
    };
  }
}
