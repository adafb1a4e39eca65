// The probe skeleton (agent/probe/sample.ts): one deadline, the round's signal linked to it, every
// abort the one outcome `timeout`, cleanups run once, close() ends what is in flight. The last
// tests drive real probers on loopback through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventEmitter, once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { runSample, SampleRuns } from '../agent/probe/sample.ts';
import { failureReason, ProbeFailure, socketFailureReason } from '../agent/probe/outcome.ts';
import { createTcpProbe } from '../agent/probe/tcp.ts';
import { createDnsProbe } from '../agent/probe/dns.ts';
import type { Attempt } from '../agent/core/model.ts';

function failed(a: Attempt): Extract<Attempt, { ok: false }> {
  assert.equal(a.ok, false, JSON.stringify(a));
  return a as Extract<Attempt, { ok: false }>;
}

test('the deadline ends a silent sample as a timeout, with the detail the probe gives, and runs its cleanups once', async () => {
  let cleaned = 0;
  let phase = 'connect';
  const a = failed(
    await runSample({ timeoutMs: 50, timeoutDetail: () => `no ${phase} within 50 ms` }, undefined, (run) => {
      run.defer(() => cleaned++);
      phase = 'reply';
    }),
  );
  assert.equal(a.reason, 'timeout');
  assert.equal(a.detail, 'no reply within 50 ms');
  assert.ok(a.t1 - a.t0 >= 40, `not before the deadline (${a.t1 - a.t0} ms)`);
  assert.equal(cleaned, 1);
});

test("the round's signal ends a sample at once as a timeout, long before its own deadline", async () => {
  const round = new AbortController();
  let signal: AbortSignal | undefined;
  const pending = runSample({ timeoutMs: 60_000 }, round.signal, (run) => {
    signal = run.signal;
  });
  setTimeout(() => round.abort(), 20);
  const a = failed(await pending);
  assert.equal(a.reason, 'timeout');
  assert.match(a.detail ?? '', /round stopped waiting/);
  assert.equal(signal?.aborted, true, "the sample's own signal aborted too");
  // An already aborted round starts nothing that lasts.
  const b = failed(await runSample({ timeoutMs: 60_000 }, round.signal, () => {}));
  assert.equal(b.reason, 'timeout');
});

test('the first settle wins; the failure shape carries what was measured; the sample signal aborts when it ends', async () => {
  const a = failed(
    await runSample({ timeoutMs: 1000 }, undefined, (run) => {
      const values = { connect: 1.5 };
      run.onFailure((f) => ({ ...f, values, site: 'edge-1' }));
      run.fail('refused', 'ECONNREFUSED');
      run.settle({ ok: true, t0: run.t0, t1: run.t0, values: {} });
      assert.equal(run.signal.aborted, true);
    }),
  );
  assert.equal(a.reason, 'refused');
  assert.deepEqual(a.values, { connect: 1.5 });
  assert.equal(a.site, 'edge-1');
});

test('a throw is a failed sample, classified when it is a target failure, never a rejection', async () => {
  const thrown = failed(
    await runSample({ timeoutMs: 1000 }, undefined, () => {
      throw new Error('bug');
    }),
  );
  assert.deepEqual([thrown.reason, thrown.detail], ['error', 'bug']);
  const rejected = failed(
    await runSample({ timeoutMs: 1000 }, undefined, async () => {
      await Promise.resolve();
      throw new ProbeFailure('dns', 'lookup x: ENOTFOUND');
    }),
  );
  assert.deepEqual([rejected.reason, rejected.detail], ['dns', 'lookup x: ENOTFOUND']);
});

test('close() ends the samples in flight as errors and refuses new ones without running them', async () => {
  const runs = new SampleRuns('demo');
  let cleaned = 0;
  const pending = runs.run({ timeoutMs: 60_000 }, undefined, (run) => run.defer(() => cleaned++));
  runs.close();
  const a = failed(await pending);
  assert.deepEqual([a.reason, a.detail], ['error', 'probe closed']);
  assert.equal(cleaned, 1);
  let ran = false;
  const b = failed(
    await runs.run({ timeoutMs: 1000 }, undefined, () => {
      ran = true;
    }),
  );
  assert.deepEqual([b.reason, b.detail, ran], ['error', 'demo prober is closed', false]);
});

test('one table classifies every probe error', () => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(socketFailureReason(err('ECONNREFUSED')), 'refused');
  assert.equal(socketFailureReason(err('EADDRNOTAVAIL')), 'unreachable');
  assert.equal(socketFailureReason(err('UND_ERR_SOCKET')), 'reset');
  assert.equal(socketFailureReason(err('UND_ERR_HEADERS_TIMEOUT')), 'timeout');
  assert.equal(socketFailureReason(err('ENOTFOUND')), 'dns');
  assert.equal(socketFailureReason(err('HPE_INVALID_CONSTANT')), 'protocol');
  assert.equal(socketFailureReason(err('DEPTH_ZERO_SELF_SIGNED_CERT')), 'tls');
  assert.equal(socketFailureReason(err('ERR_SSL_WRONG_VERSION_NUMBER')), 'tls');
  assert.equal(socketFailureReason(err('EACCES')), undefined);
  assert.equal(failureReason(err('EACCES'), 'unreachable'), 'unreachable');
  assert.equal(failureReason(new ProbeFailure('http_status', 'HTTP 503'), 'error'), 'http_status');
});

test("a real tcp echo waiting on a silent server: the round's signal ends it at once and its connection is closed", async () => {
  const server = net.createServer();
  const closed: Array<Promise<unknown>> = [];
  server.on('connection', (socket) => {
    socket.on('error', () => {});
    // Read (and drop) the echo requests, so the far end's FIN surfaces as 'end' and then 'close'.
    socket.resume();
    closed.push(once(socket, 'close'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const probe = await createTcpProbe(
    { endpoint: 'silent', address: '127.0.0.1' },
    { port, timeoutMs: 60_000, echo: true },
  );
  try {
    const round = new AbortController();
    const pending = probe.sample(0, round.signal);
    while (closed.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const abortedAt = performance.now();
    round.abort();
    const a = failed(await pending);
    assert.equal(a.reason, 'timeout');
    assert.match(a.detail ?? '', /^echo: .*round stopped waiting/);
    assert.ok(a.values.connect !== undefined, 'the connect it timed is kept');
    assert.ok(a.t1 >= abortedAt);
    await closed[0];
  } finally {
    await probe.close();
    server.close();
  }
});

test('a real dns query over udp to a silent socket: the deadline ends it, and the answer that comes after is not taken', async () => {
  const { createSocket } = await import('node:dgram');
  const silent = createSocket('udp4');
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  const probe = await createDnsProbe(
    { endpoint: 'silent', address: '127.0.0.1' },
    { port: silent.address().port, timeoutMs: 100 },
  );
  try {
    const a = failed(await probe.sample(0));
    assert.equal(a.reason, 'timeout');
    assert.match(a.detail ?? '', /no answer from 127\.0\.0\.1:\d+ within 100 ms/);
  } finally {
    await probe.close();
    silent.close();
  }
});

test("a sample leaves nothing on the round's long-lived signal once it is over", async () => {
  const round = new AbortController();
  const runs = new SampleRuns('demo');
  for (let i = 0; i < 200; i++) {
    await runs.run({ timeoutMs: 60_000 }, round.signal, (run) => {
      assert.equal(EventEmitter.getEventListeners(round.signal, 'abort').length, 1, 'linked while the sample runs');
      setImmediate(() => run.settle({ ok: true, t0: run.t0, t1: performance.now(), values: { rtt: 1 } }));
    });
  }
  assert.equal(EventEmitter.getEventListeners(round.signal, 'abort').length, 0);
});
