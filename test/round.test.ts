// The round against real reflector parts and real probes on loopback. Where the test needs to see
// what the round did (launch order, concurrency), it wraps the real probe factories and records.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Attempt, Protocol } from '../agent/core/model.ts';
import { PROBES } from '../agent/probe/index.ts';
import type { ProbeFactory, Prober } from '../agent/probe/types.ts';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import {
  OVERRUN_GRACE_MS,
  REPLY_LAG_SLACK_MS,
  runRound,
  type ObservedSample,
  type RoundSpec,
} from '../agent/round/run-round.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { freePort } from './support/net.ts';

let reflector: RunningReflector;
let udpPort: number;
let tcpPort: number;
let httpPort: number;
let silentUdp: Socket;
let silentPort: number;
let dnsServer: Socket;
let dnsPort: number;

function portOf(kind: 'udp' | 'tcp' | 'http'): number {
  return reflector.listening.find((l) => l.kind === kind)!.port;
}

/** Answers every DNS query with NXDOMAIN: a resolver that knows no name, on loopback. */
function startNxdomainServer(): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('message', (q, from) => {
    if (q.length < 12) return;
    let i = 12;
    while (i < q.length && q[i] !== 0) i += q[i]! + 1;
    const end = i + 1 + 4;
    if (end > q.length) return;
    const reply = Buffer.alloc(end);
    q.copy(reply, 0, 0, end);
    reply.writeUInt16BE(0x8000 | (q.readUInt16BE(2) & 0x7900) | 0x0080 | 3, 2); // QR, opcode+RD copied, RA, NXDOMAIN
    reply.writeUInt16BE(1, 4);
    reply.writeUInt32BE(0, 6);
    reply.writeUInt16BE(0, 10);
    s.send(reply, from.port, from.address);
  });
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

before(async () => {
  reflector = await startReflector({
    site: 'site-a',
    binds: ['127.0.0.1'],
    udp: { port: 0, ratePerSourcePps: 0 },
    tcp: { port: 0 },
    http: { port: 0 },
    log: () => {},
  });
  udpPort = portOf('udp');
  tcpPort = portOf('tcp');
  httpPort = portOf('http');
  silentUdp = createSocket('udp4');
  silentUdp.on('message', () => {});
  await new Promise<void>((resolve) => silentUdp.bind(0, '127.0.0.1', () => resolve()));
  silentPort = silentUdp.address().port;
  dnsServer = await startNxdomainServer();
  dnsPort = dnsServer.address().port;
});

after(async () => {
  await reflector.close();
  silentUdp.close();
  dnsServer.close();
});

function spec(over: Partial<RoundSpec>): RoundSpec {
  return {
    service: 'test',
    agent: { id: 'a1', region: 'lab' },
    endpoints: [
      { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
      { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
    ],
    protocols: { udp: { port: udpPort } },
    samples: 5,
    spacingMs: 5,
    timeoutMs: 1000,
    ...over,
  };
}

interface Launch {
  endpoint: string;
  protocol: Protocol;
  seq: number;
  at: number;
  /** when the sample resolved */
  end?: number;
}

/** The real probe registry, with every sample call recorded (and concurrency counted). */
function recordingProbes(log: Launch[], live: { now: number; max: number }): typeof PROBES {
  const wrap = <P extends Protocol>(protocol: P, factory: ProbeFactory<P>): ProbeFactory<P> =>
    (async (target, options) => {
      const inner: Prober = await factory(target, options);
      return {
        metrics: inner.metrics,
        close: () => inner.close(),
        sample: async (seq: number): Promise<Attempt> => {
          const entry: Launch = { endpoint: target.endpoint, protocol, seq, at: performance.now() };
          log.push(entry);
          live.now++;
          live.max = Math.max(live.max, live.now);
          try {
            return await inner.sample(seq);
          } finally {
            live.now--;
            entry.end = performance.now();
          }
        },
      };
    }) as ProbeFactory<P>;
  return {
    udp: wrap('udp', PROBES.udp),
    tcp: wrap('tcp', PROBES.tcp),
    tls: wrap('tls', PROBES.tls),
    http: wrap('http', PROBES.http),
    icmp: wrap('icmp', PROBES.icmp),
    dns: wrap('dns', PROBES.dns),
    transfer: wrap('transfer', PROBES.transfer),
  };
}

test('a round over udp, tcp and http against the reflector: every path answered, site seen, benefit computed', async () => {
  // Flagging has its own test; here a monitor that never flags keeps every sample in the figures.
  const calm = new LagMonitor({ thresholdMs: 60_000 }).start();
  const round = await runRound(
    spec({
      protocols: {
        udp: { port: udpPort },
        tcp: { port: tcpPort, echo: true },
        http: { url: `http://127.0.0.1:${httpPort}/` },
      },
      samples: 12,
      // Every path must answer: on a machine busy enough to starve this process for a second, a
      // 1 s deadline turned loopback answers into timeouts (seen 1 run in 4 beside other suites).
      timeoutMs: 5000,
      lag: calm,
    }),
  ).finally(() => calm.stop());
  assert.equal(round.service, 'test');
  assert.deepEqual(round.agent, { id: 'a1', region: 'lab' });
  assert.ok(!Number.isNaN(Date.parse(round.started_at)));
  const keys = round.paths.map((p) => `${p.endpoint} ${p.protocol} ${p.metric}`);
  for (const e of ['anycast', 'u1']) {
    for (const pm of ['udp rtt', 'tcp connect', 'tcp rtt', 'http connect', 'http ttfb', 'http total', 'http warm'])
      assert.ok(keys.includes(`${e} ${pm}`), `${e} ${pm} in ${keys.join(', ')}`);
  }
  for (const p of round.paths) {
    assert.equal(p.sent, 12, `${p.endpoint} ${p.protocol} ${p.metric}`);
    assert.equal(p.received, 12, `${p.endpoint} ${p.protocol} ${p.metric}: ${JSON.stringify(p.failures)}`);
    assert.equal(p.loss_pct, 0);
    assert.equal(p.site, 'site-a');
    assert.equal(p.scope, p.metric === 'connect' ? 'edge' : 'end_to_end');
    assert.equal(p.flagged, 0);
    assert.ok(
      p.min_ms! > 0 &&
        p.min_ms! <= p.p50_ms! &&
        p.p50_ms! <= p.p90_ms! &&
        p.p90_ms! <= p.p99_ms! &&
        p.p99_ms! <= p.max_ms!,
    );
    assert.ok(p.stddev_ms! >= 0 && p.jitter_ms! >= 0 && p.mean_ms! >= p.min_ms!);
  }
  const udp = round.paths.find((p) => p.protocol === 'udp' && p.endpoint === 'anycast')!;
  assert.deepEqual(
    [udp.late, udp.duplicate, udp.stray, udp.invalid],
    [0, 0, 0, 0],
    'STAMP counters are carried into the path',
  );
  assert.deepEqual(
    round.benefit.map((b) => `${b.protocol} ${b.metric} ${b.scope} ${b.baseline} ${b.pairs}`),
    [
      'udp rtt end_to_end u1 12',
      'tcp connect edge u1 12',
      'tcp rtt end_to_end u1 12',
      'http connect edge u1 12',
      'http ttfb end_to_end u1 12',
      'http total end_to_end u1 12',
      'http warm end_to_end u1 12',
    ],
  );
  for (const b of round.benefit) {
    const any = round.paths.find(
      (p) => p.endpoint === 'anycast' && p.protocol === b.protocol && p.metric === b.metric,
    )!;
    assert.equal(b.anycast_p50_ms, any.p50_ms);
    assert.ok(
      b.ci_low_ms! <= b.saved_ms && b.saved_ms <= b.ci_high_ms!,
      `${b.protocol} ${b.metric}: ${b.ci_low_ms} ≤ ${b.saved_ms} ≤ ${b.ci_high_ms}`,
    );
  }
});

test('interleaving: each cycle launches every path once, in an order that changes between cycles, spaced apart', async () => {
  const log: Launch[] = [];
  const live = { now: 0, max: 0 };
  const samples = 10;
  const spacingMs = 15;
  await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
        { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
        { name: 'u2', kind: 'unicast', host: '127.0.0.1' },
      ],
      protocols: { udp: { port: udpPort }, tcp: { port: tcpPort, echo: true } },
      samples,
      spacingMs,
    }),
    { probes: recordingProbes(log, live) },
  );
  // One uncounted warm-up sample per path first (seq N), then the N counted cycles.
  const warmup = log.slice(0, 6);
  assert.ok(
    warmup.every((l) => l.seq === samples),
    `warm-up first: ${warmup.map((l) => l.seq).join(',')}`,
  );
  log.splice(0, 6);
  assert.equal(log.length, 6 * samples);
  const orders: string[] = [];
  for (let c = 0; c < samples; c++) {
    const cycle = log.slice(c * 6, c * 6 + 6);
    assert.ok(
      cycle.every((l) => l.seq === c),
      `cycle ${c} is launched whole before the next: ${cycle.map((l) => l.seq).join(',')}`,
    );
    const order = cycle.map((l) => `${l.endpoint}/${l.protocol}`);
    assert.equal(new Set(order).size, 6, 'every path once per cycle');
    orders.push(order.join(' '));
  }
  // 6! = 720 orders: ten draws that were all the same would mean no shuffle at all.
  assert.ok(new Set(orders).size > 1, `orders never changed: ${orders[0]}`);
  assert.ok(new Set(orders.map((o) => o.split(' ')[0])).size > 1, 'the same path always went first');
  // Cycle c starts one spacing after cycle c − 1, its launches spread over that spacing (timers
  // never fire early by more than their 1 ms resolution). The schedule starts once every warm-up
  // has resolved, so that is a lower bound for its origin.
  const start = Math.max(...warmup.map((l) => l.end!));
  for (let c = 0; c < samples; c++) {
    const cycle = log.slice(c * 6, c * 6 + 6);
    cycle.forEach((l, i) =>
      assert.ok(
        l.at >= start + c * spacingMs + (i * spacingMs) / 6 - 2,
        `cycle ${c} launch ${i} at +${l.at - start} ms`,
      ),
    );
  }
});

test('in-flight bound: never more samples out than allowed', async () => {
  const log: Launch[] = [];
  const live = { now: 0, max: 0 };
  const round = await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
        { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
        { name: 'u2', kind: 'unicast', host: '127.0.0.1' },
      ],
      protocols: {
        udp: { port: udpPort },
        tcp: { port: tcpPort, echo: true },
        http: { url: `http://127.0.0.1:${httpPort}/` },
      },
      samples: 6,
      spacingMs: 0,
      maxInFlight: 2,
    }),
    { probes: recordingProbes(log, live) },
  );
  assert.equal(log.length, 9 * (6 + 1), 'six counted samples and one warm-up per path');
  assert.equal(live.max, 2, 'spacing 0 fills the two slots and never a third');
  for (const p of round.paths) {
    assert.equal(p.sent, 6, 'the warm-up is not counted');
    assert.equal(p.received, 6, `${p.endpoint} ${p.protocol} ${p.metric}`);
  }
});

test('per-sample timeout: a silent reflector is a probe timeout, a prober that overruns is the round’s timeout', async () => {
  const silent = await runRound(
    spec({ protocols: { udp: { port: silentPort } }, samples: 3, spacingMs: 0, timeoutMs: 150 }),
  );
  for (const p of silent.paths) {
    assert.equal(p.received, 0);
    assert.equal(p.loss_pct, 100);
    assert.deepEqual(p.failures, { timeout: 3 });
    assert.equal(p.p50_ms, undefined);
  }
  assert.deepEqual(silent.benefit, [], 'no benefit without anycast data');

  // A prober that never settles: only the round's own deadline can end its samples.
  const stuck: ProbeFactory<'udp'> = () => ({
    metrics: ['rtt'],
    sample: () => new Promise<Attempt>(() => {}),
    close: async () => undefined,
  });
  const t0 = performance.now();
  const round = await runRound(spec({ samples: 2, spacingMs: 0, timeoutMs: 100 }), {
    probes: { ...PROBES, udp: stuck },
  });
  const took = performance.now() - t0;
  for (const p of round.paths) {
    assert.equal(p.loss_pct, 100);
    assert.deepEqual(p.failures, { timeout: 2 });
  }
  assert.ok(took >= 100 + OVERRUN_GRACE_MS - 2, `the round waited the timeout plus grace (${took} ms)`);
});

test('a refused endpoint is 100% loss with failure refused, beside a healthy one', async () => {
  const closed = await freePort('127.0.0.3');
  const round = await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
        { name: 'dead', kind: 'unicast', host: '127.0.0.3' },
      ],
      protocols: { tcp: { port: tcpPort === closed ? closed + 1 : tcpPort, echo: false } },
      samples: 4,
      spacingMs: 0,
    }),
  );
  const dead = round.paths.find((p) => p.endpoint === 'dead')!;
  assert.equal(dead.address, '127.0.0.3');
  assert.equal(dead.loss_pct, 100);
  assert.deepEqual(dead.failures, { refused: 4 });
  const alive = round.paths.find((p) => p.endpoint === 'anycast')!;
  assert.equal(alive.received, 4);
  assert.deepEqual(round.benefit, [], 'the only baseline returned nothing');
});

test('an unresolvable name is a path with 100% loss and failure dns; a name is resolved once, before sampling', async () => {
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    if (host === 'localhost') return '127.0.0.1';
    const [address] = await resolver.resolve4(host);
    return address!;
  };
  const round = await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: 'localhost' },
        { name: 'ghost', kind: 'unicast', host: 'nowhere.invalid' },
        { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
      ],
      protocols: { udp: { port: udpPort }, tcp: { port: tcpPort, echo: true } },
      samples: 4,
    }),
    { resolve },
  );
  assert.deepEqual(asked.sort(), ['localhost', 'nowhere.invalid'], 'each name once, IP literals never');
  const ghost = round.paths.filter((p) => p.endpoint === 'ghost');
  assert.deepEqual(
    ghost.map((p) => `${p.protocol} ${p.metric}`),
    ['udp rtt', 'tcp connect', 'tcp rtt'],
    'the unresolved endpoint reports the metrics its protocols report elsewhere',
  );
  for (const p of ghost) {
    assert.equal(p.address, 'nowhere.invalid');
    assert.equal(p.sent, 4);
    assert.equal(p.loss_pct, 100);
    assert.deepEqual(p.failures, { dns: 4 });
  }
  const any = round.paths.find((p) => p.endpoint === 'anycast' && p.protocol === 'udp')!;
  assert.equal(any.address, '127.0.0.1');
  assert.equal(any.received, 4);
  assert.ok(round.benefit.every((b) => b.baseline === 'u1'));
});

test('the default resolver resolves a name from /etc/hosts once', async () => {
  const round = await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: 'localhost' },
        { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
      ],
      samples: 2,
    }),
  );
  const any = round.paths.find((p) => p.endpoint === 'anycast')!;
  assert.ok(any.address === '127.0.0.1' || any.address === '::1', any.address);
});

/**
 * The real probe for `protocol`, busy for `ms` right after launching the samples `when` picks
 * (`afterMs` later when given); each stall's [from, to] goes into `stalls`.
 */
function stalling<P extends 'udp' | 'tcp' | 'http'>(
  protocol: P,
  when: (endpoint: string, seq: number) => boolean,
  ms = 25,
  afterMs = 0,
  stalls: Array<[number, number]> = [],
): ProbeFactory<P> {
  return (async (target, options) => {
    const inner = await (PROBES[protocol] as ProbeFactory<P>)(target, options);
    return {
      metrics: inner.metrics,
      close: () => inner.close(),
      sample: (seq: number) => {
        const p = inner.sample(seq);
        if (when(target.endpoint, seq)) {
          const stall = () => {
            const from = performance.now();
            const until = from + ms;
            while (performance.now() < until);
            stalls.push([from, performance.now()]);
          };
          if (afterMs > 0) setTimeout(stall, afterMs);
          else stall();
        }
        return p;
      },
    };
  }) as ProbeFactory<P>;
}

test('samples that overlapped a blocked event loop are flagged, counted as received, and left out of the pairs', async () => {
  const lag = new LagMonitor({ thresholdMs: 1 }).start();
  try {
    // A connect timed by the monotonic clock: a stall before its callback runs is in the value.
    // Spaced wider than the stall, so it holds up only the sample that caused it.
    const round = await runRound(
      spec({
        samples: 6,
        spacingMs: 80,
        lag,
        protocols: { tcp: { port: tcpPort, echo: false, connectClock: 'monotonic' } },
      }),
      {
        probes: { ...PROBES, tcp: stalling('tcp', (e, seq) => e === 'anycast' && (seq === 1 || seq === 3)) },
      },
    );
    const any = round.paths.find((p) => p.endpoint === 'anycast')!;
    assert.equal(any.received, 6);
    assert.ok(any.flagged >= 2, `flagged ${any.flagged}`);
    assert.ok(
      any.max_ms === undefined || any.max_ms < 25,
      `the stalled samples (≥ 25 ms) are out of the figures: max ${any.max_ms}`,
    );
    const b = round.benefit[0];
    if (b) assert.ok(b.pairs <= 6 - any.flagged, `pairs ${b.pairs} with ${any.flagged} anycast samples flagged`);
  } finally {
    lag.stop();
  }
});

test('values the kernel timed are never flagged: a stall while their reply waits does not reach them', async () => {
  const lag = new LagMonitor({ thresholdMs: 1 }).start();
  try {
    const stallAll = () => true;
    const round = await runRound(
      spec({
        samples: 4,
        spacingMs: 10,
        lag,
        protocols: { udp: { port: udpPort }, tcp: { port: tcpPort, echo: false } },
      }),
      {
        probes: { ...PROBES, udp: stalling('udp', stallAll), tcp: stalling('tcp', stallAll) },
      },
    );
    for (const p of round.paths) {
      assert.equal(p.received, 4, `${p.endpoint} ${p.protocol}`);
      assert.equal(p.flagged, 0, `${p.endpoint} ${p.protocol} ${p.metric}`);
      // Every reply waited 25 ms behind the stall; the kernel's stamps leave it out.
      assert.ok(p.max_ms! < 12, `${p.endpoint} ${p.protocol} ${p.metric}: max ${p.max_ms} ms`);
    }
  } finally {
    lag.stop();
  }
});

test("http: a stall while the response is on its way delays none of its callbacks: neither ttfb nor total is flagged for it, both keep the server's time", async () => {
  const SERVER_MS = 150;
  const STALL_MS = 50;
  const slow = createServer((_req, res) => setTimeout(() => res.end('ok'), SERVER_MS));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
  const lag = new LagMonitor({ thresholdMs: 1 }).start();
  try {
    const port = (slow.address() as AddressInfo).port;
    const stalls: Array<[number, number]> = [];
    const seen: ObservedSample[] = [];
    // 20 ms into each sample the loop stalls for 50 ms; the response comes ~150 ms in. This node:http
    // server acknowledges the request at once, so on Linux ttfb runs to the response's kernel
    // receive timestamp, elsewhere to the headers' callback, its only exposure (and total's).
    await runRound(
      spec({
        samples: 3,
        spacingMs: 250,
        lag,
        endpoints: [{ name: 'anycast', kind: 'anycast', host: '127.0.0.1' }],
        protocols: { http: { url: `http://127.0.0.1:${port}/`, warm: false } },
      }),
      {
        probes: { ...PROBES, http: stalling('http', () => true, STALL_MS, 20, stalls) },
        onSample: (s) => seen.push(s),
      },
    );
    assert.equal(seen.length, 3);
    assert.ok(stalls.length >= 3, `stalled ${stalls.length} times`);
    const noise = lag.windowsSince(0).filter((w) => !stalls.some(([from, to]) => w.from < to && w.to > from));
    for (const s of seen) {
      assert.equal(s.attempt.ok, true, JSON.stringify(s.attempt));
      const { ttfb, total } = s.attempt.values;
      assert.ok(ttfb! >= SERVER_MS - 10, `ttfb ${ttfb} ms is the server's ${SERVER_MS} ms, measured`);
      assert.ok(total! - ttfb! < STALL_MS - 10, `total ${total} ms − ttfb ${ttfb} ms: the stall is not in total`);
      // A flag is only honest when some other stretch of lag (this machine being busy) could have
      // held up one of the sample's callbacks; the injected stall ended long before the response.
      for (const metric of s.flaggedMetrics) {
        const at = (s.attempt.lagWindows?.ttfb as readonly [number, number] | undefined)?.[1] ?? s.attempt.t1;
        assert.ok(
          noise.some((w) => w.from <= at && w.to >= at - REPLY_LAG_SLACK_MS - 1),
          `${metric} flagged with no lag near its response at ${at.toFixed(1)} but the injected stall ${JSON.stringify(stalls)}`,
        );
      }
    }
  } finally {
    lag.stop();
    slow.close();
  }
});

test('onSample sees every counted sample once, with its flag, and the statistics agree with what it saw', async () => {
  const lag = new LagMonitor({ thresholdMs: 1 }).start();
  try {
    const seen: ObservedSample[] = [];
    const refusedTcpPort = await freePort();
    const round = await runRound(
      // The monotonic clock: a stall right after launch holds up the connect callback, so it is in
      // connect and total (the kernel clock would leave it out of both: nothing to flag).
      spec({
        samples: 6,
        spacingMs: 10,
        lag,
        protocols: {
          http: { url: `http://127.0.0.1:${httpPort}/`, warm: false, ttfbClock: 'monotonic' },
          tcp: { port: refusedTcpPort, echo: false },
        },
      }),
      {
        probes: { ...PROBES, http: stalling('http', (e, seq) => e === 'u1' && seq === 2) },
        onSample: (s) => seen.push(s),
      },
    );
    // 2 endpoints × 2 protocols × 6 cycles; the warm-up samples are not counted, so not seen.
    assert.equal(seen.length, 24);
    for (const e of ['anycast', 'u1']) {
      for (const protocol of ['http', 'tcp'] as const) {
        const mine = seen.filter((s) => s.endpoint === e && s.protocol === protocol);
        assert.deepEqual(mine.map((s) => s.cycle).sort(), [0, 1, 2, 3, 4, 5]);
        assert.equal(mine[0]!.address, '127.0.0.1');
        assert.equal(mine[0]!.kind, e === 'anycast' ? 'anycast' : 'unicast');
        const metric = protocol === 'http' ? 'total' : 'connect';
        const path = round.paths.find((p) => p.endpoint === e && p.protocol === protocol && p.metric === metric)!;
        // A failed sample is never in the statistics, flagged or not.
        assert.equal(
          mine.filter((s) => s.flaggedMetrics.includes(metric) && s.attempt.ok).length,
          path.flagged,
          `${e} ${protocol}`,
        );
        assert.equal(mine.filter((s) => s.attempt.ok).length, path.received, `${e} ${protocol}`);
        for (const s of mine) assert.equal(s.flagged, s.flaggedMetrics.length > 0);
        if (protocol === 'http') {
          const kept = mine.filter((s) => !s.flaggedMetrics.includes(metric)).map((s) => s.attempt.values.total!);
          assert.equal(kept.length === 0 ? undefined : Math.round(Math.min(...kept) * 1000) / 1000, path.min_ms);
        } else {
          assert.ok(mine.every((s) => !s.attempt.ok && s.attempt.reason === 'refused'));
        }
      }
    }
    assert.ok(
      seen.some(
        (s) => s.endpoint === 'u1' && s.protocol === 'http' && s.cycle === 2 && s.flaggedMetrics.includes('total'),
      ),
      'the stalled sample is seen flagged',
    );
  } finally {
    lag.stop();
  }
});

test('a named baseline and terminatesTcp=false reach the benefit rows; scheduled_at is carried', async () => {
  const round = await runRound(
    spec({
      endpoints: [
        { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
        { name: 'u1', kind: 'unicast', host: '127.0.0.1' },
        { name: 'u2', kind: 'unicast', host: '127.0.0.1' },
      ],
      protocols: { tcp: { port: tcpPort, echo: false } },
      samples: 8,
      baseline: 'u2',
      terminatesTcp: false,
      scheduledAt: '2026-01-01T00:00:00.000Z',
    }),
  );
  assert.equal(round.scheduled_at, '2026-01-01T00:00:00.000Z');
  for (const p of round.paths) assert.equal(p.scope, 'end_to_end');
  const row = round.benefit.find((b) => b.metric === 'connect');
  if (row) assert.equal(row.baseline, 'u2');
  await assert.rejects(() => runRound(spec({ baseline: 'nope' })), /baseline "nope" is not a unicast endpoint/);
  await assert.rejects(() => runRound(spec({ samples: 0 })), /samples must be/);
});

test('an aborted round stops launching, ends what is in flight and rejects', async () => {
  const log: Launch[] = [];
  const live = { now: 0, max: 0 };
  const controller = new AbortController();
  const pending = runRound(
    spec({
      protocols: { udp: { port: udpPort }, tcp: { port: tcpPort, echo: true } },
      samples: 200,
      spacingMs: 20,
      signal: controller.signal,
    }),
    {
      probes: recordingProbes(log, live),
    },
  );
  while (log.filter((l) => l.seq === 3).length === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await assert.rejects(pending, (err: unknown) => (err as { code?: string }).code === 'ANYLAT_ROUND_ABORTED');
  const launched = log.length;
  assert.ok(launched < 4 * 200, `launched ${launched} of ${4 * 200}`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(log.length, launched, 'nothing launched after the abort');
  assert.equal(live.now, 0, 'no sample left in flight');
});
