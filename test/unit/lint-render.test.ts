import { readFileSync } from 'node:fs';
import * as ajvDraft04 from 'ajv-draft-04';
import { describe, expect, it } from 'vitest';
import { lintMigrations, renderGithub, renderSarif, renderText, RULES, RULE_IDS } from '../../src/lint/index.js';

/* The linter's outputs: SARIF validated against the 2.1.0 schema (vendored), GitHub annotations, text. */

const SCHEMA = 'CREATE TABLE public.notes (id int PRIMARY KEY, content text, tick bigint);';

async function result() {
  return lintMigrations([
    { path: '/repo/migrations/001.sql', text: "ALTER TABLE notes ADD COLUMN x int;\nDELETE FROM notes WHERE content = 'a,b: c';" },
    { path: '/repo/migrations/002.sql', text: 'SELEC 1;' },
  ], { schemaSql: SCHEMA, assumeRows: { notes: 2_000_000 } });
}

// Loading Babel, the SQL parser and compiling the SARIF schema take seconds on a busy machine.
describe('lint output', { timeout: 60_000 }, () => {
  it('SARIF 2.1.0: valid against the schema, rules with help, results with levels and locations', async () => {
    const r = await result();
    const sarif = renderSarif(r, { version: '0.2.0', baseDir: '/repo' }) as {
      runs: { tool: { driver: { rules: { id: string; help: { text: string } }[] } }; results: { ruleId: string; level: string; locations: unknown[] }[] }[];
    };
    const schema = JSON.parse(readFileSync('test/fixtures/sarif/sarif-schema-2.1.0.json', 'utf8')) as object;
    // The schema's language pattern is not a valid unicode-mode regular expression.
    // A CommonJS module: its class is the namespace's `default`.
    type Validator = ((data: unknown) => boolean) & { errors?: unknown[] | null };
    const Ajv = (ajvDraft04 as unknown as { default: new (o: object) => { compile(s: object): Validator } }).default;
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    const validate = ajv.compile(schema);
    const valid = validate(sarif);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // The check itself: a wrong level is refused.
    const broken = structuredClone(sarif);
    broken.runs[0]!.results[0]!.level = 'fatal';
    expect(validate(broken)).toBe(false);
    const run = sarif.runs[0]!;
    expect(run.tool.driver.rules.map((x) => x.id)).toEqual([...RULE_IDS]);
    expect(run.tool.driver.rules.every((x) => x.help.text.length > 20)).toBe(true);
    expect(run.results.map((x) => `${x.ruleId} ${x.level}`)).toEqual(['missing-lock-timeout warning', 'unindexed-filter error', 'parse-error error']);
    expect(run.results[1]!.locations).toEqual([{ physicalLocation: { artifactLocation: { uri: 'migrations/001.sql' }, region: { startLine: 2, startColumn: 1 } } }]);
  });

  it('GitHub annotations: one workflow command per finding, properties escaped', async () => {
    const lines = renderGithub(await result(), { baseDir: '/repo' }).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^::error file=migrations\/001.sql,line=2,col=1,title=sync-lookup lint unindexed-filter::DELETE reads all of public.notes/);
    expect(lines[0]).toMatch(/^::warning file=migrations\/001.sql,line=1,col=1,/);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('text: file:line:col, level, rule, message and fix; a summary last', async () => {
    const text = renderText(await result());
    expect(text).toMatch(/^\/repo\/migrations\/001.sql:1:1: warning missing-lock-timeout: /m);
    expect(text).toMatch(/^\/repo\/migrations\/001.sql:2:1: error unindexed-filter: .*\n {4}fix: CREATE INDEX CONCURRENTLY "notes_content"/m);
    expect(text).toMatch(/^\/repo\/migrations\/002.sql:1:1: error parse-error: does not parse: syntax error at or near "SELEC"/m);
    expect(text.split('\n').at(-1)).toMatch(/^2 file\(s\), 2 statement\(s\): 2 error\(s\), 1 warning\(s\)\. Schema: schema dump; sizes: assumed/);
  });

  it('every rule has a section with a bad and a good example in docs/lint.md', () => {
    const doc = readFileSync('docs/lint.md', 'utf8');
    for (const rule of RULES) {
      const at = doc.indexOf(`### ${rule.id}`);
      expect(at, rule.id).toBeGreaterThan(-1);
      const section = doc.slice(at, doc.indexOf('\n### ', at + 1) === -1 ? undefined : doc.indexOf('\n### ', at + 1));
      if (rule.run) {
        expect(section, rule.id).toMatch(/Bad:/);
        expect(section, rule.id).toMatch(/Good:/);
      }
    }
  });
});
