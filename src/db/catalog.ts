import type pg from 'pg';
import type { QualifiedName } from './quote.js';

/*
 * The one reader of PostgreSQL's catalog for tables and columns. A relation travels as a
 * `{ schema, name }` pair; user input such as `public.sync_lookup` or `"Odd.Name"` is split by PostgreSQL's
 * own `parse_ident` (quoting rules included), never on dots by us. An unqualified name resolves through the
 * session's search_path, as PostgreSQL itself would resolve it.
 */

/** A table found in the catalog. */
export interface CatalogTable extends QualifiedName {
  oid: number;
  /** `r` plain table, `p` partitioned table, `v` view, … (pg_class.relkind). */
  relkind: string;
}

/** One column of a table, in attnum order. */
export interface CatalogColumn {
  name: string;
  /** The type as `format_type` prints it (`character varying(255)`, `text[]`, a domain's name, …). */
  type: string;
  notNull: boolean;
  /** Column default expression, or null. */
  default: string | null;
  /** True for a generated (stored) column. */
  generated: boolean;
}

/** One single-column foreign key of a table. */
export interface CatalogForeignKey {
  column: string;
  references: QualifiedName;
  referencedColumn: string;
}

/**
 * Resolves a table given as a pair or as text (`name`, `schema.name`, quoted parts allowed); null when
 * no such relation exists. Malformed text (e.g. an unbalanced quote) also gives null.
 *
 * @example
 * await resolveTable(client, 'public.sync_lookup') // { schema: 'public', name: 'sync_lookup', oid: 16402, relkind: 'r' }
 */
export async function resolveTable(client: pg.ClientBase, table: string | QualifiedName): Promise<CatalogTable | null> {
  const { rows } = await client.query<{ schema: string; name: string; oid: number; relkind: string }>(
    typeof table === 'string'
      ? `SELECT n.nspname AS schema, c.relname AS name, c.oid::int AS oid, c.relkind::text AS relkind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = to_regclass(CASE WHEN $1 ~ '^\\s*$' THEN NULL ELSE $1 END)`
      : `SELECT n.nspname AS schema, c.relname AS name, c.oid::int AS oid, c.relkind::text AS relkind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2`,
    typeof table === 'string' ? [table] : [table.schema, table.name]).catch(() => ({ rows: [] }));
  return rows[0] ?? null;
}

/**
 * The columns of a table in attnum order (dropped and system columns left out); empty when it does not exist.
 *
 * @example
 * (await tableColumns(client, { schema: 'public', name: 'sync_lookup' })).map((c) => c.name)
 */
export async function tableColumns(client: pg.ClientBase, table: QualifiedName): Promise<CatalogColumn[]> {
  return (await schemaColumns(client, table.schema, [table.name])).get(table.name) ?? [];
}

/**
 * The columns of many tables of one schema at once (one query), keyed by table name; tables that do not
 * exist are absent from the map.
 *
 * @example
 * const cols = await schemaColumns(client, 'public', ['notes', 'vitals']);
 */
export async function schemaColumns(client: pg.ClientBase, schema: string, tables: readonly string[]): Promise<Map<string, CatalogColumn[]>> {
  const { rows } = await client.query<CatalogColumn & { table: string }>(
    `SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
            pg_get_expr(d.adbin, d.adrelid) AS default, a.attgenerated <> '' AS generated
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`, [schema, [...tables]]);
  const out = new Map<string, CatalogColumn[]>();
  for (const { table, ...col } of rows) {
    const list = out.get(table) ?? [];
    list.push(col);
    out.set(table, list);
  }
  return out;
}

/**
 * Single-column foreign keys of a table (multi-column keys are left out: they cannot say "this column
 * holds that table's id").
 *
 * @example
 * await foreignKeys(client, { schema: 'public', name: 'notes' }) // [{ column: 'encounter_id', references: { schema: 'public', name: 'encounters' }, referencedColumn: 'id' }]
 */
export async function foreignKeys(client: pg.ClientBase, table: QualifiedName): Promise<CatalogForeignKey[]> {
  const { rows } = await client.query<{ column: string; ref_schema: string; ref_name: string; ref_column: string }>(
    `SELECT a.attname AS column, rn.nspname AS ref_schema, rc.relname AS ref_name, ra.attname AS ref_column
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
       JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
       JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
      WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND n.nspname = $1 AND c.relname = $2
      ORDER BY a.attnum`, [table.schema, table.name]);
  return rows.map((r) => ({ column: r.column, references: { schema: r.ref_schema, name: r.ref_name }, referencedColumn: r.ref_column }));
}

/**
 * Whether a table has a column of that name (false when the table does not exist).
 *
 * @example
 * if (await hasColumn(client, { schema: 'public', name: 'sync_lookup' }, 'needs_rebuild')) …
 */
export async function hasColumn(client: pg.ClientBase, table: QualifiedName, column: string): Promise<boolean> {
  return (await tableColumns(client, table)).some((c) => c.name === column);
}
