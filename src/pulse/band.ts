import { mad, median } from './stats.js';

/**
 * Congruence band for one metric in one slot (hour-of-day): median ±
 * k·1.4826·MAD of the same slot over past periods. 1.4826·MAD estimates the
 * standard deviation without letting one wild day drag it; the floor keeps
 * small counts (0, 1, 2 flows) from producing a zero-width band that any
 * single extra flow would breach.
 */
export interface Band {
  median: number;
  low: number;
  high: number;
  samples: number;
}

export interface BandParams {
  k: number;
  floor: number;
  floorRatio: number;
  minSamples: number;
}

export function computeBand(history: readonly number[], p: BandParams): Band | null {
  if (history.length < p.minSamples) return null;
  const m = median(history);
  const half = Math.max(p.k * 1.4826 * mad(history), p.floor, p.floorRatio * m);
  return { median: m, low: Math.max(0, m - half), high: m + half, samples: history.length };
}

export function outsideBand(value: number, band: Band): 'above' | 'below' | null {
  if (value > band.high) return 'above';
  if (value < band.low) return 'below';
  return null;
}
