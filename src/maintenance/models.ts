import type pg from 'pg';
import { ConfigError } from '../db/errors.js';
import { builtinRegistry, type ModelDefinition, type ModelRegistry } from '../lookup/registry.js';

/**
 * The record types the registry knows (the built-in one unless a registry is given).
 *
 * @example
 * knownLookupTypes().includes('notes') // true
 */
export function knownLookupTypes(registry: ModelRegistry = builtinRegistry()): string[] {
  return registry.names;
}

/**
 * The record types of live models: registered and not `legacy` (purging one loses rows no build restores).
 *
 * @example
 * liveLookupTypes().includes('encounter_medications') // false: a legacy model
 */
export function liveLookupTypes(registry: ModelRegistry = builtinRegistry()): string[] {
  return registry.models.filter((m) => !m.legacy).map((m) => m.name);
}

/**
 * The registry models for `types`, each checked to have its source table: rebuild and resync re-read
 * sources, so a type that is not a registered model, or whose table is missing, is refused up front
 * (ConfigError naming every such type at once).
 *
 * @example
 * const models = await modelsWithSources(client, ['prescriptions'], builtinRegistry());
 */
export async function modelsWithSources(client: pg.ClientBase, types: string[], registry: ModelRegistry): Promise<ModelDefinition[]> {
  const unknown = types.filter((t) => !registry.has(t));
  if (unknown.length) {
    throw new ConfigError('unknown_record_type',
      `unknown record type${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => JSON.stringify(t)).join(', ')}: ` +
      `rebuild needs a registered model; known: ${registry.names.join(', ')}`, { unknown, known: registry.names });
  }
  const models = types.map((t) => registry.get(t));
  const { rows } = await client.query<{ name: string; ok: boolean }>(
    `select t.name, to_regclass(format('%I', t.name)) is not null as ok from unnest($1::text[]) as t(name)`, [types]);
  const missing = rows.filter((r) => !r.ok).map((r) => r.name);
  if (missing.length) {
    throw new ConfigError('no_source_table',
      `no source table for ${missing.map((t) => JSON.stringify(t)).join(', ')}: rebuild re-reads each type's source table ` +
      '(to remove a type whose model is gone, use purge)', { missing });
  }
  return models;
}
