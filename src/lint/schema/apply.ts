import { andParts, columnNames, relationKey, shape, typeText, type ConstraintModel, type IndexModel, type SchemaModel, type TableModel } from './model.js';

/*
 * Applies one statement's DDL to the schema model, the way PostgreSQL would: CREATE TABLE (with its
 * inline keys), CREATE/DROP INDEX, ALTER TABLE (columns, NOT NULL, constraints, types), DROP TABLE,
 * renames. Statements that change no table or index are ignored.
 */

type Ast = Record<string, unknown>;
type RangeVar = { schemaname?: string; relname?: string };

/**
 * Changes `model` as statement `stmt` (a libpg-query `stmt` node) would; `createdBy` names the migration
 * file for tables it creates (null for a schema dump or a live database).
 *
 * @example
 * applyStatement(model, parseSync('create table t (id int primary key)').stmts[0].stmt, '001.sql');
 */
export function applyStatement(model: SchemaModel, stmt: Ast, createdBy: string | null): void {
  const [kind, node] = Object.entries(stmt)[0] ?? [];
  if (!kind || !node) return;
  const n = node as Ast;
  switch (kind) {
    case 'CreateStmt': createTable(model, n, createdBy); break;
    case 'IndexStmt': createIndex(model, n); break;
    case 'DropStmt': drop(model, n); break;
    case 'AlterTableStmt': alterTable(model, n); break;
    case 'RenameStmt': rename(model, n); break;
    default: break;
  }
}

function createTable(model: SchemaModel, n: Ast, createdBy: string | null): void {
  const rel = n.relation as RangeVar;
  const key = relationKey(rel);
  if (model.tables.has(key) && n.if_not_exists) return;
  const table: TableModel = { schema: rel.schemaname ?? 'public', name: rel.relname ?? '', columns: [], constraints: [], createdBy };
  model.tables.set(key, table);
  for (const elt of (n.tableElts as Ast[] | undefined) ?? []) {
    if (elt.ColumnDef) addColumn(model, table, elt.ColumnDef as Ast);
    else if (elt.Constraint) addConstraint(model, table, elt.Constraint as Ast);
  }
}

function addColumn(model: SchemaModel, table: TableModel, def: Ast): void {
  const name = def.colname as string;
  const type = typeText(def.typeName as Ast);
  const constraints = ((def.constraints as { Constraint: Ast }[] | undefined) ?? []).map((c) => c.Constraint);
  const notNull = constraints.some((c) => c.contype === 'CONSTR_NOTNULL' || c.contype === 'CONSTR_PRIMARY');
  table.columns = table.columns.filter((c) => c.name !== name);
  table.columns.push({ name, type, notNull });
  for (const c of constraints) {
    if (c.contype === 'CONSTR_PRIMARY' || c.contype === 'CONSTR_UNIQUE') addConstraint(model, table, { ...c, keys: [{ String: { sval: name } }] });
  }
}

function keyNames(c: Ast): string[] {
  return ((c.keys as { String?: { sval?: string } }[] | undefined) ?? []).map((k) => k.String?.sval ?? '');
}

/** Adds a table constraint; PRIMARY KEY and UNIQUE also create their index (or adopt `USING INDEX`). */
function addConstraint(model: SchemaModel, table: TableModel, c: Ast): void {
  const type = c.contype as string;
  const cols = keyNames(c);
  const kinds: Record<string, ConstraintModel['kind']> = { CONSTR_CHECK: 'check', CONSTR_FOREIGN: 'foreign_key', CONSTR_UNIQUE: 'unique', CONSTR_PRIMARY: 'primary_key' };
  const kind = kinds[type] ?? 'other';
  const name = (c.conname as string | undefined) ??
    (kind === 'primary_key' ? `${table.name}_pkey` : `${table.name}_${cols.join('_')}_${kind === 'unique' ? 'key' : kind === 'check' ? 'check' : 'fkey'}`);
  const nullTest = (c.raw_expr as { NullTest?: { nulltesttype?: string; arg?: Ast } } | undefined)?.NullTest;
  const notNullColumn = kind === 'check' && nullTest?.nulltesttype === 'IS_NOT_NULL' ? columnNames(nullTest.arg)[0] ?? null : null;
  table.constraints.push({ name, kind, validated: !c.skip_validation, notNullColumn });
  if (kind !== 'primary_key' && kind !== 'unique') return;
  const existing = typeof c.indexname === 'string' ? model.index(table.schema, c.indexname) : undefined;
  if (existing) model.indexes.delete(`${existing.schema}.${existing.name}`);
  const index: IndexModel = {
    schema: table.schema, name, table: `${table.schema}.${table.name}`, columns: existing?.columns ?? cols,
    unique: true, primary: kind === 'primary_key', method: 'btree', valid: true, predicate: null,
  };
  model.indexes.set(`${table.schema}.${name}`, index);
  if (kind === 'primary_key') for (const col of table.columns) if (index.columns.includes(col.name)) col.notNull = true;
}

function createIndex(model: SchemaModel, n: Ast): void {
  const rel = n.relation as RangeVar;
  const table = model.table(rel);
  const schema = table?.schema ?? rel.schemaname ?? 'public';
  const columns = ((n.indexParams as { IndexElem: Ast }[] | undefined) ?? []).map(({ IndexElem: e }) =>
    typeof e.name === 'string' ? e.name : `__expr(${columnNames(e.expr).join(', ')})`);
  const name = (n.idxname as string | undefined) ?? `${rel.relname}_${columns.map((c) => c.replace(/\W/g, '')).join('_')}_idx`;
  if (model.indexes.has(`${schema}.${name}`) && n.if_not_exists) return;
  model.indexes.set(`${schema}.${name}`, {
    schema, name, table: table ? `${table.schema}.${table.name}` : relationKey(rel), columns,
    unique: !!n.unique, primary: !!n.primary, method: (n.accessMethod as string | undefined) ?? 'btree', valid: true,
    predicate: n.whereClause ? andParts(n.whereClause as Ast).map(shape) : null,
  });
}

/** The names a DROP lists, as `[schema, name]` (schema undefined when unqualified). */
export function dropNames(n: Ast): [string | undefined, string][] {
  return ((n.objects as { List?: { items?: { String?: { sval?: string } }[] } }[] | undefined) ?? []).map((o) => {
    const parts = (o.List?.items ?? []).map((i) => i.String?.sval ?? '');
    return [parts.length > 1 ? parts[parts.length - 2] : undefined, parts[parts.length - 1] ?? ''];
  });
}

function drop(model: SchemaModel, n: Ast): void {
  for (const [schema, name] of dropNames(n)) {
    if (n.removeType === 'OBJECT_INDEX') {
      const idx = model.index(schema, name);
      if (idx) model.indexes.delete(`${idx.schema}.${idx.name}`);
    } else if (n.removeType === 'OBJECT_TABLE') {
      const table = model.table({ ...(schema ? { schemaname: schema } : {}), relname: name });
      if (!table) continue;
      const key = `${table.schema}.${table.name}`;
      model.tables.delete(key);
      for (const [k, i] of model.indexes) if (i.table === key) model.indexes.delete(k);
    }
  }
}

function alterTable(model: SchemaModel, n: Ast): void {
  const table = model.table(n.relation as RangeVar);
  if (!table || n.objtype !== 'OBJECT_TABLE') return;
  for (const { AlterTableCmd: cmd } of (n.cmds as { AlterTableCmd: Ast }[] | undefined) ?? []) {
    const col = table.columns.find((c) => c.name === cmd.name);
    switch (cmd.subtype) {
      case 'AT_AddColumn': addColumn(model, table, (cmd.def as Ast).ColumnDef as Ast); break;
      case 'AT_DropColumn':
        table.columns = table.columns.filter((c) => c.name !== cmd.name);
        for (const [k, i] of model.indexes) if (i.table === `${table.schema}.${table.name}` && i.columns.includes(cmd.name as string)) model.indexes.delete(k);
        break;
      case 'AT_AlterColumnType': if (col) col.type = typeText(((cmd.def as Ast).ColumnDef as Ast).typeName as Ast); break;
      case 'AT_SetNotNull': if (col) col.notNull = true; break;
      case 'AT_DropNotNull': if (col) col.notNull = false; break;
      case 'AT_AddConstraint': addConstraint(model, table, (cmd.def as Ast).Constraint as Ast); break;
      case 'AT_ValidateConstraint': for (const c of table.constraints) if (c.name === cmd.name) c.validated = true; break;
      case 'AT_DropConstraint':
        table.constraints = table.constraints.filter((c) => c.name !== cmd.name);
        model.indexes.delete(`${table.schema}.${cmd.name as string}`);
        break;
      default: break;
    }
  }
}

function rename(model: SchemaModel, n: Ast): void {
  const rel = n.relation as RangeVar | undefined;
  const to = n.newname as string;
  if (n.renameType === 'OBJECT_TABLE') {
    const table = model.table(rel);
    if (!table) return;
    const old = `${table.schema}.${table.name}`;
    model.tables.delete(old);
    table.name = to;
    model.tables.set(`${table.schema}.${to}`, table);
    for (const i of model.indexes.values()) if (i.table === old) i.table = `${table.schema}.${to}`;
  } else if (n.renameType === 'OBJECT_COLUMN') {
    const table = model.table(rel);
    const col = table?.columns.find((c) => c.name === n.subname);
    if (!table || !col) return;
    for (const i of model.indexes.values()) if (i.table === `${table.schema}.${table.name}`) i.columns = i.columns.map((c) => (c === col.name ? to : c));
    col.name = to;
  } else if (n.renameType === 'OBJECT_INDEX') {
    const idx = model.index(rel?.schemaname, rel?.relname ?? '');
    if (!idx) return;
    model.indexes.delete(`${idx.schema}.${idx.name}`);
    idx.name = to;
    model.indexes.set(`${idx.schema}.${to}`, idx);
  }
}
