/**
 * The statistics the benchmark reports: medians of repeated runs and growth exponents (how time scales
 * with table size). Pure functions, no I/O.
 */

/**
 * The median of a non-empty list (the mean of the two middle values for an even count).
 * The benchmark reports medians, not means: one run disturbed by a checkpoint or autovacuum must not
 * move the figure.
 *
 * @example
 * median([30, 10, 20]) // 20
 * median([4, 1, 3, 2]) // 2.5
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The growth exponent of `y` against `x`: the least-squares slope of ln(y) on ln(x). Time that grows
 * linearly with the table gives about 1; time that does not depend on it gives about 0.
 * Returns null when it cannot be estimated (fewer than two distinct positive x, or a non-positive value).
 *
 * @example
 * logLogSlope([{ x: 1e6, y: 100 }, { x: 2e6, y: 200 }, { x: 4e6, y: 400 }]) // 1
 * logLogSlope([{ x: 1e6, y: 5 }, { x: 4e6, y: 5 }]) // 0
 */
export function logLogSlope(points: readonly { x: number; y: number }[]): number | null {
  const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (usable.length < 2 || usable.some((p) => p.x <= 0 || p.y <= 0)) return null;
  const lx = usable.map((p) => Math.log(p.x));
  const ly = usable.map((p) => Math.log(p.y));
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < lx.length; i++) {
    sxx += (lx[i]! - mx) ** 2;
    sxy += (lx[i]! - mx) * (ly[i]! - my);
  }
  if (sxx === 0) return null;
  return sxy / sxx;
}

/**
 * `baseline / ours`, or null when either is missing or ours is zero.
 *
 * @example
 * speedup(1200, 40) // 30
 */
export function speedup(baselineMs: number | null, ms: number | null): number | null {
  if (baselineMs === null || ms === null || ms <= 0) return null;
  return baselineMs / ms;
}

/** Rounds to `digits` significant figures (keeps JSON and tables readable without pretending precision). */
export function roundSig(value: number, digits = 3): number {
  if (value === 0 || !Number.isFinite(value)) return value;
  // toPrecision, not a multiply-round-divide: 1.47e6 must not come back as 1470000.0000000002.
  return Number(value.toPrecision(digits));
}
