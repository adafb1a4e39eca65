import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EXACT_MAX_PAIRS,
  ciRank,
  computeBenefit,
  hodgesLehmann,
  shiftWithInterval,
  signedRankCdf,
  walshAverageAt,
  type PathSeries,
} from '../agent/round/benefit.ts';

/** Small deterministic PRNG so the simulations are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bruteWalsh(d: readonly number[]): number[] {
  const w: number[] = [];
  for (let i = 0; i < d.length; i++) for (let j = i; j < d.length; j++) w.push((d[i]! + d[j]!) / 2);
  return w.sort((a, b) => a - b);
}

test('Hodges–Lehmann and its exact 95% CI on a hand-computed case (n = 8)', () => {
  const d = [-3, 1, 2, 4, 7, 9, 12, 30];
  // The 36 Walsh averages, ascending:
  // -3 -1 -0.5 0.5 1 1.5 2 2 2.5 3 3 4 4 4.5 4.5 5 5.5 5.5 | 6.5 6.5 7 7 8 8 9 9.5 10.5 12 13.5 15.5 16 17 18.5 19.5 21 30
  // median = (18th + 19th)/2 = (5.5 + 6.5)/2 = 6
  assert.equal(hodgesLehmann(d), 6);
  // n = 8: subsets of {1..8} with rank sum ≤ 3 are {}, {1}, {2}, {3}, {1,2} → P(T⁺ ≤ 3) = 5/256 ≈ 1.95% ≤ 2.5%,
  // and P(T⁺ ≤ 4) = 7/256 ≈ 2.73% > 2.5%, so k = 4: CI = [W(4), W(36 + 1 − 4)] = [W(4), W(33)] = [0.5, 18.5]
  assert.equal(ciRank(8), 4);
  assert.deepEqual(shiftWithInterval(d), { estimate: 6, low: 0.5, high: 18.5 });
});

test('signed-rank distribution matches the published critical values', () => {
  const cdf8 = signedRankCdf(8);
  assert.equal(cdf8.length, 37);
  assert.equal(cdf8[3], 5 / 256);
  assert.equal(cdf8[4], 7 / 256);
  assert.ok(Math.abs(cdf8[36]! - 1) < 1e-12);
  // Two-sided 5% critical values of T (reject when T ≤ c), e.g. Wilcoxon tables: n=6:0, 10:8, 20:52, 30:137, 50:434
  for (const [n, c] of [
    [6, 0],
    [10, 8],
    [20, 52],
    [30, 137],
    [50, 434],
  ] as const) {
    assert.equal(ciRank(n), c + 1, `n=${n}`);
  }
  // Too few pairs for a 95% interval: even the widest [min, max] covers only 1 − 2/2ⁿ.
  for (const n of [1, 2, 3, 4, 5]) assert.equal(ciRank(n), undefined, `n=${n}`);
  assert.deepEqual(shiftWithInterval([1, 2, 3, 4, 5]), { estimate: 3 });
});

test('normal approximation takes over above the exact cut-over and agrees with it there', () => {
  const n = EXACT_MAX_PAIRS;
  const exact = ciRank(n)!;
  const mu = (n * (n + 1)) / 4;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24);
  const approx = Math.floor(mu + 0.5 - 1.959963984540054 * sigma);
  assert.ok(Math.abs(exact - approx) <= 1, `exact ${exact} vs normal ${approx}`);
  // just above the cut-over the normal rank is within one of what the exact distribution would give
  const k = ciRank(n + 1)!;
  const cdf = signedRankCdf(n + 1);
  let exactAbove = 0;
  while (cdf[exactAbove]! <= 0.025) exactAbove++;
  assert.ok(Math.abs(k - exactAbove) <= 1, `n=${n + 1}: normal ${k} vs exact ${exactAbove}`);
});

test('Walsh-average selection equals brute force, with ties and negatives', () => {
  const rnd = mulberry32(7);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + Math.floor(rnd() * 40);
    const d = Array.from({ length: n }, () => (rnd() < 0.3 ? Math.round(rnd() * 4) : (rnd() - 0.4) * 100));
    const brute = bruteWalsh(d);
    const sorted = Float64Array.from(d).sort();
    for (const k of [1, 2, Math.ceil(brute.length / 2), brute.length - 1, brute.length]) {
      if (k < 1 || k > brute.length) continue;
      assert.equal(walshAverageAt(sorted, k), brute[k - 1], `n=${n} k=${k}`);
    }
    const m = brute.length;
    const median = m % 2 ? brute[(m - 1) / 2]! : (brute[m / 2 - 1]! + brute[m / 2]!) / 2;
    assert.equal(hodgesLehmann(d), median);
  }
});

/** One simulated round: paired samples where the baseline is `shift` ms slower, heavy-tailed noise on both. */
function simulatedDifferences(rnd: () => number, n: number, shift: number): number[] {
  // Pareto(α = 1.5) queueing delay on top of a common per-cycle path drift: the differences are
  // symmetric about the shift (both sides share the noise law) but far from normal.
  const pareto = () => 0.5 * (Math.pow(1 - rnd(), -1 / 1.5) - 1);
  const d: number[] = [];
  for (let i = 0; i < n; i++) {
    const drift = rnd() * 2;
    const anycast = 10 + drift + pareto();
    const baseline = 10 + shift + drift + pareto();
    d.push(baseline - anycast);
  }
  return d;
}

test('95% CI covers the true shift ~95% of the time on heavy-tailed data (exact, n = 20)', (t) => {
  const rnd = mulberry32(2024);
  const rounds = 1000;
  let covered = 0;
  let estimates = 0;
  for (let r = 0; r < rounds; r++) {
    const est = shiftWithInterval(simulatedDifferences(rnd, 20, 30));
    if (est.low! <= 30 && 30 <= est.high!) covered++;
    estimates += est.estimate;
  }
  const coverage = covered / rounds;
  t.diagnostic(`coverage ${coverage} over ${rounds} rounds`);
  assert.ok(coverage >= 0.92 && coverage <= 0.98, `coverage ${coverage}`);
  assert.ok(Math.abs(estimates / rounds - 30) < 0.1, `mean HL estimate ${estimates / rounds}`);
});

test('95% CI coverage holds with the normal approximation too (n = 150)', (t) => {
  const rnd = mulberry32(99);
  const rounds = 400;
  let covered = 0;
  for (let r = 0; r < rounds; r++) {
    const est = shiftWithInterval(simulatedDifferences(rnd, 150, -5));
    if (est.low! <= -5 && -5 <= est.high!) covered++;
  }
  const coverage = covered / rounds;
  t.diagnostic(`coverage ${coverage} over ${rounds} rounds`);
  // 400 rounds: binomial sd ≈ 1.1 points, so a ±3.5 point band around 95%
  assert.ok(coverage >= 0.915 && coverage <= 0.985, `coverage ${coverage}`);
});

function series(
  endpoint: string,
  kind: 'anycast' | 'unicast',
  values: Array<number | undefined>,
  metric: 'rtt' | 'connect' = 'rtt',
  protocol: 'udp' | 'tcp' = 'udp',
): PathSeries {
  const present = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  const mid = present.length / 2;
  const p50 =
    present.length === 0
      ? undefined
      : present.length % 2
        ? present[Math.floor(mid)]
        : (present[mid - 1]! + present[mid]!) / 2;
  return { endpoint, kind, protocol, metric, p50, byCycle: values };
}

test('benefit against the nearest unicast: pairs, win rate, saved_pct', () => {
  const anycast = series('anycast', 'anycast', [10, 11, undefined, 10, 12, 10, 11, 10]);
  const near = series('eu', 'unicast', [20, 21, 20, undefined, 22, 9, 21, 20]);
  const far = series('us', 'unicast', [90, 91, 90, 92, 90, 91, 90, 90]);
  const rows = computeBenefit([anycast, near, far], { baseline: 'nearest', terminatesTcp: true });
  assert.equal(rows.length, 1);
  const row = rows[0]!;
  assert.equal(row.baseline, 'eu');
  // cycles 2 and 3 lack a side: 6 pairs, d = 10, 10, 10, −1, 10, 10 — anycast faster in 5
  assert.equal(row.pairs, 6);
  assert.equal(row.win_rate, 0.8333);
  // Walsh averages of {−1, 10×5}: one −1, five 4.5, fifteen 10 → median 10
  assert.equal(row.saved_ms, 10);
  assert.equal(row.scope, 'end_to_end');
  assert.equal(row.anycast_p50_ms, 10); // 10 10 10 10 11 11 12
  assert.equal(row.baseline_p50_ms, 20);
  assert.equal(row.saved_pct, 50);
  // n = 6: k = 1, the CI is [min, max] of the Walsh averages
  assert.equal(row.ci_low_ms, -1);
  assert.equal(row.ci_high_ms, 10);
});

test('benefit against a named baseline, scope edge for a terminated TCP connect, rows skipped without data', () => {
  const s = [
    series('anycast', 'anycast', [5, 5, 5], 'connect', 'tcp'),
    series('eu', 'unicast', [20, 20, 20], 'connect', 'tcp'),
    series('us', 'unicast', [80, 80, 80], 'connect', 'tcp'),
    series('anycast', 'anycast', [undefined, undefined, undefined], 'rtt', 'tcp'),
    series('eu', 'unicast', [21, 21, 21], 'rtt', 'tcp'),
  ];
  const rows = computeBenefit(s, { baseline: 'us', terminatesTcp: true });
  assert.equal(rows.length, 1, 'tcp rtt has no anycast data and no named baseline data: no row');
  assert.equal(rows[0]!.baseline, 'us');
  assert.equal(rows[0]!.saved_ms, 75);
  assert.equal(rows[0]!.scope, 'edge');
  assert.equal(rows[0]!.ci_low_ms, undefined, 'three pairs are too few for a 95% CI');
  const notTerminated = computeBenefit(s, { baseline: 'nearest', terminatesTcp: false });
  assert.equal(notTerminated[0]!.scope, 'end_to_end');
  assert.equal(notTerminated[0]!.baseline, 'eu');
  // anycast-2 is measured but is not the benefit's subject
  const extra = computeBenefit([series('anycast-2', 'anycast', [1, 1, 1]), series('eu', 'unicast', [9, 9, 9])], {
    baseline: 'nearest',
    terminatesTcp: true,
  });
  assert.deepEqual(extra, []);
});
