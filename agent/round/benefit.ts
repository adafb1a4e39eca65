// The benefit of the anycast path: baseline − anycast per (protocol, metric), estimated on pairs of
// samples taken in the same cycle. Hodges–Lehmann shift with the distribution-free confidence
// interval that inverts the Wilcoxon signed-rank test (Hollander & Wolfe, §3.2–3.3).
import { roundMs } from './stats.ts';
import {
  PROTOCOL_METRICS,
  PROTOCOLS,
  RATE_METRICS,
  scopeOf,
  type BenefitRow,
  type EndpointKind,
  type Metric,
  type Protocol,
} from '../core/model.ts';

/** Up to this many pairs the CI uses the exact signed-rank distribution; above it, the normal one. */
export const EXACT_MAX_PAIRS = 100;

const Z_975 = 1.959963984540054;

/** Number of pair sums d[i] + d[j] (i ≤ j) that are ≤ t, for ascending d; O(n). */
function countSumsAtMost(d: Float64Array, t: number): number {
  let count = 0;
  let j = d.length - 1;
  for (let i = 0; i < d.length; i++) {
    while (j >= i && d[i]! + d[j]! > t) j--;
    if (j < i) break;
    count += j - i + 1;
  }
  return count;
}

/** The largest pair sum d[i] + d[j] (i ≤ j) that is ≤ t. */
function largestSumAtMost(d: Float64Array, t: number): number {
  let best = -Infinity;
  let j = d.length - 1;
  for (let i = 0; i < d.length; i++) {
    while (j >= i && d[i]! + d[j]! > t) j--;
    if (j < i) break;
    const s = d[i]! + d[j]!;
    if (s > best) best = s;
  }
  return best;
}

/**
 * The k-th smallest (1-based) Walsh average (d[i] + d[j])/2, i ≤ j, of an ascending array, without
 * listing all n(n+1)/2 of them: bisection on the value with an O(n) count, then a snap to the pair
 * sum the bisection closed in on. Exact, O(n · 64) for any n.
 */
export function walshAverageAt(sorted: Float64Array, k: number): number {
  const n = sorted.length;
  const m = (n * (n + 1)) / 2;
  if (!Number.isInteger(k) || k < 1 || k > m) throw new RangeError(`Walsh average rank ${k} outside 1..${m}`);
  let lo = 2 * sorted[0]!;
  let hi = 2 * sorted[n - 1]!;
  if (countSumsAtMost(sorted, lo) >= k) return lo / 2;
  // Invariant: count(≤ lo) < k ≤ count(≤ hi).
  for (;;) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (countSumsAtMost(sorted, mid) >= k) hi = mid;
    else lo = mid;
  }
  return largestSumAtMost(sorted, hi) / 2;
}

/** Hodges–Lehmann one-sample estimate: the median of the Walsh averages. */
export function hodgesLehmann(differences: readonly number[]): number {
  if (differences.length === 0) throw new RangeError('Hodges–Lehmann of no differences');
  const sorted = Float64Array.from(differences).sort();
  const m = (sorted.length * (sorted.length + 1)) / 2;
  if (m % 2 === 1) return walshAverageAt(sorted, (m + 1) / 2);
  return (walshAverageAt(sorted, m / 2) + walshAverageAt(sorted, m / 2 + 1)) / 2;
}

const cdfCache = new Map<number, Float64Array>();

/** Exact P(T⁺ ≤ t), t = 0 … n(n+1)/2, of the Wilcoxon signed-rank statistic with n untied ranks. */
export function signedRankCdf(n: number): Float64Array {
  const cached = cdfCache.get(n);
  if (cached) return cached;
  const m = (n * (n + 1)) / 2;
  // p[t] = P(sum of a random subset of {1..r} = t), built up one rank at a time.
  let p = new Float64Array(m + 1);
  p[0] = 1;
  for (let r = 1; r <= n; r++) {
    const next = new Float64Array(m + 1);
    const top = (r * (r + 1)) / 2;
    for (let t = 0; t <= top; t++) next[t] = 0.5 * (p[t]! + (t >= r ? p[t - r]! : 0));
    p = next;
  }
  const cdf = new Float64Array(m + 1);
  let acc = 0;
  for (let t = 0; t <= m; t++) {
    acc += p[t]!;
    cdf[t] = Math.min(1, acc);
  }
  cdfCache.set(n, cdf);
  return cdf;
}

/**
 * The rank k of the lower CI bound among the n(n+1)/2 ascending Walsh averages for a two-sided
 * 95% interval: the largest k with P(T⁺ ≤ k − 1) ≤ 2.5% (so coverage ≥ 95%), exact for
 * n ≤ EXACT_MAX_PAIRS and from the normal approximation with continuity correction above.
 * Undefined when n is too small for any 95% interval (n < 6).
 */
export function ciRank(n: number): number | undefined {
  if (n < 1) return undefined;
  let k: number;
  if (n <= EXACT_MAX_PAIRS) {
    const cdf = signedRankCdf(n);
    k = 0;
    while (k < cdf.length && cdf[k]! <= 0.025) k++;
  } else {
    const mu = (n * (n + 1)) / 4;
    const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24);
    k = Math.floor(mu + 0.5 - Z_975 * sigma);
  }
  return k >= 1 ? k : undefined;
}

/** A Hodges–Lehmann estimate with its distribution-free 95% interval (absent for n < 6). */
export interface ShiftEstimate {
  estimate: number;
  low?: number;
  high?: number;
}

/** HL shift of paired differences with its Wilcoxon-inverted 95% CI: [W(k), W(M + 1 − k)]. */
export function shiftWithInterval(differences: readonly number[]): ShiftEstimate {
  const estimate = hodgesLehmann(differences);
  const n = differences.length;
  const k = ciRank(n);
  if (k === undefined) return { estimate };
  const sorted = Float64Array.from(differences).sort();
  const m = (n * (n + 1)) / 2;
  return { estimate, low: walshAverageAt(sorted, k), high: walshAverageAt(sorted, m + 1 - k) };
}

/** One path's unflagged values of one (protocol, metric), indexed by cycle. */
export interface PathSeries {
  endpoint: string;
  kind: EndpointKind;
  protocol: Protocol;
  metric: Metric;
  /** transfer: the object size (a tag); paths of different sizes are never compared */
  size?: string;
  /** the path's p50 this round (unflagged values); absent when nothing came back */
  p50?: number;
  /** value of cycle c, or undefined when that sample failed or was flagged */
  byCycle: ReadonlyArray<number | undefined>;
}

export interface BenefitOptions {
  /** `nearest` (the unicast path with the lowest p50 for each protocol and metric) or an endpoint name */
  baseline: string;
  terminatesTcp: boolean;
  /** the endpoint the benefit is about; default `anycast` */
  anycast?: string;
}

/** The unicast series a (protocol, metric) is compared against, or undefined when none has data. */
export function chooseBaseline(candidates: readonly PathSeries[], baseline: string): PathSeries | undefined {
  if (baseline !== 'nearest') return candidates.find((s) => s.endpoint === baseline && s.p50 !== undefined);
  let best: PathSeries | undefined;
  for (const s of candidates) {
    if (s.kind !== 'unicast' || s.p50 === undefined) continue;
    if (best === undefined || s.p50 < best.p50!) best = s;
  }
  return best;
}

/**
 * Benefit rows, one per (protocol, metric, and size for transfer) where both the anycast path and its baseline returned
 * unflagged values in at least one common cycle. Rows follow PROTOCOLS and PROTOCOL_METRICS order.
 */
export function computeBenefit(series: readonly PathSeries[], options: BenefitOptions): BenefitRow[] {
  const anycastName = options.anycast ?? 'anycast';
  const rows: BenefitRow[] = [];
  for (const protocol of PROTOCOLS) {
    for (const metric of PROTOCOL_METRICS[protocol]) {
      // A rate (goodput) is not a time saved: baseline − anycast would read backwards.
      if (RATE_METRICS.includes(metric)) continue;
      const sizes = [
        ...new Set(series.filter((s) => s.protocol === protocol && s.metric === metric).map((s) => s.size)),
      ];
      for (const size of sizes) {
        const here = series.filter((s) => s.protocol === protocol && s.metric === metric && s.size === size);
        const any = here.find((s) => s.endpoint === anycastName);
        if (!any || any.p50 === undefined) continue;
        const base = chooseBaseline(
          here.filter((s) => s.kind === 'unicast'),
          options.baseline,
        );
        if (!base) continue;
        const diffs: number[] = [];
        let wins = 0;
        const cycles = Math.min(any.byCycle.length, base.byCycle.length);
        for (let c = 0; c < cycles; c++) {
          const a = any.byCycle[c];
          const b = base.byCycle[c];
          if (a === undefined || b === undefined) continue;
          diffs.push(b - a);
          if (a < b) wins++;
        }
        if (diffs.length === 0) continue;
        const shift = shiftWithInterval(diffs);
        const ci =
          shift.low !== undefined && shift.high !== undefined
            ? { ci_low_ms: roundMs(shift.low), ci_high_ms: roundMs(shift.high) }
            : {};
        const row: BenefitRow = {
          protocol,
          metric,
          scope: scopeOf(protocol, metric, options.terminatesTcp),
          ...(size !== undefined ? { size } : {}),
          baseline: base.endpoint,
          anycast_p50_ms: roundMs(any.p50),
          baseline_p50_ms: roundMs(base.p50!),
          saved_ms: roundMs(shift.estimate),
          saved_pct: base.p50! > 0 ? roundMs((shift.estimate / base.p50!) * 100) : 0,
          ...ci,
          win_rate: Math.round((wins / diffs.length) * 10_000) / 10_000,
          pairs: diffs.length,
        };
        rows.push(row);
      }
    }
  }
  return rows;
}
