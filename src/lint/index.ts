/*
 * The migration linter: reads migrations as people write them (SQL files, SQL inside JS/TS migrations,
 * Sequelize QueryInterface calls), follows the schema as they change it, knows the tables' sizes, and
 * reports the statements that lock or read large tables for long.
 */

export { lintMigrations, type LintOptions, type LintResult, type MigrationSource } from './lint.js';
export type { LintFinding, LintLevel, MigrationPhase, RuleId } from './types.js';
export { RULE_IDS } from './types.js';
export { RULES, type RuleInfo } from './rules/index.js';
export { renderGithub, renderSarif, renderText } from './render/index.js';
export { parseAssumeRows, readStatsDocument } from './sizes.js';
export type { RuleLevels } from './engine.js';
