import { relative } from 'node:path';
import { RULES, ruleHelpUri } from '../rules/index.js';
import type { LintResult } from '../lint.js';
import type { LintFinding } from '../types.js';

/*
 * The linter's result for people (text), for code scanning (SARIF 2.1.0) and for GitHub Actions
 * (workflow-command annotations). Pure: the CLI writes what these return.
 */

/** `file:line:col level rule message` then the fix, indented; a summary line last. */
export function renderText(result: LintResult): string {
  const lines: string[] = [];
  for (const f of sorted(result.findings)) {
    lines.push(`${f.file}:${f.line}:${f.column}: ${f.level} ${f.rule}${f.phase === 'file' ? '' : ` (${f.phase})`}: ${f.message}`);
    if (f.fix) lines.push(`    fix: ${f.fix}`);
  }
  const sizes = result.sizeSources.length ? result.sizeSources.join('; ') : 'none (sizes unknown)';
  lines.push(`${result.files.length} file(s), ${result.statements} statement(s): ${result.errors} error(s), ${result.warnings} warning(s). ` +
    `Schema: ${result.schemaSource ?? 'none'}; sizes: ${sizes}.`);
  for (const n of result.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

function sorted(findings: LintFinding[]): LintFinding[] {
  return [...findings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

/**
 * A SARIF 2.1.0 log: one run, the rules with their help, one result per finding (level `error` or
 * `warning`, a physical location relative to `baseDir`).
 */
export function renderSarif(result: LintResult, options: { version: string; baseDir: string }): object {
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'sync-lookup lint', version: options.version, informationUri: 'https://www.npmjs.com/package/sync-lookup',
          rules: RULES.map((r) => ({
            id: r.id, name: r.id.replace(/(^|-)([a-z])/g, (_, _d: string, c: string) => c.toUpperCase()),
            shortDescription: { text: r.summary }, fullDescription: { text: r.summary },
            help: { text: r.help, markdown: `${r.help} See [${ruleHelpUri(r.id)}](${ruleHelpUri(r.id)}).` },
            helpUri: ruleHelpUri(r.id), defaultConfiguration: { level: r.level },
          })),
        },
      },
      columnKind: 'unicodeCodePoints',
      results: sorted(result.findings).map((f) => ({
        ruleId: f.rule, ruleIndex: RULES.findIndex((r) => r.id === f.rule), level: f.level,
        message: { text: f.fix ? `${f.message}. Fix: ${f.fix}` : f.message },
        locations: [{ physicalLocation: {
          artifactLocation: { uri: relative(options.baseDir, f.file).split('\\').join('/') },
          region: { startLine: f.line, startColumn: f.column },
        } }],
        properties: { phase: f.phase, table: f.table, evidence: f.evidence },
      })),
    }],
  };
}

/** GitHub workflow commands: `::error file=…,line=…,col=…,title=…::message` (escaped as the runner expects). */
export function renderGithub(result: LintResult, options: { baseDir: string }): string {
  const data = (s: string) => s.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
  const prop = (s: string) => data(s).replaceAll(':', '%3A').replaceAll(',', '%2C');
  return sorted(result.findings).map((f) => {
    const file = relative(options.baseDir, f.file).split('\\').join('/');
    return `::${f.level} file=${prop(file)},line=${f.line},col=${f.column},title=${prop(`sync-lookup lint ${f.rule}`)}::${data(f.fix ? `${f.message}. Fix: ${f.fix}` : f.message)}`;
  }).join('\n');
}
