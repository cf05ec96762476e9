import type pg from 'pg';
import { classifyPlan, explainStatement, readPlanContext } from '../plan/plan.js';
import type { DryRunReport } from '../maintenance/dry-run.js';

/*
 * Plans in words for the report. The benchmark never reads plans itself: every statement goes through
 * the project's one plan reader (src/plan/plan.ts), and our operations' plans come from their own
 * dry runs, which use the same reader.
 */

/**
 * EXPLAINs one statement (never executes it) and says its plan in words, e.g.
 * `Seq Scan on sync_lookup (2.0 M rows)`; when the plan reader's verdict is not ok, its reason follows
 * (so a bitmap scan over the whole unique index is called what it is, a full index scan).
 *
 * @example
 * const words = await statementPlan(client, 'delete from sync_lookup where record_type = $1', ['notes']);
 */
export async function statementPlan(client: pg.ClientBase, sql: string, params: unknown[] = []): Promise<string> {
  const r = await explainStatement(client, sql, params);
  const verdict = await classifyPlan(r, await readPlanContext(client, [r]));
  return verdict.verdict === 'ok' ? verdict.description : `${verdict.description} [${verdict.verdict}: ${verdict.reason}]`;
}

/**
 * Several statements' plans joined in the order they run (`a; then b`), duplicates taken once.
 *
 * @example
 * await statementsPlan(client, [{ sql: 'select count(*) = 0 from sync_lookup' }, { sql: 'select max(id) from sync_lookup' }]);
 */
export async function statementsPlan(client: pg.ClientBase, statements: { sql: string; params?: unknown[] }[]): Promise<string> {
  const words: string[] = [];
  for (const s of statements) {
    const w = await statementPlan(client, s.sql, s.params ?? []);
    if (!words.includes(w)) words.push(w);
  }
  return words.join('; then ');
}

/**
 * The plan of one of our operations, from its dry run: its strategy and the plans of the statements it
 * explains, e.g. `keyset_batches: Index Only Scan using … ; then Index Scan using sync_lookup_pkey`.
 *
 * @example
 * const words = dryRunPlan(await planPurge(db, { types: ['encounter_medications'] }));
 */
export function dryRunPlan(report: DryRunReport): string {
  const plans = [...new Set(report.statements.map((s) => s.plan).filter((p): p is string => !!p))];
  return `${report.strategy.replace(/_/g, ' ')}${plans.length ? `: ${plans.join('; then ')}` : ''}`;
}
