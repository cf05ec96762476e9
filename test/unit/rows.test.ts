import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/db/errors.js';
import { parseRowCount } from '../../src/datagen/rows.js';

describe('parseRowCount', () => {
  it('accepts plain counts and k/m suffixes', () => {
    expect(parseRowCount('2000000')).toBe(2_000_000);
    expect(parseRowCount('2_000_000')).toBe(2_000_000);
    expect(parseRowCount('250k')).toBe(250_000);
    expect(parseRowCount('1m')).toBe(1_000_000);
    expect(parseRowCount('1.5M')).toBe(1_500_000);
    expect(parseRowCount(' 7 ')).toBe(7);
  });

  it.each(['0', '-5', 'abc', '1.5', '', '1e6', '2mm', '0k', '0.0001k'])('rejects %j naming the value', (value) => {
    const err = (() => { try { parseRowCount(value); } catch (e) { return e; } })() as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`--rows must be a positive row count`);
    expect(err.message).toContain(JSON.stringify(value));
  });
});
