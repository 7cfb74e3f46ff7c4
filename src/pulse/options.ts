import { z } from 'zod';
import { WitnessError } from '../errors.js';

/**
 * Pulse tuning. Per-agent thresholds come from `perAgent` (fed by the agent
 * manifest later) and fall back to `defaults`.
 */
export interface AgentThresholds {
  /** External flows per window below this count as a quiet window. */
  quietThreshold: number;
  /** Consecutive quiet windows that raise the soft alert. */
  quietWindows: number;
}

export interface PulseOptions {
  /** Window length; windows are aligned to multiples of it since the epoch. */
  windowMs: number;
  /** Seasonal period for the congruence band (hour-of-day for hourly windows). */
  periodMs: number;
  defaults: AgentThresholds;
  perAgent: Record<string, Partial<AgentThresholds>>;
  /** Longest tolerated observer silence between heartbeats inside a window. */
  maxSilenceMs: number;
  /** Events older than the newest seen by more than this mean the clock went back. */
  reorderToleranceMs: number;
  /** Band: median ± bandK·1.4826·MAD, at least max(bandFloor, bandFloorRatio·median). */
  bandK: number;
  bandFloor: number;
  bandFloorRatio: number;
  /** Periods of history needed before a slot's band is armed, and at most used. */
  bandMinPeriods: number;
  bandMaxPeriods: number;
  beaconWindowMs: number;
  beaconMinConnections: number;
  beaconThreshold: number;
  /** A forward jump longer than this is one coalesced gap instead of per-window rows. */
  maxCatchUpWindows: number;
  /** The host's own addresses (not external); defaults to os.networkInterfaces(). */
  hostAddresses?: readonly string[];
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export const DEFAULT_PULSE_OPTIONS: PulseOptions = {
  windowMs: HOUR_MS,
  periodMs: DAY_MS,
  defaults: { quietThreshold: 1, quietWindows: 3 },
  perAgent: {},
  maxSilenceMs: 5 * 60_000,
  reorderToleranceMs: 2_000,
  bandK: 3,
  bandFloor: 3,
  bandFloorRatio: 0.25,
  bandMinPeriods: 2,
  bandMaxPeriods: 14,
  beaconWindowMs: DAY_MS,
  beaconMinConnections: 10,
  beaconThreshold: 0.8,
  maxCatchUpWindows: 24 * 14,
};

const thresholdsSchema = z.object({
  quietThreshold: z.number().int().min(0),
  quietWindows: z.number().int().min(1),
}).strict();

const optionsSchema = z.object({
  windowMs: z.number().int().min(1000),
  periodMs: z.number().int().min(1000),
  defaults: thresholdsSchema,
  perAgent: z.record(z.string(), thresholdsSchema.partial()),
  maxSilenceMs: z.number().int().min(1),
  reorderToleranceMs: z.number().int().min(0),
  bandK: z.number().positive(),
  bandFloor: z.number().min(0),
  bandFloorRatio: z.number().min(0),
  bandMinPeriods: z.number().int().min(1),
  bandMaxPeriods: z.number().int().min(1),
  beaconWindowMs: z.number().int().min(1000),
  beaconMinConnections: z.number().int().min(3),
  beaconThreshold: z.number().min(0).max(1),
  maxCatchUpWindows: z.number().int().min(1),
  hostAddresses: z.array(z.string()).optional(),
}).strict();

export type PulseOptionsInput = Partial<Omit<PulseOptions, 'defaults'>> & { defaults?: Partial<AgentThresholds> };

/** Merges onto the defaults and validates; errors name the offending field. */
export function resolvePulseOptions(input: PulseOptionsInput = {}, source = 'pulse options'): PulseOptions {
  const merged = { ...DEFAULT_PULSE_OPTIONS, ...input, defaults: { ...DEFAULT_PULSE_OPTIONS.defaults, ...input.defaults } };
  for (const key of Object.keys(merged) as (keyof typeof merged)[]) if (merged[key] === undefined) delete merged[key];
  const parsed = optionsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new WitnessError('E_CONFIG', issue.message, { file: source, field: issue.path.join('.') });
  }
  const opts = parsed.data as PulseOptions;
  if (opts.periodMs % opts.windowMs !== 0) {
    throw new WitnessError('E_CONFIG', `period (${opts.periodMs} ms) must be a whole number of windows (${opts.windowMs} ms)`, { file: source, field: 'periodMs' });
  }
  if (opts.bandMaxPeriods < opts.bandMinPeriods) {
    throw new WitnessError('E_CONFIG', 'bandMaxPeriods must be >= bandMinPeriods', { file: source, field: 'bandMaxPeriods' });
  }
  return opts;
}

export function thresholdsFor(opts: PulseOptions, agent: string): AgentThresholds {
  return { ...opts.defaults, ...opts.perAgent[agent] };
}
