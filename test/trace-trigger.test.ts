// Path context on change: which rounds call for a trace and of which paths (trace-trigger.ts), the
// per-path rate limit, and the agent end to end on loopback: a real reflector whose site changes
// makes the agent trace the anycast address and the baseline once, store the hops with the round
// and queue `trace` lines; a second change within min_interval traces nothing more. (names: false:
// 127.0.0.2 is not in /etc/hosts, and its reverse lookup would leave the machine for DNS.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../agent/agent.ts';
import { loadConfig } from '../agent/config/load.ts';
import type { AnylatEvent, BenefitRow, PathResult, RoundResult } from '../agent/core/model.ts';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { TraceLimiter, traceRequests } from '../agent/round/trace-trigger.ts';
import { openStore } from '../agent/store/store.ts';
import { freeUdpPort } from './support/net.ts';

function path(endpoint: string, kind: 'anycast' | 'unicast', address: string, received = 5): PathResult {
  return { endpoint, kind, address, protocol: 'udp', metric: 'rtt', scope: 'end_to_end', sent: 5, received, loss_pct: 0, flagged: 0 } as PathResult;
}

function round(saved: number | undefined, paths = [path('anycast', 'anycast', '198.18.0.10'), path('us', 'unicast', '10.0.0.1'), path('eu', 'unicast', '10.0.0.2')]): RoundResult {
  const benefit: BenefitRow[] =
    saved === undefined
      ? []
      : [{ protocol: 'udp', metric: 'rtt', scope: 'end_to_end', baseline: 'us', anycast_p50_ms: 10, baseline_p50_ms: 10 + saved, saved_ms: saved, saved_pct: 50, win_rate: 1, pairs: 5 }];
  return { agent: { id: 'a', region: 'r' }, service: 's', started_at: '2026-01-01T00:00:00.000Z', duration_ms: 100, paths, benefit } as RoundResult;
}

describe('trace triggers', () => {
  it('a site change traces the anycast address and the baseline, never another address', () => {
    const events: AnylatEvent[] = [{ type: 'site_change', service: 's', message: 'anycast udp: a -> b', from: 'a', to: 'b' }];
    const { requests } = traceRequests(round(30), events, undefined, 20);
    assert.deepEqual(
      requests.map((r) => [r.trigger, r.endpoint, r.kind, r.address]),
      [
        ['site_change', 'anycast', 'anycast', '198.18.0.10'],
        ['site_change', 'us', 'unicast', '10.0.0.1'],
      ],
    );
    assert.equal(requests[0]!.reason, 'anycast udp: a -> b');
  });

  it('a path down traces the path that went down too', () => {
    const events: AnylatEvent[] = [{ type: 'path_down', service: 's', message: 'eu udp down (100% loss)' }];
    const r = round(30, [path('anycast', 'anycast', '198.18.0.10'), path('us', 'unicast', '10.0.0.1'), path('eu', 'unicast', '10.0.0.2', 0)]);
    assert.deepEqual(
      traceRequests(r, events, undefined, 20).requests.map((x) => x.endpoint),
      ['anycast', 'us', 'eu'],
    );
  });

  it('the benefit shifting more than shift_ms from its recent median triggers; within it, or too little history, does not', () => {
    let history = traceRequests(round(30), [], undefined, 20).history;
    history = traceRequests(round(31), [], history, 20).history;
    // two rounds of history: not enough to call a shift yet
    const early = traceRequests(round(90), [], history, 20);
    assert.deepEqual(early.requests, []);
    history = traceRequests(round(29), [], history, 20).history;
    assert.deepEqual(history['udp/rtt'], [30, 31, 29]);
    assert.deepEqual(traceRequests(round(45), [], history, 20).requests, [], '+15 ms is within 20 ms');
    const shifted = traceRequests(round(5), [], history, 20);
    assert.deepEqual(
      shifted.requests.map((r) => [r.trigger, r.endpoint]),
      [
        ['benefit_shift', 'anycast'],
        ['benefit_shift', 'us'],
      ],
    );
    assert.match(shifted.requests[0]!.reason, /udp\/rtt benefit 5\.0 ms vs recent median 30\.0 ms \(-25\.0 ms\)/);
  });

  it('the rate limit allows one trace per path per interval', () => {
    let now = 0;
    const limiter = new TraceLimiter(600_000, () => now);
    assert.equal(limiter.take('s/anycast'), true);
    assert.equal(limiter.take('s/us'), true, 'another path has its own limit');
    now = 599_999;
    assert.equal(limiter.take('s/anycast'), false);
    now = 600_000;
    assert.equal(limiter.take('s/anycast'), true);
    assert.equal(limiter.take('s/anycast'), false);
  });
});

describe('the agent traces on a site change (loopback)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'anylat-trace-'));
  let reflector: RunningReflector | undefined;
  after(async () => {
    await reflector?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  it('traces anycast and baseline once, stores the hops with the round, queues trace lines; the next change is rate-limited', async () => {
    const udp = await freeUdpPort();
    const start = (site: string) => startReflector({ site, binds: ['127.0.0.1', '127.0.0.2'], udp: { port: udp }, tcp: false, http: false, log: () => {} });
    reflector = await start('one');
    const file = join(scratch, 'anylat.yaml');
    const db = join(scratch, 'anylat.db');
    writeFileSync(
      file,
      `agent: { id: tracer, region: lab }
services:
  - name: loop
    anycast: 127.0.0.1
    unicast: { lo-two: 127.0.0.2 }
    probes: { udp: { port: ${udp} } }
    samples: 3
    spacing: 20ms
    timeout: 300ms
    schedule: "* * * * * *"
    deadline: 800ms
store: { path: ${db} }
trace: { shift_ms: 10000, min_interval: 1h, max_hops: 4, names: false }
`,
    );
    const logs: string[] = [];
    const agent = new Agent({ config: loadConfig(file), log: (l) => logs.push(l), outbox: true, heartbeatIntervalMs: 60_000 });
    await agent.start();
    try {
      await until('a round', () => agent.saved >= 1);
      await reflector.close();
      reflector = await start('two');
      await until('the site change traced', () => logs.filter((l) => l.startsWith('trace loop')).length >= 2);
      await reflector.close();
      reflector = await start('three');
      await until('the second site change', () => logs.some((l) => /site_change: .*two -> three/.test(l)));
      await sleep(1500);
      await agent.tracesSettled();
    } finally {
      await agent.stop({ roundGraceMs: 1000, drainMs: 0 });
    }
    const store = openStore(db, { readonly: true });
    try {
      const traces = store.traces({ since: 0 });
      assert.equal(traces.length, 2, `one trace per path despite two site changes: ${JSON.stringify(traces)}`);
      const byEndpoint = new Map(traces.map((t) => [t.endpoint, t]));
      for (const [endpoint, address] of [
        ['anycast', '127.0.0.1'],
        ['lo-two', '127.0.0.2'],
      ] as const) {
        const t = byEndpoint.get(endpoint);
        assert.ok(t, `no trace of ${endpoint}`);
        assert.equal(t.trigger, 'site_change');
        assert.match(t.reason, /one -> two/);
        assert.equal(t.address, address);
        assert.equal(t.reached, true);
        assert.deepEqual(
          t.hops.map((h) => [h.ttl, h.address, h.reached]),
          [[1, address, true]],
        );
      }
      const events = store.events({ since: 0 });
      const change = events.find((e) => e.type === 'site_change' && e.to === 'two');
      assert.ok(change, JSON.stringify(events));
      assert.equal(traces[0]!.t, change.t, 'the traces carry the time of the event that caused them');
      const lines = store
        .readOutbox(100_000, { agent: 'tracer' })
        .map((e) => e.line)
        .filter((l) => l.startsWith('trace,'));
      assert.equal(lines.length, 2, lines.join('\n'));
      assert.ok(lines.some((l) => /^trace,agent=tracer,agent_region=lab,endpoint=anycast,kind=anycast,service=loop,trigger=site_change hop=1i,address="127\.0\.0\.1",rtt_ms=[\d.e-]+,reached=true \d+$/.test(l)), lines.join('\n'));
    } finally {
      store.close();
    }
  });
});
