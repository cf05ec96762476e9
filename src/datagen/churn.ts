import { withClient, withTransaction, type Database } from '../db/connection.js';
import { ConfigError } from '../db/errors.js';
import { quoteIdent } from '../db/quote.js';
import type { ModelDefinition, ModelRegistry } from '../lookup/registry.js';
import { hashSeed } from './prng.js';

/** Options of `churnSourceRows`. */
export interface ChurnOptions {
  registry: ModelRegistry;
  /** Fraction of each model's rows to change, in (0, 1]. */
  fraction: number;
  /** Same seed and same data, same changes. Default 1. */
  seed?: string | number;
  /** Only these models. Default: all. */
  types?: readonly string[];
  /**
   * How the changes split: updates, inserts (copies of existing rows with new ids, so references stay
   * valid), soft deletes and hard deletes. Default 0.5 / 0.3 / 0.1 / 0.1. Hard deletes only hit models no
   * other model joins to (deleting an encounter would silently change its notes' patient, which an
   * incremental build cannot see); their share goes to soft deletes elsewhere.
   */
  mix?: { update: number; insert: number; softDelete: number; hardDelete: number };
}

/** Rows `churnSourceRows` changed, per model and in all. */
export interface ChurnResult {
  updated: number;
  inserted: number;
  softDeleted: number;
  hardDeleted: number;
  models: { model: string; updated: number; inserted: number; softDeleted: number; hardDeleted: number }[];
}

/**
 * Changes a fraction of every model's source rows the way an application does (through the triggers, so
 * ticks and tombstones are real), deterministically: rows are chosen with `TABLESAMPLE BERNOULLI … REPEATABLE`.
 * Used to measure incremental builds and in property tests.
 *
 * @example
 * await churnSourceRows(db, { registry, fraction: 0.01, seed: 3 }); // then buildLookup(...)
 */
export async function churnSourceRows(db: Database, options: ChurnOptions): Promise<ChurnResult> {
  if (!(options.fraction > 0 && options.fraction <= 1)) {
    throw new ConfigError('invalid_option', `fraction must be in (0, 1], got ${JSON.stringify(options.fraction)}`);
  }
  const mix = options.mix ?? { update: 0.5, insert: 0.3, softDelete: 0.1, hardDelete: 0.1 };
  const models = options.registry.select(options.types);
  const joined = new Set(options.registry.models.flatMap((m) => (m.joins ?? []).map((j) => j.table)));
  const base = hashSeed(options.seed ?? 1) % 1_000_000;
  const result: ChurnResult = { updated: 0, inserted: 0, softDeleted: 0, hardDeleted: 0, models: [] };
  await withClient(db, { purpose: 'churn', lockTimeoutMs: 30_000 }, async (client) => {
    for (const [i, model] of models.entries()) {
      const deletable = !joined.has(model.name);
      const pct = (share: number) => Math.min(100, options.fraction * share * 100);
      const sample = (share: number, salt: number) =>
        `SELECT id FROM ${quoteIdent(model.name)} TABLESAMPLE BERNOULLI (${pct(share)}) REPEATABLE (${base + i * 7 + salt})`;
      const t = quoteIdent(model.name);
      const r = { model: model.name, updated: 0, inserted: 0, softDeleted: 0, hardDeleted: 0 };
      await withTransaction(client, async () => {
        const text = amendableColumn(model);
        const set = text ? `, ${quoteIdent(text)} = left(coalesce(${quoteIdent(text)}, '') || ' (amended)', 2000)` : '';
        r.updated = (await client.query(`UPDATE ${t} SET updated_at = updated_at + interval '1 minute'${set} WHERE id IN (${sample(mix.update, 1)})`)).rowCount ?? 0;
        const cols = ['created_at', 'updated_at', 'deleted_at', 'pushed_by_device_id', ...model.columns.map((c) => c.name)].map(quoteIdent).join(', ');
        r.inserted = (await client.query(
          `INSERT INTO ${t} (id, ${cols}) SELECT md5(${base + i}::text || ':' || id::text)::uuid, ${cols} FROM ${t}
            WHERE id IN (${sample(mix.insert, 2)}) ON CONFLICT (id) DO NOTHING`)).rowCount ?? 0;
        const soft = mix.softDelete + (deletable ? 0 : mix.hardDelete);
        r.softDeleted = (await client.query(`UPDATE ${t} SET deleted_at = localtimestamp WHERE deleted_at IS NULL AND id IN (${sample(soft, 3)})`)).rowCount ?? 0;
        if (deletable && mix.hardDelete > 0) r.hardDeleted = (await client.query(`DELETE FROM ${t} WHERE id IN (${sample(mix.hardDelete, 4)})`)).rowCount ?? 0;
      });
      result.models.push(r);
      result.updated += r.updated;
      result.inserted += r.inserted;
      result.softDeleted += r.softDeleted;
      result.hardDeleted += r.hardDeleted;
    }
  });
  return result;
}

/** A free-text column an update can change without touching references or enumerations. */
function amendableColumn(model: ModelDefinition): string | undefined {
  return model.columns.find((c) => c.type === 'text' && !c.values && !c.references)?.name;
}
