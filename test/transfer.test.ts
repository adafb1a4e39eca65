// The transfer protocol on real sockets: the reflector's `GET /bytes/N` (exactly N bytes, N capped,
// a per-source byte budget), the transfer probe's ttfb / download / goodput against it, through a
// relay that adds a known delay.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { MAX_TRANSFER_BYTES } from '../agent/reflector/bytes.ts';

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('reflector GET /bytes/N', () => {
  let reflector: RunningReflector;
  let port: number;
  before(async () => {
    reflector = await startReflector({ site: 'edge-x', binds: ['127.0.0.1'], udp: false, tcp: false, http: { port: 0, bytesPerSecond: 1024 * 1024 }, log: () => {} });
    port = reflector.listening.find((l) => l.kind === 'http')!.port;
  });
  after(() => reflector.close());

  test('sends exactly N bytes with its length and the site header, up to the cap', async () => {
    for (const n of [0, 1, 16 * 1024, 256 * 1024 + 7, 2 * 1024 * 1024]) {
      const r = await get(port, `/bytes/${n}`);
      assert.equal(r.status, 200, `N=${n}`);
      assert.equal(r.bytes, n, `N=${n}`);
      assert.equal(r.headers['content-length'], String(n));
      assert.equal(r.headers['x-anylat-site'], 'edge-x');
    }
    const head = await get(port, `/bytes/${MAX_TRANSFER_BYTES}`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(MAX_TRANSFER_BYTES));
    assert.equal(head.bytes, 0);
  });

  test('refuses N above the cap and malformed N with 400 and a short body; never sends more than the cap', async () => {
    const before = reflector.stats().http!.bytes_sent!;
    for (const path of [`/bytes/${MAX_TRANSFER_BYTES + 1}`, '/bytes/99999999999', '/bytes/-1', '/bytes/1e6', '/bytes/']) {
      const r = await get(port, path);
      assert.equal(r.status, 400, path);
      assert.ok(r.bytes < 200, `${path}: ${r.bytes} bytes of error`);
    }
    assert.equal(reflector.stats().http!.bytes_sent, before, 'no body bytes for refused requests');
  });

  test('a source past its byte budget gets 429 with Retry-After before any body byte', async () => {
    // A fresh reflector with a budget of 1 MiB/s and the default burst (64 MiB).
    const r = await startReflector({ site: 's', binds: ['127.0.0.1'], udp: false, tcp: false, http: { port: 0, bytesPerSecond: 1024 * 1024 }, log: () => {} });
    const MiB = 1024 * 1024;
    try {
      const p = r.listening[0]!.port;
      const statuses: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 24; i++) statuses.push((await get(p, `/bytes/${4 * MiB}`)).status);
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(statuses[0], 200);
      assert.equal(statuses.at(-1), 429, statuses.join(','));
      // Once refused, refused until it refills: the statuses are 200s then 429s.
      assert.deepEqual(statuses, [...statuses].sort((a, b) => a - b));
      const refused = await get(p, `/bytes/${4 * MiB}`);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      const sent = r.stats().http!.bytes_sent!;
      assert.equal(sent, statuses.filter((s) => s === 200).length * 4 * MiB, 'whole bodies only');
      assert.ok(sent <= 64 * MiB + (seconds + 1) * MiB, `${sent / MiB} MiB sent in ${seconds.toFixed(1)} s: at most the burst plus the refill`);
    } finally {
      await r.close();
    }
  });
});
