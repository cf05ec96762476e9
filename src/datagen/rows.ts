import { ConfigError } from '../db/errors.js';

/**
 * Parses a row count as people write it: `2000000`, `2_000_000`, `250k`, `1m`, `1.5m`. Zero, negative,
 * fractional row counts and anything else are a ConfigError naming the value.
 *
 * @example
 * parseRowCount('250k') // 250000
 * parseRowCount('1m')   // 1000000
 */
export function parseRowCount(value: string, option = '--rows'): number {
  const m = /^\s*(\d+(?:[_,]\d{3})*(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(value);
  const bad = () => new ConfigError('invalid_option',
    `${option} must be a positive row count such as 5000, 250k or 2m, got ${JSON.stringify(value)}`, { option, value });
  if (!m) throw bad();
  const base = Number(m[1]!.replace(/[_,]/g, ''));
  const unit = m[2]!.toLowerCase();
  const n = base * (unit === 'k' ? 1_000 : unit === 'm' ? 1_000_000 : 1);
  if (!Number.isFinite(n) || n <= 0 || !Number.isInteger(n) || n > Number.MAX_SAFE_INTEGER) throw bad();
  return n;
}
