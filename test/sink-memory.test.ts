// The sink's writer lives as long as the agent and passes every request the same long-lived
// signal (the sink's stop/drain signal). On Node 20, combining that signal with a per-request
// timeout through AbortSignal.any kept every request alive — its callbacks and its line-protocol
// body — until the agent stopped: a soak grew ~9 KB a round. These tests send many writes with one
// long-lived signal to a real HTTP server on loopback, force a GC and check what is left.
import { strict as assert } from 'node:assert';
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InfluxWriter } from '../agent/sink/influx-writer.ts';
import { linkSignal } from '../agent/util/abort.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

describe('sink memory with a long-lived signal', () => {
  let server: Server;
  let port = 0;
  let writes = 0;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        writes++;
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('2,000 writes of 16 kB with one long-lived signal leave the heap (after GC) and its listeners as they were', async (t) => {
    const writer = new InfluxWriter(
      { url: `http://127.0.0.1:${port}`, org: 'o', bucket: 'b', token: 't', gzipThresholdBytes: 1 << 30 },
      () => {},
    );
    const longLived = new AbortController();
    // Each body is distinct, so a retained body cannot be shared with another one.
    const body = (i: number) =>
      Array.from({ length: 80 }, (_, j) =>
        `latency,agent=a,service=s${j} p50_ms=${i}.${j} ${1_700_000_000_000 + i}`.padEnd(200, ' '),
      );
    for (let i = 0; i < 50; i++) assert.equal((await writer.write(body(i), longLived.signal)).kind, 'ok');
    const before = await settledHeap();
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const res = await writer.write(body(i), longLived.signal);
      assert.equal(res.kind, 'ok');
    }
    const afterHeap = await settledHeap();
    const grewMb = (afterHeap - before) / 1e6;
    t.diagnostic(
      `heap after GC: ${(before / 1e6).toFixed(1)} MB -> ${(afterHeap / 1e6).toFixed(1)} MB over ${n} writes`,
    );
    // Retaining each request would keep n × 16 kB = 32 MB of bodies alone; a bound of 8 MB holds
    // on a loaded machine and still catches a leak of a quarter of the requests.
    assert.ok(
      grewMb < 8,
      `heap after GC grew by ${grewMb.toFixed(1)} MB over ${n} writes (from ${(before / 1e6).toFixed(1)} MB)`,
    );
    assert.equal(
      getEventListeners(longLived.signal, 'abort').length,
      0,
      'no abort listener left on the long-lived signal',
    );
    assert.ok(writes >= n + 50);
  });

  test('a write aborted by the long-lived signal is reported as aborted, a timed-out one as retry', async () => {
    const hang = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    const hangPort = (hang.address() as { port: number }).port;
    try {
      const writer = new InfluxWriter(
        { url: `http://127.0.0.1:${hangPort}`, org: 'o', bucket: 'b', timeoutMs: 300 },
        () => {},
      );
      const longLived = new AbortController();
      const timedOut = await writer.write(['m f=1 1'], longLived.signal);
      assert.equal(timedOut.kind, 'retry');
      assert.match((timedOut as { message: string }).message, /within 300 ms/);
      const pending = writer.write(['m f=1 1'], longLived.signal);
      setTimeout(() => longLived.abort(), 100);
      assert.equal((await pending).kind, 'aborted');
      assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
    } finally {
      hang.closeAllConnections();
      await new Promise<void>((resolve) => hang.close(() => resolve()));
    }
  });
});

describe('linkSignal', () => {
  test('forwards the parent abort with its reason, then lets go of the parent', () => {
    const parent = new AbortController();
    const link = linkSignal(parent.signal, 60_000);
    assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
    parent.abort('shutdown');
    assert.equal(link.signal.aborted, true);
    assert.equal(link.signal.reason, 'shutdown');
    assert.equal(link.reason, 'parent');
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  });

  test('times out on its own with a TimeoutError and removes its parent listener', async () => {
    const parent = new AbortController();
    const link = linkSignal(parent.signal, 20);
    await new Promise<void>((resolve) => link.signal.addEventListener('abort', () => resolve(), { once: true }));
    assert.equal(link.reason, 'timeout');
    assert.equal((link.signal.reason as DOMException).name, 'TimeoutError');
    assert.equal(parent.signal.aborted, false);
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  });

  test('dispose() detaches: 10,000 links on one parent leave no listener', () => {
    const parent = new AbortController();
    for (let i = 0; i < 10_000; i++) linkSignal(parent.signal, 60_000).dispose();
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  });

  test('an already aborted parent gives an aborted child', () => {
    const parent = new AbortController();
    parent.abort('gone');
    const link = linkSignal(parent.signal, 1000);
    assert.equal(link.signal.aborted, true);
    assert.equal(link.signal.reason, 'gone');
  });
});

describe('no AbortSignal.any in the agent', () => {
  test('no source file under agent/ combines signals with AbortSignal.any (Node 20 keeps them alive; use linkSignal)', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = new URL('../agent/', import.meta.url).pathname;
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|js)$/.test(e.name)) {
          // Code lines only: comments may name what not to do.
          const code = readFileSync(p, 'utf8')
            .split('\n')
            .filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l));
          if (code.some((l) => /AbortSignal\.any\s*\(/.test(l))) offenders.push(p.slice(root.length));
        }
      }
    };
    walk(root);
    assert.deepEqual(offenders, []);
  });
});
