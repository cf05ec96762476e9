/*
 * The one plan reader of sync-lookup: runs EXPLAIN (FORMAT JSON), gathers what the classifier needs to
 * know about the tables and indexes a plan touches (sizes, index columns, distinct counts), classifies
 * every node and says the verdict in words. The classifier is pure: everything it knows about the
 * database comes in a PlanContext, so saved EXPLAIN documents can be judged without a server.
 */

export type * from './types.js';
export { explainStatement } from './statement.js';
export { planNodes } from './walk.js';
export { readPlanContext } from './context.js';
export { classifyPlan } from './classify.js';
export { describePlan, formatCount } from './describe.js';
