// The headline `compare` prints: a benefit whose 95% CI spans 0 is "no clear difference", as on the
// page and in the demo's table, not "anycast 0.000 ms faster".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRound } from '../agent/round/format.ts';
import { benefitRow, makeRound } from './support/rounds.ts';

function headline(row: ReturnType<typeof benefitRow>): string {
  const out = formatRound(makeRound({ startedAt: Date.parse('2026-01-01T00:00:00Z'), benefit: [row] }));
  const lines = out.split('\n');
  const i = lines.indexOf('Headline (end to end):');
  assert.ok(i >= 0, out);
  return lines[i + 1]!;
}

test('a CI that spans 0 reads "no clear difference", with the numbers still there', () => {
  const line = headline(
    benefitRow(0, { baseline: 'v6', ci_low_ms: -0.008, ci_high_ms: 0.002, saved_pct: 0, win_rate: 0.45 }),
  );
  assert.equal(
    line,
    '  udp rtt: no clear difference between anycast and v6 (saved 0.000 ms, 95% CI [-0.008, 0.002], 0%, anycast faster in 45% of 20 pairs)',
  );
  // A bound exactly at 0 is not a clear difference either (the page's rule: faster only when low > 0).
  assert.match(
    headline(benefitRow(1, { ci_low_ms: 0, ci_high_ms: 2 })),
    /no clear difference between anycast and us-east-1 \(saved \+1\.000 ms/,
  );
  assert.match(
    headline(benefitRow(-1, { ci_low_ms: -2, ci_high_ms: 0 })),
    /no clear difference between anycast and us-east-1 \(saved -1\.000 ms/,
  );
});

test('a CI above 0 is faster, below 0 slower; without a CI the estimate speaks', () => {
  assert.match(
    headline(benefitRow(29.2, { baseline: 'eu-west', ci_low_ms: 28.1, ci_high_ms: 30.4 })),
    /^ {2}udp rtt: anycast 29\.20 ms faster than eu-west \(95% CI \[28\.10, 30\.40\]/,
  );
  assert.match(
    headline(benefitRow(-3, { ci_low_ms: -4, ci_high_ms: -2 })),
    /^ {2}udp rtt: anycast 3\.000 ms slower than us-east-1 \(95% CI \[-4\.000, -2\.000\]/,
  );
  assert.match(
    headline(benefitRow(2, { ci_low_ms: undefined, ci_high_ms: undefined, pairs: 4 })),
    /^ {2}udp rtt: anycast 2\.000 ms faster than us-east-1 \(95% CI n\/a \(< 6 pairs\)/,
  );
});
