import { quoteIdent, quoteLiteral } from '../../db/quote.js';
import { isMarker, UNKNOWN, type JsValue } from './js-values.js';

/*
 * Sequelize's QueryInterface calls, translated to the SQL its PostgreSQL dialect runs for them: what the
 * rules judge is the statement the database receives (`changeColumn(…, { allowNull: false })` is a
 * `SET NOT NULL`). A value that is not known statically becomes a `$n` parameter.
 */

/** The QueryInterface methods that are translated. */
export const QUERY_INTERFACE_METHODS = new Set([
  'addColumn', 'changeColumn', 'removeColumn', 'renameColumn', 'addIndex', 'removeIndex', 'addConstraint',
  'removeConstraint', 'bulkUpdate', 'bulkDelete', 'bulkInsert', 'createTable', 'dropTable', 'renameTable',
]);

type Obj = { [key: string]: JsValue };
const isObj = (v: JsValue): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !isMarker(v);

/** `'table'` or `{ tableName, schema }` as Sequelize accepts it; null when unknown. */
function tableName(v: JsValue): string | null {
  if (typeof v === 'string') return quoteIdent(v);
  if (isObj(v) && typeof v.tableName === 'string') {
    return typeof v.schema === 'string' ? `${quoteIdent(v.schema)}.${quoteIdent(v.tableName)}` : quoteIdent(v.tableName);
  }
  return null;
}

const TYPES: Record<string, string> = {
  STRING: 'varchar(255)', CHAR: 'char(255)', TEXT: 'text', CITEXT: 'citext', INTEGER: 'integer', BIGINT: 'bigint',
  SMALLINT: 'smallint', FLOAT: 'float8', DOUBLE: 'float8', REAL: 'real', DECIMAL: 'numeric', NUMERIC: 'numeric',
  BOOLEAN: 'boolean', DATE: 'timestamptz', TIMESTAMP: 'timestamp', DATEONLY: 'date', TIME: 'time', NOW: 'timestamptz', UUID: 'uuid',
  JSON: 'json', JSONB: 'jsonb', BLOB: 'bytea', ENUM: 'text', ARRAY: 'text[]', INET: 'inet', TSVECTOR: 'tsvector',
};

/** The PostgreSQL type of a Sequelize type (`STRING(50)` → `varchar(50)`); `text` when unknown. */
export function sqlType(v: JsValue): string {
  if (typeof v === 'string') return v;
  if (!isMarker(v) || v.marker !== 'type') return 'text';
  const n = v.args.filter((a): a is number => typeof a === 'number');
  if (v.name === 'STRING' && n.length) return `varchar(${n[0]})`;
  if (v.name === 'CHAR' && n.length) return `char(${n[0]})`;
  if ((v.name === 'DECIMAL' || v.name === 'NUMERIC') && n.length) return `numeric(${n.join(', ')})`;
  if (v.name === 'ARRAY' && v.args[0] !== undefined) return `${sqlType(v.args[0])}[]`;
  return TYPES[v.name] ?? 'text';
}

/** The PostgreSQL type of a Sequelize type when it is known exactly (a string type is taken as written). */
function knownSqlType(v: JsValue): string | null {
  if (typeof v === 'string') return v;
  if (!isMarker(v) || v.marker !== 'type' || !(v.name in TYPES) || v.name === 'ENUM' || v.name === 'ARRAY') return null;
  return sqlType(v);
}

/** A default value as SQL, or null when the database gets none (Sequelize fills `UUIDV4`, `NOW` in JS). */
function defaultSql(v: JsValue): string | null {
  if (v === UNKNOWN) return '$1';
  if (typeof v === 'string') return quoteLiteral(v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return 'NULL';
  if (isMarker(v) && v.marker === 'fn') return `${v.name}()`;
  if (isMarker(v) && v.marker === 'literal') return v.name;
  return null;
}

/** A column definition as `ALTER TABLE … ADD COLUMN` / `CREATE TABLE` write it. */
function columnSql(name: string, attrs: JsValue): string {
  const a: Obj = isObj(attrs) ? attrs : { type: attrs };
  const parts = [quoteIdent(name), a.autoIncrement === true ? (sqlType(a.type ?? null) === 'bigint' ? 'bigserial' : 'serial') : sqlType(a.type ?? null)];
  if (a.allowNull === false) parts.push('NOT NULL');
  const def = 'defaultValue' in a ? defaultSql(a.defaultValue ?? null) : null;
  if (def !== null) parts.push(`DEFAULT ${def}`);
  if (a.primaryKey === true) parts.push('PRIMARY KEY');
  if (a.unique === true) parts.push('UNIQUE');
  const ref = a.references;
  if (ref !== undefined && isObj(ref)) {
    const target = tableName(ref.model ?? null);
    if (target) parts.push(`REFERENCES ${target}${typeof ref.key === 'string' ? ` (${quoteIdent(ref.key)})` : ''}`);
  }
  return parts.join(' ');
}

/** Field names of an index or constraint: strings or `{ name }` / `{ attribute }` objects. */
function fieldNames(v: JsValue): string[] | null {
  if (!Array.isArray(v)) return typeof v === 'string' ? [v] : null;
  const out: string[] = [];
  for (const f of v) {
    if (typeof f === 'string') out.push(f);
    else if (isObj(f) && typeof (f.name ?? f.attribute) === 'string') out.push((f.name ?? f.attribute) as string);
    else return null;
  }
  return out;
}

/** A Sequelize `where` object as SQL: `{ a: 1, b: [2, 3], c: { [Op.lt]: 4 } }`; `$n` for unknown values. */
export function whereSql(where: JsValue): string | null {
  if (where === UNKNOWN) return '$1 = $1';
  if (!isObj(where)) return null;
  const parts: string[] = [];
  let n = 0;
  const value = (v: JsValue) => (v === UNKNOWN || isObj(v) || isMarker(v) ? `$${++n}` : defaultSql(v) ?? `$${++n}`);
  for (const [key, v] of Object.entries(where)) {
    const col = quoteIdent(key);
    if (Array.isArray(v)) parts.push(`${col} IN (${v.map(value).join(', ') || 'NULL'})`);
    else if (v === null) parts.push(`${col} IS NULL`);
    else if (isObj(v)) {
      const ops: Record<string, string> = { $eq: '=', $ne: '<>', $lt: '<', $lte: '<=', $gt: '>', $gte: '>=', $like: 'LIKE' };
      for (const [op, arg] of Object.entries(v)) {
        if (op === '$in' || op === '$notIn') parts.push(`${col} ${op === '$in' ? 'IN' : 'NOT IN'} (${Array.isArray(arg) ? arg.map(value).join(', ') : value(arg)})`);
        else parts.push(`${col} ${ops[op] ?? '='} ${value(arg)}`);
      }
    } else parts.push(`${col} = ${value(v)}`);
  }
  return parts.length ? parts.join(' AND ') : null;
}

/**
 * The SQL a QueryInterface call runs, one string per statement; null when the call is not one (its
 * arguments do not have QueryInterface's shapes).
 *
 * @example
 * queryInterfaceSql('changeColumn', ['notes', 'content', { type: { marker: 'type', name: 'TEXT', args: [] }, allowNull: false }])
 * // ['ALTER TABLE "notes" ALTER COLUMN "content" SET NOT NULL', 'ALTER TABLE "notes" ALTER COLUMN "content" TYPE text']
 */
export function queryInterfaceSql(method: string, args: JsValue[]): string[] | null {
  const table = tableName(args[0] ?? UNKNOWN);
  if (table === null) return null;
  const str = (v: JsValue | undefined) => (typeof v === 'string' ? v : null);
  switch (method) {
    case 'addColumn': return str(args[1]) ? [`ALTER TABLE ${table} ADD COLUMN ${columnSql(str(args[1])!, args[2] ?? null)}`] : null;
    case 'changeColumn': return str(args[1]) ? changeColumnSql(table, str(args[1])!, args[2] ?? null, bareTableName(args[0] ?? null)) : null;
    case 'removeColumn': return str(args[1]) ? [`ALTER TABLE ${table} DROP COLUMN ${quoteIdent(str(args[1])!)}`] : null;
    case 'renameColumn': return str(args[1]) && str(args[2]) ? [`ALTER TABLE ${table} RENAME COLUMN ${quoteIdent(str(args[1])!)} TO ${quoteIdent(str(args[2])!)}`] : null;
    case 'addIndex': return addIndexSql(table, args);
    case 'removeIndex': return removeIndexSql(args);
    case 'addConstraint': return addConstraintSql(table, args);
    case 'removeConstraint': return str(args[1]) ? [`ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(str(args[1])!)}`] : null;
    case 'bulkUpdate': {
      if (!isObj(args[1] ?? null)) return null;
      const sets = Object.keys(args[1] as Obj).map((k, i) => `${quoteIdent(k)} = $${i + 1}`);
      const where = whereSql(args[2] ?? {});
      return sets.length ? [`UPDATE ${table} SET ${sets.join(', ')}${where ? ` WHERE ${where}` : ''}`] : null;
    }
    case 'bulkDelete': { const where = whereSql(args[1] ?? {}); return [`DELETE FROM ${table}${where ? ` WHERE ${where}` : ''}`]; }
    case 'bulkInsert': return [`INSERT INTO ${table} DEFAULT VALUES`];
    case 'createTable': return isObj(args[1] ?? null) ? [`CREATE TABLE ${table} (${Object.entries(args[1] as Obj).map(([c, a]) => columnSql(c, a)).join(', ')})`] : null;
    case 'dropTable': return [`DROP TABLE ${table}`];
    case 'renameTable': return str(args[1]) ? [`ALTER TABLE ${table} RENAME TO ${quoteIdent(str(args[1])!)}`] : null;
    default: return null;
  }
}

/** Sequelize's PostgreSQL changeColumn: NOT NULL, default, then the type (always sent, even unchanged). */
function changeColumnSql(table: string, column: string, attrs: JsValue, bare: string | null): string[] {
  const a: Obj = isObj(attrs) ? attrs : { type: attrs };
  const col = `ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(column)}`;
  const out: string[] = [];
  if (a.allowNull === false) out.push(`${col} SET NOT NULL`);
  else if (a.allowNull === true) out.push(`${col} DROP NOT NULL`);
  if ('defaultValue' in a) {
    const def = defaultSql(a.defaultValue ?? null);
    out.push(def === null ? `${col} DROP DEFAULT` : `${col} SET DEFAULT ${def}`);
  }
  // A type known only to the host (a custom DataType, an ENUM's own type) is left out rather than guessed:
  // a wrong guess would look like a type change.
  const type = a.type === undefined ? null : knownSqlType(a.type);
  if (type !== null) out.push(`${col} TYPE ${type}`);
  // An ENUM's type is Sequelize's own `enum_<table>_<column>`, cast to with USING.
  else if (isMarker(a.type ?? null) && (a.type as { name: string }).name === 'ENUM' && bare !== null) {
    const enumType = quoteIdent(`enum_${bare}_${column}`);
    out.push(`${col} TYPE ${enumType} USING (${quoteIdent(column)}::${enumType})`);
  }
  return out;
}

/** `'notes'` or `{ tableName: 'notes' }`: the table's own name, unquoted. */
function bareTableName(v: JsValue): string | null {
  return typeof v === 'string' ? v : isObj(v) && typeof v.tableName === 'string' ? v.tableName : null;
}

function addIndexSql(table: string, args: JsValue[]): string[] | null {
  const second = args[1] ?? null;
  const options: Obj = isObj(second) ? second : isObj(args[2] ?? null) ? args[2] as Obj : {};
  const fields = fieldNames(Array.isArray(second) ? second : options.fields ?? null);
  if (!fields) return null;
  const bare = table.replace(/^.*\./, '').replaceAll('"', '');
  const name = typeof options.name === 'string' ? options.name : `${bare}_${fields.join('_')}`;
  const where = options.where !== undefined ? whereSql(options.where) : null;
  return [`CREATE ${options.unique === true ? 'UNIQUE ' : ''}INDEX ${options.concurrently === true ? 'CONCURRENTLY ' : ''}${quoteIdent(name)} ON ${table}` +
    `${typeof options.using === 'string' ? ` USING ${options.using}` : ''} (${fields.map(quoteIdent).join(', ')})${where ? ` WHERE ${where}` : ''}`];
}

function removeIndexSql(args: JsValue[]): string[] | null {
  const second = args[1] ?? null;
  const options: Obj = isObj(args[2] ?? null) ? args[2] as Obj : {};
  const bare = typeof args[0] === 'string' ? args[0] : '';
  const name = typeof second === 'string' ? second : Array.isArray(second) ? `${bare}_${(fieldNames(second) ?? []).join('_')}` : null;
  if (!name) return null;
  return [`DROP INDEX ${options.concurrently === true ? 'CONCURRENTLY ' : ''}${quoteIdent(name)}`];
}

function addConstraintSql(table: string, args: JsValue[]): string[] | null {
  // addConstraint(table, options) (v5+) or addConstraint(table, fields, options) (v4).
  const o: Obj = isObj(args[1] ?? null) ? args[1] as Obj : isObj(args[2] ?? null) ? { ...(args[2] as Obj), fields: args[1] ?? null } : {};
  const fields = fieldNames(o.fields ?? null) ?? [];
  const type = typeof o.type === 'string' ? o.type.toLowerCase() : '';
  const name = typeof o.name === 'string' ? `CONSTRAINT ${quoteIdent(o.name)} ` : '';
  const cols = fields.map(quoteIdent).join(', ');
  let body: string | null = null;
  if (type === 'unique') body = `UNIQUE (${cols})`;
  else if (type === 'primary key') body = `PRIMARY KEY (${cols})`;
  else if (type === 'check') body = `CHECK (${whereSql(o.where ?? UNKNOWN) ?? 'true'})`;
  else if (type === 'foreign key' && isObj(o.references ?? null)) {
    const ref = o.references as Obj;
    const target = tableName(ref.table ?? null);
    if (target) body = `FOREIGN KEY (${cols}) REFERENCES ${target}${typeof ref.field === 'string' ? ` (${quoteIdent(ref.field)})` : ''}`;
  }
  return body && (cols || type === 'check') ? [`ALTER TABLE ${table} ADD ${name}${body}`] : null;
}
