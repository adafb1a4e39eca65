// Kernel receive timestamps (SIOCGSTAMPNS) for UDP: a datagram that waits behind a blocked event
// loop is timed at its arrival, both by the udp probe (the reply) and by the STAMP reflector (T2,
// so the sender subtracts the reflector's own delay). Linux only, like the feature.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { loadRxTimestamps, RxTimestamps } from '../agent/net/rx-timestamp.ts';
import { createUdpProbe, type UdpProber } from '../agent/probe/udp.ts';
import { decodeReflectorPacket, encodeSenderPacket, ntpDiffMs, WallClock } from '../agent/core/stamp-codec.ts';
import { startStampReflector } from '../agent/reflector/stamp.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { startAnylat } from './support/net.ts';

// Long enough that a busy machine's scheduling (tens of ms) cannot pass for it.
const STALL_MS = 250;

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

function bound(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
}

// Only a connected socket sends synchronously (an unconnected one looks the address up first), so
// the datagram leaves before the stall.
function connected(socket: Socket, port: number): Promise<void> {
  return new Promise((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
}

/**
 * Linux starts stamping packets in deferred work when the first socket asks (agent/net/stamps-on.ts),
 * and until that work has run a datagram carries no stamp: SIOCGSTAMPNS then reports the moment of
 * the call. Waits until a datagram handled 5 ms after it arrived reads as such, so the timed datagram
 * below tests the stamp, not how soon the kernel's work queue ran on a busy machine.
 */
async function untilStamped(rx: Socket, tx: Socket, stamps: RxTimestamps): Promise<void> {
  let last = 0;
  for (let i = 0; i < 100; i++) {
    const got = new Promise<number | undefined>((resolve) =>
      rx.once('message', () => {
        const handledAt = performance.now();
        const receivedAt = stamps.receivedAt();
        resolve(receivedAt === undefined ? undefined : handledAt - receivedAt);
      }),
    );
    tx.send(Buffer.from('w'));
    block(5);
    last = (await got) ?? 0;
    if (last >= 4) return;
  }
  assert.fail(`the kernel never stamped a datagram in 100 tries (last one handled ${last} ms after its stamp)`);
}

test('rx timestamps are available here (Linux, koffi)', () => {
  assert.equal(process.platform, 'linux');
  assert.equal(loadRxTimestamps(), true);
});

test('RxTimestamps: a datagram handled after a stall is stamped when it arrived', async () => {
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  await bound(rx);
  await connected(tx, rx.address().port);
  const stamps = RxTimestamps.enable(rx);
  assert.ok(stamps, 'stamping turned on');
  try {
    await untilStamped(rx, tx, stamps);
    const got = new Promise<{ handledAt: number; receivedAt: number | undefined }>((resolve) =>
      rx.once('message', () => {
        const handledAt = performance.now();
        resolve({ handledAt, receivedAt: stamps.receivedAt() });
      }),
    );
    const sentAt = performance.now();
    tx.send(Buffer.from('x'));
    block(STALL_MS);
    const { handledAt, receivedAt } = await got;
    assert.ok(receivedAt !== undefined, 'the kernel stamped it');
    assert.ok(handledAt - sentAt >= STALL_MS, 'handled after the stall');
    assert.ok(receivedAt >= sentAt, `received ${receivedAt - sentAt} ms after sending`);
    // The stamp is when the kernel had it, not when the blocked loop got to it: the stall (or most of
    // it: the send itself may wait for the CPU on a busy machine) lies between the two.
    assert.ok(
      handledAt - receivedAt >= STALL_MS / 2,
      `received ${receivedAt - sentAt} ms after sending, handled ${handledAt - receivedAt} ms after that: the stall is not in the stamp`,
    );
  } finally {
    rx.close();
    tx.close();
  }
});

describe('udp probe against a reflector in another process', () => {
  let reflector: Awaited<ReturnType<typeof startAnylat>>;
  let port: number;
  before(async () => {
    reflector = await startAnylat(
      ['reflector', '--bind', '127.0.0.1', '--udp-port', '0', '--no-tcp', '--no-http', '--rate-limit', '0'],
      { ready: /listening udp/ },
    );
    port = Number(/listening udp +127\.0\.0\.1:(\d+)/.exec(reflector.output())![1]);
  });
  after(() => reflector.stop());

  test('a reply that waits behind a blocked event loop is timed at its kernel arrival', async () => {
    const prober = (await createUdpProbe(
      { endpoint: 'r', address: '127.0.0.1' },
      { port, timeoutMs: 2000 },
    )) as UdpProber;
    assert.equal(prober.rxClock, 'kernel');
    try {
      await prober.sample(0); // the reflector's first packet compiles its code paths
      const pending = prober.sample(1);
      block(STALL_MS);
      const a = await pending;
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.ok(a.values.rtt! < STALL_MS / 2, `rtt ${a.values.rtt} ms must not hold the ${STALL_MS} ms stall`);
    } finally {
      await prober.close();
    }
  });
});

describe('STAMP reflector T2', () => {
  let part: ReflectorPart;
  before(async () => {
    part = await startStampReflector({ site: 's', binds: ['127.0.0.1'], port: 0, ratePerSourcePps: 0, log: () => {} });
  });
  after(() => part.close());

  test('T2 is when the request arrived, so a reflector held up by its own loop reports the hold in T3 − T2', async () => {
    const sender = createSocket('udp4');
    await connected(sender, part.listening[0]!.port);
    try {
      const reply = new Promise<Buffer>((resolve) => sender.once('message', (m) => resolve(m)));
      const clock = new WallClock();
      sender.send(encodeSenderPacket({ seq: 0, timestamp: clock.ntp(performance.now()), ssid: 7, tlvs: [] }));
      // The reflector shares this loop: it gets to the request only after the stall.
      block(STALL_MS);
      const decoded = decodeReflectorPacket(await reply, undefined);
      assert.ok(decoded.ok);
      const held = ntpDiffMs(decoded.packet.timestamp, decoded.packet.receiveTimestamp);
      assert.ok(held >= STALL_MS / 2, `T3 − T2 = ${held} ms: the reflector's stall is its own hold time`);
    } finally {
      sender.close();
    }
  });
});
