// The STAMP codec and the udp probe (Session-Sender), against the real reflector and against
// hand-written peers on loopback that misbehave on purpose.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Attempt, PacketCounters } from '../agent/core/model.ts';
import { AnylatError } from '../agent/util/errors.ts';
import {
  AUTH_BASE_BYTES,
  ERROR_ESTIMATE,
  MAX_PACKET_BYTES,
  TLV_EXTRA_PADDING,
  TLV_FLAG_U,
  TLV_HMAC,
  TLV_SITE,
  UNAUTH_BASE_BYTES,
  decodeReflectorPacket,
  decodeSenderPacket,
  emptySiteTlv,
  encodeReflectorPacket,
  encodeSenderPacket,
  hmacTlvPlaceholder,
  ntpDiffMs,
  ntpFromUnixMs,
  parseStampKey,
  readErrorEstimate,
  readSiteValue,
  readStampKeyFile,
  restampReflectorPacket,
  senderPacketBytes,
  siteValue,
  unixMsFromNtp,
  type ReflectorPacketInput,
  type SenderPacket,
  type Tlv,
} from '../agent/core/stamp-codec.ts';
import { createUdpProbe } from '../agent/probe/udp.ts';
import { startStampReflector } from '../agent/reflector/stamp.ts';
import { freeUdpPort } from './support/net.ts';
import { needsRoot } from './support/root.ts';

const KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const OTHER_KEY = Buffer.alloc(32, 0x5a);

function hmac16(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest().subarray(0, 16);
}

/** Byte offsets where the TLV list of `p` can end: a cut there leaves a shorter, still valid packet. */
function tlvBoundaries(base: number, tlvs: Tlv[]): Set<number> {
  const out = new Set([base]);
  let at = base;
  for (const t of tlvs) {
    at += 4 + t.value.length;
    out.add(at);
  }
  return out;
}

describe('STAMP codec', () => {
  test('unauthenticated sender packet: 44 octets, RFC 8762 layout, round trip', () => {
    const ts = ntpFromUnixMs(Date.UTC(2024, 0, 2, 3, 4, 5, 678.5));
    const buf = encodeSenderPacket({ seq: 0xdeadbeef, timestamp: ts, ssid: 0x1234 });
    assert.equal(buf.length, UNAUTH_BASE_BYTES);
    assert.equal(buf.readUInt32BE(0), 0xdeadbeef);
    assert.equal(buf.readBigUInt64BE(4), ts);
    assert.equal(buf.readUInt16BE(12), ERROR_ESTIMATE);
    assert.equal(buf.readUInt16BE(14), 0x1234);
    assert.ok(
      buf.subarray(16).every((b) => b === 0),
      'MBZ octets are zero',
    );
    const d = decodeSenderPacket(buf);
    assert.ok(d.ok);
    assert.equal(d.packet.seq, 0xdeadbeef);
    assert.equal(d.packet.timestamp, ts);
    assert.equal(d.packet.ssid, 0x1234);
    assert.deepEqual(d.packet.tlvs, []);
  });

  test('authenticated sender packet: 112 octets, HMAC-SHA-256/128 over octets 0-95', () => {
    const ts = ntpFromUnixMs(1_700_000_000_123);
    const buf = encodeSenderPacket({ seq: 7, timestamp: ts, ssid: 9 }, KEY);
    assert.equal(buf.length, AUTH_BASE_BYTES);
    assert.equal(buf.readUInt32BE(0), 7);
    assert.ok(
      buf.subarray(4, 16).every((b) => b === 0),
      'MBZ after the sequence number',
    );
    assert.equal(buf.readBigUInt64BE(16), ts);
    assert.equal(buf.readUInt16BE(26), 9);
    assert.deepEqual(buf.subarray(96), hmac16(KEY, buf.subarray(0, 96)));
    const d = decodeSenderPacket(buf, KEY);
    assert.ok(d.ok);
    assert.equal(d.packet.seq, 7);
    assert.equal(d.packet.timestamp, ts);
    assert.equal(d.packet.authenticated, true);
    const wrong = decodeSenderPacket(buf, OTHER_KEY);
    assert.ok(!wrong.ok);
    assert.equal(wrong.reason, 'bad_hmac');
  });

  test('reflector packets: RFC 8762 layouts in both modes, restamp keeps the HMAC valid', () => {
    const input: ReflectorPacketInput = {
      seq: 3,
      timestamp: ntpFromUnixMs(1_000_002),
      ssid: 77,
      receiveTimestamp: ntpFromUnixMs(1_000_001),
      senderSeq: 41,
      senderTimestamp: ntpFromUnixMs(1_000_000),
      senderErrorEstimate: 0x0101,
      senderTtl: 64,
      tlvs: [],
      padding: 0,
    };
    const u = encodeReflectorPacket(input);
    assert.equal(u.length, 44);
    assert.equal(u.readUInt32BE(0), 3);
    assert.equal(u.readBigUInt64BE(4), input.timestamp);
    assert.equal(u.readUInt16BE(14), 77);
    assert.equal(u.readBigUInt64BE(16), input.receiveTimestamp);
    assert.equal(u.readUInt32BE(24), 41);
    assert.equal(u.readBigUInt64BE(28), input.senderTimestamp);
    assert.equal(u.readUInt16BE(36), 0x0101);
    assert.equal(u.readUInt8(40), 64);
    const du = decodeReflectorPacket(u);
    assert.ok(du.ok);
    assert.equal(du.packet.senderSeq, 41);
    assert.ok(Math.abs(ntpDiffMs(du.packet.timestamp, du.packet.receiveTimestamp) - 1) < 1e-6);

    const a = encodeReflectorPacket(input, KEY);
    assert.equal(a.length, 112);
    assert.equal(a.readBigUInt64BE(16), input.timestamp);
    assert.equal(a.readBigUInt64BE(32), input.receiveTimestamp);
    assert.equal(a.readUInt32BE(48), 41);
    assert.equal(a.readBigUInt64BE(64), input.senderTimestamp);
    assert.equal(a.readUInt8(80), 64);
    assert.deepEqual(a.subarray(96), hmac16(KEY, a.subarray(0, 96)));
    const later = ntpFromUnixMs(1_000_005);
    restampReflectorPacket(a, later, KEY);
    const da = decodeReflectorPacket(a, KEY);
    assert.ok(da.ok);
    assert.equal(da.packet.timestamp, later);
    a[40]! ^= 1;
    const tampered = decodeReflectorPacket(a, KEY);
    assert.ok(!tampered.ok);
    assert.equal(tampered.reason, 'bad_hmac');
  });

  test('TLVs: RFC 8972 header, site TLV type 252, HMAC TLV covers sequence number and site', () => {
    const tlvs = [emptySiteTlv(32), hmacTlvPlaceholder()];
    const buf = encodeSenderPacket({ seq: 5, timestamp: 1n, tlvs }, KEY);
    assert.equal(buf.length, 112 + 36 + 20);
    assert.equal(buf.length, senderPacketBytes({ tlvs }, KEY));
    assert.deepEqual([...buf.subarray(112, 116)], [0, TLV_SITE, 0, 32]);
    assert.deepEqual([...buf.subarray(148, 152)], [0, TLV_HMAC, 0, 16]);
    assert.deepEqual(buf.subarray(152), hmac16(KEY, Buffer.concat([buf.subarray(0, 4), buf.subarray(112, 148)])));
    const d = decodeSenderPacket(buf, KEY);
    assert.ok(d.ok);
    assert.equal(d.packet.tlvHmacValid, true);
    assert.equal(d.packet.tlvs[0]!.type, TLV_SITE);

    const siteTampered = Buffer.from(buf);
    siteTampered[120] = 0x41;
    const t = decodeSenderPacket(siteTampered, KEY);
    assert.ok(!t.ok);
    assert.equal(t.reason, 'bad_tlv_hmac');
  });

  test('an all-zero tail is padding (TWAMP-Light style), echoed as zeros', () => {
    const buf = Buffer.concat([encodeSenderPacket({ seq: 1, timestamp: 2n }), Buffer.alloc(23)]);
    const d = decodeSenderPacket(buf);
    assert.ok(d.ok);
    assert.equal(d.packet.padding, 23);
    assert.deepEqual(d.packet.tlvs, []);
  });

  test('every truncation of a valid packet decodes only at TLV boundaries, never throws', () => {
    for (const key of [undefined, KEY]) {
      const tlvs: Tlv[] = [
        { flags: 0, type: TLV_EXTRA_PADDING, value: Buffer.alloc(10, 0xaa) },
        emptySiteTlv(32),
        { flags: 0, type: 200, value: Buffer.from('xyz') },
        ...(key ? [hmacTlvPlaceholder()] : []),
      ];
      const full = encodeSenderPacket({ seq: 1, timestamp: 99n, ssid: 4, tlvs }, key);
      const base = key ? 112 : 44;
      const boundaries = tlvBoundaries(base, key ? [...tlvs.slice(0, 3), hmacTlvPlaceholder()] : tlvs);
      for (let len = 0; len <= full.length; len++) {
        const cut = full.subarray(0, len);
        const d = decodeSenderPacket(cut, key);
        if (len < base) {
          assert.ok(!d.ok && d.reason === 'too_short', `len ${len}`);
        } else if (boundaries.has(len) || cut.subarray(base).every((b) => b === 0)) {
          // A cut at a TLV boundary leaves fewer TLVs; a cut inside the first TLV's zero flags
          // octet leaves an all-zero tail, which is padding.
          assert.ok(d.ok, `len ${len} is a TLV boundary or zero padding`);
          assert.equal(d.packet.size, len);
        } else {
          assert.ok(!d.ok && d.reason === 'bad_tlv', `len ${len}: ${d.ok ? 'decoded' : d.reason}`);
        }
      }
      // The same for the reflector's packets.
      const reply = encodeReflectorPacket(
        {
          seq: 0,
          timestamp: 5n,
          ssid: 4,
          receiveTimestamp: 4n,
          senderSeq: 1,
          senderTimestamp: 99n,
          senderErrorEstimate: 0,
          senderTtl: 0,
          tlvs,
          padding: 0,
        },
        key,
      );
      for (let len = 0; len <= reply.length; len++) {
        const cut = reply.subarray(0, len);
        const d = decodeReflectorPacket(cut, key);
        assert.equal(
          d.ok,
          len >= base && (boundaries.has(len) || cut.subarray(base).every((b) => b === 0)),
          `reflector len ${len}`,
        );
      }
    }
  });

  test('random bytes: decoding is total and what decodes adds up to the datagram', () => {
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      const len = i % 5 === 0 ? 44 + (i % 40) : Math.floor(Math.random() * 220);
      const buf = randomBytes(len);
      if (i % 3 === 0 && len > 56) buf.fill(0, 44, 48 + (i % 7)); // zero runs: padding and empty TLVs
      for (const d of [decodeSenderPacket(buf), decodeReflectorPacket(buf)]) {
        if (!d.ok) continue;
        decoded++;
        const tlvBytes = d.packet.tlvs.reduce((n, t) => n + 4 + t.value.length, 0);
        assert.equal(44 + tlvBytes + d.packet.padding, len);
      }
      assert.equal(decodeSenderPacket(buf, KEY).ok, false, 'random bytes never authenticate');
      assert.equal(decodeReflectorPacket(buf, KEY).ok, false);
    }
    assert.ok(decoded > 0, 'some random datagrams are valid unauthenticated packets');
  });

  test('wrong lengths', () => {
    const short = decodeSenderPacket(Buffer.alloc(43));
    assert.ok(!short.ok && short.reason === 'too_short');
    const shortAuth = decodeReflectorPacket(Buffer.alloc(111), KEY);
    assert.ok(!shortAuth.ok && shortAuth.reason === 'too_short');
    const long = decodeSenderPacket(Buffer.alloc(MAX_PACKET_BYTES + 1));
    assert.ok(!long.ok && long.reason === 'too_long');
    const lying = encodeSenderPacket({ seq: 1, timestamp: 1n, tlvs: [emptySiteTlv(8)] });
    lying.writeUInt16BE(9, 46); // the TLV claims one octet more than the datagram holds
    const l = decodeSenderPacket(lying);
    assert.ok(!l.ok && l.reason === 'bad_tlv');
    const hmacNotLast = encodeSenderPacket({ seq: 1, timestamp: 1n, tlvs: [emptySiteTlv(8)] });
    hmacNotLast[45] = TLV_HMAC;
    const h = decodeSenderPacket(Buffer.concat([hmacNotLast, Buffer.from([0, 1, 0, 0])]));
    assert.ok(!h.ok && h.reason === 'bad_tlv');
  });

  test('NTP timestamps', () => {
    assert.equal(ntpFromUnixMs(0), 2_208_988_800n << 32n);
    assert.equal(ntpFromUnixMs(1500), ((2_208_988_800n + 1n) << 32n) | 0x8000_0000n);
    const now = Date.now() + 0.25;
    assert.ok(Math.abs(unixMsFromNtp(ntpFromUnixMs(now)) - now) < 1e-6);
    // 2036-02-07T06:28:16Z is where the 32-bit seconds wrap (era 1).
    const wrap = Date.UTC(2036, 1, 7, 6, 28, 16);
    const before = ntpFromUnixMs(wrap - 2);
    const afterWrap = ntpFromUnixMs(wrap + 3);
    assert.ok(afterWrap < before, 'seconds wrapped');
    assert.ok(Math.abs(ntpDiffMs(afterWrap, before) - 5) < 1e-6);
    assert.ok(Math.abs(unixMsFromNtp(afterWrap) - (wrap + 3)) < 1e-6);
  });

  test('error estimate: not synchronized, NTP format, about a millisecond', () => {
    const e = readErrorEstimate(ERROR_ESTIMATE);
    assert.equal(e.synchronized, false);
    assert.equal(e.ptp, false);
    assert.notEqual(e.multiplier, 0);
    assert.ok(e.seconds > 0.0005 && e.seconds < 0.002, `${e.seconds}`);
  });

  test('site values: UTF-8 cut on a character boundary, zero-padded, control characters dropped', () => {
    assert.deepEqual(siteValue('Zürich', 2), Buffer.from([0x5a, 0]));
    assert.deepEqual(siteValue('Zürich', 3), Buffer.from('Zü'));
    assert.equal(siteValue('edge', 8).length, 8);
    assert.equal(readSiteValue(siteValue('edge-fra', 32)), 'edge-fra');
    assert.equal(readSiteValue(Buffer.from('a\u0007b\nc\0zzz')), 'abc');
    assert.equal(readSiteValue(Buffer.alloc(16)), undefined);
  });

  test('keys: hex text of at least 16 octets, clear errors otherwise', async () => {
    assert.deepEqual(
      parseStampKey(`${KEY.toString('hex').slice(0, 32)}\n${KEY.toString('hex').slice(32)}\n`, 'k'),
      KEY,
    );
    for (const [text, msg] of [
      ['', /empty/],
      ['zz'.repeat(16), /hexadecimal/],
      ['abc', /odd number/],
      ['00'.repeat(15), /15 octets, at least 16/],
    ] as const) {
      assert.throws(
        () => parseStampKey(text, 'key.hex'),
        (e: unknown) =>
          e instanceof AnylatError &&
          e.code === 'ANYLAT_STAMP_KEY' &&
          msg.test(e.message) &&
          e.message.startsWith('key.hex: '),
      );
    }
    const dir = await mkdtemp(join(tmpdir(), 'anylat-key-'));
    try {
      await writeFile(join(dir, 'k'), KEY.toString('hex'));
      assert.deepEqual(await readStampKeyFile(join(dir, 'k')), KEY);
      await assert.rejects(
        readStampKeyFile(join(dir, 'missing')),
        (e: unknown) =>
          e instanceof AnylatError && /missing: cannot read the STAMP key file \(ENOENT\)/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---- helpers for the probe tests ----

interface Peer {
  port: number;
  requests: Buffer[];
  send(buf: Buffer): void;
  close(): Promise<void>;
}

/** A hand-written far end: `onRequest` decides what (if anything) goes back. */
async function startPeer(host: string, onRequest: (req: Buffer, peer: Peer, from: RemoteInfo) => void): Promise<Peer> {
  const socket: Socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  let last: RemoteInfo | undefined;
  const peer: Peer = {
    port: socket.address().port,
    requests: [],
    send(buf) {
      socket.send(buf, last!.port, last!.address);
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, from) => {
    last = from;
    peer.requests.push(msg);
    onRequest(msg, peer, from);
  });
  return peer;
}

interface ReplyOptions {
  key?: Buffer;
  site?: string;
  /** claimed reflector hold time T3 − T2 */
  turnaroundMs?: number;
  senderSeq?: number;
  senderTimestamp?: bigint;
  ssid?: number;
  dropTlvs?: boolean;
  siteFlags?: number;
}

/** A correct reflector reply to `raw`, bent by `o` where a test wants it wrong. */
function replyTo(raw: Buffer, o: ReplyOptions = {}): Buffer {
  const d = decodeSenderPacket(raw, o.key);
  assert.ok(d.ok, `peer got a valid request (${d.ok ? '' : d.detail})`);
  const req: SenderPacket = d.packet;
  const t2 = ntpFromUnixMs(Date.now());
  const t3 = ntpFromUnixMs(unixMsFromNtp(t2) + (o.turnaroundMs ?? 0));
  const tlvs = o.dropTlvs
    ? []
    : req.tlvs.map((t) =>
        t.type === TLV_SITE
          ? {
              flags: o.siteFlags ?? 0,
              type: t.type,
              value: o.site === undefined ? t.value : siteValue(o.site, t.value.length),
            }
          : t,
      );
  return encodeReflectorPacket(
    {
      seq: 0,
      timestamp: t3,
      ssid: o.ssid ?? req.ssid,
      receiveTimestamp: t2,
      senderSeq: o.senderSeq ?? req.seq,
      senderTimestamp: o.senderTimestamp ?? req.timestamp,
      senderErrorEstimate: req.errorEstimate,
      senderTtl: 0,
      tlvs,
      padding: req.padding,
    },
    o.key,
  );
}

function seqOf(raw: Buffer): number {
  return raw.readUInt32BE(0);
}

function assertOk(a: Attempt): asserts a is Extract<Attempt, { ok: true }> {
  assert.ok(a.ok, `expected success, got ${JSON.stringify(a)}`);
}

function assertRtt(a: Attempt, turnaroundMs: number): void {
  assertOk(a);
  const rtt = a.values.rtt!;
  // RTT = (t1 − t0) − (T3 − T2), exactly, up to NTP fraction rounding.
  assert.ok(Math.abs(rtt - (a.t1 - a.t0 - turnaroundMs)) < 1e-3, `rtt ${rtt} vs ${a.t1 - a.t0} − ${turnaroundMs}`);
  assert.ok(rtt >= 0);
}

const ZERO: PacketCounters = { late: 0, duplicate: 0, stray: 0, invalid: 0 };

describe('udp probe against the anylat reflector', () => {
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  for (const host of ['127.0.0.1', '::1']) {
    test(`success over ${host}: rtt measured, site arrives, counters clean`, async () => {
      const reflector = await startStampReflector({ site: 'edge-fra', binds: [host], port: 0 });
      closers.push(() => reflector.close());
      const prober = await createUdpProbe(
        { endpoint: 'anycast', address: host },
        { port: reflector.listening[0]!.port, timeoutMs: 3000 },
      );
      const attempts: Attempt[] = [];
      for (let i = 0; i < 10; i++) attempts.push(await prober.sample(i));
      const counters = await prober.close();
      for (const a of attempts) {
        assertOk(a);
        assert.equal(a.site, 'edge-fra');
        const rtt = a.values.rtt!;
        assert.ok(rtt > 0 && rtt <= a.t1 - a.t0, `rtt ${rtt} within (0, ${a.t1 - a.t0}]`);
        assert.ok(rtt < 1000, 'loopback RTT is not seconds');
      }
      assert.deepEqual(counters, ZERO);
      assert.equal(reflector.stats().reflected, 10);
    });
  }

  test('authenticated mode: success with the shared key', async () => {
    const reflector = await startStampReflector({ site: 'auth-site', binds: ['127.0.0.1'], port: 0, authKey: KEY });
    closers.push(() => reflector.close());
    const prober = await createUdpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: reflector.listening[0]!.port, timeoutMs: 3000, authKey: KEY },
    );
    for (let i = 0; i < 5; i++) {
      const a = await prober.sample(i);
      assertOk(a);
      assert.equal(a.site, 'auth-site');
    }
    assert.deepEqual(await prober.close(), ZERO);
    assert.equal(reflector.stats().reflected, 5);
    assert.equal(reflector.stats().auth_failed, 0);
  });

  test('authenticated mode: key mismatch or missing key times out, the reflector counts it', async () => {
    const reflector = await startStampReflector({ site: 'auth-site', binds: ['127.0.0.1'], port: 0, authKey: KEY });
    closers.push(() => reflector.close());
    const port = reflector.listening[0]!.port;
    for (const authKey of [OTHER_KEY, undefined]) {
      const prober = await createUdpProbe(
        { endpoint: 'anycast', address: '127.0.0.1' },
        { port, timeoutMs: 300, authKey },
      );
      const a = await prober.sample(0);
      assert.equal(a.ok, false);
      assert.equal(!a.ok && a.reason, 'timeout');
      assert.deepEqual(await prober.close(), ZERO);
    }
    assert.equal(reflector.stats().auth_failed, 2);
    assert.equal(reflector.stats().reflected, 0);
  });

  test('samples in flight together each get their own reply', async () => {
    const reflector = await startStampReflector({ site: 'edge', binds: ['::1'], port: 0 });
    closers.push(() => reflector.close());
    const prober = await createUdpProbe(
      { endpoint: 'anycast', address: '::1' },
      { port: reflector.listening[0]!.port, timeoutMs: 5000 },
    );
    const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => prober.sample(i)));
    for (const a of attempts) {
      assertOk(a);
      assert.ok(a.values.rtt! > 0 && a.values.rtt! <= a.t1 - a.t0);
    }
    assert.deepEqual(await prober.close(), ZERO);
    assert.equal(reflector.stats().reflected, 20);
  });

  test('siteTlvBytes 0: bare 44-octet packets, no site', async () => {
    const reflector = await startStampReflector({ site: 'edge', binds: ['127.0.0.1'], port: 0 });
    closers.push(() => reflector.close());
    const prober = await createUdpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: reflector.listening[0]!.port, timeoutMs: 3000, siteTlvBytes: 0 },
    );
    const a = await prober.sample(0);
    assertOk(a);
    assert.equal(a.site, undefined);
    await prober.close();
  });

  test('a long site name is cut to the room the sender reserved', async () => {
    const reflector = await startStampReflector({
      site: 'a-very-long-site-name-from-somewhere',
      binds: ['127.0.0.1'],
      port: 0,
    });
    closers.push(() => reflector.close());
    const prober = await createUdpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: reflector.listening[0]!.port, timeoutMs: 3000, siteTlvBytes: 6 },
    );
    const a = await prober.sample(0);
    assertOk(a);
    assert.equal(a.site, 'a-very');
    await prober.close();
  });
});

describe('udp probe failures and misbehaving peers', () => {
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  async function probeTo(
    peer: Peer,
    host = '127.0.0.1',
    extra: { timeoutMs?: number; authKey?: Buffer; siteTlvBytes?: number } = {},
  ) {
    const prober = await createUdpProbe(
      { endpoint: 'eu-west-1', address: host },
      { port: peer.port, timeoutMs: extra.timeoutMs ?? 3000, authKey: extra.authKey, siteTlvBytes: extra.siteTlvBytes },
    );
    return prober;
  }

  for (const host of ['127.0.0.1', '::1']) {
    test(`refused over ${host}: nothing listening`, async () => {
      const port = await freeUdpPort(host);
      const prober = await createUdpProbe({ endpoint: 'us-east-1', address: host }, { port, timeoutMs: 3000 });
      const a = await prober.sample(0);
      assert.equal(a.ok, false);
      assert.equal(!a.ok && a.reason, 'refused');
      assert.ok(a.t1 - a.t0 < 3000, 'refused before the timeout');
      assert.deepEqual(await prober.close(), ZERO);
    });
  }

  test('timeout: a peer that swallows everything', async () => {
    const peer = await startPeer('127.0.0.1', () => {});
    closers.push(() => peer.close());
    const prober = await probeTo(peer, '127.0.0.1', { timeoutMs: 250 });
    const a = await prober.sample(0);
    assert.equal(a.ok, false);
    assert.equal(!a.ok && a.reason, 'timeout');
    assert.ok(a.t1 - a.t0 >= 240, `waited the timeout (${a.t1 - a.t0} ms)`);
    assert.equal(peer.requests.length, 1);
    assert.equal(peer.requests[0]!.length, 44 + 4 + 32, 'default site TLV reserves 32 octets');
    assert.deepEqual(await prober.close(), ZERO);
  });

  test('garbage first, then the right reply: garbage is counted invalid, the RTT is exact', async () => {
    const peer = await startPeer('127.0.0.1', (req, p) => {
      p.send(randomBytes(80)); // right size, random content
      p.send(randomBytes(13)); // too short
      p.send(Buffer.alloc(2000, 1)); // too long
      p.send(replyTo(req, { ssid: (req.readUInt16BE(14) + 1) & 0xffff || 1 })); // someone else's session
      p.send(replyTo(req, { senderTimestamp: 12345n })); // our seq, not our packet
      p.send(replyTo(req, { dropTlvs: true }).subarray(0, 43)); // truncated
      // Claim the reflector held the packet 5 ms, and really hold it that long.
      setTimeout(() => p.send(replyTo(req, { site: 'peer-site', turnaroundMs: 5 })), 10);
    });
    closers.push(() => peer.close());
    const prober = await probeTo(peer);
    const a = await prober.sample(0);
    assertRtt(a, 5);
    assert.equal(a.ok && a.site, 'peer-site');
    const counters = await prober.close();
    assert.deepEqual(counters, { late: 0, duplicate: 0, stray: 0, invalid: 6 });
  });

  test('a legacy reflector: bare base reply, or the site TLV flagged unrecognized', async () => {
    let n = 0;
    const peer = await startPeer('127.0.0.1', (req, p) => {
      p.send(n++ === 0 ? replyTo(req, { dropTlvs: true }) : replyTo(req, { siteFlags: TLV_FLAG_U, site: 'ignored' }));
    });
    closers.push(() => peer.close());
    const prober = await probeTo(peer);
    for (let i = 0; i < 2; i++) {
      const a = await prober.sample(i);
      assertOk(a);
      assert.equal(a.site, undefined);
    }
    assert.deepEqual(await prober.close(), ZERO);
  });

  test('duplicates and strays are counted; the sample still gets its one RTT', async () => {
    const peer = await startPeer('127.0.0.1', (req, p) => {
      if (seqOf(req) === 0) {
        p.send(replyTo(req, { senderSeq: 1000 })); // a seq this session never sent
        p.send(replyTo(req));
        p.send(replyTo(req)); // duplicate
        p.send(replyTo(req)); // duplicate
      } else {
        p.send(replyTo(req));
      }
    });
    closers.push(() => peer.close());
    const prober = await probeTo(peer);
    assertRtt(await prober.sample(0), 0);
    // Loopback keeps order: once sample 1 resolves, every datagram for sample 0 was read.
    assertRtt(await prober.sample(1), 0);
    assert.deepEqual(await prober.close(), { late: 0, duplicate: 2, stray: 1, invalid: 0 });
    assert.equal(peer.requests.length, 2);
    assert.equal(seqOf(peer.requests[0]!), 0, 'the session numbers its packets from 0');
    assert.equal(seqOf(peer.requests[1]!), 1);
  });

  test('a reply after the timeout is late, not a sample; its duplicate is a duplicate', async () => {
    let held: Buffer | undefined;
    const peer = await startPeer('127.0.0.1', (req, p) => {
      if (seqOf(req) === 0) {
        held = replyTo(req);
        return;
      }
      p.send(held!);
      p.send(held!);
      p.send(replyTo(req));
    });
    closers.push(() => peer.close());
    const prober = await probeTo(peer, '127.0.0.1', { timeoutMs: 200 });
    const first = await prober.sample(0);
    assert.equal(first.ok, false);
    assert.equal(!first.ok && first.reason, 'timeout');
    assertRtt(await prober.sample(1), 0);
    assert.deepEqual(await prober.close(), { late: 1, duplicate: 1, stray: 0, invalid: 0 });
  });

  test('a reflector claiming it held the packet longer than the round trip fails the sample', async () => {
    const peer = await startPeer('127.0.0.1', (req, p) => p.send(replyTo(req, { turnaroundMs: 60_000 })));
    closers.push(() => peer.close());
    const prober = await probeTo(peer);
    const a = await prober.sample(0);
    assert.equal(a.ok, false);
    assert.equal(!a.ok && a.reason, 'protocol');
    assert.deepEqual(a.values, {}, 'no RTT from an impossible reply');
    await prober.close();
  });

  test('authenticated: a reply with a bad HMAC is invalid, the good one counts', async () => {
    const peer = await startPeer('::1', (req, p) => {
      p.send(replyTo(req, { key: KEY, site: 'x' }).fill(0, 100, 104)); // broken packet HMAC
      const forged = replyTo(req, { key: KEY, site: 'forged' });
      forged[forged.length - 1]! ^= 0xff; // broken HMAC TLV over the site
      p.send(forged);
      p.send(
        encodeReflectorPacket(
          {
            seq: 0,
            timestamp: 2n,
            ssid: 0,
            receiveTimestamp: 1n,
            senderSeq: seqOf(req),
            senderTimestamp: 0n,
            senderErrorEstimate: 0,
            senderTtl: 0,
            tlvs: [],
            padding: 0,
          },
          OTHER_KEY,
        ),
      ); // signed with another key
      p.send(replyTo(req, { key: KEY, site: 'real-site' }));
    });
    closers.push(() => peer.close());
    const prober = await probeTo(peer, '::1', { authKey: KEY });
    const a = await prober.sample(0);
    assertOk(a);
    assert.equal(a.site, 'real-site');
    assert.equal(peer.requests[0]!.length, 112 + 36 + 20);
    assert.deepEqual(await prober.close(), { late: 0, duplicate: 0, stray: 0, invalid: 3 });
  });

  test('close() resolves a sample still waiting, and later samples fail without sending', async () => {
    const peer = await startPeer('127.0.0.1', () => {});
    closers.push(() => peer.close());
    const prober = await probeTo(peer, '127.0.0.1', { timeoutMs: 60_000 });
    const pending = prober.sample(0);
    // close only once the request is out and at the peer (a fixed 20 ms was too short on a busy machine)
    for (let waited = 0; peer.requests.length === 0 && waited < 10_000; waited += 10)
      await new Promise((r) => setTimeout(r, 10));
    await prober.close();
    const a = await pending;
    assert.equal(a.ok, false);
    const b = await prober.sample(1);
    assert.equal(b.ok, false);
    assert.equal(peer.requests.length, 1);
  });

  test('bad options throw a coded error', async () => {
    const bad: Array<
      [
        string,
        Partial<{ address: string; port: number; timeoutMs: number; siteTlvBytes: number; authKey: Buffer }>,
        RegExp,
      ]
    > = [
      ['name', { address: 'example.com' }, /not an IP address/],
      ['port', { port: 0 }, /port must be 1-65535/],
      ['timeout', { timeoutMs: 0 }, /timeout must be a positive/],
      ['site', { siteTlvBytes: 5000 }, /siteTlvBytes must be an integer 0-1024/],
      ['key', { authKey: Buffer.alloc(8) }, /at least 16 are needed/],
    ];
    for (const [, o, msg] of bad) {
      await assert.rejects(
        async () =>
          createUdpProbe(
            { endpoint: 'x', address: o.address ?? '127.0.0.1' },
            { port: o.port ?? 862, timeoutMs: o.timeoutMs ?? 1000, siteTlvBytes: o.siteTlvBytes, authKey: o.authKey },
          ),
        (e: unknown) => e instanceof AnylatError && e.code === 'ANYLAT_UDP_OPTIONS' && msg.test(e.message),
      );
    }
  });
});

// Routing failures need a network without a route or with a router that says no: a pair of private
// namespaces, so nothing leaves this machine. The prober runs inside namespace A.
describe('udp probe: unreachable targets (network namespaces)', needsRoot('network namespaces (ip netns add)'), () => {
  const run = promisify(execFile);
  const NS_A = `anylat-test-udp-${process.pid}`;
  const NS_B = `anylat-test-udpr-${process.pid}`;
  const PROBE_MODULE = fileURLToPath(new URL('../agent/probe/udp.ts', import.meta.url));
  const inNs = (ns: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, ...args]);

  before(async () => {
    try {
      await run('ip', ['netns', 'add', NS_A]);
      await run('ip', ['netns', 'add', NS_B]);
    } catch (err) {
      throw new Error(
        `these tests need network namespaces (root and iproute2: "ip netns add" failed): ${(err as Error).message}`,
      );
    }
    await inNs(NS_A, 'ip', 'link', 'set', 'lo', 'up');
    await inNs(NS_A, 'ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', NS_B);
    await inNs(NS_A, 'ip', 'addr', 'add', '10.213.0.1/24', 'dev', 'v0');
    await inNs(NS_A, 'ip', 'link', 'set', 'v0', 'up');
    await inNs(NS_A, 'ip', 'route', 'add', '10.215.0.0/24', 'via', '10.213.0.2');
    await inNs(NS_A, 'ip', 'route', 'add', 'unreachable', '10.216.0.0/24');
    await inNs(NS_B, 'ip', 'link', 'set', 'lo', 'up');
    await inNs(NS_B, 'ip', 'addr', 'add', '10.213.0.2/24', 'dev', 'v1');
    await inNs(NS_B, 'ip', 'link', 'set', 'v1', 'up');
    await inNs(NS_B, 'ip', 'route', 'add', 'unreachable', '10.215.0.0/24');
    await inNs(NS_B, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  });

  after(async () => {
    await run('ip', ['netns', 'del', NS_A]).catch(() => {});
    await run('ip', ['netns', 'del', NS_B]).catch(() => {});
  });

  test('no route and an unreachable route are `unreachable`; a router saying "host unreachable" is a timeout', async () => {
    const addresses = ['10.99.0.9', '10.216.0.9', '10.215.0.9'];
    const script = `
      import { createUdpProbe } from ${JSON.stringify(PROBE_MODULE)};
      const out = [];
      for (const address of ${JSON.stringify(addresses)}) {
        const p = await createUdpProbe({ endpoint: 'x', address }, { port: 862, timeoutMs: 1000 });
        out.push({ attempt: await p.sample(0), counters: await p.close() });
      }
      console.log(JSON.stringify(out));
    `;
    const { stdout } = await inNs(NS_A, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script);
    const results = JSON.parse(stdout) as Array<{ attempt: Attempt; counters: PacketCounters }>;
    const [noRoute, rejected, router] = results;
    // Linux reports only "hard" ICMP errors (port/protocol unreachable) to a UDP socket without
    // IP_RECVERR, which Node cannot set: a router's host-unreachable shows up as silence.
    assert.equal(!router!.attempt.ok && router!.attempt.reason, 'timeout', JSON.stringify(router));
    for (const [r, code] of [
      [noRoute, 'ENETUNREACH'],
      [rejected, 'EHOSTUNREACH'],
    ] as const) {
      assert.equal(r!.attempt.ok, false, JSON.stringify(r));
      assert.equal(!r!.attempt.ok && r!.attempt.reason, 'unreachable', JSON.stringify(r));
      assert.match(!r!.attempt.ok ? (r!.attempt.detail ?? '') : '', new RegExp(code));
      assert.ok(r!.attempt.t1 - r!.attempt.t0 < 1000, 'failed before the timeout');
      assert.deepEqual(r!.counters, ZERO);
    }
  });
});
