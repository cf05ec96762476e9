import { quoteIdent, quoteQualified, type QualifiedName } from './quote.js';

/*
 * Index DDL as text: below both the migration runner (which runs it) and the plan reader (which proposes it).
 */

/** An index to build: where, on what, and how. */
export interface IndexSpec {
  /** Schema of the table and the index; default `public`. */
  schema?: string;
  table: string;
  name: string;
  /** Key columns, in order (plain column names; they are quoted). */
  columns: string[];
  unique?: boolean;
  /** A partial index's predicate (SQL over the table's columns), e.g. `needs_rebuild`. */
  where?: string;
}

/**
 * The `CREATE INDEX CONCURRENTLY` statement for a spec.
 *
 * @example
 * createIndexSql({ table: 'sync_lookup', name: 'sync_lookup_record_type', columns: ['record_type'] })
 * // 'CREATE INDEX CONCURRENTLY "sync_lookup_record_type" ON "public"."sync_lookup" ("record_type")'
 */
export function createIndexSql(spec: IndexSpec, concurrently = true): string {
  const table = quoteQualified({ schema: spec.schema ?? 'public', name: spec.table });
  return `CREATE ${spec.unique ? 'UNIQUE ' : ''}INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${quoteIdent(spec.name)} ` +
    `ON ${table} (${spec.columns.map(quoteIdent).join(', ')})${spec.where ? ` WHERE ${spec.where}` : ''}`;
}

/** `DROP INDEX CONCURRENTLY IF EXISTS` for an index. */
export function dropIndexSql(ref: QualifiedName): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${quoteQualified(ref)}`;
}
