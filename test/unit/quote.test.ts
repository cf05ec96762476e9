import { describe, expect, it } from 'vitest';
import { quoteIdent, quoteLiteral, quoteQualified } from '../../src/db/quote.js';
import { ConfigError } from '../../src/db/errors.js';

describe('quoteIdent', () => {
  it('always quotes and doubles embedded quotes', () => {
    expect(quoteIdent('sync_lookup')).toBe('"sync_lookup"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('x"; drop table t; --')).toBe('"x""; drop table t; --"');
  });
  it('rejects NUL and empty names', () => {
    expect(() => quoteIdent('a\u0000b')).toThrow(ConfigError);
    expect(() => quoteIdent('')).toThrow(/empty/);
  });
  it('keeps schema and name as a pair, never splitting on dots', () => {
    expect(quoteQualified({ schema: 'my.schema', name: 'a.b' })).toBe('"my.schema"."a.b"');
  });
});

describe('quoteLiteral', () => {
  it('doubles single quotes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(() => quoteLiteral('\u0000')).toThrow(ConfigError);
  });
});
