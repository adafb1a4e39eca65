// The http probe under a blocked event loop, on real loopback sockets: the reflector runs in its
// own process (a stall here must not hold up its answers), and this process stalls right after a
// request is written, while the response is on its way. What the kernel timed (connect, ttfb,
// warm, and total as their sum) keeps the true value and carries no lag window; what the monotonic
// clock timed says which callback lag could have reached.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Attempt } from '../agent/core/model.ts';
import { httpProber } from '../agent/probe/http.ts';
import { lagFlags } from '../agent/round/run-round.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { TIMER_EARLY_MS } from './support/net.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const linuxOnly = { skip: process.platform !== 'linux' && 'the kernel clock reads TCP_INFO (Linux)' };
const STALL_MS = 300;
// The kernel's figures on loopback are well under a millisecond; this leaves room for a busy
// machine (the reflector's process not scheduled at once) and still far below the stall.
const UNDER_STALL_MS = STALL_MS / 2;

let reflector: ChildProcess | undefined;
let port = 0;

before(async () => {
  reflector = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'agent/cli.ts',
      'reflector',
      '--bind',
      '127.0.0.1',
      '--no-udp',
      '--no-tcp',
      '--http-port',
      '0',
      '--site',
      'far',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    reflector!.stdout!.on('data', (chunk: Buffer) => {
      out += String(chunk);
      const m = /listening http 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    reflector!.once('exit', (code) => reject(new Error(`reflector exited (${code}): ${out}`)));
  });
});
after(() => {
  reflector?.kill('SIGTERM');
});

/**
 * Samples with the event loop blocked for STALL_MS in the check phase right after the request
 * `onWrite` picks (0: the first, 1: the warm one) was handed to the socket, while its response
 * is on its way back. Returns each attempt with the wall-clock span the caller waited.
 */
async function stalledSamples(
  url: string,
  n: number,
  onWrite: 0 | 1,
  options: { warm?: boolean } = {},
): Promise<Array<{ attempt: Attempt; spanMs: number }>> {
  const probe = httpProber(
    { endpoint: 'test', address: '127.0.0.1' },
    { url, timeoutMs: 5000, warm: options.warm ?? true },
  );
  let writes = 0;
  const onSend = () => {
    if (writes++ !== onWrite) return;
    setImmediate(() => {
      const until = performance.now() + STALL_MS;
      while (performance.now() < until);
    });
  };
  // Subscribed after the probe's own subscriber: the probe has stamped the write already.
  subscribe('undici:client:sendHeaders', onSend);
  const out: Array<{ attempt: Attempt; spanMs: number }> = [];
  try {
    await probe.sample(-1); // loads undici's parser and JIT outside the timed samples
    for (let seq = 0; seq < n; seq++) {
      writes = 0;
      const t = performance.now();
      const attempt = await probe.sample(seq);
      // Let the stall run if the sample finished before it (then it reached nothing to assert).
      await new Promise((resolve) => setImmediate(resolve));
      out.push({ attempt, spanMs: performance.now() - t });
    }
  } finally {
    unsubscribe('undici:client:sendHeaders', onSend);
    await probe.close();
  }
  return out;
}

describe('http probe: a blocked event loop', () => {
  test(
    'a stall while the first response is on its way is in none of connect, ttfb and total (the kernel timed them) and they carry no lag window',
    linuxOnly,
    async () => {
      const lag = new LagMonitor({ thresholdMs: 1 }).start();
      try {
        const samples = await stalledSamples(`http://svc.anylat.test:${port}/`, 2, 0, { warm: false });
        for (const { attempt: a, spanMs } of samples) {
          assert.equal(a.ok, true, JSON.stringify(a));
          assert.ok(spanMs >= STALL_MS - TIMER_EARLY_MS, `the stall held the sample up: ${spanMs} ms`);
          const { connect, ttfb, total } = a.values;
          assert.ok(
            total! < UNDER_STALL_MS,
            `total ${total} ms while the sample took ${spanMs.toFixed(1)} ms: the stall is in it`,
          );
          assert.ok(connect! + ttfb! <= total!, JSON.stringify(a.values));
          for (const m of ['connect', 'ttfb', 'total'] as const)
            assert.ok(!(m in a.lagWindows!), `${m} has a lag window: ${JSON.stringify(a.lagWindows)}`);
          // So the round flags none of them, though the loop was blocked inside the sample.
          assert.deepEqual(lagFlags(a, 'whole', lag), { connect: false, ttfb: false, total: false });
        }
      } finally {
        lag.stop();
      }
    },
  );

  test(
    'a stall while the warm response is on its way is not in warm (the kernel timed it) and warm carries no lag window',
    linuxOnly,
    async () => {
      const samples = await stalledSamples(`http://svc.anylat.test:${port}/`, 2, 1);
      for (const { attempt: a, spanMs } of samples) {
        assert.equal(a.ok, true, JSON.stringify(a));
        assert.ok(spanMs >= STALL_MS - TIMER_EARLY_MS, `the stall held the sample up: ${spanMs} ms`);
        assert.ok(
          a.values.warm! > 0 && a.values.warm! < UNDER_STALL_MS,
          `warm ${a.values.warm} ms while the sample took ${spanMs.toFixed(1)} ms: the stall is in it`,
        );
        assert.ok(!('warm' in a.lagWindows!), `warm has a lag window: ${JSON.stringify(a.lagWindows)}`);
      }
    },
  );

  test(
    "a server that acknowledges first: ttfb, warm and total come from the response's kernel receive timestamp, and a stall while it is on its way is in none of them",
    linuxOnly,
    async () => {
      const LATE_MS = 300; // after TCP_DELACK_MAX (200 ms): a bare ACK goes first, TCP_INFO has no sample
      const STALL = { afterMs: 50, ms: 500 }; // covers the response's arrival, however late the server's timer
      const server = spawn(
        process.execPath,
        [
          '-e',
          `require('node:http').createServer((q, r) => setTimeout(() => r.end('late'), ${LATE_MS})).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        const serverPort = await new Promise<number>((resolve) =>
          server.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
        );
        const probe = httpProber(
          { endpoint: 'test', address: '127.0.0.1' },
          { url: `http://svc.anylat.test:${serverPort}/`, timeoutMs: 5000 },
        );
        const onSend = () => {
          setTimeout(() => {
            const until = performance.now() + STALL.ms;
            while (performance.now() < until);
          }, STALL.afterMs);
        };
        subscribe('undici:client:sendHeaders', onSend);
        try {
          // One sample: two stalls of half a second already hold a CPU that other tests share.
          for (let seq = 0; seq < 1; seq++) {
            const t = performance.now();
            const a = await probe.sample(seq);
            const spanMs = performance.now() - t;
            assert.equal(a.ok, true, JSON.stringify(a));
            assert.ok(
              spanMs >= 2 * (STALL.afterMs + STALL.ms) - TIMER_EARLY_MS,
              `both responses waited for a stall: ${spanMs} ms`,
            );
            const { ttfb, warm, total } = a.values;
            for (const [m, v] of [
              ['ttfb', ttfb],
              ['warm', warm],
            ] as const) {
              assert.ok(v! >= LATE_MS - TIMER_EARLY_MS, `${m} ${v} ms holds the server's ${LATE_MS} ms`);
              assert.ok(v! < STALL.afterMs + STALL.ms - TIMER_EARLY_MS, `${m} ${v} ms: the stall is in it`);
            }
            assert.ok(total! >= ttfb! && total! < STALL.afterMs + STALL.ms, `total ${total} ms`);
            for (const m of ['ttfb', 'total', 'warm'] as const)
              assert.ok(!(m in a.lagWindows!), `${m} has a lag window: ${JSON.stringify(a.lagWindows)}`);
          }
        } finally {
          unsubscribe('undici:client:sendHeaders', onSend);
          await probe.close();
        }
        assert.equal(probe.ttfbTiming().arrival, 1, JSON.stringify(probe.ttfbTiming()));
      } finally {
        server.kill('SIGTERM');
      }
    },
  );

  test(
    "while the probe holds Node's reading back for the receive timestamp, a server that closes or resets without answering still ends the sample at once",
    linuxOnly,
    async () => {
      for (const how of ['end', 'reset'] as const) {
        const server = net.createServer((socket) => {
          socket.once('data', () => (how === 'end' ? socket.end() : socket.resetAndDestroy()));
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        try {
          const probe = httpProber(
            { endpoint: 'test', address: '127.0.0.1' },
            { url: `http://svc.anylat.test:${(server.address() as AddressInfo).port}/`, timeoutMs: 20_000 },
          );
          const t = performance.now();
          const a = await probe.sample(0);
          const took = performance.now() - t;
          await probe.close();
          assert.equal(a.ok, false, JSON.stringify(a));
          assert.ok(a.ok === false && a.reason !== 'timeout', `${how}: ${JSON.stringify(a)}`);
          assert.ok(took < 10_000, `${how}: the sample waited ${took} ms for a closed connection`);
        } finally {
          server.close();
        }
      }
    },
  );

  test('the monotonic clock still times the whole wait, and names only the callbacks lag could reach', async () => {
    const LATE_MS = 300;
    let requests = 0;
    const server: Server = createServer((_req, res) => {
      // Only the warm request is late.
      if (requests++ % 2 === 0) res.end('now');
      else setTimeout(() => res.end('late'), LATE_MS);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const probe = httpProber(
        { endpoint: 'test', address: '127.0.0.1' },
        {
          url: `http://svc.anylat.test:${(server.address() as AddressInfo).port}/`,
          timeoutMs: 5000,
          ttfbClock: 'monotonic',
        },
      );
      const a = await probe.sample(0);
      await probe.close();
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.ok(a.values.warm! >= LATE_MS - TIMER_EARLY_MS, `warm ${a.values.warm} ms`);
      const w = a.lagWindows!.warm as ReadonlyArray<readonly [number, number]>;
      assert.ok(Array.isArray(w) && w.length >= 1, JSON.stringify(a.lagWindows));
      // Single callbacks (the headers', maybe the body's end), all at the end of the wait: a stall
      // during the 300 ms the server took would reach none of them.
      for (const [from, to] of w) {
        assert.equal(from, to);
        assert.ok(from >= a.t1 - 50, `an exposed callback at ${from} long before the response at ${a.t1}`);
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
