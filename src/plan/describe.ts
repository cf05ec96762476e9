import type { ExplainDocument, ExplainResult, PlanContext, PlanNode } from './types.js';
import { isAnalyzed, MODIFY, planNodes, rootOf, walkWithFractions } from './walk.js';

/** Formats a row count for people: 812, 150 k, 5.0 M. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)} k`;
  return String(Math.round(n));
}

/** Formats a byte count for people: 512 B, 8 kB, 1.5 MB. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} kB`;
  return `${bytes} B`;
}

const SCAN_TYPES = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan', 'Bitmap Index Scan']);

/**
 * The plan in a few words, for reports: its scans (with the table's size for sequential scans) and
 * any spill to disk.
 *
 * @example
 * describePlan(plan, context) // 'Seq Scan on sync_lookup (5.0 M rows)'
 */
export function describePlan(input: PlanNode | ExplainDocument | ExplainResult, context?: PlanContext): string {
  const root = rootOf(input);
  const parts: string[] = [];
  for (const { node, fraction } of walkWithFractions(root)) {
    const type = node['Node Type'];
    const rel = node['Relation Name'];
    const idx = node['Index Name'];
    if (type === 'Seq Scan' && rel) {
      const tableRows = context?.tables[rel]?.rows ?? node['Plan Rows'];
      if (isAnalyzed(node)) {
        const read = ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1);
        parts.push(`Seq Scan on ${rel} (${formatCount(read)} rows read)`);
      } else if (fraction < 0.5) {
        parts.push(`Seq Scan on ${rel} (stops after ~${formatCount(Math.max(1, tableRows * fraction))} of ${formatCount(tableRows)} rows)`);
      } else parts.push(`Seq Scan on ${rel} (${formatCount(tableRows)} rows)`);
    } else if ((type === 'Index Scan' || type === 'Index Only Scan') && idx) {
      parts.push(`${type}${node['Scan Direction'] === 'Backward' ? ' Backward' : ''} using ${idx}`);
    } else if (type === 'Bitmap Heap Scan' && rel) {
      const used = new Set((node.Plans ?? []).flatMap((c) => planNodes(c).map((n) => n.node['Index Name']).filter((n): n is string => !!n)));
      parts.push(`Bitmap Heap Scan on ${rel}${used.size ? ` (${[...used].join(', ')})` : ''}`);
    } else if ((type === 'Sort' || type === 'Incremental Sort') && node['Sort Space Type'] === 'Disk') {
      parts.push(`Sort spilling ${formatSize((node['Sort Space Used'] ?? 0) * 1024)} to disk`);
    } else if ((type === 'Hash' && (node['Hash Batches'] ?? 1) > 1) || (type === 'Aggregate' && (node['HashAgg Batches'] ?? 1) > 1)) {
      parts.push(`${type === 'Hash' ? 'Hash' : 'HashAggregate'} spilling to disk (${node['Hash Batches'] ?? node['HashAgg Batches']} batches)`);
    } else if (rel && !SCAN_TYPES.has(type) && type !== MODIFY) {
      parts.push(`${type} on ${rel}`);
    }
  }
  return parts.length ? parts.join(' + ') : root['Node Type'];
}
