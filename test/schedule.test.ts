// The schedule: phases stable and bounded, intervals of real cron expressions, and the scheduler
// against node-cron's real timers — a blocked event loop loses no round, a slow round makes the next
// one late (never two at once), a stall beyond the backlog skips and counts, the deadline aborts,
// stop() stops.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Scheduler, type ScheduledRound } from '../agent/schedule/scheduler.ts';
import {
  cronInterval,
  isLate,
  lateTolerance,
  MAX_PHASE_MS,
  phaseFor,
  serviceTiming,
  type ServiceTiming,
} from '../agent/schedule/timing.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Blocks the event loop: nothing else in this process runs meanwhile (timers, node-cron, I/O). */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

async function until(what: string, test: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('timing', () => {
  it("a cron's interval is its shortest gap", () => {
    assert.equal(cronInterval('* * * * * *'), 1_000);
    assert.equal(cronInterval('*/7 * * * * *'), 4_000, ':56 to :00 is 4 s');
    assert.equal(cronInterval('*/30 * * * * *'), 30_000);
    assert.equal(cronInterval('* * * * *'), 60_000);
    assert.equal(cronInterval('*/5 * * * *'), 300_000);
    assert.equal(cronInterval('0 3 * * *'), 86_400_000);
  });

  it('the phase is stable, bounded by interval and a minute, and differs by service and agent', () => {
    for (const interval of [1_000, 4_000, 60_000, 3_600_000]) {
      const phases = new Set<number>();
      for (let i = 0; i < 200; i++) {
        const p = phaseFor('agent-1', `service-${i}`, interval);
        assert.equal(p, phaseFor('agent-1', `service-${i}`, interval), 'same inputs, same phase');
        assert.ok(
          Number.isInteger(p) && p >= 0 && p < Math.min(interval, MAX_PHASE_MS),
          `${p} out of range for ${interval}`,
        );
        phases.add(p);
      }
      assert.ok(phases.size > 150, `phases should spread, got ${phases.size} distinct of 200`);
      // Spread over the whole range: some in each quarter.
      const bound = Math.min(interval, MAX_PHASE_MS);
      for (let q = 0; q < 4; q++)
        assert.ok(
          [...phases].some((p) => p >= (q * bound) / 4 && p < ((q + 1) * bound) / 4),
          `quarter ${q} empty`,
        );
    }
    assert.notEqual(phaseFor('agent-1', 'api', 60_000), phaseFor('agent-2', 'api', 60_000));
  });

  it('late means: waited behind a round, or started past a quarter interval (at most 1 s)', () => {
    const t = serviceTiming('a', 's', '* * * * * *');
    assert.equal(t.lateAfterMs, 250);
    assert.equal(lateTolerance(60_000), 1_000);
    assert.equal(isLate(10_000, 10_200, false, t), false);
    assert.equal(isLate(10_000, 10_300, false, t), true);
    assert.equal(isLate(10_000, 10_001, true, t), true);
    assert.equal(t.deadlineMs, 900, 'default deadline: 90% of the interval');
    assert.equal(serviceTiming('a', 's', '* * * * * *', 500).deadlineMs, 500);
  });
});

describe('scheduler (real node-cron timers, 1-second cron)', () => {
  let scheduler: Scheduler | undefined;
  afterEach(async () => {
    await scheduler?.stop(0, 2_000);
    scheduler = undefined;
  });

  function timing(service: string, deadlineMs?: number): ServiceTiming {
    return serviceTiming('test-agent', service, '* * * * * *', deadlineMs);
  }

  /** Every scheduled_at from first to last, 1 s apart: no slot missing, none twice. */
  function assertContiguous(rounds: Array<{ scheduledAt: Date }>): void {
    const at = rounds.map((r) => r.scheduledAt.getTime());
    for (let i = 1; i < at.length; i++)
      assert.equal(
        at[i]! - at[i - 1]!,
        1_000,
        `round ${i}: ${new Date(at[i - 1]!).toISOString()} then ${new Date(at[i]!).toISOString()}`,
      );
  }

  it('runs every service on its slot plus its phase', async () => {
    const seen: ScheduledRound[] = [];
    const timings = [timing('alpha'), timing('beta')];
    scheduler = new Scheduler({ timings, run: async (r) => void seen.push(r), log: () => {} });
    scheduler.start();
    await until('two rounds of each service', () =>
      ['alpha', 'beta'].every((s) => seen.filter((r) => r.service === s).length >= 2),
    );
    for (const t of timings) {
      const mine = seen.filter((r) => r.service === t.service);
      assertContiguous(mine);
      for (const r of mine) {
        // scheduled_at sits on a whole second plus the service's phase.
        assert.equal(((r.scheduledAt.getTime() % 1_000) + 1_000) % 1_000, t.phaseMs);
        assert.ok(r.startedAt.getTime() >= r.scheduledAt.getTime(), 'never starts before it is due');
      }
    }
  });

  it('a blocked event loop loses no round: every slot runs, late, and is counted', async () => {
    const seen: ScheduledRound[] = [];
    const logs: string[] = [];
    scheduler = new Scheduler({
      timings: [timing('svc')],
      run: async (r) => void seen.push(r),
      log: (l) => logs.push(l),
    });
    scheduler.start();
    await until('two rounds before the block', () => seen.length >= 2);
    const before = seen.length;
    const blockedFrom = Date.now();
    block(3_200);
    const blockedTo = Date.now();
    // Slots due during the block (and the phase-shifted rounds that fell into it).
    await until('the rounds after the block', () => seen.some((r) => r.scheduledAt.getTime() > blockedTo + 1_000));
    const snapshot = seen.slice();
    assertContiguous(snapshot);
    const duringBlock = snapshot.filter(
      (r) => r.scheduledAt.getTime() > blockedFrom && r.scheduledAt.getTime() < blockedTo,
    );
    assert.ok(
      duringBlock.length >= 3,
      `expected at least 3 rounds due during the 3.2 s block, got ${duringBlock.length}`,
    );
    for (const r of duringBlock) {
      assert.equal(
        r.late,
        true,
        `round due ${r.scheduledAt.toISOString()} ran at ${r.startedAt.toISOString()} and should be late`,
      );
      assert.ok(r.startedAt.getTime() >= blockedTo);
    }
    const stats = scheduler.stats();
    assert.equal(stats.roundsLate, snapshot.filter((r) => r.late).length, 'every late round counted once');
    assert.ok(stats.roundsLate >= duringBlock.length);
    assert.equal(stats.roundsSkipped, 0);
    assert.ok(snapshot.length > before + 3);
    assert.deepEqual(logs, []);
  });

  it('a round that overruns makes the next late, never two at once, none lost', async () => {
    let running = 0;
    let maxRunning = 0;
    const seen: ScheduledRound[] = [];
    // 1.4 s rounds on a 1 s cron, ignoring the deadline: the backlog grows by 0.4 per second.
    scheduler = new Scheduler({
      timings: [timing('slow')],
      log: () => {},
      run: async (r) => {
        seen.push(r);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(1_400);
        running--;
      },
    });
    scheduler.start();
    await until('five rounds', () => seen.length >= 5, 20_000);
    assert.equal(maxRunning, 1);
    assertContiguous(seen);
    // Every round after the first waited behind its predecessor.
    for (const r of seen.slice(1)) assert.equal(r.late, true);
    const stats = scheduler.stats();
    assert.ok(stats.roundsLate >= seen.length - 1);
    assert.ok(stats.roundsAbandoned >= 4, 'each 1.4 s round passed its 900 ms deadline');
    assert.equal(stats.roundsSkipped, 0);
  });

  it('beyond the backlog bound, the oldest waiting rounds are skipped, logged and counted', async () => {
    const seen: ScheduledRound[] = [];
    const logs: string[] = [];
    scheduler = new Scheduler({
      timings: [timing('stalled')],
      run: async (r) => void seen.push(r),
      log: (l) => logs.push(l),
      maxBacklog: 2,
    });
    scheduler.start();
    await until('a first round', () => seen.length >= 1);
    block(4_300);
    const after = Date.now();
    await until('rounds after the stall', () => seen.some((r) => r.scheduledAt.getTime() > after + 1_000));
    const stats = scheduler.stats();
    assert.ok(stats.roundsSkipped >= 1, `expected skipped rounds, stats ${JSON.stringify(stats)}`);
    assert.equal(
      logs.filter((l) => /skipped \d+ rounds? due .*more than 2 were waiting/.test(l)).length >= 1,
      true,
      logs.join('\n'),
    );
    // Ran + skipped covers every slot from the first to the last: nothing vanished silently.
    const at = seen.map((r) => r.scheduledAt.getTime());
    const span = (at.at(-1)! - at[0]!) / 1_000 + 1;
    assert.equal(seen.length + stats.roundsSkipped, span);
  });

  it("the deadline aborts a round's signal, counted; the next round still runs", async () => {
    const seen: Array<{ round: ScheduledRound; reason?: unknown }> = [];
    scheduler = new Scheduler({
      timings: [timing('hung', 300)],
      log: () => {},
      run: (round) =>
        new Promise<void>((resolve) => {
          const entry: { round: ScheduledRound; reason?: unknown } = { round };
          seen.push(entry);
          round.signal.addEventListener('abort', () => {
            entry.reason = round.signal.reason;
            resolve();
          });
        }),
    });
    scheduler.start();
    await until('two rounds', () => seen.length >= 2 && seen[0]!.reason !== undefined);
    assert.equal(seen[0]!.reason, 'deadline');
    assert.ok(scheduler.stats().roundsAbandoned >= 1);
    assert.equal(seen[1]!.round.scheduledAt.getTime() - seen[0]!.round.scheduledAt.getTime(), 1_000);
  });

  it('stop(): no round starts after it; a running round gets the grace, then "shutdown"', async () => {
    const seen: Array<{ round: ScheduledRound; reason?: unknown }> = [];
    scheduler = new Scheduler({
      timings: [timing('busy', 900)],
      log: () => {},
      run: (round) =>
        new Promise<void>((resolve) => {
          const entry: { round: ScheduledRound; reason?: unknown } = { round };
          seen.push(entry);
          round.signal.addEventListener('abort', () => {
            entry.reason = round.signal.reason;
            resolve();
          });
        }),
    });
    scheduler.start();
    await until('a round in flight', () => seen.length >= 1);
    const result = await scheduler.stop(50);
    assert.equal(result.aborted, 1);
    assert.equal(result.stillRunning, 0);
    assert.equal(seen[0]!.reason, 'shutdown');
    const count = seen.length;
    await sleep(2_200);
    assert.equal(seen.length, count, 'no round after stop()');
    scheduler = undefined;
  });

  it('stop() lets a round that finishes within the grace finish', async () => {
    let finished = 0;
    let started = 0;
    scheduler = new Scheduler({
      timings: [timing('quick')],
      log: () => {},
      run: async (round) => {
        started++;
        await sleep(100);
        if (!round.signal.aborted) finished++;
      },
    });
    scheduler.start();
    await until('a round in flight', () => started >= 1);
    const result = await scheduler.stop(5_000);
    assert.equal(result.aborted, 0);
    assert.equal(finished, started);
    scheduler = undefined;
  });
});
