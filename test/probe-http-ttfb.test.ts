// The http probe's ttfb timed by the kernel (TCP_INFO before the request and when the response
// headers are in), on real loopback sockets: the anylat reflector, whose responses carry the ACK of
// their request, and plain node:http servers, which acknowledge first, so the probe falls back to
// its own clock and says why.
import { after, before, describe, test } from 'node:test';
import { TIMER_EARLY_MS } from './support/net.ts';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Attempt } from '../agent/core/model.ts';
import { httpProber, type HttpProber, type TtfbTiming } from '../agent/probe/http.ts';
import {
  delayAcks,
  ECHO_RTT_ROUNDING_US,
  readTcpInfo,
  responseRttFromTcpInfo,
  type TcpInfo,
} from '../agent/net/tcp-info.ts';
import type { HttpProbeOptions, ProbeTarget } from '../agent/probe/types.ts';
import { startHttpReflector } from '../agent/reflector/http.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

const HOST = 'svc.anylat.test';
const linuxOnly = { skip: process.platform !== 'linux' && 'the kernel ttfb clock reads TCP_INFO (Linux)' };
const target = (address = '127.0.0.1'): ProbeTarget => ({ endpoint: 'test', address });
const NO_FALLBACKS = {
  unavailable: 0,
  retransmitted: 0,
  separate_ack: 0,
  split_request: 0,
  not_acked: 0,
  inconsistent: 0,
};

let reflector: ReflectorPart;
before(async () => {
  reflector = await startHttpReflector({ site: 'edge-test', binds: ['127.0.0.1', '::1'], port: 0, log: () => {} });
});
after(async () => {
  await reflector?.close();
});

// The monotonic span of each request as undici sees it: from its announcement that it is about to
// write the request to its announcement that the response headers are parsed. Both stamps fall
// inside the probe's own (the probe subscribed first, and stamps onResponseStart after), and the
// kernel's sample lies inside them (the request leaves after the first, the response is in before
// the second): a kernel ttfb can be no longer.
const spans: number[] = [];
const written = new WeakMap<object, number>();
const onSend = (message: unknown) => written.set((message as { request: object }).request, performance.now());
const onHeaders = (message: unknown) => {
  const at = performance.now();
  const start = written.get((message as { request: object }).request);
  if (start !== undefined) spans.push(at - start);
};

/** `n` samples with one request each, and each one's undici-side monotonic span. */
async function sampled(probe: HttpProber, n: number): Promise<Array<{ attempt: Attempt; spanMs: number }>> {
  const out: Array<{ attempt: Attempt; spanMs: number }> = [];
  subscribe('undici:client:sendHeaders', onSend);
  subscribe('undici:request:headers', onHeaders);
  try {
    for (let seq = 0; seq < n; seq++) {
      spans.length = 0;
      const attempt = await probe.sample(seq);
      assert.equal(spans.length, 1, 'one request per sample (warm: false)');
      out.push({ attempt, spanMs: spans[0]! });
    }
  } finally {
    unsubscribe('undici:client:sendHeaders', onSend);
    unsubscribe('undici:request:headers', onHeaders);
  }
  return out;
}

/** A node:http server on 127.0.0.1:0; `onConnection` sees each accepted socket first. */
async function plainServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  onConnection?: (socket: net.Socket) => void,
): Promise<{ port: number; stop: () => Promise<void> }> {
  const server: Server = createServer(handler);
  if (onConnection) server.on('connection', onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function oneSample(
  port: number,
  options: Partial<HttpProbeOptions> = {},
): Promise<{ attempt: Attempt; timing: TtfbTiming; probe: HttpProber }> {
  const probe = httpProber(target(), { url: `http://${HOST}:${port}/`, timeoutMs: 3000, warm: false, ...options });
  const attempt = await probe.sample(0);
  await probe.close();
  return { attempt, timing: probe.ttfbTiming(), probe };
}

/** a ttfb that the monotonic clock timed, for `why` (undefined: the kernel was not asked) */
function assertMonotonic(
  r: { attempt: Attempt; timing: TtfbTiming },
  why: keyof TtfbTiming['fallbacks'] | undefined,
): void {
  const a = r.attempt;
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(r.timing, {
    kernel: 0,
    arrival: 0,
    monotonic: 1,
    fallbacks: why ? { ...NO_FALLBACKS, [why]: 1 } : NO_FALLBACKS,
  });
  // Timed in user space: the round may flag it for event-loop lag when the headers came back.
  assert.ok(a.lagWindows?.ttfb, `a monotonic ttfb keeps its lag window: ${JSON.stringify(a.lagWindows)}`);
}

/** a ttfb that TCP_INFO could not time, for `why`, timed instead from the response's kernel receive timestamp */
function assertArrival(r: { attempt: Attempt; timing: TtfbTiming }, why: keyof TtfbTiming['fallbacks']): void {
  const a = r.attempt;
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(r.timing, { kernel: 0, arrival: 1, monotonic: 0, fallbacks: { ...NO_FALLBACKS, [why]: 1 } });
  assert.ok(
    a.lagWindows && !('ttfb' in a.lagWindows),
    `a ttfb timed from the kernel's receive timestamp has no lag window: ${JSON.stringify(a.lagWindows)}`,
  );
}

describe('http probe: ttfb from the kernel', () => {
  test(
    'against the anylat reflector, ttfb is the kernel sample: positive, inside the monotonic span, no lag window',
    linuxOnly,
    async () => {
      for (const { address, port } of reflector.listening) {
        const probe = httpProber(target(address), { url: `http://${HOST}:${port}/`, timeoutMs: 3000, warm: false });
        assert.equal(probe.ttfbClock, 'kernel');
        const samples = await sampled(probe, 10);
        await probe.close();
        for (const { attempt: a, spanMs } of samples) {
          assert.equal(a.ok, true, JSON.stringify(a));
          assert.equal(a.site, 'edge-test');
          const ttfb = a.values.ttfb!;
          assert.ok(ttfb > 0, `ttfb ${ttfb} ms`);
          assert.ok(ttfb <= spanMs, `${address}: kernel ttfb ${ttfb} ms > monotonic span ${spanMs} ms`);
          assert.ok(a.values.connect! + ttfb <= a.values.total!);
          assert.ok(
            a.lagWindows && !('ttfb' in a.lagWindows),
            `a kernel-timed ttfb is never flagged for lag: ${JSON.stringify(a.lagWindows)}`,
          );
        }
        // Every ttfb is the kernel's: its RTT sample, or where the reflector (sharing this busy
        // machine and this event loop) took longer than its delayed-ACK timer to answer and a bare
        // ACK went first, the response's receive timestamp; no other reason to miss the RTT sample.
        const timing = probe.ttfbTiming();
        assert.deepEqual(
          { ...timing, kernel: timing.kernel + timing.arrival, arrival: 0 },
          { kernel: 10, arrival: 0, monotonic: 0, fallbacks: { ...NO_FALLBACKS, separate_ack: timing.arrival } },
          `${address}: every ttfb timed by the kernel: ${JSON.stringify(timing)}`,
        );
        assert.ok(timing.kernel >= 5, `${address}: the reflector's responses carry the ACK: ${JSON.stringify(timing)}`);
      }
    },
  );

  test(
    "the warm request rides the same connection and does not disturb the first one's timing",
    linuxOnly,
    async () => {
      const { port } = reflector.listening[0]!;
      const probe = httpProber(target(), { url: `http://${HOST}:${port}/`, timeoutMs: 3000 });
      for (let seq = 0; seq < 3; seq++) {
        const a = await probe.sample(seq);
        assert.equal(a.ok, true, JSON.stringify(a));
        assert.ok(a.values.warm! > 0 && a.values.ttfb! > 0);
        assert.ok(!('ttfb' in a.lagWindows!));
      }
      await probe.close();
      assert.deepEqual(probe.ttfbTiming(), { kernel: 3, arrival: 0, monotonic: 0, fallbacks: NO_FALLBACKS });
    },
  );

  // The kernel's sample ends at the first segment back; when that is the response, the server's
  // time to answer is in it, as ttfb means: a reflector-like server that answers 10 ms late (below
  // the delayed-ACK timer, so its ACK still waits for the response).
  test("the sample runs to the response, the server's time to answer included", linuxOnly, async () => {
    const LATE_MS = 10;
    const srv = await plainServer((_req, res) => setTimeout(() => res.end('late'), LATE_MS), delayAcks);
    after(() => srv.stop());
    const r = await oneSample(srv.port);
    assert.equal(r.attempt.ok, true, JSON.stringify(r.attempt));
    assert.equal(r.timing.kernel, 1, JSON.stringify(r.timing));
    assert.ok(
      r.attempt.values.ttfb! >= LATE_MS - TIMER_EARLY_MS,
      `ttfb ${r.attempt.values.ttfb} ms < the server's ${LATE_MS} ms`,
    );
    assert.ok(!('ttfb' in r.attempt.lagWindows!));
  });

  test(
    'fallback to the receive timestamp: a plain node:http server answering after the delayed-ACK timer (a bare ACK goes first)',
    linuxOnly,
    async () => {
      const LATE_MS = 300; // TCP_DELACK_MAX is 200 ms
      const srv = await plainServer((_req, res) => setTimeout(() => res.end('late'), LATE_MS));
      after(() => srv.stop());
      const r = await oneSample(srv.port);
      assertArrival(r, 'separate_ack');
      assert.ok(
        r.attempt.values.ttfb! >= LATE_MS - TIMER_EARLY_MS,
        `the receive timestamp still times the whole wait: ${r.attempt.values.ttfb} ms`,
      );
    },
  );

  test(
    "fallback to the receive timestamp: a plain node:http server answering at once (Linux acknowledges a connection's first data at once)",
    linuxOnly,
    async () => {
      const srv = await plainServer((_req, res) => res.end('ok'));
      after(() => srv.stop());
      const r = await oneSample(srv.port);
      assertArrival(r, 'separate_ack');
      assert.ok(r.attempt.values.ttfb! > 0);
    },
  );

  test('ttfbClock: monotonic times every ttfb in user space, as before', async () => {
    const r = await oneSample(reflector.listening[0]!.port, { ttfbClock: 'monotonic' });
    assert.equal(r.probe.ttfbClock, 'monotonic');
    assertMonotonic(r, undefined);
  });

  describe('https', () => {
    let cert: TestCert;
    let secure: ReflectorPart;
    before(async () => {
      cert = await makeSelfSignedCert({ names: [HOST], ips: ['127.0.0.1'] });
      secure = await startHttpReflector({
        site: 'edge-tls',
        binds: ['127.0.0.1'],
        port: 0,
        tls: { cert: cert.cert, key: cert.key },
        log: () => {},
      });
    });
    after(async () => {
      await secure?.close();
      await cert?.cleanup();
    });

    test('keeps the monotonic clock: the end of the TLS handshake is still in flight when the request goes', async () => {
      const probe = httpProber(target(), {
        url: `https://${HOST}:${secure.listening[0]!.port}/`,
        ca: cert.cert,
        timeoutMs: 3000,
        warm: false,
      });
      assert.equal(probe.ttfbClock, 'monotonic');
      const attempt = await probe.sample(0);
      await probe.close();
      assertMonotonic({ attempt, timing: probe.ttfbTiming() }, undefined);
      assert.equal(attempt.site, 'edge-tls');
    });
  });
});

describe('reflector: each response carries the ACK of its request', () => {
  // A raw keep-alive connection, so that later requests on it are checked too.
  test('the first request and later ones, with pauses, get one clean kernel sample each', linuxOnly, async () => {
    const { port } = reflector.listening[0]!;
    const socket = await new Promise<net.Socket>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    });
    after(() => socket.destroy());
    const request = Buffer.from(`GET / HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`, 'latin1');
    const exchange = (trickleMs = 0) =>
      new Promise<{ before: TcpInfo | undefined; after: TcpInfo | undefined; spanUs: number }>((resolve) => {
        let got = '';
        const onData = (chunk: Buffer) => {
          const t2 = performance.now();
          got += chunk.toString('latin1');
          // The reflector writes headers and body at once; the body is JSON ending in '}'.
          if (!got.endsWith('}')) return;
          socket.off('data', onData);
          resolve({ before, after: readTcpInfo(socket), spanUs: (t2 - t1) * 1000 });
        };
        socket.on('data', onData);
        const before = readTcpInfo(socket);
        const t1 = performance.now();
        if (trickleMs === 0) socket.write(request);
        else {
          socket.write(request.subarray(0, 10));
          setTimeout(() => socket.write(request.subarray(10)), trickleMs);
        }
      });
    const clean = async (when: string) => {
      const e = await exchange();
      const k = responseRttFromTcpInfo(e.before, e.after, request.length, e.spanUs);
      assert.ok(k.ok, `${when}: no clean sample (${JSON.stringify(k)})`);
      assert.equal(e.after!.segsIn! - e.before!.segsIn!, 1, 'one segment back: headers and body, with the ACK');
      assert.ok(k.us > 0 && k.us <= e.spanUs);
    };
    for (const pauseMs of [0, 0, 50, 250]) {
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await clean(`after a ${pauseMs} ms pause`);
    }
    // A request trickled in slower than the delayed-ACK timer: the timer fires on its first part and
    // the kernel leaves ping-pong mode (that exchange has bare ACKs). The next one is clean again:
    // the reflector re-enters the mode after each response (and a recent kernel does so itself on
    // a prompt reply, so this checks the outcome rather than which of the two brought it about).
    await exchange(100);
    await clean('after a trickled request');
  });
});

describe('responseRttFromTcpInfo: one clean sample or a reason', () => {
  const base: TcpInfo = {
    state: 1,
    caState: 0,
    retransmits: 0,
    rtoUs: 201_000,
    sndMss: 1448,
    rttUs: 1000,
    rttvarUs: 500,
    totalRetrans: 0,
    bytesAcked: 1,
    segsIn: 1,
    minRttUs: 1000,
    dataSegsIn: 0,
    dataSegsOut: 0,
  };
  // the request: 80 bytes in one segment, answered by one segment that carried its ACK
  const next = (over: Partial<TcpInfo>): TcpInfo => ({
    ...base,
    rttUs: 1100,
    bytesAcked: 81,
    segsIn: 2,
    dataSegsIn: 1,
    dataSegsOut: 1,
    ...over,
  });
  test('srtt moved by one sample: m = 8*S1 - 7*S0', () => {
    assert.deepEqual(responseRttFromTcpInfo(base, next({}), 80, 2500), {
      ok: true,
      us: 8 * 1100 - 7 * 1000,
      exact: false,
    });
  });
  test('headers and body already in as several segments: the first carried the ACK, the only sample', () => {
    assert.deepEqual(responseRttFromTcpInfo(base, next({ segsIn: 4, dataSegsIn: 3 }), 80, 2500), {
      ok: true,
      us: 1800,
      exact: false,
    });
  });
  test('a new minimum is the sample, exactly', () => {
    assert.deepEqual(responseRttFromTcpInfo(base, next({ rttUs: 960, minRttUs: 700 }), 80, 900), {
      ok: true,
      us: 700,
      exact: true,
    });
  });
  test('never more than the monotonic span that contains it (rounding of tcpi_rtt)', () => {
    const m = 8 * 1100 - 7 * 1000;
    assert.deepEqual(responseRttFromTcpInfo(base, next({}), 80, m - ECHO_RTT_ROUNDING_US + 1), {
      ok: true,
      us: m - ECHO_RTT_ROUNDING_US + 1,
      exact: false,
    });
  });
  const cases: Array<[string, TcpInfo | undefined, TcpInfo | undefined, string]> = [
    ['no TCP_INFO', undefined, next({}), 'unavailable'],
    [
      'a kernel older than the counters (< 4.6)',
      { ...base, dataSegsOut: undefined },
      next({ dataSegsOut: undefined }),
      'unavailable',
    ],
    ['no handshake sample (srtt 0)', { ...base, rttUs: 0 }, next({}), 'unavailable'],
    ['a retransmission', base, next({ totalRetrans: 1 }), 'retransmitted'],
    ['a bare ACK before the response', base, next({ segsIn: 3 }), 'separate_ack'],
    ['a bare ACK among response segments', base, next({ segsIn: 4, dataSegsIn: 2 }), 'separate_ack'],
    ['the request in two segments', base, next({ dataSegsOut: 2 }), 'split_request'],
    ['nothing sent', base, next({ dataSegsOut: 0 }), 'inconsistent'],
    ['a response that did not acknowledge the request', base, next({ bytesAcked: 1 }), 'not_acked'],
    ['a sample longer than the span', base, next({ rttUs: 2000 }), 'inconsistent'],
    ['a sample below the minimum it did not replace', base, next({ rttUs: 980 }), 'inconsistent'],
  ];
  for (const [name, b, a, why] of cases) {
    test(`${name}: ${why}`, () => assert.deepEqual(responseRttFromTcpInfo(b, a, 80, 2500), { ok: false, why }));
  }
});
