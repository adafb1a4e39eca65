// A stalled event loop (a busy machine, a blocking call) must not turn a reply that arrived in time
// into a timeout. After a stall Node runs due timers before it reads sockets, so a probe whose
// timeout fired in the same turn as its reply became readable used to report `timeout` for a
// target that had answered. The reflector runs in a process of its own, so it answers during the
// stall; the stall is a busy wait well past the probe's timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createTcpProbe } from '../agent/probe/tcp.ts';
import { createUdpProbe } from '../agent/probe/udp.ts';
import { startAnylat } from './support/net.ts';

let reflector: Awaited<ReturnType<typeof startAnylat>>;
let udpPort: number;
let tcpPort: number;

before(async () => {
  reflector = await startAnylat(
    ['reflector', '--bind', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--no-http', '--site', 'stall'],
    { ready: /listening tcp .*\n/ },
  );
  udpPort = Number(/listening udp +127\.0\.0\.1:(\d+)/.exec(reflector.output())![1]);
  tcpPort = Number(/listening tcp +127\.0\.0\.1:(\d+)/.exec(reflector.output())![1]);
});

after(async () => {
  await reflector?.stop();
});

/** Blocks this thread for `ms`, as a long synchronous call would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

test('udp: a reply that arrived during a stall longer than the timeout is an answer, not a timeout', async () => {
  const prober = await createUdpProbe({ endpoint: 'anycast', address: '127.0.0.1' }, { port: udpPort, timeoutMs: 100 });
  const pending = prober.sample(0);
  stall(1_000);
  const a = await pending;
  await prober.close();
  assert.equal(a.ok, true, JSON.stringify(a));
  if (a.ok) assert.equal(a.site, 'stall');
});

test('tcp: a connect that completed during a stall longer than the timeout is an answer, not a timeout', async () => {
  const prober = await createTcpProbe(
    { endpoint: 'anycast', address: '127.0.0.1' },
    { port: tcpPort, timeoutMs: 100, echo: false },
  );
  const pending = prober.sample(0);
  stall(1_000);
  const a = await pending;
  await prober.close();
  assert.equal(a.ok, true, JSON.stringify(a));
});

test('a target that does not answer still times out (the verdict waits one turn, not forever)', async () => {
  // A socket that takes every datagram and answers none.
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  try {
    const prober = await createUdpProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { port: silent.address().port, timeoutMs: 100 },
    );
    const a = await prober.sample(0);
    await prober.close();
    assert.equal(a.ok, false);
    if (!a.ok) assert.equal(a.reason, 'timeout');
  } finally {
    silent.close();
  }
});
