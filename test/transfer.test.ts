// The transfer protocol on real sockets: the reflector's `GET /bytes/N` (exactly N bytes, N capped,
// a per-source byte budget), the transfer probe's ttfb / download / goodput against it, through a
// relay that adds a known delay.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compareSpec } from '../agent/commands/compare.ts';
import { parseConfig } from '../agent/config/load.ts';
import { createTransferProbe } from '../agent/probe/transfer.ts';
import { startReflector, type RunningReflector } from '../agent/reflector/index.ts';
import { MAX_TRANSFER_BYTES } from '../agent/reflector/bytes.ts';
import { runRound, type ObservedSample } from '../agent/round/run-round.ts';
import { openStore } from '../agent/store/index.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { UsageError } from '../agent/util/errors.ts';
import { LagMonitor } from '../agent/util/lag.ts';
import { startDelayRelay, type DelayRelay } from '../bench/lib/delay-relay.ts';
import { refusedPort, TIMER_EARLY_MS } from './support/net.ts';
import Database from 'better-sqlite3';
import { benefitReport } from './support/benefit-report.ts';

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
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
    reflector = await startReflector({
      site: 'edge-x',
      binds: ['127.0.0.1'],
      udp: false,
      tcp: false,
      http: { port: 0, bytesPerSecond: 1024 * 1024 },
      log: () => {},
    });
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
    for (const path of [
      `/bytes/${MAX_TRANSFER_BYTES + 1}`,
      '/bytes/99999999999',
      '/bytes/-1',
      '/bytes/1e6',
      '/bytes/',
    ]) {
      const r = await get(port, path);
      assert.equal(r.status, 400, path);
      assert.ok(r.bytes < 200, `${path}: ${r.bytes} bytes of error`);
    }
    assert.equal(reflector.stats().http!.bytes_sent, before, 'no body bytes for refused requests');
  });

  test('a source past its byte budget gets 429 with Retry-After before any body byte', async () => {
    // A fresh reflector with a budget of 1 MiB/s and the default burst (64 MiB).
    const r = await startReflector({
      site: 's',
      binds: ['127.0.0.1'],
      udp: false,
      tcp: false,
      http: { port: 0, bytesPerSecond: 1024 * 1024 },
      log: () => {},
    });
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
      assert.deepEqual(
        statuses,
        [...statuses].sort((a, b) => a - b),
      );
      const refused = await get(p, `/bytes/${4 * MiB}`);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      const sent = r.stats().http!.bytes_sent!;
      assert.equal(sent, statuses.filter((s) => s === 200).length * 4 * MiB, 'whole bodies only');
      assert.ok(
        sent <= 64 * MiB + (seconds + 1) * MiB,
        `${sent / MiB} MiB sent in ${seconds.toFixed(1)} s: at most the burst plus the refill`,
      );
    } finally {
      await r.close();
    }
  });
});

describe('transfer probe and rounds', () => {
  const DELAY_MS = 20;
  let reflector: RunningReflector;
  let httpPort: number;
  let udpPort: number;
  let far: DelayRelay;
  before(async () => {
    reflector = await startReflector({
      site: 'origin-1',
      binds: ['127.0.0.1'],
      udp: { port: 0, ratePerSourcePps: 0 },
      tcp: false,
      http: { port: 0, bytesPerSecond: 0 },
      log: () => {},
    });
    httpPort = reflector.listening.find((l) => l.kind === 'http')!.port;
    udpPort = reflector.listening.find((l) => l.kind === 'udp')!.port;
    // "far": 127.0.0.2 holds every chunk DELAY_MS each way, on the reflector's ports.
    far = await startDelayRelay({
      listen: '127.0.0.2',
      target: '127.0.0.1',
      delayMs: DELAY_MS,
      udpPort,
      tcpPort: httpPort,
    });
  });
  after(async () => {
    await far.close();
    await reflector.close();
  });

  test('downloads each size whole: ttfb, download and goodput = bits / download, the site from the header', async () => {
    for (const size of [16 * 1024, 2 * 1024 * 1024]) {
      const p = await createTransferProbe(
        { endpoint: 'anycast', address: '127.0.0.1' },
        { sizes: [size], size, port: httpPort, timeoutMs: 10_000 },
      );
      const a = await p.sample(0);
      await p.close();
      assert.equal(a.ok, true, JSON.stringify(a));
      assert.equal(a.site, 'origin-1');
      const { ttfb, download, goodput_mbps } = a.values;
      assert.ok(ttfb! > 0 && download! >= 0, JSON.stringify(a.values));
      if (download! > 0) assert.ok(Math.abs(goodput_mbps! - (size * 8) / (download! * 1000)) < 1e-6);
    }
  });

  test('through a path holding each chunk 20 ms each way, ttfb is at least the added round trip', async () => {
    const p = await createTransferProbe(
      { endpoint: 'far', address: '127.0.0.2' },
      { sizes: [256 * 1024], size: 256 * 1024, port: httpPort, timeoutMs: 10_000 },
    );
    const a = await p.sample(0);
    await p.close();
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.ok(a.values.ttfb! >= 2 * DELAY_MS - TIMER_EARLY_MS, `ttfb ${a.values.ttfb} ms`);
  });

  test('a user URL with {size}: its host is the Host header, the connection goes to the endpoint', async () => {
    const p = await createTransferProbe(
      { endpoint: 'anycast', address: '127.0.0.1' },
      { sizes: [4096], size: 4096, url: `http://files.example.test:${httpPort}/bytes/{size}`, timeoutMs: 5000 },
    );
    const a = await p.sample(0);
    await p.close();
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(a.site, 'origin-1');
  });

  test('an HTTP error, a refused port and a size the server refuses are failures, not exceptions', async () => {
    const bad = await createTransferProbe(
      { endpoint: 'x', address: '127.0.0.1' },
      { sizes: [1], size: 1, url: `http://127.0.0.1:${httpPort}/bytes/x{size}`, timeoutMs: 5000 },
    );
    const a = await bad.sample(0);
    await bad.close();
    assert.equal(!a.ok && a.reason, 'http_status');
    assert.match(!a.ok ? (a.detail ?? '') : '', /HTTP 400/);
    const refused = await createTransferProbe(
      { endpoint: 'x', address: '127.0.0.1' },
      { sizes: [1], size: 1, port: await refusedPort(), timeoutMs: 5000 },
    );
    const b = await refused.sample(0);
    await refused.close();
    assert.equal(!b.ok && b.reason, 'refused');
    assert.throws(
      () =>
        createTransferProbe(
          { endpoint: 'x', address: '127.0.0.1' },
          { sizes: [], size: MAX_TRANSFER_BYTES + 1, timeoutMs: 5000 },
        ),
      /size must be 1 to 10485760 bytes/,
    );
  });

  test('a round: downloads run one at a time after every udp sample; rows and benefit per size, goodput without benefit', async () => {
    const samples: ObservedSample[] = [];
    const lag = new LagMonitor({ thresholdMs: 60_000 }).start();
    let round;
    try {
      round = await runRound(
        {
          service: 'files',
          agent: { id: 't', region: 'r' },
          endpoints: [
            { name: 'anycast', kind: 'anycast', host: '127.0.0.1' },
            { name: 'far', kind: 'unicast', host: '127.0.0.2' },
          ],
          protocols: {
            udp: { port: udpPort },
            transfer: { sizes: [16 * 1024, 256 * 1024], port: httpPort, samples: 2, sampleTimeoutMs: 10_000 },
          },
          samples: 5,
          spacingMs: 10,
          timeoutMs: 2000,
          lag,
        },
        { onSample: (s) => samples.push(s) },
      );
    } finally {
      lag.stop();
    }
    const udp = samples.filter((s) => s.protocol === 'udp');
    const transfers = samples.filter((s) => s.protocol === 'transfer').sort((a, b) => a.attempt.t0 - b.attempt.t0);
    assert.equal(udp.length, 10);
    assert.equal(transfers.length, 2 * 2 * 2, 'samples × endpoints × sizes');
    const lastUdp = Math.max(...udp.map((s) => s.attempt.t1));
    for (const [i, t] of transfers.entries()) {
      assert.ok(t.attempt.ok, JSON.stringify(t.attempt));
      assert.ok(t.attempt.t0 >= lastUdp, 'after every udp sample');
      if (i > 0) assert.ok(t.attempt.t0 >= transfers[i - 1]!.attempt.t1, 'never two downloads at once');
    }
    const rows = round.paths
      .filter((p) => p.protocol === 'transfer')
      .map((p) => `${p.endpoint} ${p.metric} ${p.size} ${p.received}/${p.sent}`);
    assert.deepEqual(rows.sort(), [
      'anycast download 16KiB 2/2',
      'anycast download 256KiB 2/2',
      'anycast goodput_mbps 16KiB 2/2',
      'anycast goodput_mbps 256KiB 2/2',
      'anycast ttfb 16KiB 2/2',
      'anycast ttfb 256KiB 2/2',
      'far download 16KiB 2/2',
      'far download 256KiB 2/2',
      'far goodput_mbps 16KiB 2/2',
      'far goodput_mbps 256KiB 2/2',
      'far ttfb 16KiB 2/2',
      'far ttfb 256KiB 2/2',
    ]);
    const benefit = round.benefit
      .filter((b) => b.protocol === 'transfer')
      .map((b) => `${b.metric} ${b.size} ${b.baseline}`);
    assert.deepEqual(benefit.sort(), [
      'download 16KiB far',
      'download 256KiB far',
      'ttfb 16KiB far',
      'ttfb 256KiB far',
    ]);
    // The far path holds every chunk 20 ms each way: its ttfb holds that round trip.
    for (const p of round.paths.filter(
      (x) => x.protocol === 'transfer' && x.metric === 'ttfb' && x.endpoint === 'far',
    )) {
      assert.ok(p.min_ms! >= 2 * DELAY_MS - TIMER_EARLY_MS, JSON.stringify(p));
    }
    const lines = roundToLines(round);
    assert.ok(
      lines.some(
        (l) =>
          l.startsWith('latency,') &&
          l.includes(',metric=ttfb,protocol=transfer,scope=end_to_end,service=files,size=16KiB '),
      ),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => l.startsWith('benefit,') && l.includes(',size=256KiB ')));
    assert.ok(!lines.some((l) => l.startsWith('benefit,') && l.includes('metric=goodput_mbps')));

    // The store keeps the size: the round reads back whole, and anylat report and the web's
    // summary give one row per size.
    const dir = mkdtempSync(join(tmpdir(), 'anylat-transfer-'));
    const store = openStore(join(dir, 'store.db'), {
      retention: { maxAgeMs: 86_400_000, maxRows: 1000 },
      outbox: false,
    });
    try {
      const back = store.getRound(store.saveRound(round))!;
      assert.deepEqual(
        back.paths.filter((p) => p.protocol === 'transfer').map((p) => p.size),
        round.paths.filter((p) => p.protocol === 'transfer').map((p) => p.size),
      );
      const report = store.benefitSummary({ since: 0 }).filter((r) => r.protocol === 'transfer');
      assert.deepEqual(
        report.map((r) => `${r.metric} ${r.size}`),
        ['ttfb 16KiB', 'ttfb 256KiB', 'download 16KiB', 'download 256KiB'],
      );
      const reference = new Database(join(dir, 'store.db'), { readonly: true });
      try {
        assert.deepEqual(
          JSON.parse(JSON.stringify(store.benefitSummary({ since: 0 }))),
          JSON.parse(JSON.stringify(benefitReport(reference, { since: 0 }))),
        );
      } finally {
        reference.close();
      }
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('compare --protocol transfer: sizes, url, port, samples and timeout flags; bad values exit 2 naming the flag', async () => {
  const parsed = await compareSpec([
    '127.0.0.2',
    'us=127.0.0.3',
    '--protocol',
    'transfer',
    '--transfer-sizes',
    '16KiB,1MiB',
    '--transfer-port',
    '9080',
    '--transfer-samples',
    '2',
    '--transfer-timeout',
    '8s',
  ]);
  assert.deepEqual(parsed !== 'help' && parsed.spec.protocols, {
    transfer: { sizes: [16384, 1048576], port: 9080, samples: 2, sampleTimeoutMs: 8000 },
  });
  const dflt = await compareSpec(['127.0.0.2', 'us=127.0.0.3', '--protocol', 'transfer']);
  assert.deepEqual(dflt !== 'help' && dflt.spec.protocols, { transfer: { sizes: [16384, 262144, 2097152] } });
  // The config's own messages for probes.transfer (test/compare-options.test.ts walks every flag).
  for (const [args, message] of [
    [
      ['--transfer-sizes', '16KiB,20MiB'],
      '--transfer-sizes: expected a size from 1B to 10MiB like 16KiB, 256KiB or 2MiB, got "20MiB"',
    ],
    [['--transfer-sizes', '1MiB,1024KiB'], '--transfer-sizes: 1MiB is listed twice (also sizes[0])'],
    [
      ['--transfer-url', 'https://cdn.example.com/a.bin'],
      '--transfer-url: the --transfer-url has no {size} but 3 sizes are asked (by default 16KiB, 256KiB, 2MiB): put {size} where the size in bytes goes, or give one size',
    ],
    [
      ['--transfer-url', 'ftp://x/{size}'],
      '--transfer-url: expected an http:// or https:// URL, with {size} where the size in bytes goes, got "ftp://x/{size}"',
    ],
    [['--transfer-port', '0'], '--transfer-port: expected a port number from 1 to 65535, got 0'],
    [
      ['--transfer-samples', '101'],
      '--transfer-samples: expected a number of downloads per size from 1 to 100, got 101',
    ],
  ] as const) {
    await assert.rejects(
      compareSpec(['127.0.0.2', 'us=127.0.0.3', '--protocol', 'transfer', ...args]),
      (err: unknown) => err instanceof UsageError && err.message === message && err.exitCode === 2,
    );
  }
});

test('config: probes.transfer fills its defaults; sizes are read with their unit', () => {
  const text = (t: string) =>
    `agent: { id: a, region: r }\nservices:\n  - name: f\n    anycast: 192.0.2.1\n    unicast: { us: 203.0.113.1 }\n    schedule: "*/5 * * * *"\n    probes:\n      transfer:${t}\n`;
  assert.deepEqual(parseConfig(text(''), 't.yaml', { baseDir: '/tmp' }).services[0]!.probes, {
    transfer: { sizes: [16384, 262144, 2097152] },
  });
  assert.deepEqual(
    parseConfig(
      text(' { sizes: [64KiB, 1MB, 4096], url: "https://cdn.example.com/o/{size}", samples: 1, timeout: 20s }'),
      't.yaml',
      { baseDir: '/tmp' },
    ).services[0]!.probes,
    {
      transfer: {
        sizes: [65536, 1000000, 4096],
        url: 'https://cdn.example.com/o/{size}',
        samples: 1,
        sampleTimeoutMs: 20000,
      },
    },
  );
});
