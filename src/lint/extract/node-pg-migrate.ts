import { quoteIdent, quoteLiteral } from '../../db/quote.js';
import { isMarker, type JsValue } from './js-values.js';

/*
 * node-pg-migrate's `pgm` builder calls, translated to the SQL it generates for them (`pgm.sql` is read as
 * SQL directly): index builds, columns, constraints. Values not known statically become `$n`.
 */

/** The `pgm` methods that are translated. */
export const PGM_METHODS = new Set(['createIndex', 'addIndex', 'dropIndex', 'addColumns', 'addColumn', 'alterColumn', 'addConstraint', 'createConstraint', 'dropColumns', 'dropColumn', 'createTable', 'dropTable']);

type Obj = { [key: string]: JsValue };
const isObj = (v: JsValue | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !isMarker(v);

/** `'t'`, `{ schema, name }`. */
function name(v: JsValue | undefined): string | null {
  if (typeof v === 'string') return quoteIdent(v);
  if (isObj(v) && typeof v.name === 'string') return typeof v.schema === 'string' ? `${quoteIdent(v.schema)}.${quoteIdent(v.name)}` : quoteIdent(v.name);
  return null;
}

function bare(v: JsValue | undefined): string {
  return typeof v === 'string' ? v : isObj(v) && typeof v.name === 'string' ? v.name : '';
}

function columns(v: JsValue | undefined): string[] | null {
  const list: JsValue[] = Array.isArray(v) ? v : [v ?? null];
  const out = list.map((c: JsValue) => (typeof c === 'string' ? c : isObj(c) && typeof c.name === 'string' ? c.name : null));
  return out.every((c): c is string => c !== null) ? out : null;
}

/** A default as node-pg-migrate writes it: a string is a literal, `pgm.func('now()')` is SQL. */
function defaultSql(v: JsValue): string {
  if (typeof v === 'string') return quoteLiteral(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'NULL';
  if (isMarker(v) && (v.marker === 'literal' || v.marker === 'fn')) return v.marker === 'fn' ? `${v.name}()` : v.name;
  return '$1';
}

function columnSql(col: string, spec: JsValue): string {
  const s: Obj = isObj(spec) ? spec : { type: spec };
  const parts = [quoteIdent(col), typeof s.type === 'string' ? s.type : 'text'];
  if (s.notNull === true) parts.push('NOT NULL');
  if (s.default !== undefined) parts.push(`DEFAULT ${defaultSql(s.default)}`);
  if (s.primaryKey === true) parts.push('PRIMARY KEY');
  if (s.unique === true) parts.push('UNIQUE');
  const ref = name(s.references);
  if (ref) parts.push(`REFERENCES ${ref}`);
  return parts.join(' ');
}

/**
 * The SQL a `pgm` call generates; null when its arguments are not known well enough.
 *
 * @example
 * pgmSql('createIndex', ['notes', 'content', { concurrently: true }]) // ['CREATE INDEX CONCURRENTLY "notes_content_index" ON "notes" ("content")']
 */
export function pgmSql(method: string, args: JsValue[]): string[] | null {
  const table = name(args[0]);
  if (!table) return null;
  switch (method) {
    case 'createIndex': case 'addIndex': {
      const cols = columns(args[1]);
      const o: Obj = isObj(args[2]) ? args[2] : {};
      if (!cols) return null;
      const idx = typeof o.name === 'string' ? o.name : `${bare(args[0])}_${cols.join('_')}${o.unique === true ? '_unique' : ''}_index`;
      return [`CREATE ${o.unique === true ? 'UNIQUE ' : ''}INDEX ${o.concurrently === true ? 'CONCURRENTLY ' : ''}${o.ifNotExists === true ? 'IF NOT EXISTS ' : ''}${quoteIdent(idx)} ON ${table}` +
        `${typeof o.method === 'string' ? ` USING ${o.method}` : ''} (${cols.map(quoteIdent).join(', ')})${typeof o.where === 'string' ? ` WHERE ${o.where}` : ''}`];
    }
    case 'dropIndex': {
      const cols = columns(args[1]);
      const o: Obj = isObj(args[2]) ? args[2] : {};
      const idx = typeof o.name === 'string' ? o.name : cols ? `${bare(args[0])}_${cols.join('_')}${o.unique === true ? '_unique' : ''}_index` : null;
      return idx ? [`DROP INDEX ${o.concurrently === true ? 'CONCURRENTLY ' : ''}${o.ifExists === true ? 'IF EXISTS ' : ''}${quoteIdent(idx)}`] : null;
    }
    case 'addColumns': case 'addColumn':
      return isObj(args[1]) ? [`ALTER TABLE ${table} ${Object.entries(args[1]).map(([c, spec]) => `ADD COLUMN ${columnSql(c, spec)}`).join(', ')}`] : null;
    case 'dropColumns': case 'dropColumn': {
      const cols = columns(args[1]);
      return cols ? [`ALTER TABLE ${table} ${cols.map((c) => `DROP COLUMN ${quoteIdent(c)}`).join(', ')}`] : null;
    }
    // A table made here is new and empty for the rest of the file (its own constraints and indexes are free).
    case 'createTable':
      return isObj(args[1]) ? [`CREATE TABLE ${table} (${Object.entries(args[1]).map(([c, spec]) => columnSql(c, spec)).join(', ')})`] : null;
    case 'dropTable': return [`DROP TABLE ${table}`];
    case 'alterColumn': return alterColumnSql(table, args);
    case 'addConstraint': case 'createConstraint': return addConstraintSql(table, args);
    default: return null;
  }
}

function alterColumnSql(table: string, args: JsValue[]): string[] | null {
  if (typeof args[1] !== 'string' || !isObj(args[2])) return null;
  const o = args[2];
  const col = `ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(args[1])}`;
  const out: string[] = [];
  if (o.notNull === true) out.push(`${col} SET NOT NULL`);
  if (o.notNull === false) out.push(`${col} DROP NOT NULL`);
  if (o.default !== undefined) out.push(o.default === null ? `${col} DROP DEFAULT` : `${col} SET DEFAULT ${defaultSql(o.default)}`);
  if (typeof o.type === 'string') out.push(`${col} TYPE ${o.type}${typeof o.using === 'string' ? ` USING ${o.using}` : ''}`);
  return out;
}

function addConstraintSql(table: string, args: JsValue[]): string[] | null {
  const cname = typeof args[1] === 'string' ? `CONSTRAINT ${quoteIdent(args[1])} ` : '';
  const spec = args[2];
  if (typeof spec === 'string') return [`ALTER TABLE ${table} ADD ${cname}${spec}`];
  if (!isObj(spec)) return null;
  const body: string[] = [];
  if (typeof spec.check === 'string') body.push(`CHECK (${spec.check})`);
  const uniq = columns(spec.unique);
  if (spec.unique !== undefined && uniq) body.push(`UNIQUE (${uniq.map(quoteIdent).join(', ')})`);
  const pk = columns(spec.primaryKey);
  if (spec.primaryKey !== undefined && pk) body.push(`PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`);
  const fk = isObj(spec.foreignKeys) ? spec.foreignKeys : null;
  const fkCols = fk ? columns(fk.columns) : null;
  const ref = fk ? name(fk.references) : null;
  if (fkCols && ref) body.push(`FOREIGN KEY (${fkCols.map(quoteIdent).join(', ')}) REFERENCES ${ref}`);
  const notValid = spec.notValid === true ? ' NOT VALID' : '';
  return body.length ? body.map((b) => `ALTER TABLE ${table} ADD ${cname}${b}${notValid}`) : null;
}
