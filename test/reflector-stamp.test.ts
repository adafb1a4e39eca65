// The STAMP reflector on real loopback sockets: what it answers, from where, and what it refuses
// (garbage, truncation, oversize, wrong auth, floods, too many sessions) without falling over.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import {
  TLV_EXTRA_PADDING,
  TLV_FLAG_U,
  TLV_HMAC,
  TLV_SITE,
  decodeReflectorPacket,
  emptySiteTlv,
  encodeSenderPacket,
  hmacTlvPlaceholder,
  ntpDiffMs,
  ntpFromUnixMs,
  readSiteValue,
  type Tlv,
} from '../agent/core/stamp-codec.ts';
import { localAddresses, sourceKey, startStampReflector } from '../agent/reflector/stamp.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { AnylatError } from '../agent/util/errors.ts';

const KEY = Buffer.alloc(32, 0x42);

/** A plain UDP client that queues what it receives. */
class Client {
  private readonly queue: Array<{ msg: Buffer; from: RemoteInfo }> = [];
  private waiter: (() => void) | undefined;
  received = 0;

  private constructor(readonly socket: Socket) {
    socket.on('message', (msg, from) => {
      this.received++;
      this.queue.push({ msg, from });
      this.waiter?.();
    });
  }

  static async open(bindAddress: string): Promise<Client> {
    const socket = createSocket(bindAddress.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, bindAddress, resolve));
    return new Client(socket);
  }

  send(buf: Buffer, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(buf, port, address, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** The next datagram, or undefined after `timeoutMs`. */
  async next(timeoutMs = 3000): Promise<{ msg: Buffer; from: RemoteInfo } | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  /** Drops everything received so far. */
  drain(): Array<{ msg: Buffer; from: RemoteInfo }> {
    return this.queue.splice(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

let seqCounter = 0;
function request(o: { tlvs?: Tlv[]; key?: Buffer; padding?: number; ssid?: number } = {}): Buffer {
  return encodeSenderPacket(
    {
      seq: seqCounter++,
      timestamp: ntpFromUnixMs(Date.now()),
      ssid: o.ssid ?? 7,
      tlvs: o.tlvs ?? [emptySiteTlv(32)],
      padding: o.padding,
    },
    o.key,
  );
}

/** Sends one valid request and waits for its reply: everything sent before it has been handled. */
async function sync(client: Client, port: number, host: string): Promise<void> {
  const req = request();
  await client.send(req, port, host);
  for (;;) {
    const got = await client.next();
    assert.ok(got, 'the reflector still answers');
    const d = decodeReflectorPacket(got.msg);
    if (d.ok && d.packet.senderSeq === req.readUInt32BE(0)) return;
  }
}

function outcomes(s: Record<string, number>): number {
  return (
    s.reflected! +
    s.malformed! +
    s.oversize! +
    s.rate_limited! +
    s.auth_failed! +
    s.internal_errors! +
    (s.replayed ?? 0)
  );
}

describe('STAMP reflector', () => {
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  async function reflector(options: Partial<Parameters<typeof startStampReflector>[0]> = {}): Promise<ReflectorPart> {
    const r = await startStampReflector({
      site: 'edge-test',
      binds: ['127.0.0.1'],
      port: 0,
      log: () => {},
      ...options,
    });
    closers.push(() => r.close());
    return r;
  }

  async function client(bind = '127.0.0.1'): Promise<Client> {
    const c = await Client.open(bind);
    closers.push(() => c.close());
    return c;
  }

  test('answers from the address each request was sent to, on every bound address, same port', async () => {
    const r = await reflector({ binds: ['127.0.0.1', '127.0.0.2', '::1'] });
    assert.equal(r.kind, 'udp');
    assert.deepEqual(
      r.listening.map((l) => l.address),
      ['127.0.0.1', '127.0.0.2', '::1'],
    );
    const port = r.listening[0]!.port;
    assert.ok(
      r.listening.every((l) => l.port === port),
      'port 0 resolves to one port for all addresses',
    );
    const v4 = await client('0.0.0.0');
    for (const dest of ['127.0.0.2', '127.0.0.1']) {
      await v4.send(request(), port, dest);
      const got = await v4.next();
      assert.ok(got);
      assert.equal(got.from.address, dest, 'the reply leaves from the address asked');
    }
    const v6 = await client('::1');
    await v6.send(request(), port, '::1');
    const got6 = await v6.next();
    assert.equal(got6?.from.address, '::1');
  });

  test('a reply: T2 ≤ T3, echoes, site written into the reserved room, same size as the request', async () => {
    const r = await reflector({ site: 'Zürich-edge-with-a-long-name' });
    const port = r.listening[0]!.port;
    const c = await client();
    const req = request({ tlvs: [emptySiteTlv(8)], ssid: 4242 });
    await c.send(req, port, '127.0.0.1');
    const got = await c.next();
    assert.ok(got);
    assert.equal(got.msg.length, req.length);
    const d = decodeReflectorPacket(got.msg);
    assert.ok(d.ok);
    const p = d.packet;
    assert.equal(p.senderSeq, req.readUInt32BE(0));
    assert.equal(p.senderTimestamp, req.readBigUInt64BE(4));
    assert.equal(p.ssid, 4242);
    assert.equal(p.senderErrorEstimate, req.readUInt16BE(12));
    const hold = ntpDiffMs(p.timestamp, p.receiveTimestamp);
    assert.ok(hold >= 0 && hold < 1000, `reflector hold ${hold} ms`);
    assert.equal(p.tlvs.length, 1);
    assert.equal(p.tlvs[0]!.type, TLV_SITE);
    assert.equal(p.tlvs[0]!.flags, 0);
    assert.equal(readSiteValue(p.tlvs[0]!.value), 'Zürich-', 'cut to 8 octets on a character boundary');
  });

  test('stateful: each session numbers its replies from 0', async () => {
    const r = await reflector();
    const port = r.listening[0]!.port;
    const a = await client();
    const b = await client();
    const seqs = async (c: Client, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        await c.send(request(), port, '127.0.0.1');
        const got = await c.next();
        const d = decodeReflectorPacket(got!.msg);
        assert.ok(d.ok);
        out.push(d.packet.seq);
      }
      return out;
    };
    assert.deepEqual(await seqs(a, 3), [0, 1, 2]);
    assert.deepEqual(await seqs(b, 2), [0, 1]);
    assert.deepEqual(await seqs(a, 1), [3]);
    assert.equal(r.stats().sessions, 2);
  });

  test('TLVs: unknown types come back flagged U, padding copied, reply never larger, up to the size limit', async () => {
    const r = await reflector({ ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const c = await client();
    const sizes = [0, 1, 7, 100, 500, 1000, 1472 - 44 - 36 - 8 - 4];
    for (const size of sizes) {
      const tlvs: Tlv[] = [
        { flags: 0, type: TLV_EXTRA_PADDING, value: randomBytes(size) },
        emptySiteTlv(32),
        { flags: 0, type: 250, value: Buffer.from('abcd') },
      ];
      const req = request({ tlvs });
      await c.send(req, port, '127.0.0.1');
      const got = await c.next();
      assert.ok(got, `reply for a ${req.length}-octet request`);
      assert.equal(got.msg.length, req.length, `reply size equals request size (${req.length})`);
      const d = decodeReflectorPacket(got.msg);
      assert.ok(d.ok);
      assert.deepEqual(d.packet.tlvs[0], tlvs[0], 'extra padding copied');
      assert.equal(readSiteValue(d.packet.tlvs[1]!.value), 'edge-test');
      assert.equal(d.packet.tlvs[2]!.flags & TLV_FLAG_U, TLV_FLAG_U, 'unknown type flagged U');
      assert.deepEqual(d.packet.tlvs[2]!.value, Buffer.from('abcd'));
    }
    // Zero padding (TWAMP-Light style) is echoed, any length.
    for (const padding of [1, 3, 64, 1428]) {
      const req = request({ tlvs: [], padding });
      await c.send(req, port, '127.0.0.1');
      const got = await c.next();
      assert.equal(got?.msg.length, req.length);
    }
    // One octet over the limit is dropped.
    const over = request({ tlvs: [], padding: 1472 - 44 + 1 });
    await c.send(over, port, '127.0.0.1');
    await sync(c, port, '127.0.0.1');
    assert.equal(c.drain().length, 0, 'no reply to the oversize packet');
    assert.equal(r.stats().oversize, 1);
  });

  test('every truncation of a valid request: replies only to valid ones, each exactly its size', async () => {
    for (const key of [undefined, KEY]) {
      const r = await reflector({ ratePerSourcePps: 0, authKey: key });
      const port = r.listening[0]!.port;
      const c = await client();
      const full = request({
        key,
        tlvs: key
          ? [emptySiteTlv(32), hmacTlvPlaceholder()]
          : [emptySiteTlv(32), { flags: 0, type: 251, value: Buffer.alloc(5, 1) }],
      });
      const replySizes: number[] = [];
      for (let len = 0; len <= full.length; len++) {
        await c.send(full.subarray(0, len), port, '127.0.0.1');
        if (len % 20 === 0) {
          // keep the socket buffers from overflowing on a slow machine
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
      const last = r.stats();
      const sent = full.length + 1;
      // Wait for every datagram to be handled: the reflector's counters add up to what was sent.
      for (let i = 0; i < 200 && outcomes(r.stats()) < sent; i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      const s = r.stats();
      assert.equal(s.received, sent, `${JSON.stringify(last)}`);
      assert.equal(outcomes(s), sent);
      for (let i = 0; i < s.reflected!; i++) {
        const got = await c.next();
        assert.ok(got);
        replySizes.push(got.msg.length);
        assert.ok(decodeReflectorPacket(got.msg, key).ok, 'every reply is a valid reflector packet');
      }
      assert.equal(s.internal_errors, 0);
      const base = key ? 112 : 44;
      // Valid cuts: the base alone, a zero flags octet (padding), whole TLVs. Authenticated, TLVs
      // count only with the HMAC TLV over them (the cut after the site TLV has none), and every cut
      // carries the same sequence number and timestamp: after the first, the valid ones (base + 1,
      // base + 56) are replays.
      const expected = key ? [base] : [base, base + 1, base + 36, base + 45];
      assert.deepEqual(replySizes, expected);
      if (key) {
        assert.equal(s.malformed! + s.auth_failed! + s.replayed!, sent - expected.length);
        assert.equal(s.replayed, 2);
        assert.equal(
          s.auth_failed,
          base - 44 + 1,
          'packets of 44-111 octets are unauthenticated-sized; one has a TLV without the HMAC TLV',
        );
        assert.equal(s.tlv_unprotected, 1);
      } else {
        assert.equal(s.malformed, sent - expected.length);
      }
    }
  });

  test('random bytes do not crash it; each is reflected at its own size or counted as dropped', async () => {
    const r = await reflector({ ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const c = await client();
    const sentSizes: number[] = [];
    for (let batch = 0; batch < 60; batch++) {
      for (let i = 0; i < 50; i++) {
        const len = i % 4 === 0 ? 44 : Math.floor(Math.random() * 1600);
        sentSizes.push(len);
        await c.send(randomBytes(len), port, '127.0.0.1');
      }
      await sync(c, port, '127.0.0.1');
    }
    const s = r.stats();
    assert.equal(s.received, sentSizes.length + 60);
    assert.equal(outcomes(s), s.received);
    assert.ok(s.malformed! > 0 && s.oversize! > 0, JSON.stringify(s));
    assert.ok(
      s.reflected! >= 60 + sentSizes.filter((n) => n === 44).length,
      'every 44-octet datagram is a valid request',
    );
    assert.equal(s.internal_errors, 0);
    // The last sync drained every earlier reply, so no reply is pending now; any left would be a bug.
    assert.equal(c.drain().length, 0);
  });

  test('authenticated mode: only packets with a valid HMAC are answered, replies are signed', async () => {
    const r = await reflector({ authKey: KEY, ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const c = await client();
    await c.send(request(), port, '127.0.0.1'); // unauthenticated
    await c.send(request({ key: Buffer.alloc(32, 1), tlvs: [] }), port, '127.0.0.1'); // other key
    const tampered = request({ key: KEY, tlvs: [emptySiteTlv(16), hmacTlvPlaceholder()] });
    tampered[120] = 0x41; // inside the site TLV, covered by the HMAC TLV
    await c.send(tampered, port, '127.0.0.1');
    const good = request({ key: KEY, tlvs: [emptySiteTlv(16), hmacTlvPlaceholder()] });
    await c.send(good, port, '127.0.0.1');
    const got = await c.next();
    assert.ok(got);
    assert.equal(got.msg.length, good.length);
    const d = decodeReflectorPacket(got.msg, KEY);
    assert.ok(d.ok, 'the reply verifies with the key');
    assert.equal(d.packet.tlvHmacValid, true);
    assert.equal(d.packet.tlvs.at(-1)!.type, TLV_HMAC);
    assert.equal(readSiteValue(d.packet.tlvs[0]!.value), 'edge-test');
    assert.equal(d.packet.senderSeq, good.readUInt32BE(0));
    const s = r.stats();
    assert.equal(s.auth_failed, 3);
    assert.equal(s.reflected, 1);
    assert.equal(c.drain().length, 0);
  });

  test('authenticated mode: a site TLV appended without an HMAC TLV over it is dropped and counted', async () => {
    const r = await reflector({ authKey: KEY, ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const c = await client();
    // Correctly signed base packet, then a TLV nobody signed (the packet HMAC covers octets 0..95 only).
    const base = request({ key: KEY, tlvs: [] });
    const tlv = Buffer.alloc(4 + 32);
    tlv.writeUInt8(0, 0);
    tlv.writeUInt8(TLV_SITE, 1);
    tlv.writeUInt16BE(32, 2);
    await c.send(Buffer.concat([base, tlv]), port, '127.0.0.1');
    const good = request({ key: KEY, tlvs: [emptySiteTlv(32), hmacTlvPlaceholder()] });
    await c.send(good, port, '127.0.0.1');
    const got = await c.next();
    assert.ok(got);
    const d = decodeReflectorPacket(got.msg, KEY);
    assert.ok(d.ok);
    assert.equal(d.packet.senderSeq, good.readUInt32BE(0), 'only the protected packet is answered');
    assert.equal(c.drain().length, 0);
    const s = r.stats();
    assert.equal(s.tlv_unprotected, 1);
    assert.equal(s.auth_failed, 1);
    assert.equal(s.reflected, 1);
  });

  test('authenticated mode: a captured packet sent again is refused by the replay window; a new sequence is not', async () => {
    const r = await reflector({ authKey: KEY, ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const c = await client();
    const captured = request({ key: KEY, tlvs: [emptySiteTlv(32), hmacTlvPlaceholder()] });
    for (let i = 0; i < 5; i++) await c.send(captured, port, '127.0.0.1');
    // Later packets of the same session, and an out-of-order one inside the window, are answered.
    const t = Date.now();
    const mk = (seq: number, at: number) =>
      encodeSenderPacket(
        { seq, timestamp: ntpFromUnixMs(at), ssid: 7, tlvs: [emptySiteTlv(32), hmacTlvPlaceholder()] },
        KEY,
      );
    const base = captured.readUInt32BE(0);
    await c.send(mk(base + 2, t + 20), port, '127.0.0.1');
    await c.send(mk(base + 1, t + 10), port, '127.0.0.1');
    await c.send(mk(base + 2, t + 20), port, '127.0.0.1'); // replay of the one before last
    // The sender restarted its sequence on the same port, with a later clock: a new window.
    await c.send(mk(0, t + 5000), port, '127.0.0.1');
    const answered: number[] = [];
    for (let i = 0; i < 4; i++) {
      const got = await c.next();
      assert.ok(got, `reply ${i + 1} of 4`);
      const d = decodeReflectorPacket(got.msg, KEY);
      assert.ok(d.ok);
      answered.push(d.packet.senderSeq);
    }
    assert.deepEqual(answered, [base, base + 2, base + 1, 0]);
    assert.equal(c.drain().length, 0);
    const s = r.stats();
    assert.equal(s.replayed, 5, 'four copies of the captured packet and one of a later one');
    assert.equal(s.reflected, 4);
  });

  test('rate limit: a flood from one source is cut while another source is still served', async () => {
    const rate = 40;
    const r = await reflector({ ratePerSourcePps: rate });
    const port = r.listening[0]!.port;
    const flooder = await client('127.0.0.2');
    const other = await client('127.0.0.1');
    const floodSize = 400;
    const started = performance.now();
    for (let batch = 0; batch < floodSize / 50; batch++) {
      for (let i = 0; i < 50; i++) await flooder.send(request(), port, '127.0.0.1');
      await sync(other, port, '127.0.0.1'); // the other source gets its answer every time
    }
    const seconds = (performance.now() - started) / 1000;
    const s = r.stats();
    const floodReflected = s.reflected! - floodSize / 50;
    assert.equal(s.received, floodSize + floodSize / 50);
    // At most one second of burst plus what refilled while the flood lasted.
    assert.ok(
      floodReflected <= rate + Math.ceil(rate * seconds) + 1,
      `${floodReflected} reflected in ${seconds.toFixed(2)} s`,
    );
    assert.ok(floodReflected >= rate, `the first ${rate} (the burst) pass: ${floodReflected}`);
    assert.equal(s.rate_limited, floodSize - floodReflected);
    assert.ok(s.rate_limited! > 0);
  });

  test('session cap: the least recently active sessions are evicted, the count never exceeds it', async () => {
    const r = await reflector({ maxSessions: 8, ratePerSourcePps: 0 });
    const port = r.listening[0]!.port;
    const clients: Client[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await client();
      clients.push(c);
      await c.send(request(), port, '127.0.0.1');
      assert.ok(await c.next());
      assert.ok(r.stats().sessions! <= 8);
    }
    const s = r.stats();
    assert.equal(s.sessions, 8);
    assert.equal(s.sessions_evicted, 12);
    // The first client's session was evicted: its numbering restarts; the last one's continues.
    await clients[0]!.send(request(), port, '127.0.0.1');
    const first = decodeReflectorPacket((await clients[0]!.next())!.msg);
    await clients[19]!.send(request(), port, '127.0.0.1');
    const lastOne = decodeReflectorPacket((await clients[19]!.next())!.msg);
    assert.ok(first.ok && lastOne.ok);
    assert.equal(first.packet.seq, 0);
    assert.equal(lastOne.packet.seq, 1);
  });

  test('idle sessions expire and restart at 0', async () => {
    const r = await reflector({ sessionIdleMs: 50 });
    const port = r.listening[0]!.port;
    const c = await client();
    await c.send(request(), port, '127.0.0.1');
    await c.next();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await c.send(request(), port, '127.0.0.1');
    const d = decodeReflectorPacket((await c.next())!.msg);
    assert.ok(d.ok);
    assert.equal(d.packet.seq, 0);
    assert.ok(r.stats().sessions_expired! >= 1);
  });

  test('start-up errors are coded and name the address', async () => {
    const r = await reflector();
    await assert.rejects(
      startStampReflector({ site: 's', binds: ['127.0.0.1'], port: r.listening[0]!.port, log: () => {} }),
      (e: unknown) =>
        e instanceof AnylatError &&
        e.code === 'ANYLAT_BIND' &&
        e.exitCode === 2 &&
        /cannot listen on 127\.0\.0\.1:\d+: the address is in use \(EADDRINUSE\); pick another --udp-port/.test(
          e.message,
        ),
    );
    await assert.rejects(
      startStampReflector({ site: 's', binds: ['192.0.2.1'], port: 0, log: () => {} }),
      (e: unknown) => e instanceof AnylatError && e.code === 'ANYLAT_BIND' && /192\.0\.2\.1/.test(e.message),
    );
    await assert.rejects(
      startStampReflector({ site: 's', binds: ['localhost'], port: 0 }),
      (e: unknown) => e instanceof AnylatError && e.code === 'ANYLAT_REFLECTOR_OPTIONS',
    );
    await assert.rejects(
      startStampReflector({ site: 's', binds: ['127.0.0.1'], port: 0, authKey: Buffer.alloc(4) }),
      (e: unknown) => e instanceof AnylatError && /at least 16/.test(e.message),
    );
  });

  test('local addresses and rate-limit keys', () => {
    const addrs = localAddresses();
    assert.ok(addrs.includes('127.0.0.1'));
    assert.ok(!addrs.some((a) => /^fe80/i.test(a)), 'no link-local IPv6');
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('2001:db8:0:0:ffff::1'), sourceKey('2001:db8::2'));
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  });
});
