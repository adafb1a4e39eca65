// LagMonitor.delayedAt: which callbacks a stall of the event loop can have held up. A stall before
// a callback delays it; the work a callback does after stamping its time does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LagMonitor } from '../agent/util/lag.ts';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a callback that ran right after a stall was held up by it; one that ran long after was not', async () => {
  // A 10 ms threshold and a 60 ms stall: on a busy machine the scheduler alone can hold the process
  // for a few milliseconds (which a 1 ms threshold read as a stall right where `later` was stamped).
  const lag = new LagMonitor({ thresholdMs: 10 }).start();
  try {
    await sleep(20);
    const before = performance.now();
    busy(60);
    const right = performance.now();
    await sleep(120);
    const later = performance.now();
    await sleep(5); // let the monitor tick past both
    assert.equal(lag.delayedAt(right, 2), true);
    assert.equal(lag.delayedAt(later, 2), false);
    assert.equal(lag.delayedAt(before - 5, 2), false, 'a callback before the stall');
    assert.equal(lag.overlaps(before, right), true);
  } finally {
    lag.stop();
  }
});

test('work a callback does after stamping its time does not flag that stamp', async () => {
  const lag = new LagMonitor({ thresholdMs: 10 }).start();
  try {
    await sleep(20);
    const stamps: number[] = [];
    // A timer callback stamps first, then works for 40 ms (an HTTP response being parsed, say); the
    // 10 ms threshold keeps a busy machine's scheduling delays from reading as a stall.
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        stamps.push(performance.now());
        busy(40);
        resolve();
      }, 5),
    );
    await sleep(5);
    const [at] = stamps;
    assert.ok(
      lag.windowsSince(at! - 50).some((w) => w.from <= at! && w.to >= at!),
      'the callback ran inside a recorded stall',
    );
    assert.equal(lag.delayedAt(at!, 2), false);
    // The next callback, which waited for that work, was held up.
    const next = await new Promise<number>((resolve) => {
      setImmediate(() => resolve(performance.now()));
      busy(40);
    });
    await sleep(5);
    assert.equal(lag.delayedAt(next, 2), true);
  } finally {
    lag.stop();
  }
});
