import { SyncLookupError } from '../db/errors.js';
import type { ExplainDocument, ExplainResult, PlanNode } from './types.js';

/** Every node of a plan with its path, depth-first (init plans and sub-plans included). */
export function planNodes(plan: PlanNode): { node: PlanNode; path: string; parent: PlanNode | null }[] {
  const out: { node: PlanNode; path: string; parent: PlanNode | null }[] = [];
  const walk = (node: PlanNode, path: string, parent: PlanNode | null) => {
    out.push({ node, path, parent });
    (node.Plans ?? []).forEach((child, i) => walk(child, path === '' ? String(i) : `${path}.${i}`, node));
  };
  walk(plan, '', null);
  return out;
}

/** The root node of whatever form a plan comes in. */
export function rootOf(input: PlanNode | ExplainDocument | ExplainResult): PlanNode {
  if (Array.isArray(input)) {
    const top = input[0];
    if (!top) throw new SyncLookupError('invalid_plan', 'empty EXPLAIN document');
    return top.Plan;
  }
  if ('plan' in input && 'document' in input) return (input as ExplainResult).plan;
  return input as PlanNode;
}

/** A plan node as the classifier sees it: with its place in the tree and the share of it that runs. */
export interface Walked {
  node: PlanNode;
  path: string;
  parent: Walked | null;
  /** Share of this node's full output its ancestors are expected to consume (row goals: LIMIT, EXISTS). */
  fraction: number;
  /** Alias of the relation this node's conditions refer to (a bitmap index scan takes its heap scan's). */
  alias: string | null;
  /** A parallel-aware node's `Plan Rows` is per process: multiply by this for the whole (PostgreSQL's divisor). */
  parallelDivisor: number;
}

/** Every node of a plan, depth-first, with the row-goal fraction and parallel divisor of each. */
export function walkWithFractions(root: PlanNode): Walked[] {
  const out: Walked[] = [];
  const walk = (node: PlanNode, path: string, parent: Walked | null) => {
    let fraction = 1;
    if (parent) {
      // A parent that costs less than its child stops reading early (LIMIT, an EXISTS init plan, a
      // merge join): the planner costs a row goal as a share of the child's run cost.
      const childCost = node['Total Cost'];
      const ratio = childCost > 0 ? Math.min(1, parent.node['Total Cost'] / childCost) : 1;
      fraction = parent.fraction * ratio;
    }
    const alias = node.Alias ?? node['Relation Name'] ?? (node['Node Type'] === 'Bitmap Index Scan' ? parent?.alias ?? null : null);
    let parallelDivisor = 1;
    if (node['Parallel Aware'] === true) {
      for (let p = parent; p; p = p.parent) {
        const workers = p.node['Workers Planned'];
        if (typeof workers === 'number') {
          // costsize.c: the leader contributes 1 - 0.3 × workers of a worker's share while that is positive.
          parallelDivisor = workers + Math.max(0, 1 - 0.3 * workers);
          break;
        }
      }
    }
    const w: Walked = { node, path, parent, fraction, alias: alias ?? null, parallelDivisor };
    out.push(w);
    (node.Plans ?? []).forEach((child, i) => walk(child, path === '' ? String(i) : `${path}.${i}`, w));
  };
  walk(root, '', null);
  return out;
}

/** True when the plan was executed (EXPLAIN ANALYZE). */
export const isAnalyzed = (node: PlanNode) => node['Actual Loops'] !== undefined;

/** The node type of INSERT, UPDATE and DELETE: its output is its child's. */
export const MODIFY = 'ModifyTable';
