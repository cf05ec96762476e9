import { afterEach, describe, expect, it, vi } from 'vitest';
import { Output } from '../../src/cli/output.js';

describe('progress bar', () => {
  afterEach(() => { vi.restoreAllMocks(); });

  function drawn(columns: number, fraction: number, text: string): string {
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { writes.push(String(chunk)); return true; });
    new Output({ tty: true, columns }).progress({}, text, fraction);
    return writes.join('');
  }

  it('draws the whole line on a terminal that reports 0 columns (unknown width)', () => {
    const line = drawn(0, 0.5, 'delete: 886/1,773 rows');
    expect(line).toContain('[############------------]  50% delete: 886/1,773 rows');
  });

  it('cuts to a real width, and never shows more than 100 %', () => {
    expect(drawn(20, 0.5, 'delete: 886/1,773 rows')).toBe('\r\x1b[K[############------');
    expect(drawn(100, 1.1, 'x')).toContain('[########################] 100% x');
  });
});
