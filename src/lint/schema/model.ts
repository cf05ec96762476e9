/*
 * The schema as the migrations see it: tables, their columns, indexes and constraints, changed by each
 * statement in order (CREATE TABLE/INDEX, DROP, ALTER TABLE). Built from a `pg_dump --schema-only` file or
 * a live database's catalog, both through the same statement parse trees.
 */

type Ast = Record<string, unknown>;

/** One column: its type as text (`varchar(255)`, `int8`, `text[]`). */
export interface ColumnModel { name: string; type: string; notNull: boolean }

/** One index. `columns` are key column names, or `__expr(a, b)` for an expression key naming columns a and b. */
export interface IndexModel {
  schema: string;
  name: string;
  /** The table's key, `schema.name`. */
  table: string;
  columns: string[];
  unique: boolean;
  primary: boolean;
  method: string;
  valid: boolean;
  /** The partial index predicate's AND-ed parts, each as a location-free parse tree (JSON), or null. */
  predicate: string[] | null;
}

/** One constraint: `check` keeps the column it proves NOT NULL (`CHECK (c IS NOT NULL)`), when it does. */
export interface ConstraintModel { name: string; kind: 'check' | 'foreign_key' | 'unique' | 'primary_key' | 'other'; validated: boolean; notNullColumn: string | null }

/** One table. `createdBy` is the migration file that created it (null: it predates the migrations). */
export interface TableModel {
  schema: string;
  name: string;
  columns: ColumnModel[];
  constraints: ConstraintModel[];
  createdBy: string | null;
}

/** The key of a table or index: `schema.name`, public by default. */
export function relationKey(rel: { schemaname?: string; relname?: string } | undefined, fallback = 'public'): string {
  return `${rel?.schemaname ?? fallback}.${rel?.relname ?? ''}`;
}

/** A parse tree without its `location` fields, as JSON: equal trees for equal expressions. */
export function shape(node: unknown): string {
  return JSON.stringify(node, (k, v) => (k === 'location' ? undefined : v as unknown));
}

/** The AND-ed parts of a condition tree. */
export function andParts(node: Ast): Ast[] {
  const b = node.BoolExpr as { boolop?: string; args?: Ast[] } | undefined;
  return b?.boolop === 'AND_EXPR' && b.args ? b.args.flatMap(andParts) : [node];
}

const TYPE_ALIASES: Record<string, string> = {
  int: 'int4', integer: 'int4', bigint: 'int8', smallint: 'int2', serial: 'int4', bigserial: 'int8', smallserial: 'int2',
  boolean: 'bool', 'double precision': 'float8', real: 'float4', decimal: 'numeric', timestamp: 'timestamp',
  character: 'bpchar', char: 'bpchar', 'character varying': 'varchar',
};

/** A column type as text from a `TypeName` tree: `varchar(255)`, `numeric(10, 2)`, `text[]`. */
export function typeText(typeName: Ast | undefined): string {
  if (!typeName) return 'unknown';
  const names = ((typeName.names as { String?: { sval?: string } }[] | undefined) ?? []).map((n) => n.String?.sval ?? '');
  const base = names[names.length - 1] ?? 'unknown';
  const name = TYPE_ALIASES[base] ?? base;
  const mods = ((typeName.typmods as { A_Const?: { ival?: { ival?: number } } }[] | undefined) ?? [])
    .map((m) => m.A_Const?.ival?.ival ?? 0);
  const arrays = ((typeName.arrayBounds as unknown[] | undefined) ?? []).length;
  return `${name}${mods.length ? `(${mods.join(', ')})` : ''}${'[]'.repeat(arrays)}`;
}

/** Column names an expression refers to. */
export function columnNames(node: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const ref = (v as Ast).ColumnRef as { fields?: { String?: { sval?: string } }[] } | undefined;
    if (ref?.fields) { const last = ref.fields.at(-1)?.String?.sval; if (last) out.push(last); return; }
    Object.values(v).forEach(walk);
  };
  walk(node);
  return [...new Set(out)];
}

/** The schema: tables and indexes by `schema.name`. */
export class SchemaModel {
  tables = new Map<string, TableModel>();
  indexes = new Map<string, IndexModel>();

  /** A deep copy (the `down` functions are linted against a copy that is then dropped). */
  clone(): SchemaModel {
    const c = new SchemaModel();
    c.tables = structuredClone(this.tables);
    c.indexes = structuredClone(this.indexes);
    return c;
  }

  /** The table a relation names: `schema.name`, or by name alone in any schema when unqualified and not in public. */
  table(rel: { schemaname?: string; relname?: string } | undefined): TableModel | undefined {
    const direct = this.tables.get(relationKey(rel));
    if (direct || rel?.schemaname) return direct;
    return [...this.tables.values()].find((t) => t.name === rel?.relname);
  }

  /** The indexes of a table, valid ones only (or, with `invalid`, INVALID leftovers of failed concurrent builds too). */
  indexesOf(table: TableModel, invalid = false): IndexModel[] {
    const key = `${table.schema}.${table.name}`;
    return [...this.indexes.values()].filter((i) => i.table === key && (i.valid || invalid));
  }

  /** The index a name refers to (`schema.name` or a bare name in any schema). */
  index(schema: string | undefined, name: string): IndexModel | undefined {
    return this.indexes.get(`${schema ?? 'public'}.${name}`) ?? (schema ? undefined : [...this.indexes.values()].find((i) => i.name === name));
  }
}
