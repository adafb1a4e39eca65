import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createTcpProbe, socketFailureReason, tcpProber, type EchoTiming } from '../agent/probe/tcp.ts';
import {
  decodeTcpInfo,
  delayAcks,
  ECHO_RTT_ROUNDING_US,
  echoRttFromTcpInfo,
  loadTcpInfo,
  readTcpInfo,
  socketFd,
  TCP_ESTABLISHED,
  type TcpInfo,
} from '../agent/net/tcp-info.ts';
import {
  encodeEchoReply,
  encodeEchoRequest,
  ECHO_REQUEST_SIZE,
  parseEchoReply,
  setEchoTurnaround,
} from '../agent/core/echo-codec.ts';
import { startTcpEcho } from '../agent/reflector/tcp-echo.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import type { Attempt } from '../agent/core/model.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { refusedPort, ROOT, TIMER_EARLY_MS } from './support/net.ts';

const TIMEOUT_MS = 400;
const run = promisify(execFile);
const target = (address = '127.0.0.1') => ({ endpoint: 'test', address });

/** A listening server on 127.0.0.1:0 that runs `onSocket` for each connection. */
async function serve(
  onSocket: (socket: net.Socket) => void,
  host = '127.0.0.1',
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function assertFailed(attempt: Attempt): asserts attempt is Extract<Attempt, { ok: false }> {
  assert.equal(attempt.ok, false, `expected a failure, got ${JSON.stringify(attempt)}`);
}

// A listener whose accept queue is full drops further SYNs (tcp_conn_request: LISTENOVERFLOWS),
// which is a SYN-dropping target on loopback without a firewall rule. Node accepts every
// connection it is offered, so the listener is made with libc directly and never accepts.
function synDroppingListener(): { port: number; filler: Promise<net.Socket>; close: () => void } {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load(null);
  const socket = libc.func('int socket(int, int, int)');
  const bind = libc.func('int bind(int, void *, uint32_t)');
  const listen = libc.func('int listen(int, int)');
  const getsockname = libc.func('int getsockname(int, void *, void *)');
  const close = libc.func('int close(int)');
  const fd = socket(2 /* AF_INET */, 1 /* SOCK_STREAM */, 0) as number;
  assert.ok(fd >= 0, 'socket() failed');
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(2, 0); // sa_family, host order (little-endian hosts)
  addr.set([127, 0, 0, 1], 4);
  assert.equal(bind(fd, addr, 16), 0, 'bind() failed');
  assert.equal(listen(fd, 0), 0, 'listen() failed');
  assert.equal(getsockname(fd, addr, new Uint32Array([16])), 0, 'getsockname() failed');
  const port = addr.readUInt16BE(2);
  // Backlog 0 still queues one connection; this one fills the queue.
  const filler = new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  return { port, filler, close: () => void close(fd) };
}

/** setsockopt(TCP_QUICKACK, 1) through libc: the far end leaves ping-pong mode (Linux). */
function quickAckSetter(): (socket: net.Socket) => void {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const setsockopt = koffi.load(null).func('int setsockopt(int, int, int, void *, uint32_t)');
  return (socket) =>
    assert.equal(setsockopt(socketFd(socket)!, 6 /* IPPROTO_TCP */, 12 /* TCP_QUICKACK */, new Int32Array([1]), 4), 0);
}

describe('tcp-info', () => {
  test(
    'reads the kernel handshake RTT of a connected socket (Linux)',
    { skip: process.platform !== 'linux' && 'TCP_INFO is Linux-only' },
    async () => {
      assert.equal(loadTcpInfo(), true);
      const srv = await serve(() => {});
      after(srv.close);
      const socket = await new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: srv.port }, () => resolve(s));
      });
      const info = readTcpInfo(socket);
      assert.ok(info, 'TCP_INFO read failed');
      assert.equal(info.state, TCP_ESTABLISHED);
      assert.ok(info.rttUs > 0, `rtt ${info.rttUs}`);
      // Offsets checked against values the kernel guarantees: RTO is at least TCP_RTO_MIN (200 ms)
      // and above the RTT, the MSS is set, nothing was retransmitted on loopback.
      assert.ok(info.rtoUs >= 200_000, `rto ${info.rtoUs}`);
      assert.ok(info.rttUs < info.rtoUs);
      assert.ok(info.sndMss > 0);
      assert.equal(info.totalRetrans, 0);
      if (info.minRttUs !== undefined) assert.equal(info.minRttUs, info.rttUs, 'one sample so far: min = smoothed');
      socket.destroy();
      assert.equal(socketFd(socket), undefined);
      assert.equal(readTcpInfo(socket), undefined, 'a closed socket reads as undefined, never throws');
    },
  );

  test('refuses a struct shorter than the fields it reads', () => {
    assert.equal(decodeTcpInfo(new Uint8Array(256), 100), undefined);
    const short = decodeTcpInfo(new Uint8Array(256), 104);
    assert.ok(short);
    assert.equal(short.segsIn, undefined, 'counters a shorter (older) struct lacks are absent, not 0');
    assert.equal(short.dataSegsIn, undefined);
  });

  test(
    'an echo: the kernel RTT sample recovered from tcpi_rtt before and after, inside the monotonic span (Linux)',
    { skip: process.platform !== 'linux' && 'TCP_INFO is Linux-only' },
    async () => {
      const reflector = await startTcpEcho({ site: 's', binds: ['127.0.0.1'], port: 0, log: () => {} });
      after(() => reflector.close());
      const socket = await new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: reflector.listening[0]!.port, noDelay: true }, () =>
          resolve(s),
        );
      });
      after(() => socket.destroy());
      const handshake = readTcpInfo(socket)!;
      assert.equal(handshake.bytesAcked, 1, 'the SYN counts as one acknowledged byte');
      assert.equal(handshake.dataSegsIn, 0, 'no data came in yet');
      const echo = () =>
        new Promise<{ before: TcpInfo; after: TcpInfo; spanUs: number }>((resolve) => {
          const request = encodeEchoRequest(randomBytes(8));
          let got = Buffer.alloc(0);
          const onData = (chunk: Buffer) => {
            const t2 = performance.now();
            got = Buffer.concat([got, chunk]);
            if (parseEchoReply(got, request.length).kind !== 'frame') return;
            socket.off('data', onData);
            resolve({ before, after: readTcpInfo(socket)!, spanUs: (t2 - t1) * 1000 });
          };
          socket.on('data', onData);
          const before = readTcpInfo(socket)!;
          const t1 = performance.now();
          socket.write(request);
        });
      for (let i = 1; i <= 5; i++) {
        const e = await echo();
        assert.equal(e.after.bytesAcked, 1 + i * ECHO_REQUEST_SIZE, 'every request acknowledged');
        assert.equal(e.after.dataSegsIn! - e.before.dataSegsIn!, 1, 'one reply segment');
        assert.equal(
          e.after.segsIn! - e.before.segsIn!,
          1,
          'and nothing else: the reflector delays its ACK onto the reply',
        );
        const k = echoRttFromTcpInfo(e.before, e.after, ECHO_REQUEST_SIZE, e.spanUs);
        assert.ok(k.ok, `no kernel sample: ${JSON.stringify(k)}`);
        assert.ok(k.us > 0 && k.us <= e.spanUs, `kernel ${k.us} us outside (0, ${e.spanUs}] us`);
        if (k.exact) assert.equal(k.us, e.after.minRttUs, 'a new minimum is the sample itself');
        else assert.ok(Math.abs(k.us - (8 * e.after.rttUs - 7 * e.before.rttUs)) <= ECHO_RTT_ROUNDING_US);
      }
    },
  );

  describe('echoRttFromTcpInfo: one clean sample or a reason', () => {
    const base: TcpInfo = {
      state: 1,
      caState: 0,
      retransmits: 0,
      rtoUs: 201_000,
      sndMss: 1448,
      rttUs: 1000,
      rttvarUs: 500,
      totalRetrans: 0,
      bytesAcked: 65,
      segsIn: 3,
      minRttUs: 900,
      dataSegsIn: 1,
    };
    const next = (over: Partial<TcpInfo>): TcpInfo => ({
      ...base,
      rttUs: 1100,
      bytesAcked: 129,
      segsIn: 4,
      dataSegsIn: 2,
      ...over,
    });
    test('srtt moved by one sample: m = 8*S1 - 7*S0', () => {
      assert.deepEqual(echoRttFromTcpInfo(base, next({}), 64, 2500), {
        ok: true,
        us: 8 * 1100 - 7 * 1000,
        exact: false,
      });
    });
    test('a new minimum is the sample, exactly', () => {
      assert.deepEqual(echoRttFromTcpInfo(base, next({ rttUs: 990, minRttUs: 300 }), 64, 400), {
        ok: true,
        us: 300,
        exact: true,
      });
    });
    test('never more than the monotonic span that contains it (rounding of tcpi_rtt)', () => {
      assert.deepEqual(echoRttFromTcpInfo(base, next({}), 64, 1796), { ok: true, us: 1796, exact: false });
    });
    const cases: Array<[string, TcpInfo | undefined, TcpInfo | undefined, number, string]> = [
      ['no TCP_INFO', undefined, next({}), 2500, 'unavailable'],
      [
        'a kernel older than the counters (< 4.6)',
        { ...base, dataSegsIn: undefined },
        next({ dataSegsIn: undefined }),
        2500,
        'unavailable',
      ],
      ['a retransmission', base, next({ totalRetrans: 1 }), 2500, 'retransmitted'],
      ['a bare ACK before the reply', base, next({ segsIn: 5 }), 2500, 'separate_ack'],
      ['a reply in two segments', base, next({ segsIn: 5, dataSegsIn: 3 }), 2500, 'split_reply'],
      ['a segment that did not acknowledge the request', base, next({ bytesAcked: 65 }), 2500, 'not_acked'],
      ['a sample longer than the span', base, next({ rttUs: 2000 }), 2500, 'inconsistent'],
      ['a sample below the minimum it did not replace', base, next({ rttUs: 880 }), 2500, 'inconsistent'],
    ];
    for (const [name, before, afterInfo, span, why] of cases) {
      test(`${name}: ${why}`, () =>
        assert.deepEqual(echoRttFromTcpInfo(before, afterInfo, 64, span), { ok: false, why }));
    }
  });
});

describe('tcp probe: connect', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    srv = await serve(() => {});
  });
  after(() => srv.close());

  test('kernel clock: connect is the kernel RTT, inside the monotonic span', async () => {
    const probe = tcpProber(target(), { port: srv.port, timeoutMs: TIMEOUT_MS, echo: false });
    assert.deepEqual(probe.metrics, ['connect']);
    if (process.platform === 'linux') assert.equal(probe.connectClock, 'kernel');
    for (let seq = 0; seq < 5; seq++) {
      const a = await probe.sample(seq);
      assert.equal(a.ok, true, JSON.stringify(a));
      const connect = a.values.connect!;
      assert.ok(connect > 0, `connect ${connect}`);
      // SYN sent and SYN/ACK received both happen between t0 and the connect callback (t1).
      assert.ok(connect <= a.t1 - a.t0 + 0.001, `kernel ${connect} ms > monotonic ${a.t1 - a.t0} ms`);
      assert.equal(a.values.rtt, undefined);
    }
    await probe.close();
  });

  test('monotonic clock: connect is t1 - t0', async () => {
    const probe = tcpProber(target(), {
      port: srv.port,
      timeoutMs: TIMEOUT_MS,
      echo: false,
      connectClock: 'monotonic',
    });
    assert.equal(probe.connectClock, 'monotonic');
    const a = await probe.sample(0);
    assert.equal(a.ok, true);
    assert.equal(a.values.connect, a.t1 - a.t0);
    await probe.close();
  });

  test('IPv6 loopback', async () => {
    const srv6 = await serve(() => {}, '::1');
    after(srv6.close);
    const probe = await createTcpProbe(target('::1'), { port: srv6.port, timeoutMs: TIMEOUT_MS, echo: false });
    const a = await probe.sample(0);
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.ok(a.values.connect! > 0);
    await probe.close();
  });

  test('refused', async () => {
    const probe = await createTcpProbe(target(), { port: await refusedPort(), timeoutMs: TIMEOUT_MS, echo: true });
    const a = await probe.sample(0);
    assertFailed(a);
    assert.equal(a.reason, 'refused');
    assert.match(a.detail ?? '', /ECONNREFUSED/);
    assert.deepEqual(a.values, {});
  });

  test('timeout: the SYN is dropped', async () => {
    const drop = synDroppingListener();
    const filler = await drop.filler;
    after(() => {
      filler.destroy();
      drop.close();
    });
    const probe = await createTcpProbe(target(), { port: drop.port, timeoutMs: TIMEOUT_MS, echo: true });
    const a = await probe.sample(0);
    assertFailed(a);
    assert.equal(a.reason, 'timeout');
    assert.match(a.detail ?? '', /no connection within 400 ms/);
    assert.deepEqual(a.values, {});
    await probe.close();
  });

  test('close() settles a sample in flight', async () => {
    const drop = synDroppingListener();
    const filler = await drop.filler;
    after(() => {
      filler.destroy();
      drop.close();
    });
    const probe = await createTcpProbe(target(), { port: drop.port, timeoutMs: 60_000, echo: false });
    const pending = probe.sample(0);
    await probe.close();
    const a = await pending;
    assertFailed(a);
    assert.equal(a.reason, 'error');
    assert.match(a.detail ?? '', /probe closed/);
  });

  test('bad options are a bug, not a sample', () => {
    assert.throws(
      () => tcpProber(target('example.com'), { port: 80, timeoutMs: 100, echo: false }),
      (e: unknown) => e instanceof AnylatError && e.code === 'ANYLAT_PROBE_OPTIONS' && /IP literal/.test(e.message),
    );
    assert.throws(
      () => tcpProber(target(), { port: 0, timeoutMs: 100, echo: false }),
      /port must be an integer 1\.\.65535, got 0/,
    );
    assert.throws(
      () => tcpProber(target(), { port: 80, timeoutMs: 0, echo: false }),
      /timeoutMs must be a positive number/,
    );
  });

  test('unreachable: no route, and an unreachable route (in a throwaway network namespace)', async () => {
    // A namespace with only `lo` up: nothing it sends can leave it. Its routing table answers
    // ENETUNREACH (no route at all) and EHOSTUNREACH (an `unreachable` route) to connect().
    const ns = `anylat-test-${process.pid}`;
    await run('ip', ['netns', 'add', ns]);
    after(() => run('ip', ['netns', 'del', ns]).catch(() => {}));
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'route', 'add', 'unreachable', '192.0.2.0/24']);
    const probeModule = new URL('../agent/probe/tcp.ts', import.meta.url).href;
    const script = `
      import { createTcpProbe } from ${JSON.stringify(probeModule)};
      const out = [];
      for (const address of ['192.0.2.1', '198.51.100.1']) {
        const probe = await createTcpProbe({ endpoint: 'x', address }, { port: 9, timeoutMs: 2000, echo: true });
        out.push(await probe.sample(0));
        await probe.close();
      }
      process.stdout.write(JSON.stringify(out));`;
    const { stdout } = await run(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT },
    );
    const [hostUnreachable, netUnreachable] = JSON.parse(stdout) as Attempt[];
    for (const [a, code] of [
      [hostUnreachable, 'EHOSTUNREACH'],
      [netUnreachable, 'ENETUNREACH'],
    ] as const) {
      assertFailed(a!);
      assert.equal(a.reason, 'unreachable');
      assert.match(a.detail ?? '', new RegExp(code));
      assert.deepEqual(a.values, {});
    }
  });

  test('socket error codes map to failure reasons', () => {
    const reason = (code: string) => socketFailureReason(Object.assign(new Error(code), { code }));
    assert.equal(reason('ECONNREFUSED'), 'refused');
    assert.equal(reason('ETIMEDOUT'), 'timeout');
    assert.equal(reason('ECONNRESET'), 'reset');
    assert.equal(reason('EPIPE'), 'reset');
    assert.equal(reason('EHOSTUNREACH'), 'unreachable');
    assert.equal(reason('ENETUNREACH'), 'unreachable');
    assert.equal(reason('EACCES'), undefined);
  });
});

describe('tcp probe: echo', () => {
  let reflector: ReflectorPart;
  before(async () => {
    reflector = await startTcpEcho({ site: 'edge-test', binds: ['127.0.0.1', '::1'], port: 0, log: () => {} });
  });
  after(() => reflector.close());

  test('times an echo on the open connection and takes the site', async () => {
    for (const { address, port } of reflector.listening) {
      const probe = await createTcpProbe(target(address), { port, timeoutMs: TIMEOUT_MS, echo: true });
      assert.deepEqual(probe.metrics, ['connect', 'rtt']);
      const a = await probe.sample(0);
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.equal(a.site, 'edge-test');
      assert.ok(a.values.connect! > 0);
      assert.ok(a.values.rtt! > 0);
      assert.ok(a.values.rtt! <= a.t1 - a.t0);
      await probe.close();
    }
    // Two echoes per sample: an untimed one, then the timed one.
    assert.equal(reflector.stats().echoes, 4);
  });

  async function echoAgainst(onSocket: (socket: net.Socket) => void): Promise<Attempt> {
    return (await timedEchoAgainst(onSocket)).attempt;
  }

  async function timedEchoAgainst(
    onSocket: (socket: net.Socket) => void,
    timeoutMs = TIMEOUT_MS,
  ): Promise<{ attempt: Attempt; timing: EchoTiming }> {
    const srv = await serve(onSocket);
    try {
      const probe = tcpProber(target(), { port: srv.port, timeoutMs, echo: true });
      const attempt = await probe.sample(0);
      await probe.close();
      return { attempt, timing: probe.echoTiming() };
    } finally {
      await srv.close();
    }
  }

  const linuxOnly = { skip: process.platform !== 'linux' && 'the kernel echo clock reads TCP_INFO (Linux)' };

  /** a timed echo that fell back to the monotonic clock, for `why` */
  function assertFellBack(r: { attempt: Attempt; timing: EchoTiming }, why: string): void {
    const a = r.attempt;
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.deepEqual([r.timing.kernel, r.timing.monotonic], [0, 1], JSON.stringify(r.timing));
    assert.equal(r.timing.fallbacks[why as keyof EchoTiming['fallbacks']], 1, JSON.stringify(r.timing));
    // Timed in user space: the round may flag it for event-loop lag at the reply's callback.
    assert.deepEqual(a.lagWindows?.rtt, [a.t1, a.t1]);
  }

  test(
    'kernel clock: the echo is the kernel RTT sample, inside the monotonic span, with no lag window',
    linuxOnly,
    async () => {
      for (const { address, port } of reflector.listening) {
        const probe = tcpProber(target(address), { port, timeoutMs: TIMEOUT_MS, echo: true });
        assert.equal(probe.echoClock, 'kernel');
        for (let seq = 0; seq < 5; seq++) {
          const a = await probe.sample(seq);
          assert.equal(a.ok, true, JSON.stringify(a));
          assert.ok(a.values.rtt! > 0 && a.values.rtt! <= a.t1 - a.t0, `rtt ${a.values.rtt} ms`);
          assert.ok(
            a.lagWindows && !('rtt' in a.lagWindows),
            `a kernel-timed echo is never flagged for lag: ${JSON.stringify(a.lagWindows)}`,
          );
        }
        await probe.close();
        const timing = probe.echoTiming();
        assert.deepEqual(
          { ...timing, turnaround: undefined },
          {
            kernel: 5,
            monotonic: 0,
            fallbacks: {
              unavailable: 0,
              retransmitted: 0,
              separate_ack: 0,
              split_reply: 0,
              not_acked: 0,
              inconsistent: 0,
            },
            turnaround: undefined,
          },
          `${address}: every echo timed by the kernel`,
        );
        // The reflector reports a turnaround for each. It stamps its writes in user space, so a
        // preempted write can make one look longer than the round trip on a busy machine: that one
        // is not believed (rejected), never subtracted.
        assert.equal(timing.turnaround.subtracted + timing.turnaround.rejected, 5, JSON.stringify(timing.turnaround));
        assert.ok(timing.turnaround.subtracted >= 3, JSON.stringify(timing.turnaround));
      }
    },
  );

  // The sample ends when the ACK of the request arrives. A reply carrying that ACK makes it the
  // echo's round trip, the far end's time to answer included: here a reflector that answers
  // 10 ms late (below the 40 ms delayed-ACK timer, so the ACK still waits for the reply).
  test("kernel clock: the sample runs to the reply, the far end's time to answer included", linuxOnly, async () => {
    const LATE_MS = 10;
    const r = await timedEchoAgainst((socket) => {
      delayAcks(socket);
      socket.on('data', (request: Buffer) =>
        setTimeout(() => socket.write(encodeEchoReply(request.subarray(8, 16), 'late', request.length)), LATE_MS),
      );
    }, 2000);
    const a = r.attempt;
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(r.timing.kernel, 1, JSON.stringify(r.timing));
    assert.ok(a.values.rtt! >= LATE_MS - TIMER_EARLY_MS, `rtt ${a.values.rtt} ms < the reply's ${LATE_MS} ms`);
    assert.ok(a.values.rtt! <= a.t1 - a.t0);
    assert.ok(!('rtt' in a.lagWindows!));
  });

  /** A reflector answering LATE_MS late with a type 3 reply that reports `report(actual)` us. */
  function reportingServer(lateMs: number, report: (actualUs: number) => number | null) {
    return (socket: net.Socket) => {
      delayAcks(socket);
      socket.on('data', (request: Buffer) => {
        const arrived = performance.now();
        setTimeout(() => {
          const reply = encodeEchoReply(request.subarray(8, 16), 'r', request.length, true);
          const us = report((performance.now() - arrived) * 1000);
          if (us !== null) setEchoTurnaround(reply, us);
          socket.write(reply);
        }, lateMs);
      });
    };
  }

  test("the reflector's reported turnaround is taken out of the round trip, as STAMP does", async () => {
    const LATE_MS = 20;
    const r = await timedEchoAgainst(
      reportingServer(LATE_MS, (us) => us),
      2000,
    );
    const a = r.attempt;
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(r.timing.turnaround.subtracted, 1, JSON.stringify(r.timing));
    assert.ok(
      a.values.rtt! > 0 && a.values.rtt! < LATE_MS / 2,
      `rtt ${a.values.rtt} ms still holds the far end's ${LATE_MS} ms`,
    );
  });

  test('a turnaround longer than the round trip is not believed; "unknown" subtracts nothing', async () => {
    const LATE_MS = 10;
    const tooLong = await timedEchoAgainst(
      reportingServer(LATE_MS, () => 10_000_000),
      2000,
    );
    assert.equal(tooLong.attempt.ok, true, JSON.stringify(tooLong.attempt));
    assert.equal(tooLong.timing.turnaround.rejected, 1, JSON.stringify(tooLong.timing));
    assert.ok(tooLong.attempt.values.rtt! >= LATE_MS - TIMER_EARLY_MS);
    const unknown = await timedEchoAgainst(
      reportingServer(LATE_MS, () => null),
      2000,
    );
    assert.equal(unknown.attempt.ok, true, JSON.stringify(unknown.attempt));
    assert.equal(unknown.timing.turnaround.unknown, 1, JSON.stringify(unknown.timing));
    assert.ok(unknown.attempt.values.rtt! >= LATE_MS - TIMER_EARLY_MS);
  });

  test('a reflector that predates turnaround reports (type 2 replies) is timed as before', async () => {
    const LATE_MS = 10;
    const r = await timedEchoAgainst(
      (socket) =>
        socket.on('data', (request: Buffer) =>
          setTimeout(() => socket.write(encodeEchoReply(request.subarray(8, 16), 'old', request.length)), LATE_MS),
        ),
      2000,
    );
    assert.equal(r.attempt.ok, true, JSON.stringify(r.attempt));
    assert.equal(r.attempt.site, 'old');
    assert.equal(r.timing.turnaround.unreported, 1);
    assert.ok(r.attempt.values.rtt! >= LATE_MS - TIMER_EARLY_MS);
  });

  test('fallback: a bare ACK before the reply (the far end in quick-ACK mode)', linuxOnly, async () => {
    const quickAck = quickAckSetter();
    const r = await timedEchoAgainst((socket) =>
      socket.on('data', (request: Buffer) => {
        socket.write(encodeEchoReply(request.subarray(8, 16), 'q', request.length));
        // Out of ping-pong mode: the next request is acknowledged as soon as it is read.
        quickAck(socket);
      }),
    );
    assertFellBack(r, 'separate_ack');
  });

  test('fallback: a reply later than the delayed-ACK timer (a bare ACK goes first)', linuxOnly, async () => {
    const LATE_MS = 300; // TCP_DELACK_MAX is 200 ms
    let requests = 0;
    const r = await timedEchoAgainst((socket) => {
      delayAcks(socket);
      socket.on('data', (request: Buffer) => {
        const reply = encodeEchoReply(request.subarray(8, 16), 'late', request.length);
        if (requests++ === 0) socket.write(reply);
        else setTimeout(() => socket.write(reply), LATE_MS);
      });
    }, 3000);
    assertFellBack(r, 'separate_ack');
    assert.ok(
      r.attempt.values.rtt! >= LATE_MS - TIMER_EARLY_MS,
      `the monotonic clock still times the whole echo: ${r.attempt.values.rtt} ms`,
    );
  });

  test('fallback: a reply written in two parts', linuxOnly, async () => {
    const r = await timedEchoAgainst((socket) => {
      delayAcks(socket);
      socket.on('data', (request: Buffer) => {
        const reply = encodeEchoReply(request.subarray(8, 16), 'two-part', request.length);
        socket.write(reply.subarray(0, 8));
        setTimeout(() => socket.write(reply.subarray(8)), 5);
      });
    });
    assertFellBack(r, 'split_reply');
  });

  test("monotonic echo clock: write to the reply's callback, exposed to lag", async () => {
    const { address, port } = reflector.listening[0]!;
    const probe = tcpProber(target(address), { port, timeoutMs: TIMEOUT_MS, echo: true, echoClock: 'monotonic' });
    assert.equal(probe.echoClock, 'monotonic');
    const a = await probe.sample(0);
    await probe.close();
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.deepEqual(a.lagWindows?.rtt, [a.t1, a.t1]);
    assert.deepEqual([probe.echoTiming().kernel, probe.echoTiming().monotonic], [0, 1]);
    assert.deepEqual(
      probe.echoTiming().turnaround,
      { subtracted: 0, unknown: 0, rejected: 0, unreported: 0 },
      'the reflector is not asked for its turnaround',
    );
  });

  const protocolCases: Array<[string, (request: Buffer) => Buffer, RegExp]> = [
    ['garbage', () => randomBytes(64), /not an anylat echo reply/],
    ['the request mirrored back (a plain echo server)', (request) => request, /unexpected frame type 1/],
    ['another nonce', () => encodeEchoReply(randomBytes(8), 'x', ECHO_REQUEST_SIZE), /another nonce/],
    [
      'a reply longer than the request',
      (request) => encodeEchoReply(request.subarray(8, 16), 'x'.repeat(100), 200),
      /frame length 117 outside 17\.\.64/,
    ],
    [
      'bytes after the reply',
      (request) => Buffer.concat([encodeEchoReply(request.subarray(8, 16), 'x', 64), Buffer.from('!')]),
      /bytes after the reply/,
    ],
  ];
  for (const [name, reply, detail] of protocolCases) {
    test(`a reply that is ${name} is a protocol failure that keeps connect`, async () => {
      const a = await echoAgainst((socket) => socket.once('data', (request: Buffer) => socket.write(reply(request))));
      assertFailed(a);
      assert.equal(a.reason, 'protocol');
      assert.match(a.detail ?? '', detail);
      assert.ok(a.values.connect! > 0);
      assert.equal(a.values.rtt, undefined);
      assert.equal(a.site, undefined);
    });
  }

  test('a server that speaks first is not a reflector', async () => {
    const a = await echoAgainst((socket) => socket.write('SSH-2.0-OpenSSH_9.6\r\n'));
    assertFailed(a);
    assert.equal(a.reason, 'protocol');
  });

  test('echo timeout: a server that accepts and never answers', async () => {
    const a = await echoAgainst(() => {});
    assertFailed(a);
    assert.equal(a.reason, 'timeout');
    assert.match(a.detail ?? '', /echo: no echo reply within 400 ms/);
    assert.ok(a.values.connect! > 0, 'connect completed and is kept');
    assert.equal(a.values.rtt, undefined);
  });

  test('reset while waiting for the reply', async () => {
    const a = await echoAgainst((socket) => socket.once('data', () => socket.resetAndDestroy()));
    assertFailed(a);
    assert.equal(a.reason, 'reset');
    assert.ok(a.values.connect! > 0);
  });

  test('the far end closes before replying', async () => {
    const a = await echoAgainst((socket) => socket.once('data', () => socket.end()));
    assertFailed(a);
    assert.equal(a.reason, 'reset');
    assert.match(a.detail ?? '', /closed by the far end before replying/);
  });

  test('a reply split across segments is reassembled', async () => {
    const a = await echoAgainst((socket) =>
      socket.on('data', (request: Buffer) => {
        const reply = encodeEchoReply(request.subarray(8, 16), 'split-site', request.length);
        socket.write(reply.subarray(0, 3));
        setTimeout(() => socket.write(reply.subarray(3, 20)), 5);
        setTimeout(() => socket.write(reply.subarray(20)), 10);
      }),
    );
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(a.site, 'split-site');
  });

  // A TCP-terminating edge answers the handshake itself and opens its own connection to the
  // origin when the first bytes arrive, so the first echo also waits for that connect. The
  // probe times the second echo, on a path that is established end to end.
  test('rtt is the second echo: a slow first reply (an edge connecting to its origin) stays out', async () => {
    const FIRST_DELAY_MS = 300;
    let requests = 0;
    const srv = await serve((socket) =>
      socket.on('data', (request: Buffer) => {
        const reply = encodeEchoReply(request.subarray(8, 16), requests === 0 ? 'first' : 'second', request.length);
        if (requests++ === 0) setTimeout(() => socket.write(reply), FIRST_DELAY_MS);
        else socket.write(reply);
      }),
    );
    try {
      const probe = await createTcpProbe(target(), { port: srv.port, timeoutMs: 5000, echo: true });
      const a = await probe.sample(0);
      await probe.close();
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.equal(requests, 2, 'two echo requests on the one connection');
      assert.ok(a.t1 - a.t0 >= FIRST_DELAY_MS - 1, `the sample waited for the first reply (${a.t1 - a.t0} ms)`);
      assert.ok(
        a.values.rtt! < FIRST_DELAY_MS,
        `rtt ${a.values.rtt} ms must not include the first reply's ${FIRST_DELAY_MS} ms`,
      );
      assert.equal(a.site, 'second');
    } finally {
      await srv.close();
    }
  });

  test('the site of the first reply stands when the second names none', async () => {
    let requests = 0;
    const a = await echoAgainst((socket) =>
      socket.on('data', (request: Buffer) => {
        socket.write(encodeEchoReply(request.subarray(8, 16), requests++ === 0 ? 'origin-a' : '', request.length));
      }),
    );
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(a.site, 'origin-a');
  });

  test('a bad reply to the timed (second) echo is a protocol failure', async () => {
    let requests = 0;
    const a = await echoAgainst((socket) =>
      socket.on('data', (request: Buffer) => {
        const nonce = requests++ === 0 ? request.subarray(8, 16) : randomBytes(8);
        socket.write(encodeEchoReply(nonce, 'x', request.length));
      }),
    );
    assertFailed(a);
    assert.equal(a.reason, 'protocol');
    assert.match(a.detail ?? '', /echo: the reply carries another nonce/);
    assert.ok(a.values.connect! > 0);
    assert.equal(a.values.rtt, undefined);
  });

  test('a reply to the first echo before the second is sent is not taken for the second', async () => {
    // A duplicate of the first reply would otherwise look like an instant second reply.
    const a = await echoAgainst((socket) =>
      socket.once('data', (request: Buffer) => {
        const reply = encodeEchoReply(request.subarray(8, 16), 'x', request.length);
        socket.write(Buffer.concat([reply, reply]));
      }),
    );
    assertFailed(a);
    assert.equal(a.reason, 'protocol');
    assert.equal(a.values.rtt, undefined);
  });
});
