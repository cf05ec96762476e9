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

/** One key column of an index, with everything that decides which queries it can serve. */
export interface CatalogIndexKey {
  /** The column name, or the expression's text for an expression key (`lower((email)::text)`). */
  key: string;
  expression: boolean;
  /** Operator class (`text_ops`, `varchar_pattern_ops`, …), schema-qualified when not in pg_catalog. */
  opclass: string | null;
  /** Collation oid (0: the type is not collatable); equal oids sort alike. */
  collation: number;
  /** Collation name as `COLLATE` would spell it, null when not collatable. */
  collationName: string | null;
  descending: boolean;
  nullsFirst: boolean;
}

/** One index of a table, read from pg_index, pg_am and pg_opclass. */
export interface CatalogIndex extends QualifiedName {
  oid: number;
  tableOid: number;
  /** Access method: btree, hash, gin, gist, brin, … */
  method: string;
  keys: CatalogIndexKey[];
  /** INCLUDE columns (not part of the key: they neither order nor bound anything). */
  include: string[];
  /** The partial index predicate as PostgreSQL prints it, or null. */
  predicate: string | null;
  unique: boolean;
  primary: boolean;
  /** NULLS NOT DISTINCT (PostgreSQL 15+). */
  nullsNotDistinct: boolean;
  /** False for a unique/exclusion constraint checked at commit (DEFERRABLE). */
  immediate: boolean;
  exclusion: boolean;
  /** Valid and ready (false for the leftover of a failed concurrent build). */
  valid: boolean;
  definition: string;
  bytes: number;
  /** `pg_class.reltuples` and `relpages` of the index itself (its own entries, e.g. of a partial index). */
  entries: number;
  pages: number;
  /** The constraint the index backs (primary key, unique, exclusion), or null. */
  constraint: string | null;
  /**
   * What else needs this very index, so that dropping it fails or breaks something: `foreign key <name>`
   * (referencing this table through it), `replica identity`, `partitioned index <name>` (it is attached to it).
   */
  requiredBy: string[];
}

/**
 * Every index of the tables `tableOids`, each key with its operator class, collation and sort order
 * (pg_index.indclass, indcollation, indoption), expressions, predicate and uniqueness: what two indexes
 * must share before one can stand in for the other.
 *
 * @example
 * const [t] = [await resolveTable(client, 'sync_lookup')];
 * for (const i of await tableIndexes(client, [t!.oid])) console.log(i.name, i.keys.map((k) => k.opclass));
 */
export async function tableIndexes(client: pg.ClientBase, tableOids: readonly number[]): Promise<CatalogIndex[]> {
  const { rows } = await client.query<Omit<CatalogIndex, 'keys' | 'include' | 'bytes' | 'entries'> & {
    bytes: string; entries: number; keys: { key: string; expression: boolean; opclass: string | null; collation: number; collation_name: string | null; option: number }[];
    include: string[] }>(
    `SELECT i.indexrelid::int AS oid, i.indrelid::int AS "tableOid", n.nspname AS schema, ic.relname AS name, am.amname AS method,
            coalesce((SELECT json_agg(json_build_object(
                        'key', CASE WHEN k.attnum <> 0 THEN a.attname::text ELSE pg_get_indexdef(i.indexrelid, k.ord::int, true) END,
                        'expression', k.attnum = 0,
                        'opclass', CASE WHEN oc.oid IS NULL THEN NULL WHEN ocn.nspname = 'pg_catalog' THEN oc.opcname::text
                                        ELSE quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END,
                        'collation', coalesce(i.indcollation[k.ord - 1], 0)::int,
                        'collation_name', CASE WHEN coalesce(i.indcollation[k.ord - 1], 0) = 0 THEN NULL
                                               ELSE (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
                                                       JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = i.indcollation[k.ord - 1]) END,
                        'option', coalesce(i.indoption[k.ord - 1], 0)) ORDER BY k.ord)
                        FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        LEFT JOIN pg_opclass oc ON oc.oid = i.indclass[k.ord - 1]
                        LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
                       WHERE k.ord <= i.indnkeyatts), '[]'::json) AS keys,
            array(SELECT CASE WHEN k.attnum <> 0 THEN a.attname::text ELSE pg_get_indexdef(i.indexrelid, k.ord::int, true) END
                    FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE k.ord > i.indnkeyatts ORDER BY k.ord) AS include,
            pg_get_expr(i.indpred, i.indrelid, true) AS predicate, i.indisunique AS unique, i.indisprimary AS primary,
            ${'coalesce((to_jsonb(i) ->> \'indnullsnotdistinct\')::boolean, false)'} AS "nullsNotDistinct",
            i.indimmediate AS immediate, i.indisexclusion AS exclusion, i.indisvalid AND i.indisready AS valid,
            pg_get_indexdef(i.indexrelid) AS definition, pg_relation_size(i.indexrelid)::text AS bytes,
            ic.reltuples::float8 AS entries, ic.relpages::int AS pages,
            (SELECT conname FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid LIMIT 1) AS constraint,
            array_remove(array[CASE WHEN i.indisreplident THEN 'replica identity' END,
                               (SELECT 'partitioned index ' || pc.relname FROM pg_inherits ih JOIN pg_class pc ON pc.oid = ih.inhparent
                                 WHERE ih.inhrelid = i.indexrelid LIMIT 1)]
                         || array(SELECT 'foreign key ' || fk.conname FROM pg_constraint fk
                                   WHERE fk.contype = 'f' AND fk.conindid = i.indexrelid ORDER BY fk.conname), NULL) AS "requiredBy"
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = ic.relnamespace
       JOIN pg_am am ON am.oid = ic.relam
      WHERE i.indrelid = ANY($1::oid[])
      ORDER BY ic.relname`, [[...tableOids]]);
  return rows.map((r) => ({
    ...r, bytes: Number(r.bytes), entries: r.entries,
    keys: r.keys.map((k) => ({
      key: k.key, expression: k.expression, opclass: k.opclass, collation: k.collation, collationName: k.collation_name,
      // indoption bits (pg_index.h): 1 = DESC, 2 = NULLS FIRST.
      descending: (k.option & 1) !== 0, nullsFirst: (k.option & 2) !== 0,
    })),
  }));
}
