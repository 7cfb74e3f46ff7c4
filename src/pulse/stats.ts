/** Small robust statistics used by the band and the beacon score. */

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function sortedCopy(values: readonly number[]): number[] {
  return [...values].sort((x, y) => x - y);
}

export function median(values: readonly number[]): number {
  return quantile(sortedCopy(values), 0.5);
}

/** Median absolute deviation (unscaled). */
export function mad(values: readonly number[]): number {
  const m = median(values);
  return median(values.map((v) => Math.abs(v - m)));
}

/**
 * Bowley (quartile) skewness in [-1, 1]; 0 when the quartiles coincide,
 * since a perfectly regular series has no spread to be skewed.
 */
export function bowleySkew(values: readonly number[]): number {
  const s = sortedCopy(values);
  const q1 = quantile(s, 0.25);
  const q2 = quantile(s, 0.5);
  const q3 = quantile(s, 0.75);
  const den = q3 - q1;
  if (den === 0 || q2 === q1 || q2 === q3) return 0;
  return (q1 + q3 - 2 * q2) / den;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function stddev(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

export function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
