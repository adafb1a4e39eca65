import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';
import { startTcpEcho } from '../agent/reflector/tcp-echo.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { performance } from 'node:perf_hooks';
import {
  ECHO_FLAG_TURNAROUND,
  ECHO_MAGIC,
  ECHO_MAX_REQUEST,
  ECHO_MIN_REQUEST,
  ECHO_REQUEST_SIZE,
  ECHO_TYPE_REPLY,
  ECHO_TYPE_REPLY_TURNAROUND,
  encodeEchoReply,
  encodeEchoRequest,
  parseEchoReply,
  parseEchoRequest,
  setEchoTurnaround,
  truncateUtf8,
} from '../agent/core/echo-codec.ts';
import {
  delayAcks,
  ECHO_RTT_ROUNDING_US,
  echoRttFromTcpInfo,
  readTcpInfo,
  type TcpInfo,
} from '../agent/net/tcp-info.ts';
import { createTcpProbe } from '../agent/probe/tcp.ts';
import { AnylatError } from '../agent/util/errors.ts';

/** Waits (a few event-loop turns at a time) until `check` holds; fails after `ms`. */
async function eventually(check: () => boolean, what: string, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not true within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A raw client: collects what the reflector sends and how the connection ended. */
function client(port: number, host = '127.0.0.1') {
  const socket = net.connect({ host, port });
  const chunks: Buffer[] = [];
  let ended: 'open' | 'end' | 'reset' | 'error' = 'open';
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('end', () => (ended = ended === 'open' ? 'end' : ended));
  socket.on('error', (err: NodeJS.ErrnoException) => (ended = err.code === 'ECONNRESET' ? 'reset' : 'error'));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  connected.catch(() => {}); // awaited by the tests that care; a reset before connect is not unhandled
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    connected,
    closed,
    received: () => Buffer.concat(chunks),
    ended: () => ended,
  };
}

describe('reflector: tcp echo', () => {
  let part: ReflectorPart;
  let port: number;
  before(async () => {
    part = await startTcpEcho({ site: 'edge-fra', binds: ['127.0.0.1'], port: 0, log: () => {} });
    port = part.listening[0]!.port;
  });
  after(() => part.close());

  test('answers every request on one connection, each reply no larger than its request', async () => {
    assert.equal(part.kind, 'tcp');
    const sizes = [ECHO_MIN_REQUEST, 64, 200, ECHO_MAX_REQUEST];
    const nonces = sizes.map(() => randomBytes(8));
    const c = client(port);
    await c.connected;
    // Pipelined in one write: the reflector must split the stream into frames itself.
    c.socket.write(Buffer.concat(sizes.map((size, i) => encodeEchoRequest(nonces[i]!, size))));
    await eventually(
      () => c.received().length >= sizes.reduce((n, s) => n + Math.min(s, 17 + 'edge-fra'.length), 0),
      'all replies arrived',
    );
    let rest = c.received();
    for (let i = 0; i < sizes.length; i++) {
      const reply = parseEchoReply(rest, sizes[i]!);
      assert.equal(reply.kind, 'frame', JSON.stringify(reply));
      if (reply.kind !== 'frame') return;
      assert.ok(reply.length <= sizes[i]!);
      assert.ok(reply.nonce.equals(nonces[i]!));
      assert.equal(reply.site, 'edge-fra');
      rest = rest.subarray(reply.length);
    }
    assert.equal(rest.length, 0);
    c.socket.destroy();
  });

  test('a long site is cut to fit the request, on a character boundary', async () => {
    const long = await startTcpEcho({ site: 'ü'.repeat(100), binds: ['127.0.0.1'], port: 0, log: () => {} });
    after(() => long.close());
    const c = client(long.listening[0]!.port);
    await c.connected;
    c.socket.write(encodeEchoRequest(randomBytes(8), ECHO_MIN_REQUEST));
    await eventually(() => c.received().length > 0, 'a reply arrived');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const bytes = c.received();
    assert.ok(bytes.length <= ECHO_MIN_REQUEST, `reply of ${bytes.length} bytes to a ${ECHO_MIN_REQUEST}-byte request`);
    const reply = parseEchoReply(bytes, ECHO_MIN_REQUEST);
    assert.equal(reply.kind, 'frame');
    if (reply.kind === 'frame') assert.equal(reply.site, 'ü'.repeat(7), '15 bytes of room hold 7 two-byte characters');
    c.socket.destroy();
  });

  test('random bytes and truncated frames: dropped, counted, never a crash', async () => {
    // Caps high enough that all 150 connections at once reach the parser.
    const fuzzed = await startTcpEcho({
      site: 'edge-fra',
      binds: ['127.0.0.1'],
      port: 0,
      maxConnectionsPerSource: 1_000,
      log: () => {},
    });
    after(() => fuzzed.close());
    const port = fuzzed.listening[0]!.port;
    const before = fuzzed.stats();
    const valid = encodeEchoRequest(randomBytes(8));
    let expectedMalformed = 0;
    const inputs: Buffer[] = [];
    for (let i = 0; i < 150; i++) {
      const garbage = randomBytes(randomInt(1, 300));
      // A third of them start like a real frame, to get past the magic into the deeper checks.
      if (i % 3 === 0) ECHO_MAGIC.copy(garbage, 0, 0, Math.min(4, garbage.length));
      if (i % 3 === 1 && garbage.length >= 6) valid.copy(garbage, 0, 0, 6);
      inputs.push(garbage);
    }
    const outcomes = await Promise.all(
      inputs.map(async (input) => {
        const c = client(port);
        await c.connected;
        c.socket.end(input);
        // A truncated but so-far valid frame is waited for; the client's FIN ends it.
        await c.closed;
        return { input, received: c.received() };
      }),
    );
    for (const { input, received } of outcomes) {
      const reply = parseEchoReply(received, Math.max(input.length, ECHO_MIN_REQUEST));
      // A random input that happens to hold a whole valid request may be answered; nothing else is.
      if (received.length > 0) {
        assert.equal(reply.kind, 'frame');
        assert.ok(received.length <= input.length, 'reply larger than the request');
      } else {
        expectedMalformed++;
      }
    }
    // Truncated valid frames: every prefix of a request.
    for (let cut = 1; cut < valid.length; cut += 7) {
      const c = client(port);
      await c.connected;
      c.socket.end(valid.subarray(0, cut));
      await c.closed;
      assert.equal(c.received().length, 0, `a ${cut}-byte prefix was answered`);
    }
    const stats = fuzzed.stats();
    assert.equal(stats.rejected, 0, 'every connection reached the parser');
    const malformed = stats.malformed! - before.malformed!;
    // Whatever does not start with the magic's first byte can only be malformed.
    const surelyBad = inputs.filter((input) => input[0] !== ECHO_MAGIC[0]).length;
    assert.ok(malformed >= surelyBad, `${malformed} counted malformed, ${surelyBad} cannot be anything else`);
    assert.ok(malformed <= expectedMalformed, `${malformed} counted malformed, ${expectedMalformed} went unanswered`);
    // Still serving.
    const probe = await createTcpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port, timeoutMs: 1_000, echo: true },
    );
    const a = await probe.sample(0);
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(a.site, 'edge-fra');
    await probe.close();
    await eventually(() => fuzzed.stats().active === 0, 'every connection closed');
  });

  test('garbage resets the connection and is counted', async () => {
    const before = part.stats().malformed!;
    const c = client(port);
    await c.connected;
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.closed;
    assert.equal(c.received().length, 0);
    assert.equal(c.ended(), 'reset');
    assert.equal(part.stats().malformed, before + 1);
  });

  test('caps connections per source: the next one is reset and counted', async () => {
    const capped = await startTcpEcho({
      site: 's',
      binds: ['127.0.0.1'],
      port: 0,
      maxConnectionsPerSource: 2,
      log: () => {},
    });
    after(() => capped.close());
    const capPort = capped.listening[0]!.port;
    const held = [client(capPort), client(capPort)];
    await Promise.all(held.map((c) => c.connected));
    await eventually(() => capped.stats().active === 2, 'two connections held');
    const probe = await createTcpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: capPort, timeoutMs: 1_000, echo: true },
    );
    const turnedAway = await probe.sample(0);
    assert.equal(turnedAway.ok, false);
    if (!turnedAway.ok) assert.equal(turnedAway.reason, 'reset');
    assert.equal(capped.stats().rejected, 1);
    // Another source address (127/8 is all loopback) is not affected by this source's count.
    const fromOther = await new Promise<net.Socket>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: capPort, localAddress: '127.0.0.2' }, () => resolve(s));
    });
    fromOther.on('error', () => {});
    fromOther.write(encodeEchoRequest(randomBytes(8)));
    await new Promise<void>((resolve) => fromOther.once('data', () => resolve()));
    fromOther.destroy();
    // Freed slots are reusable.
    held[0]!.socket.destroy();
    await eventually(() => capped.stats().active! <= 1, 'a held connection closed');
    const again = await probe.sample(1);
    assert.equal(again.ok, true, JSON.stringify(again));
    await probe.close();
    held[1]!.socket.destroy();
  });

  test('per-source cap 0 (a relay in front): 40 connections from one source all get echoes', async () => {
    const open = await startTcpEcho({
      site: 's',
      binds: ['127.0.0.1'],
      port: 0,
      maxConnectionsPerSource: 0,
      log: () => {},
    });
    after(() => open.close());
    const openPort = open.listening[0]!.port;
    const held = Array.from({ length: 40 }, () => client(openPort));
    await Promise.all(held.map((c) => c.connected));
    await eventually(() => open.stats().active === 40, 'forty connections held');
    const probe = await createTcpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: openPort, timeoutMs: 5_000, echo: true },
    );
    const answered = await probe.sample(0);
    assert.equal(answered.ok, true, JSON.stringify(answered));
    assert.equal(open.stats().rejected, 0);
    await probe.close();
    for (const c of held) c.socket.destroy();
  });

  test('caps connections in total', async () => {
    const capped = await startTcpEcho({ site: 's', binds: ['127.0.0.1'], port: 0, maxConnections: 1, log: () => {} });
    after(() => capped.close());
    const capPort = capped.listening[0]!.port;
    const first = client(capPort);
    await first.connected;
    await eventually(() => capped.stats().active === 1, 'one connection held');
    const second = client(capPort);
    await second.closed;
    assert.equal(second.ended(), 'reset');
    assert.equal(capped.stats().rejected, 1);
    first.socket.destroy();
  });

  test('closes a connection that completes no request within idleMs, trickling or not', async () => {
    const idle = await startTcpEcho({ site: 's', binds: ['127.0.0.1'], port: 0, idleMs: 150, log: () => {} });
    after(() => idle.close());
    const c = client(idle.listening[0]!.port);
    await c.connected;
    const request = encodeEchoRequest(randomBytes(8));
    // One byte every 20 ms keeps bytes flowing but never completes a frame in time.
    let i = 0;
    const trickle = setInterval(() => {
      if (i < request.length && !c.socket.destroyed) c.socket.write(request.subarray(i, ++i));
    }, 20);
    await c.closed;
    clearInterval(trickle);
    assert.equal(c.received().length, 0);
    assert.equal(idle.stats().idle_closed, 1);
  });

  test('listens on every bound address, IPv4 and IPv6', async () => {
    const both = await startTcpEcho({ site: 'dual', binds: ['127.0.0.1', '::1'], port: 0, log: () => {} });
    after(() => both.close());
    assert.deepEqual(
      both.listening.map((l) => l.address),
      ['127.0.0.1', '::1'],
    );
    for (const { address, port: p } of both.listening) {
      const probe = await createTcpProbe({ endpoint: 'anycast', address }, { port: p, timeoutMs: 1_000, echo: true });
      const a = await probe.sample(0);
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.equal(a.site, 'dual');
      await probe.close();
    }
  });

  test('a port in use is a clear error with a stable code', async () => {
    await assert.rejects(
      startTcpEcho({ site: 's', binds: ['127.0.0.1'], port, log: () => {} }),
      (e: unknown) =>
        e instanceof AnylatError &&
        e.code === 'ANYLAT_BIND' &&
        e.exitCode === 2 &&
        new RegExp(`127\\.0\\.0\\.1:${port}.*pick another --tcp-port`).test(e.message),
    );
  });

  /** One echo on `socket`: TCP_INFO before and after, the monotonic span, the parsed reply. */
  function echoOn(socket: net.Socket, flags: number, stallMs = 0) {
    return new Promise<{
      before: TcpInfo | undefined;
      after: TcpInfo | undefined;
      spanMs: number;
      reply: ReturnType<typeof parseEchoReply>;
    }>((resolve) => {
      const request = encodeEchoRequest(randomBytes(8), ECHO_REQUEST_SIZE, flags);
      let got = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        const t2 = performance.now();
        got = Buffer.concat([got, chunk]);
        const reply = parseEchoReply(got, request.length);
        if (reply.kind === 'need') return;
        socket.off('data', onData);
        resolve({ before, after: readTcpInfo(socket), spanMs: t2 - t1, reply });
      };
      socket.on('data', onData);
      const before = readTcpInfo(socket);
      const t1 = performance.now();
      socket.write(request);
      // Blocks this process, the reflector's too: the request waits in its kernel meanwhile.
      while (performance.now() - t1 < stallMs);
    });
  }

  const linuxOnly = { skip: process.platform !== 'linux' && 'TCP_INFO and TCP_QUICKACK are Linux-only' };

  test(
    'delays its ACKs: each reply carries the ACK of its request, the first included (Linux)',
    linuxOnly,
    async () => {
      const accepted = part.stats().accepted!;
      const c = client(port);
      await c.connected;
      c.socket.setNoDelay(true);
      // Its ACK policy is set when it accepts: a request sent before that would race it.
      await eventually(() => part.stats().accepted! > accepted, 'the reflector took the connection');
      for (let i = 0; i < 3; i++) {
        const e = await echoOn(c.socket, 0);
        assert.equal(e.reply.kind, 'frame');
        // Left to the kernel's quick-ACK mode, the first request would get a bare ACK of its own.
        assert.equal(
          e.after!.segsIn! - e.before!.segsIn!,
          1,
          `echo ${i + 1}: one segment came back, the reply carrying the ACK`,
        );
        assert.equal(e.after!.bytesAcked! - e.before!.bytesAcked!, ECHO_REQUEST_SIZE);
      }
      c.socket.destroy();
    },
  );

  test(
    "reports its turnaround when asked, measured from the request's arrival in its kernel (Linux)",
    linuxOnly,
    async () => {
      const STALL_MS = 20;
      const c = client(port);
      await c.connected;
      c.socket.setNoDelay(true);
      // The next request must carry the ACK of the previous reply: that is how the reflector dates it.
      assert.equal(delayAcks(c.socket), true);
      const first = await echoOn(c.socket, ECHO_FLAG_TURNAROUND);
      assert.equal(first.reply.kind, 'frame');
      if (first.reply.kind !== 'frame') return;
      assert.equal(first.reply.turnaround, null, 'the first request of a connection has nothing to date it by');
      const quick = await echoOn(c.socket, ECHO_FLAG_TURNAROUND);
      assert.ok(
        quick.reply.kind === 'frame' && typeof quick.reply.turnaround === 'number',
        JSON.stringify(quick.reply),
      );
      if (quick.reply.kind !== 'frame' || typeof quick.reply.turnaround !== 'number') return;
      assert.ok(
        quick.reply.turnaround / 1000 <= quick.spanMs,
        `turnaround ${quick.reply.turnaround} us within the ${quick.spanMs} ms exchange`,
      );
      // The request reaches the reflector's kernel at once but its callback only after this process
      // stops blocking: the turnaround holds that wait, which the sender's clock alone cannot tell.
      const stalled = await echoOn(c.socket, ECHO_FLAG_TURNAROUND, STALL_MS);
      assert.ok(
        stalled.reply.kind === 'frame' && typeof stalled.reply.turnaround === 'number',
        JSON.stringify(stalled.reply),
      );
      if (stalled.reply.kind !== 'frame' || typeof stalled.reply.turnaround !== 'number') return;
      // Compared with this side's own kernel sample of the same exchange: the turnaround holds the
      // stall and what is left is the path. (Under load the kernel may deliver the request a few ms
      // late, which is path, not turnaround: hence halves rather than the whole stall.)
      const k = echoRttFromTcpInfo(stalled.before, stalled.after, ECHO_REQUEST_SIZE, stalled.spanMs * 1000);
      assert.ok(k.ok, JSON.stringify(k));
      const turnaround = stalled.reply.turnaround;
      assert.ok(
        turnaround <= k.us + 2 * ECHO_RTT_ROUNDING_US + 5,
        `turnaround ${turnaround} us longer than the ${k.us} us round trip`,
      );
      assert.ok(turnaround >= (STALL_MS * 1000) / 2, `turnaround ${turnaround} us misses the ${STALL_MS} ms stall`);
      assert.ok(
        k.us - turnaround < (STALL_MS * 1000) / 2,
        `round trip ${k.us} us − turnaround ${turnaround} us still holds the stall`,
      );
      // A request that does not ask gets the plain reply an older sender expects.
      const plain = await echoOn(c.socket, 0);
      assert.ok(plain.reply.kind === 'frame' && plain.reply.turnaround === undefined);
      c.socket.destroy();
    },
  );

  test('type 3 replies: the turnaround field, never longer than the request, unknown until set', () => {
    const nonce = randomBytes(8);
    const request = encodeEchoRequest(nonce, ECHO_MIN_REQUEST, ECHO_FLAG_TURNAROUND);
    const parsed = parseEchoRequest(request);
    assert.ok(parsed.kind === 'frame' && parsed.flags === ECHO_FLAG_TURNAROUND);
    const reply = encodeEchoReply(nonce, 'a-rather-long-site-name', ECHO_MIN_REQUEST, true);
    assert.equal(reply.length, ECHO_MIN_REQUEST, '21 bytes of header, 11 of site');
    assert.equal(reply[5], ECHO_TYPE_REPLY_TURNAROUND);
    assert.ok(reply.length <= ECHO_MIN_REQUEST);
    let back = parseEchoReply(reply, ECHO_MIN_REQUEST);
    assert.ok(back.kind === 'frame' && back.turnaround === null && back.site === 'a-rather-lo', JSON.stringify(back));
    setEchoTurnaround(reply, 1234.4);
    back = parseEchoReply(reply, ECHO_MIN_REQUEST);
    assert.ok(back.kind === 'frame' && back.turnaround === 1234 && back.nonce.equals(nonce));
    const plain = encodeEchoReply(nonce, 's', ECHO_MIN_REQUEST);
    assert.equal(plain[5], ECHO_TYPE_REPLY);
    assert.throws(() => setEchoTurnaround(plain, 1), RangeError);
    // A type 3 frame too short for its own header is refused, not misread.
    const bad = Buffer.from(reply.subarray(0, 20));
    bad.writeUInt16BE(20, 6);
    assert.deepEqual(parseEchoReply(bad, ECHO_MIN_REQUEST), { kind: 'invalid', why: 'frame length 20 below 21' });
  });

  test('truncateUtf8 never splits a character', () => {
    assert.equal(truncateUtf8('abc', 10).toString(), 'abc');
    assert.equal(truncateUtf8('aü', 2).toString(), 'a');
    assert.equal(truncateUtf8('€€', 5).toString(), '€');
    assert.equal(truncateUtf8('€', 0).length, 0);
  });
});
