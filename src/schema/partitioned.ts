import { createHash } from 'node:crypto';
import { parse } from 'libpg-query';
import type pg from 'pg';
import { ConfigError } from '../db/errors.js';
import { quoteIdent, quoteLiteral, type QualifiedName } from '../db/quote.js';
import { LOOKUP_COLUMNS_DDL, LOOKUP_TABLE, NEEDS_REBUILD_INDEX, RECORD_TYPE_INDEX, TICKS_TABLE, columnProblems } from './sync-lookup.js';

/** How `sync_lookup` is laid out: one plain table, or list-partitioned by `record_type`. */
export type Layout = 'plain' | 'partitioned';

/** The layouts `migrate --layout` accepts. */
export const LAYOUTS: readonly Layout[] = ['plain', 'partitioned'];

/** The default partition: rows of types that have no partition of their own (new or unregistered models). */
export const DEFAULT_PARTITION = `${LOOKUP_TABLE}_p_default`;

/** The comment that marks the layout on the table itself, so later runs (and people) can see it. */
export const PARTITIONED_COMMENT = 'sync-lookup layout: partitioned by record_type (a partition per model + default)';

/**
 * The partition name for a record type: `sync_lookup_p_<type>` when the type is a plain lower-case
 * identifier that fits in 63 bytes, else a sanitised, truncated form plus a short hash (so hostile or
 * long names still give a unique, harmless identifier; it is quoted anyway).
 *
 * @example
 * partitionName('encounters') // 'sync_lookup_p_encounters'
 */
export function partitionName(type: string): string {
  const prefix = `${LOOKUP_TABLE}_p_`;
  const slug = type.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (slug === type && Buffer.byteLength(prefix + slug) <= 63 && type !== 'default') return prefix + slug;
  const hash = createHash('sha256').update(type).digest('hex').slice(0, 8);
  return `${prefix}${slug.slice(0, 63 - prefix.length - 9)}_${hash}`;
}

/**
 * DDL of the partitioned layout: the same columns as the plain one; `id` from a sequence default (identity
 * columns on partitioned tables need PostgreSQL 17, and a partition written directly must get ids too);
 * the primary key is `(id, record_type)` because a partitioned table's unique keys must contain the
 * partition key (ids still come from one sequence, so `id` stays unique); the same unique and secondary
 * indexes as the plain layout plus the record_type-led one; a partition per type and a default.
 *
 * @example
 * await client.query(partitionedSchemaSql(['encounters', 'notes']));
 */
export function partitionedSchemaSql(types: string[]): string {
  const seq = quoteIdent(`${LOOKUP_TABLE}_id_seq`);
  const t = quoteIdent(LOOKUP_TABLE);
  const parts = [...new Set(types)].sort().map((type) =>
    `CREATE TABLE ${quoteIdent(partitionName(type))} PARTITION OF ${t} FOR VALUES IN (${quoteLiteral(type)});`);
  return [
    `CREATE SEQUENCE ${seq} AS bigint;`,
    `CREATE TABLE ${t} (
  id bigint NOT NULL DEFAULT nextval('${LOOKUP_TABLE}_id_seq'::regclass),
${LOOKUP_COLUMNS_DDL}
  CONSTRAINT sync_lookup_pkey PRIMARY KEY (id, record_type),
  CONSTRAINT sync_lookup_record_id_record_type_key UNIQUE (record_id, record_type)
) PARTITION BY LIST (record_type);`,
    `ALTER SEQUENCE ${seq} OWNED BY ${t}.id;`,
    `CREATE INDEX sync_lookup_updated_at_sync_tick_record_id_patient_id_facility_id
  ON ${t} (updated_at_sync_tick, record_id, patient_id, facility_id);`,
    `CREATE INDEX sync_lookup_patient_id ON ${t} (patient_id);`,
    `CREATE INDEX ${quoteIdent(RECORD_TYPE_INDEX.name)} ON ${t} (record_type, updated_at_sync_tick);`,
    `ALTER TABLE ${t} ADD COLUMN needs_rebuild boolean NOT NULL DEFAULT false;`,
    `CREATE INDEX ${quoteIdent(NEEDS_REBUILD_INDEX.name)} ON ${t} (record_type) WHERE needs_rebuild;`,
    ...parts,
    `CREATE TABLE ${quoteIdent(DEFAULT_PARTITION)} PARTITION OF ${t} DEFAULT;`,
    `COMMENT ON TABLE ${t} IS ${quoteLiteral(PARTITIONED_COMMENT)};`,
    `CREATE TABLE ${quoteIdent(TICKS_TABLE)} (
  source_start_tick bigint NOT NULL,
  lookup_end_tick bigint PRIMARY KEY
);`,
  ].join('\n');
}

/**
 * The layout of the live `sync_lookup`, read from the catalog (the table's kind is the record of the
 * layout: it cannot drift from what is there); `absent` before the baseline.
 *
 * @example
 * if (await detectLayout(client) === 'partitioned') …
 */
export async function detectLayout(client: pg.ClientBase): Promise<Layout | 'absent'> {
  const { rows } = await client.query<{ kind: string | null }>(
    `select c.relkind::text as kind from pg_class c where c.oid = to_regclass($1)`, [LOOKUP_TABLE]);
  const kind = rows[0]?.kind;
  if (!kind) return 'absent';
  return kind === 'p' ? 'partitioned' : 'plain';
}

/** One partition of `sync_lookup` and the record types it holds. */
export interface TypePartition {
  table: QualifiedName;
  /** The list values of its bound; empty for the default partition. */
  types: string[];
  isDefault: boolean;
}

function constValue(node: unknown): string | null {
  const n = node as { A_Const?: { sval?: { sval?: string } }; TypeCast?: { arg?: unknown } };
  if (n.A_Const?.sval?.sval !== undefined) return n.A_Const.sval.sval;
  if (n.TypeCast?.arg) return constValue(n.TypeCast.arg);
  return null;
}

/**
 * The partitions of `sync_lookup` with the record types each holds, read from `pg_get_expr(relpartbound)`
 * and understood with PostgreSQL's own parser. Empty on the plain layout. `parent`: another partitioned table (text
 * as `to_regclass` reads it), such as the shadow of a conversion.
 *
 * @example
 * const own = (await typePartitions(client)).find((p) => p.types.length === 1 && p.types[0] === 'notes');
 */
export async function typePartitions(client: pg.ClientBase, parent: string = LOOKUP_TABLE): Promise<TypePartition[]> {
  const { rows } = await client.query<{ schema: string; name: string; bound: string }>(
    `select n.nspname as schema, c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
       from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_namespace n on n.oid = c.relnamespace
      where i.inhparent = to_regclass($1) order by c.relname`, [parent]);
  const result: TypePartition[] = [];
  for (const r of rows) result.push({ table: { schema: r.schema, name: r.name }, ...(await parseBound(r.bound)) });
  return result;
}

/** Parsed partition bounds by their text: the same text always means the same bound, and parsing costs ~1 ms each. */
const boundCache = new Map<string, { types: string[]; isDefault: boolean }>();

async function parseBound(text: string): Promise<{ types: string[]; isDefault: boolean }> {
  const cached = boundCache.get(text);
  if (cached) return { types: [...cached.types], isDefault: cached.isDefault };
  const tree = await parse(`CREATE TABLE x PARTITION OF y ${text}`) as {
    stmts: { stmt: { CreateStmt?: { partbound?: { is_default?: boolean; listdatums?: unknown[] } } } }[];
  };
  const bound = tree.stmts[0]?.stmt.CreateStmt?.partbound;
  const parsed = { types: (bound?.listdatums ?? []).map(constValue).filter((v): v is string => v !== null), isDefault: !!bound?.is_default };
  if (boundCache.size < 10_000) boundCache.set(text, parsed);
  return { types: [...parsed.types], isDefault: parsed.isDefault };
}

/** What `ensureTypePartitions` did. */
export interface EnsurePartitionsResult {
  created: string[];
  /** Types whose rows already sit in the default partition: splitting them out is an offline step. */
  inDefault: string[];
}

/**
 * Adds a partition for each registered type that has none yet (a model added after the baseline), so its
 * rows stop landing in the default partition. A type whose rows are already in the default partition is
 * left there and reported: attaching its partition would have to move them under an exclusive lock.
 *
 * @example
 * await ensureTypePartitions(client, registryTypeNames);
 */
export async function ensureTypePartitions(client: pg.ClientBase, types: string[]): Promise<EnsurePartitionsResult> {
  const parts = await typePartitions(client);
  const covered = new Set(parts.flatMap((p) => p.types));
  const result: EnsurePartitionsResult = { created: [], inDefault: [] };
  for (const type of [...new Set(types)].sort()) {
    if (covered.has(type)) continue;
    const { rows } = await client.query<{ found: boolean }>(
      `select exists (select 1 from ${quoteIdent(LOOKUP_TABLE)} where record_type = $1) as found`, [type]);
    if (rows[0]?.found) { result.inDefault.push(type); continue; }
    await client.query(`CREATE TABLE ${quoteIdent(partitionName(type))} PARTITION OF ${quoteIdent(LOOKUP_TABLE)} FOR VALUES IN (${quoteLiteral(type)})`);
    result.created.push(type);
  }
  return result;
}

/**
 * Compares a partitioned `sync_lookup` with the expected shape (columns, partition key, the unique keys
 * including `record_type`, the secondary indexes). Empty when it matches.
 *
 * @example
 * const problems = await partitionedShapeProblems(client);
 */
export async function partitionedShapeProblems(client: pg.ClientBase): Promise<string[]> {
  const problems = await columnProblems(client);
  const { rows: [key] } = await client.query<{ key: string | null }>(
    `select pg_get_partkeydef($1::regclass) as key`, [LOOKUP_TABLE]);
  if (key?.key !== 'LIST (record_type)') problems.push(`${LOOKUP_TABLE} is partitioned by ${key?.key ?? 'nothing'}, expected LIST (record_type)`);
  const { rows: indexes } = await client.query<{ columns: string[]; unique: boolean }>(
    `select array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, ord)
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord) as columns,
            i.indisunique as unique
       from pg_index i where i.indrelid = $1::regclass`, [LOOKUP_TABLE]);
  const want = [
    { columns: ['id', 'record_type'], unique: true },
    { columns: ['record_id', 'record_type'], unique: true },
    { columns: ['updated_at_sync_tick', 'record_id', 'patient_id', 'facility_id'], unique: false },
    { columns: ['patient_id'], unique: false },
  ];
  for (const w of want) {
    if (!indexes.some((i) => i.columns.join(',') === w.columns.join(',') && i.unique === w.unique)) {
      problems.push(`no ${w.unique ? 'unique ' : ''}index on ${LOOKUP_TABLE} (${w.columns.join(', ')})`);
    }
  }
  return problems;
}

/** Validates a `--layout` value, naming the valid ones. */
export function parseLayout(value: string): Layout {
  if ((LAYOUTS as readonly string[]).includes(value)) return value as Layout;
  throw new ConfigError('invalid_layout', `--layout must be one of ${LAYOUTS.join(', ')}, got ${JSON.stringify(value)}`);
}
