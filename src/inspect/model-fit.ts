import { parseSync } from 'libpg-query';
import type pg from 'pg';
import { SqlState, toSyncLookupError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';
import type { ModelDefinition, ModelRegistry } from '../lookup/registry.js';
import { selectLookupRows } from '../lookup/sql.js';
import { loadSqlParser } from '../plan/expr.js';
import { explainStatement } from '../plan/plan.js';

/*
 * Whether each model of the registry fits this database. A real deployment's source tables need not match
 * the registry (ORIGIN.md): a model whose source is missing a table or column is skipped, with the reason,
 * so explain and doctor judge the queries that can run instead of failing on the first that cannot.
 */

/** A table a statement reads, and the name it is referred to by in the statement. */
export interface TableReference {
  schema: string | null;
  name: string;
  alias: string;
}

/** The tables a statement reads and the qualified columns it names on them. */
export interface StatementReferences {
  tables: TableReference[];
  /** `alias.column` references resolved to their table (references through sub-select aliases are left out). */
  columns: { table: TableReference; column: string }[];
}

type AstNode = Record<string, unknown>;

/**
 * The tables (RangeVar, CTE names excluded) and `alias.column` references of one SQL statement, read with
 * PostgreSQL's parser. Call {@link loadSqlParser} first.
 *
 * @example
 * await loadSqlParser();
 * statementReferences('SELECT s.a FROM notes AS s LEFT JOIN encounters e ON e.id = s.encounter_id')
 * // tables: notes (s), encounters (e); columns: notes.a, encounters.id, notes.encounter_id
 */
export function statementReferences(sql: string): StatementReferences {
  const ranges: TableReference[] = [];
  const ctes = new Set<string>();
  const refs: string[][] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const node = v as AstNode;
    const range = node.RangeVar as { schemaname?: string; relname?: string; alias?: { aliasname?: string } } | undefined;
    if (range?.relname) {
      ranges.push({ schema: range.schemaname ?? null, name: range.relname, alias: range.alias?.aliasname ?? range.relname });
    }
    const cte = node.CommonTableExpr as { ctename?: string } | undefined;
    if (cte?.ctename) ctes.add(cte.ctename);
    const ref = node.ColumnRef as { fields?: { String?: { sval?: string } }[] } | undefined;
    if (ref?.fields) refs.push(ref.fields.map((f) => f.String?.sval ?? '*'));
    for (const child of Object.values(node)) walk(child);
  };
  walk(parseSync(sql));
  const tables = ranges.filter((t) => t.schema !== null || !ctes.has(t.name));
  const byAlias = new Map(tables.map((t) => [t.alias, t]));
  const columns: StatementReferences['columns'] = [];
  const seen = new Set<string>();
  for (const fields of refs) {
    if (fields.length !== 2 || fields[1] === '*') continue;
    const table = byAlias.get(fields[0]!);
    const key = `${table?.alias}\u0000${fields[1]}`;
    if (!table || seen.has(key)) continue;
    seen.add(key);
    columns.push({ table, column: fields[1]! });
  }
  return { tables, columns };
}

/** How one model fits this database. */
export interface ModelFit {
  name: string;
  /**
   * `ok`: the statement that reads its source rows plans; `skipped`: its source does not match the registry
   * (a table or column missing; `skippedReason` says which); `fail`: planning it failed otherwise (`error`).
   */
  status: 'ok' | 'skipped' | 'fail';
  skippedReason: string | null;
  error: string | null;
  /** What the catalog lacks: tables by name, columns as `table.column`. */
  missing: { tables: string[]; columns: string[] };
}

function regclassText(t: TableReference): string {
  return t.schema === null ? quoteIdent(t.name) : `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** Tables and `table.column`s of the references that the catalog does not have (to_regclass, pg_attribute). */
async function missingInCatalog(client: pg.ClientBase, refs: StatementReferences): Promise<{ tables: Set<string>; columns: Set<string> }> {
  const tableNames = [...new Set(refs.tables.map(regclassText))];
  const { rows: tables } = await client.query<{ t: string }>(
    `select t from unnest($1::text[]) t where to_regclass(t) is null`, [tableNames]);
  const { rows: columns } = await client.query<{ t: string; c: string }>(
    `select r.t, r.c from unnest($1::text[], $2::text[]) as r(t, c)
      where to_regclass(r.t) is not null
        and not exists (select 1 from pg_attribute a where a.attrelid = to_regclass(r.t) and a.attname = r.c and not a.attisdropped)`,
    [refs.columns.map((c) => regclassText(c.table)), refs.columns.map((c) => c.column)]);
  return { tables: new Set(tables.map((r) => r.t)), columns: new Set(columns.map((r) => `${r.t}\u0000${r.c}`)) };
}

const FIT_ERRORS = new Set<string>([SqlState.undefinedTable, SqlState.undefinedColumn]);

/** True when `err` is PostgreSQL's undefined_table or undefined_column: a source that does not match the registry. */
function isFitError(err: unknown): boolean {
  const state = toSyncLookupError(err).details.sqlstate;
  return typeof state === 'string' && FIT_ERRORS.has(state);
}

async function fitOne(client: pg.ClientBase, model: ModelDefinition): Promise<ModelFit> {
  const fit: ModelFit = { name: model.name, status: 'ok', skippedReason: null, error: null, missing: { tables: [], columns: [] } };
  const query = selectLookupRows(model, { lookupTick: 'source' });
  const refs = statementReferences(query.text);
  const missing = await missingInCatalog(client, refs);
  const display = (t: TableReference) => (t.schema === null ? t.name : `${t.schema}.${t.name}`);
  fit.missing.tables = [...new Set(refs.tables.filter((t) => missing.tables.has(regclassText(t))).map(display))];
  fit.missing.columns = refs.columns.filter((c) => missing.columns.has(`${regclassText(c.table)}\u0000${c.column}`))
    .map((c) => `${display(c.table)}.${c.column}`);
  if (fit.missing.tables.length || fit.missing.columns.length) {
    const source = refs.tables.find((t) => t.alias === 's');
    const reasons = fit.missing.tables.map((t) => source && t === display(source) ? `source table ${t} does not exist` : `table ${t} does not exist`);
    if (fit.missing.columns.length) {
      reasons.push(`column${fit.missing.columns.length > 1 ? 's' : ''} the registry names do${fit.missing.columns.length > 1 ? '' : 'es'} not exist: ${fit.missing.columns.join(', ')}`);
    }
    return { ...fit, status: 'skipped', skippedReason: reasons.join('; ') };
  }
  try {
    await explainStatement(client, query.text, query.values);
    return fit;
  } catch (err) {
    const e = toSyncLookupError(err);
    if (e.code === 'cancelled') throw e;
    // The catalog check reads qualified references only; an unqualified column in a registry expression
    // is caught here.
    return isFitError(e) ? { ...fit, status: 'skipped', skippedReason: `the planner rejects its source query: ${e.message}` }
      : { ...fit, status: 'fail', error: e.message };
  }
}

/**
 * Checks every model of the registry against this database: first the catalog (the tables and qualified
 * columns its source query names), then EXPLAIN (no execution) of that query for the models that pass.
 * Never throws for a model that does not fit; a cancelled statement is rethrown.
 *
 * @example
 * const fits = await checkModelFit(client, registry);
 * for (const f of fits) if (f.status === 'skipped') console.log(f.name, f.skippedReason);
 */
export async function checkModelFit(client: pg.ClientBase, registry: ModelRegistry): Promise<ModelFit[]> {
  await loadSqlParser();
  const out: ModelFit[] = [];
  for (const model of registry.models) out.push(await fitOne(client, model));
  return out;
}
