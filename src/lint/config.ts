import { z } from 'zod';
import { ConfigError } from '../db/errors.js';
import type { LintOptions } from './lint.js';
import { RULE_IDS } from './types.js';

/*
 * The linter's config file (`--config`): JSON with rule levels and the settings the flags also take.
 * Keys in camelCase or snake_case. Every problem is collected and reported at once.
 */

const level = z.enum(['error', 'warning', 'off']);
const configSchema = z.object({
  rules: z.partialRecord(z.enum(RULE_IDS), level).optional(),
  largeTableRows: z.number().int().positive().optional(),
  assumeInTransaction: z.boolean().optional(),
  lockTimeoutSetByRunner: z.boolean().optional(),
  readMBps: z.tuple([z.number().positive(), z.number().positive()]).optional(),
  assumeRows: z.record(z.string(), z.number().int().nonnegative()).optional(),
}).strict();

/** The options a config file sets (flags given on the command line win over them). */
export type LintConfig = Pick<LintOptions, 'rules' | 'largeTableRows' | 'assumeInTransaction' | 'lockTimeoutSetByRunner' | 'readMBps'> & {
  assumeRows?: Record<string, number>;
};

/**
 * Validates a parsed config file. ConfigError (`invalid_config`) naming every bad key.
 *
 * @example
 * parseLintConfig({ rules: { 'missing-lock-timeout': 'off' }, large_table_rows: 500000 }, 'lint.json')
 */
export function parseLintConfig(json: unknown, source: string): LintConfig {
  // Only the top-level keys are renamed: rule ids and table names are data.
  const top = json && typeof json === 'object' && !Array.isArray(json)
    ? Object.fromEntries(Object.entries(json).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v as unknown]))
    : json;
  const parsed = configSchema.safeParse(top);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new ConfigError('invalid_config', `${source}: ${problems.join('; ')}`, { problems });
  }
  const out: LintConfig = {};
  for (const [k, v] of Object.entries(parsed.data)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
