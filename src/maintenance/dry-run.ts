import { classifyPlan, describePlan, explainStatement, readPlanContext } from '../plan/plan.js';
import type { Layout } from '../schema/partitioned.js';
import type { TypeStrategy } from './job.js';
import type { WorkSession } from './session.js';

/** A statement an operation would run, for --dry-run. */
export interface PlannedStatement {
  purpose: string;
  sql: string;
  params: unknown[];
  /** EXPLAIN it (DDL such as TRUNCATE is shown but not explained). */
  explain: boolean;
}

/** What `--dry-run` prints: strategy, estimated rows and time, and each statement with its plan. */
export interface DryRunReport {
  dry_run: true;
  operation: string;
  record_types: string[];
  layout: Layout;
  strategy: string;
  strategies: TypeStrategy[];
  /** The planner's estimate of the rows the operation touches. */
  estimated_rows: number;
  /** estimated_rows at a conservative rate for this kind of batch; a rough guide, not a promise. */
  estimated_ms: number;
  statements: {
    purpose: string;
    sql: string;
    /** The plan in words (from the project's plan reader); null for statements that are not explained. */
    plan: string | null;
    verdict: 'ok' | 'warn' | 'fail' | null;
    reason: string | null;
  }[];
}

/**
 * Builds a dry-run report: EXPLAINs (never executes) each statement through the plan reader and
 * classifies its plan, and estimates rows from the planner.
 *
 * @example
 * return dryRunReport(session, { operation: 'purge', types, layout, strategies, statements, rowsPerSecond: 50_000, estimateSql, estimateParams });
 */
export async function dryRunReport(session: WorkSession, input: {
  operation: string; types: string[]; layout: Layout; strategies: TypeStrategy[]; statements: PlannedStatement[];
  rowsPerSecond: number; estimateSql: string; estimateParams: unknown[];
}): Promise<DryRunReport> {
  const inTransaction = session.mode === 'caller_transaction';
  const estimate = await explainStatement(session.client, input.estimateSql, input.estimateParams, { inTransaction });
  const estimatedRows = Math.round(estimate.plan['Plan Rows']);
  const statements: DryRunReport['statements'] = [];
  for (const s of input.statements) {
    if (!s.explain) { statements.push({ purpose: s.purpose, sql: s.sql, plan: null, verdict: null, reason: null }); continue; }
    const r = await explainStatement(session.client, s.sql, s.params, { inTransaction });
    const context = await readPlanContext(session.client, [r]);
    const verdict = await classifyPlan(r, context);
    statements.push({ purpose: s.purpose, sql: s.sql, plan: describePlan(r, context), verdict: verdict.verdict, reason: verdict.reason });
  }
  return {
    dry_run: true, operation: input.operation, record_types: input.types, layout: input.layout,
    strategy: [...new Set(input.strategies.map((s) => s.strategy))].join('+'), strategies: input.strategies,
    estimated_rows: estimatedRows, estimated_ms: Math.round((estimatedRows / input.rowsPerSecond) * 1000), statements,
  };
}
