// Per-path statistics of one round. Pure functions over the samples of one (endpoint, protocol,
// metric): what went out, what came back, and the distribution of what came back unflagged.
import type { FailureReason, PathResult } from '../core/model.ts';

/** One sample as the statistics see it: a value for this metric, or why there is none. */
export interface SampleOutcome {
  /** milliseconds; absent when the sample failed before timing this metric */
  value?: number;
  /** why there is no value (ignored when `value` is present) */
  reason?: FailureReason;
  /** taken while the event loop lagged: counted as received, kept out of the distribution */
  flagged: boolean;
}

/** The statistics fields of a path (see `PathResult`). Distribution fields are absent without data. */
export type PathStats = Pick<
  PathResult,
  | 'sent'
  | 'received'
  | 'loss_pct'
  | 'min_ms'
  | 'p50_ms'
  | 'p90_ms'
  | 'p99_ms'
  | 'max_ms'
  | 'mean_ms'
  | 'stddev_ms'
  | 'jitter_ms'
  | 'flagged'
  | 'failures'
>;

/**
 * The p-quantile (0 ≤ p ≤ 1) of an ascending array by linear interpolation between closest ranks
 * (Hyndman & Fan type 7, the default of numpy, R and spreadsheets' PERCENTILE.INC): with
 * h = (n − 1)·p, the result is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). p50 of an even count is the
 * mean of the two middle values; p0 is the minimum and p100 the maximum.
 */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty series');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile p must be in [0, 1], got ${p}`);
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (h - lo) * (b - a);
}

/**
 * Interarrival jitter as RFC 3550 §6.4.1 smooths it, applied to a round-trip series in send order:
 * D = R(i) − R(i−1), J ← J + (|D| − J)/16, starting from J = 0. Undefined for fewer than two
 * values (no difference to smooth).
 */
export function rfc3550Jitter(series: readonly number[]): number | undefined {
  if (series.length < 2) return undefined;
  let j = 0;
  for (let i = 1; i < series.length; i++) {
    const d = Math.abs(series[i]! - series[i - 1]!);
    j += (d - j) / 16;
  }
  return j;
}

/** Sample standard deviation (n − 1 denominator); undefined for fewer than two values. */
export function sampleStddev(values: readonly number[]): number | undefined {
  if (values.length < 2) return undefined;
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const ss = values.reduce((s, v) => s + (v - mean) ** 2, 0);
  return Math.sqrt(ss / (values.length - 1));
}

/**
 * Statistics of one path from its samples in send order. `received` counts samples with a value
 * (flagged ones included); loss is the rest. The distribution (min…jitter) uses unflagged values
 * only; jitter follows send order. Failures are counted by reason and never enter the distribution.
 */
export function summarize(samples: readonly SampleOutcome[]): PathStats {
  const sent = samples.length;
  let received = 0;
  let flagged = 0;
  const series: number[] = [];
  const failures: Partial<Record<FailureReason, number>> = {};
  let anyFailure = false;
  for (const s of samples) {
    if (s.value !== undefined && Number.isFinite(s.value)) {
      received++;
      if (s.flagged) flagged++;
      else series.push(s.value);
    } else {
      const reason = s.reason ?? 'error';
      failures[reason] = (failures[reason] ?? 0) + 1;
      anyFailure = true;
    }
  }
  const stats: PathStats = {
    sent,
    received,
    loss_pct: sent === 0 ? 0 : ((sent - received) / sent) * 100,
    flagged,
  };
  if (series.length > 0) {
    const sorted = series.slice().sort((a, b) => a - b);
    stats.min_ms = sorted[0]!;
    stats.p50_ms = quantile(sorted, 0.5);
    stats.p90_ms = quantile(sorted, 0.9);
    stats.p99_ms = quantile(sorted, 0.99);
    stats.max_ms = sorted[sorted.length - 1]!;
    stats.mean_ms = series.reduce((s, v) => s + v, 0) / series.length;
    const sd = sampleStddev(series);
    if (sd !== undefined) stats.stddev_ms = sd;
    const jitter = rfc3550Jitter(series);
    if (jitter !== undefined) stats.jitter_ms = jitter;
  }
  if (anyFailure) stats.failures = failures;
  return stats;
}

/** Rounds to microseconds (3 decimals): finer than any timer we read, and readable in JSON. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The same stats with every millisecond and percentage field rounded to 3 decimals. */
export function roundStats(stats: PathStats): PathStats {
  const out: PathStats = { ...stats, loss_pct: roundMs(stats.loss_pct) };
  for (const k of ['min_ms', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'mean_ms', 'stddev_ms', 'jitter_ms'] as const) {
    const v = stats[k];
    if (v !== undefined) out[k] = roundMs(v);
  }
  return out;
}

/** The most frequent value; ties go to the one that reached the top count first. */
export function mostFrequent(values: ReadonlyArray<string | undefined>): string | undefined {
  const counts = new Map<string, number>();
  let best: string | undefined;
  let bestCount = 0;
  for (const v of values) {
    if (v === undefined || v === '') continue;
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c > bestCount) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}
