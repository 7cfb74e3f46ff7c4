import { bowleySkew, clamp01, mad, mean, median, stddev } from './stats.js';

/**
 * RITA-style beacon score for one (agent, destination) over a sliding span
 * (24 h by default). Each part is in [0, 1], 1 = machine-like:
 *  - interval: regular gaps between connections — symmetric (1 − |Bowley
 *    skew|) and tight (1 − MAD/median) — scaled by how well the typical gap
 *    explains the whole span (median·(n−1) / (last − first)): bursts of
 *    connections two seconds apart are regular inside a burst, not a beacon;
 *  - dataSize: the same two measures over flow sizes; null when the sensor
 *    reported no sizes (witness.bytes is optional), and then left out;
 *  - histogram: connections spread evenly over the hours they span (1 − CV
 *    of hourly counts) — a human's bursts are uneven, a timer's are not;
 *  - duration: how much of the span the pair covers, or in how many of its
 *    hours it showed up, whichever is larger.
 * The total is a weighted mean of the parts present; regularity of intervals
 * dominates because it is the defining trait of a beacon.
 */
export interface BeaconScore {
  score: number;
  interval: number;
  dataSize: number | null;
  histogram: number;
  duration: number;
  connections: number;
  medianIntervalMs: number;
}

// Duration carries real weight so a timer must persist for most of a
// working day (~9 h with no size data) before it is called a beacon: short
// regular runs (a build polling a registry) are common and benign.
const WEIGHTS = { interval: 0.4, dataSize: 0.2, histogram: 0.15, duration: 0.25 };
const BINS = 24;

function regularity(values: readonly number[]): number {
  const m = median(values);
  const tightness = m > 0 ? clamp01(1 - mad(values) / m) : (mad(values) === 0 ? 1 : 0);
  return (clamp01(1 - Math.abs(bowleySkew(values))) + tightness) / 2;
}

/** `times` need not be sorted; `sizes` parallel to it (null = unknown). */
export function scoreBeacon(times: readonly number[], sizes: readonly (number | null)[], spanEnd: number, spanMs: number): BeaconScore | null {
  if (times.length < 3) return null;
  const ts = [...times].sort((a, b) => a - b);
  const intervals = ts.slice(1).map((t, i) => t - ts[i]!);
  const observed = ts[ts.length - 1]! - ts[0]!;
  const explained = observed > 0 ? clamp01((median(intervals) * intervals.length) / observed) : 0;
  const interval = regularity(intervals) * explained;

  const known = sizes.filter((s): s is number => s !== null);
  const dataSize = known.length >= 3 && known.length === sizes.length ? regularity(known) : null;

  const binMs = spanMs / BINS;
  const spanStart = spanEnd - spanMs;
  const counts = new Array<number>(BINS).fill(0);
  for (const t of ts) {
    const bin = Math.floor((t - spanStart) / binMs);
    if (bin >= 0 && bin < BINS) counts[bin]!++;
  }
  // Only the hours between the first and last connection: a beacon that
  // started two hours ago is not irregular, merely young (duration says so).
  const firstBin = Math.max(0, Math.floor((ts[0]! - spanStart) / binMs));
  const lastBin = Math.min(BINS - 1, Math.floor((ts[ts.length - 1]! - spanStart) / binMs));
  const spanned = counts.slice(firstBin, lastBin + 1);
  const histogram = spanned.length <= 1 ? 1 : clamp01(1 - stddev(spanned) / mean(spanned));

  const coverage = clamp01(observed / spanMs);
  const consistency = counts.filter((c) => c > 0).length / BINS;
  const duration = Math.max(coverage, consistency);

  let weighted = WEIGHTS.interval * interval + WEIGHTS.histogram * histogram + WEIGHTS.duration * duration;
  let total = WEIGHTS.interval + WEIGHTS.histogram + WEIGHTS.duration;
  if (dataSize !== null) {
    weighted += WEIGHTS.dataSize * dataSize;
    total += WEIGHTS.dataSize;
  }
  return {
    score: weighted / total,
    interval,
    dataSize,
    histogram,
    duration,
    connections: ts.length,
    medianIntervalMs: median(intervals),
  };
}
