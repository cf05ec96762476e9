import { ConfigError } from './errors.js';

/**
 * Quotes one SQL identifier: doubles every `"` and rejects NUL, which PostgreSQL cannot store.
 * Always quotes, so case and reserved words survive.
 *
 * @example
 * quoteIdent('sync_lookup') // '"sync_lookup"'
 * quoteIdent('a"b')         // '"a""b"'
 */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new ConfigError('invalid_identifier', 'an identifier cannot be empty');
  if (name.includes('\u0000')) {
    throw new ConfigError('invalid_identifier', `identifier ${JSON.stringify(name)} contains a NUL character`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** A relation named by schema and name; the pair is never split on dots. */
export interface QualifiedName {
  schema: string;
  name: string;
}

/**
 * Quotes a schema-qualified name.
 *
 * @example
 * quoteQualified({ schema: 'public', name: 'sync_lookup' }) // '"public"."sync_lookup"'
 */
export function quoteQualified(ref: QualifiedName): string {
  return `${quoteIdent(ref.schema)}.${quoteIdent(ref.name)}`;
}

/**
 * Quotes a string literal for the rare places a parameter cannot go (DDL such as partition bounds).
 * Doubles quotes and rejects NUL; with standard_conforming_strings (on since 9.1) backslashes are literal.
 *
 * @example
 * quoteLiteral("it's") // "'it''s'"
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) {
    throw new ConfigError('invalid_literal', `value ${JSON.stringify(value)} contains a NUL character`);
  }
  return `'${value.replaceAll("'", "''")}'`;
}
