// The http probe against real servers on loopback: the anylat HTTP reflector, and small servers that
// record what they saw or misbehave on purpose (503, silence, resets, garbage, no keep-alive).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { Attempt, Metric } from '../agent/core/model.ts';
import { createHttpProbe, MAX_BODY_BYTES } from '../agent/probe/http.ts';
import type { HttpProbeOptions, ProbeTarget } from '../agent/probe/types.ts';
import { startHttpReflector } from '../agent/reflector/http.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { refusedPort } from './support/net.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

const HOST = 'svc.anylat.test';
const LO4: ProbeTarget = { endpoint: 'anycast', address: '127.0.0.1' };

interface Seen {
  host: string | undefined;
  localAddress: string | undefined;
  servername: string | undefined;
  connection: number;
  url: string | undefined;
}

/** An HTTP(S) server that records each request and which connection it came on. */
class Recorder {
  readonly seen: Seen[] = [];
  connections = 0;
  server!: Server;
  port = 0;

  constructor(
    private readonly handler: (req: IncomingMessage, res: ServerResponse) => void,
    private readonly tls?: TestCert,
  ) {}

  async start(address = '127.0.0.1'): Promise<this> {
    const ids = new WeakMap<Socket, number>();
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.seen.push({
        host: req.headers.host,
        localAddress: req.socket.localAddress,
        servername: (req.socket as TLSSocket).servername || undefined,
        connection: ids.get(req.socket) ?? -1,
        url: req.url,
      });
      this.handler(req, res);
    };
    this.server = this.tls
      ? createHttpsServer({ cert: this.tls.cert, key: this.tls.key }, onRequest)
      : createHttpServer(onRequest);
    this.server.on(this.tls ? 'secureConnection' : 'connection', (s: Socket) => ids.set(s, ++this.connections));
    await new Promise<void>((resolve) => this.server.listen(0, address, resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A raw TCP server whose behaviour on each connection the test decides. */
async function rawServer(
  onSocket: (s: Socket) => void,
): Promise<{ port: number; sockets: Socket[]; stop: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let reflector: ReflectorPart;
let rport: number;
let cert: TestCert;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  reflector = await startHttpReflector({ site: 'edge-test', binds: ['127.0.0.1', '::1'], port: 0, log: () => {} });
  rport = reflector.listening[0]!.port;
  cert = await makeSelfSignedCert({ names: [HOST], ips: ['127.0.0.1'] });
});

after(async () => {
  for (const c of cleanups) await c();
  await reflector?.close();
  await cert?.cleanup();
});

async function sampleOnce(target: ProbeTarget, options: HttpProbeOptions): Promise<Attempt> {
  const p = createHttpProbe(target, options);
  try {
    return await p.sample(1);
  } finally {
    await p.close();
  }
}

function failure(a: Attempt): { reason: string; detail: string } {
  assert.equal(a.ok, false, `expected a failure, got ${JSON.stringify(a)}`);
  return a.ok ? { reason: '', detail: '' } : { reason: a.reason, detail: a.detail ?? '' };
}

function keys(a: Attempt): Metric[] {
  return Object.keys(a.values).sort() as Metric[];
}

test('http: a sample against the reflector has every metric, in a sensible order, and the site', async () => {
  const p = createHttpProbe(LO4, { url: `http://${HOST}:${rport}/health`, timeoutMs: 2000 });
  assert.deepEqual(p.metrics, ['connect', 'ttfb', 'total', 'warm']);
  const a = await p.sample(1);
  await p.close();
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(keys(a), ['connect', 'total', 'ttfb', 'warm']);
  const v = a.values as Record<'connect' | 'ttfb' | 'total' | 'warm', number>;
  for (const m of ['connect', 'ttfb', 'total', 'warm'] as const) assert.ok(v[m] > 0, `${m} = ${v[m]}`);
  assert.ok(v.connect <= v.total, `connect ${v.connect} > total ${v.total}`);
  assert.ok(v.ttfb <= v.total, `ttfb ${v.ttfb} > total ${v.total}`);
  assert.ok(v.connect + v.ttfb <= v.total, 'connect and ttfb are consecutive parts of total');
  assert.ok(a.t1 - a.t0 >= v.total + v.warm, 't0..t1 spans both requests');
  assert.equal(a.site, 'edge-test');
});

test('http: Host and SNI come from the URL while the connection goes to the endpoint address', async () => {
  const rec = await new Recorder((_req, res) => res.end('ok')).start('::1');
  cleanups.push(() => rec.stop());
  const a = await sampleOnce(
    { endpoint: 'eu', address: '::1' },
    { url: `http://${HOST}:${rec.port}/path?q=1`, timeoutMs: 2000 },
  );
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.equal(rec.seen.length, 2);
  for (const s of rec.seen) {
    assert.equal(s.host, `${HOST}:${rec.port}`);
    assert.equal(s.localAddress, '::1');
    assert.equal(s.url, '/path?q=1');
  }

  const tlsRec = await new Recorder((_req, res) => res.end('ok'), cert).start();
  cleanups.push(() => tlsRec.stop());
  const b = await sampleOnce(LO4, { url: `https://${HOST}:${tlsRec.port}/`, ca: cert.cert, timeoutMs: 2000 });
  assert.equal(b.ok, true, JSON.stringify(b));
  assert.equal(tlsRec.seen[0]!.servername, HOST);
  assert.equal(tlsRec.seen[0]!.host, `${HOST}:${tlsRec.port}`);
});

test('http: every sample opens a new connection and warms it with a second request', async () => {
  const rec = await new Recorder((_req, res) => res.end('ok')).start();
  cleanups.push(() => rec.stop());
  const p = createHttpProbe(LO4, { url: `http://${HOST}:${rec.port}/`, timeoutMs: 2000 });
  const attempts: Attempt[] = [];
  for (let i = 0; i < 4; i++) attempts.push(await p.sample(i));
  await p.close();
  for (const a of attempts) assert.equal(a.ok, true, JSON.stringify(a));
  assert.equal(rec.connections, 4);
  assert.deepEqual(
    rec.seen.map((s) => s.connection),
    [1, 1, 2, 2, 3, 3, 4, 4],
  );
});

test('http: warm: false sends one request per sample and does not report warm', async () => {
  const rec = await new Recorder((_req, res) => res.end('ok')).start();
  cleanups.push(() => rec.stop());
  const p = createHttpProbe(LO4, { url: `http://${HOST}:${rec.port}/`, timeoutMs: 2000, warm: false });
  assert.deepEqual(p.metrics, ['connect', 'ttfb', 'total']);
  const a = await p.sample(1);
  await p.close();
  assert.equal(a.ok, true);
  assert.deepEqual(keys(a), ['connect', 'total', 'ttfb']);
  assert.equal(rec.seen.length, 1);
});

test('http: a server that closes after one response gives a sample without warm, on one connection', async () => {
  const rec = await new Recorder((_req, res) => {
    res.setHeader('connection', 'close');
    res.end('bye');
  }).start();
  cleanups.push(() => rec.stop());
  const a = await sampleOnce(LO4, { url: `http://${HOST}:${rec.port}/`, timeoutMs: 2000 });
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(keys(a), ['connect', 'total', 'ttfb']);
  assert.equal(rec.connections, 1, 'no second handshake may be timed as warm');
});

test('http: https with a CA has tls; insecure accepts a name the certificate lacks; bad certs fail as tls', async () => {
  const rec = await new Recorder((_req, res) => {
    res.setHeader('x-anylat-site', 'edge-tls');
    res.end('ok');
  }, cert).start();
  cleanups.push(() => rec.stop());
  const url = `https://${HOST}:${rec.port}/`;

  const p = createHttpProbe(LO4, { url, ca: cert.cert, timeoutMs: 2000 });
  assert.deepEqual(p.metrics, ['connect', 'tls', 'ttfb', 'total', 'warm']);
  const a = await p.sample(1);
  await p.close();
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(keys(a), ['connect', 'tls', 'total', 'ttfb', 'warm']);
  const v = a.values as Record<'connect' | 'tls' | 'ttfb' | 'total', number>;
  assert.ok(v.tls > 0);
  assert.ok(v.connect + v.tls + v.ttfb <= v.total);
  assert.equal(a.site, 'edge-tls');

  const insecure = await sampleOnce(LO4, {
    url: `https://other.anylat.test:${rec.port}/`,
    insecure: true,
    timeoutMs: 2000,
  });
  assert.equal(insecure.ok, true, JSON.stringify(insecure));
  assert.ok(insecure.values.tls! > 0);

  const untrusted = failure(await sampleOnce(LO4, { url, timeoutMs: 2000 }));
  assert.equal(untrusted.reason, 'tls');
  assert.match(untrusted.detail, /self-signed|self signed/i);

  const wrongName = await sampleOnce(LO4, {
    url: `https://other.anylat.test:${rec.port}/`,
    ca: cert.cert,
    timeoutMs: 2000,
  });
  assert.equal(failure(wrongName).reason, 'tls');
  assert.match(failure(wrongName).detail, /other\.anylat\.test/);
  assert.deepEqual(keys(wrongName), ['connect'], 'TCP connected before the handshake failed');
});

test('http: an endpoint configured by name gets a timed dns lookup', async () => {
  const p = createHttpProbe(
    { endpoint: 'us-east-1', address: '127.0.0.1', hostname: 'localhost' },
    { url: `http://${HOST}:${rport}/`, timeoutMs: 2000 },
  );
  assert.deepEqual(p.metrics, ['dns', 'connect', 'ttfb', 'total', 'warm']);
  const a = await p.sample(1);
  await p.close();
  assert.equal(a.ok, true, JSON.stringify(a));
  assert.deepEqual(keys(a), ['connect', 'dns', 'total', 'ttfb', 'warm']);
  assert.ok(a.values.dns! > 0);
  assert.ok(a.values.dns! + a.values.connect! + a.values.ttfb! <= a.values.total!, 'total runs from before the lookup');
});

test('http: a 503 is http_status with only the phases before the response', async () => {
  const rec = await new Recorder((_req, res) => {
    res.writeHead(503, { 'x-anylat-site': 'edge-sick' });
    res.end('down');
  }, cert).start();
  cleanups.push(() => rec.stop());
  const a = await sampleOnce(
    { endpoint: 'eu', address: '127.0.0.1', hostname: 'localhost' },
    { url: `https://${HOST}:${rec.port}/`, ca: cert.cert, timeoutMs: 2000 },
  );
  const f = failure(a);
  assert.equal(f.reason, 'http_status');
  assert.equal(f.detail, 'HTTP 503');
  assert.deepEqual(keys(a), ['connect', 'dns', 'tls']);
  assert.equal(a.site, 'edge-sick');
  assert.equal(rec.seen.length, 1, 'no warm request after a failed one');

  const plain = await new Recorder((_req, res) => {
    res.statusCode = 404;
    res.end();
  }).start();
  cleanups.push(() => plain.stop());
  const b = await sampleOnce(LO4, { url: `http://${HOST}:${plain.port}/`, timeoutMs: 2000 });
  assert.equal(failure(b).detail, 'HTTP 404');
  assert.deepEqual(keys(b), ['connect']);

  // The first answer is fine, the warm one is not: the same rule, the sample fails as http_status.
  let n = 0;
  const flaky = await new Recorder((_req, res) => {
    res.statusCode = ++n === 1 ? 200 : 502;
    res.end();
  }).start();
  cleanups.push(() => flaky.stop());
  const c = await sampleOnce(LO4, { url: `http://${HOST}:${flaky.port}/`, timeoutMs: 2000 });
  assert.equal(failure(c).reason, 'http_status');
  assert.match(failure(c).detail, /HTTP 502 on the warm request/);
  assert.deepEqual(keys(c), ['connect']);
  assert.equal(flaky.connections, 1);
});

test('http: a refused port is refused, with no metrics', async () => {
  const port = await refusedPort();
  const a = await sampleOnce(LO4, { url: `http://${HOST}:${port}/`, timeoutMs: 2000 });
  const f = failure(a);
  assert.equal(f.reason, 'refused');
  assert.match(f.detail, /ECONNREFUSED/);
  assert.deepEqual(a.values, {});
});

test('http: a server that accepts and never answers is a timeout that keeps connect', async () => {
  // Reads (so it sees the probe's FIN) but never writes.
  const silent = await rawServer((s) => s.resume());
  cleanups.push(silent.stop);
  const a = await sampleOnce(LO4, { url: `http://${HOST}:${silent.port}/`, timeoutMs: 300 });
  const f = failure(a);
  assert.equal(f.reason, 'timeout');
  assert.match(f.detail, /300 ms.*response headers/);
  assert.deepEqual(keys(a), ['connect']);
  // libuv keeps timer time in whole milliseconds, so a 300 ms timer may fire up to 1 ms early by
  // performance.now().
  assert.ok(a.t1 - a.t0 >= 299, `gave up after ${a.t1 - a.t0} ms`);
  assert.ok(a.t1 - a.t0 < 300 + 2000, 'the sample resolves soon after its timeout');
  // The probe closed its connection when it gave up.
  const server = silent.sockets[0]!;
  let timer: NodeJS.Timeout | undefined;
  const closed =
    server.closed ||
    (await Promise.race([
      once(server, 'close').then(() => true),
      new Promise((r) => (timer = setTimeout(() => r(false), 2000))),
    ]));
  clearTimeout(timer);
  assert.equal(closed, true, 'the probe left its connection open after the timeout');
});

test('http: a TLS server that never finishes the handshake times out with connect only', async () => {
  const silent = await rawServer(() => {});
  cleanups.push(silent.stop);
  const a = await sampleOnce(LO4, { url: `https://${HOST}:${silent.port}/`, timeoutMs: 300, insecure: true });
  assert.equal(failure(a).reason, 'timeout');
  assert.match(failure(a).detail, /TLS handshake/);
  assert.deepEqual(keys(a), ['connect']);
});

test('http: a reset, a garbage reply and an oversized body are failures, not exceptions', async () => {
  const reset = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
  cleanups.push(reset.stop);
  const r = await sampleOnce(LO4, { url: `http://${HOST}:${reset.port}/`, timeoutMs: 2000 });
  assert.equal(failure(r).reason, 'reset', JSON.stringify(r));
  assert.deepEqual(keys(r), ['connect']);

  const garbage = await rawServer((s) => s.once('data', () => s.write('SSH-2.0-OpenSSH_9.2\r\n\r\n')));
  cleanups.push(garbage.stop);
  const g = await sampleOnce(LO4, { url: `http://${HOST}:${garbage.port}/`, timeoutMs: 2000 });
  assert.equal(failure(g).reason, 'protocol', JSON.stringify(g));

  const big = Buffer.alloc(MAX_BODY_BYTES + 64 * 1024, 0x61);
  const rec = await new Recorder((_req, res) => res.end(big)).start();
  cleanups.push(() => rec.stop());
  const b = await sampleOnce(LO4, { url: `http://${HOST}:${rec.port}/`, timeoutMs: 2000 });
  assert.equal(failure(b).reason, 'protocol');
  assert.match(failure(b).detail, /larger than 1048576 bytes/);
  assert.deepEqual(keys(b), ['connect', 'ttfb'], 'the response started; its body was cut off');
});

test('http: a URL that is not http(s) is rejected when the probe is set up', () => {
  for (const url of ['not a url', 'ftp://svc.anylat.test/']) {
    assert.throws(
      () => createHttpProbe(LO4, { url, timeoutMs: 1000 }),
      (err: unknown) =>
        err instanceof AnylatError && err.code === 'ANYLAT_HTTP_URL' && err.exitCode === 2 && err.message.includes(url),
    );
  }
});
