import type pg from 'pg';
import { quoteIdent } from '../../db/quote.js';
import type { StatsExport } from '../../inspect/stats.js';
import { parseStatements, withoutPsqlMetaCommands } from '../extract/sql-text.js';
import { applyStatement } from './apply.js';
import { SchemaModel } from './model.js';

/*
 * The starting schema: a `pg_dump --schema-only` file, a `stats export` document (tables, column types,
 * index definitions), or a live database (its stats export plus NOT NULL and constraints). All three go
 * through the same path: DDL text, parsed by libpg-query, applied to the model.
 */

/** Problems met while reading a schema (statements that did not parse are skipped, and said so). */
export interface SchemaLoad { model: SchemaModel; problems: string[] }

/**
 * Reads a schema dump. psql meta-commands (`\restrict`, `\connect`) are blanked before parsing.
 *
 * @example
 * const { model } = schemaFromDump('CREATE TABLE public.t (id int); CREATE INDEX t_id ON public.t (id);');
 */
export function schemaFromDump(text: string, model = new SchemaModel()): SchemaLoad {
  const sql = withoutPsqlMetaCommands(text);
  const { statements, error } = parseStatements(sql);
  for (const s of statements) applyStatement(model, s.ast, null);
  const problems = error ? [`schema dump: ${error.message} (near line ${sql.slice(0, error.offset).split('\n').length}); other statements were read`] : [];
  return { model, problems };
}

/** A stats export's tables, columns and index definitions as a schema. */
export function schemaFromStats(doc: StatsExport, model = new SchemaModel()): SchemaLoad {
  const ddl: string[] = [];
  for (const t of doc.tables) {
    const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
    ddl.push(`CREATE TABLE ${name} (${t.columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')});`);
    for (const i of t.indexes) ddl.push(`${i.definition};`);
  }
  const load = schemaFromDump(ddl.join('\n'), model);
  // An INVALID index (a failed concurrent build) serves no query.
  for (const t of doc.tables) for (const i of t.indexes) if (!i.valid) { const idx = model.index(t.schema, i.name); if (idx) idx.valid = false; }
  return load;
}

/** Adds what a stats export leaves out: NOT NULL columns and constraints (CHECK, FOREIGN KEY, …). */
export async function readConstraints(client: pg.ClientBase, model: SchemaModel): Promise<void> {
  const { rows } = await client.query<{ ddl: string }>(
    `select format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s%s;', n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid),
                   case when con.convalidated then '' else ' NOT VALID' end) as ddl
       from pg_constraint con join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
      where con.contype in ('c', 'f') and n.nspname not in ('pg_catalog', 'information_schema')
     union all
     select format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET NOT NULL;', n.nspname, c.relname, a.attname)
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where a.attnotnull and a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'`);
  schemaFromDump(rows.map((r) => r.ddl).join('\n'), model);
}
