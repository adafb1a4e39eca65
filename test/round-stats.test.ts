import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mostFrequent, quantile, rfc3550Jitter, roundStats, sampleStddev, summarize } from '../agent/round/stats.ts';

const close = (actual: number | undefined, expected: number, eps = 1e-9) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);

test('quantile interpolates between closest ranks (type 7)', () => {
  const x = [10, 11, 12, 13, 15];
  // h = (n−1)·p: p50 → h=2 → 12; p90 → h=3.6 → 13 + 0.6·(15−13) = 14.2; p99 → h=3.96 → 14.92
  close(quantile(x, 0.5), 12);
  close(quantile(x, 0.9), 14.2);
  close(quantile(x, 0.99), 14.92);
  close(quantile(x, 0), 10);
  close(quantile(x, 1), 15);
  // even count: the median is the mean of the two middle values
  close(quantile([1, 2, 3, 10], 0.5), 2.5);
  close(quantile([7], 0.99), 7);
  assert.throws(() => quantile([], 0.5), RangeError);
  assert.throws(() => quantile([1], 1.5), RangeError);
});

test('RFC 3550 jitter smooths |D| with gain 1/16 in send order', () => {
  // D = 2, 1, 4, 2:
  // J1 = 2/16 = 0.125; J2 = 0.125 + (1 − 0.125)/16 = 0.1796875
  // J3 = 0.1796875 + (4 − 0.1796875)/16 = 0.41845703125
  // J4 = 0.41845703125 + (2 − 0.41845703125)/16 = 0.517303466796875
  assert.equal(rfc3550Jitter([10, 12, 11, 15, 13]), 0.517303466796875);
  // order matters: the same values sorted have D = 1,1,1,2
  // J = 1/16 = .0625; + (1−.0625)/16 = .12109375; + (1−.12109375)/16 = .176025390625; + (2−.176025390625)/16
  assert.equal(rfc3550Jitter([10, 11, 12, 13, 15]), 0.176025390625 + (2 - 0.176025390625) / 16);
  assert.equal(rfc3550Jitter([5, 5, 5]), 0);
  assert.equal(rfc3550Jitter([5]), undefined);
  assert.equal(rfc3550Jitter([]), undefined);
});

test('sample standard deviation uses n − 1', () => {
  // mean 12.2; squared deviations 4.84 + 0.04 + 1.44 + 7.84 + 0.64 = 14.8; 14.8 / 4 = 3.7
  close(sampleStddev([10, 12, 11, 15, 13]), Math.sqrt(3.7));
  assert.equal(sampleStddev([3]), undefined);
});

test('summarize: failures count as loss by reason, flagged samples are received but not in the distribution', () => {
  const s = summarize([
    { value: 10, flagged: false },
    { reason: 'timeout', flagged: false },
    { value: 12, flagged: false },
    { value: 50, flagged: true },
    { value: 11, flagged: false },
    { reason: 'refused', flagged: false },
    { value: 15, flagged: false },
    { value: 13, flagged: false },
  ]);
  assert.equal(s.sent, 8);
  assert.equal(s.received, 6);
  assert.equal(s.loss_pct, 25);
  assert.equal(s.flagged, 1);
  assert.deepEqual(s.failures, { timeout: 1, refused: 1 });
  // the unflagged series is 10, 12, 11, 15, 13 (the flagged 50 stays out of every figure)
  assert.equal(s.min_ms, 10);
  assert.equal(s.max_ms, 15);
  close(s.p50_ms, 12);
  close(s.p90_ms, 14.2);
  close(s.p99_ms, 14.92);
  close(s.mean_ms, 12.2);
  close(s.stddev_ms, Math.sqrt(3.7));
  assert.equal(s.jitter_ms, 0.517303466796875);
});

test('summarize: nothing came back leaves the distribution absent, never zero', () => {
  const s = summarize([
    { reason: 'timeout', flagged: false },
    { reason: 'timeout', flagged: false },
    { flagged: false },
  ]);
  assert.deepEqual(s, { sent: 3, received: 0, loss_pct: 100, flagged: 0, failures: { timeout: 2, error: 1 } });
  for (const k of ['min_ms', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'mean_ms', 'stddev_ms', 'jitter_ms'] as const) {
    assert.equal(k in s, false, `${k} must be absent`);
  }
});

test('summarize: one sample gives location figures but no spread', () => {
  const s = summarize([{ value: 7.25, flagged: false }]);
  assert.deepEqual(s, {
    sent: 1,
    received: 1,
    loss_pct: 0,
    flagged: 0,
    min_ms: 7.25,
    p50_ms: 7.25,
    p90_ms: 7.25,
    p99_ms: 7.25,
    max_ms: 7.25,
    mean_ms: 7.25,
  });
});

test('summarize: only flagged values → received but no distribution', () => {
  const s = summarize([
    { value: 3, flagged: true },
    { value: 4, flagged: true },
  ]);
  assert.equal(s.received, 2);
  assert.equal(s.flagged, 2);
  assert.equal(s.loss_pct, 0);
  assert.equal(s.p50_ms, undefined);
  assert.equal(s.failures, undefined);
});

test('roundStats keeps microseconds', () => {
  const r = roundStats({ sent: 3, received: 2, loss_pct: 100 / 3, flagged: 0, p50_ms: 1.23456789, jitter_ms: 0.0004 });
  assert.equal(r.loss_pct, 33.333);
  assert.equal(r.p50_ms, 1.235);
  assert.equal(r.jitter_ms, 0);
});

test('mostFrequent picks the commonest site, first to reach it on ties', () => {
  assert.equal(mostFrequent(['a', 'b', 'b', undefined, 'a', 'b']), 'b');
  assert.equal(mostFrequent(['x', 'y']), 'x');
  assert.equal(mostFrequent([undefined, '']), undefined);
});
