import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createTlsProbe } from '../agent/probe/tls.ts';
import type { Attempt } from '../agent/core/model.ts';
import type { TlsProbeOptions } from '../agent/probe/types.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { refusedPort } from './support/net.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

const TIMEOUT_MS = 2_000;
const target = (address = '127.0.0.1') => ({ endpoint: 'test', address });

/** Waits (a few event-loop turns at a time) until `check` holds; fails after `ms`. */
async function eventually(check: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not true within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function assertFailed(attempt: Attempt): asserts attempt is Extract<Attempt, { ok: false }> {
  assert.equal(attempt.ok, false, `expected a failure, got ${JSON.stringify(attempt)}`);
}

interface TlsServer {
  port: number;
  /** per accepted handshake: was the session resumed, and what SNI was sent */
  handshakes: Array<{ reused: boolean; servername: string | false | null; protocol: string | null }>;
  close(): Promise<void>;
}

async function startTlsServer(cert: TestCert, options: tls.TlsOptions = {}, host = '127.0.0.1'): Promise<TlsServer> {
  const handshakes: TlsServer['handshakes'] = [];
  // A server that resumes whatever it is offered (tickets on, and a session cache for TLS 1.2 ids),
  // so a probe that offered a session would be caught.
  const cache = new Map<string, Buffer>();
  const server = tls.createServer({ key: cert.key, cert: cert.cert, ...options }, (socket) => {
    handshakes.push({
      reused: socket.isSessionReused(),
      servername: socket.servername,
      protocol: socket.getProtocol(),
    });
    socket.on('error', () => {});
    // Writing makes a TLS 1.3 server send its session tickets, as any real server does.
    socket.end('ok\n');
  });
  server.on('newSession', (id: Buffer, data: Buffer, cb: () => void) => {
    cache.set(id.toString('hex'), data);
    cb();
  });
  server.on('resumeSession', (id: Buffer, cb: (err: Error | null, data: Buffer | null) => void) =>
    cb(null, cache.get(id.toString('hex')) ?? null),
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, handshakes, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('tls probe', () => {
  let cert: TestCert;
  let server: TlsServer;
  before(async () => {
    cert = await makeSelfSignedCert({ names: ['svc.test'], ips: ['127.0.0.1', '::1'] });
    server = await startTlsServer(cert);
  });
  after(async () => {
    await server.close();
    await cert.cleanup();
  });

  const sampleOnce = async (
    options: Partial<TlsProbeOptions>,
    address = '127.0.0.1',
    port = server.port,
  ): Promise<Attempt> => {
    const probe = await createTlsProbe(target(address), { port, timeoutMs: TIMEOUT_MS, ...options });
    try {
      return await probe.sample(0);
    } finally {
      await probe.close();
    }
  };

  test('succeeds with the CA trusted, verifying the IP SAN when no name is given', async () => {
    const before = server.handshakes.length;
    const a = await sampleOnce({ ca: cert.cert });
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.ok(a.values.handshake! > 0);
    // The handshake starts after TCP connected, so it is shorter than the whole attempt.
    assert.ok(a.values.handshake! < a.t1 - a.t0);
    assert.deepEqual(Object.keys(a.values), ['handshake']);
    // The server finishes its side after the client: the probe closes politely, so it does.
    await eventually(() => server.handshakes.length === before + 1, 'the server completed the handshake');
    assert.equal(server.handshakes.at(-1)!.servername, false, 'no SNI is sent for an IP target');
  });

  test('sends serverName as SNI and verifies against it', async () => {
    const before = server.handshakes.length;
    const a = await sampleOnce({ ca: cert.cert, serverName: 'svc.test' });
    assert.equal(a.ok, true, JSON.stringify(a));
    await eventually(() => server.handshakes.length === before + 1, 'the server completed the handshake');
    assert.equal(server.handshakes.at(-1)!.servername, 'svc.test');
  });

  test('IPv6 loopback', async () => {
    const server6 = await startTlsServer(cert, {}, '::1');
    after(() => server6.close());
    const a = await sampleOnce({ ca: cert.cert }, '::1', server6.port);
    assert.equal(a.ok, true, JSON.stringify(a));
  });

  test('an untrusted certificate fails with reason tls naming the problem', async () => {
    const a = await sampleOnce({});
    assertFailed(a);
    assert.equal(a.reason, 'tls');
    assert.match(a.detail ?? '', /DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate/);
    assert.deepEqual(a.values, {});
  });

  test('a name the certificate does not carry fails with reason tls', async () => {
    const a = await sampleOnce({ ca: cert.cert, serverName: 'other.test' });
    assertFailed(a);
    assert.equal(a.reason, 'tls');
    assert.match(a.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID.*other\.test/);
  });

  test('insecure accepts the self-signed certificate', async () => {
    const a = await sampleOnce({ insecure: true });
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.ok(a.values.handshake! > 0);
  });

  test('refused', async () => {
    const a = await sampleOnce({ insecure: true }, '127.0.0.1', await refusedPort());
    assertFailed(a);
    assert.equal(a.reason, 'refused');
  });

  test('timeout: a TCP server that accepts and never speaks TLS', async () => {
    // resume(): read (and discard) so the prober's FIN is seen and the server can close.
    const silent = net.createServer((socket) => socket.on('error', () => {}).resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const port = (silent.address() as net.AddressInfo).port;
    const probe = await createTlsProbe(target(), { port, timeoutMs: 300, insecure: true });
    const a = await probe.sample(0);
    assertFailed(a);
    assert.equal(a.reason, 'timeout');
    assert.match(a.detail ?? '', /TLS handshake not finished within 300 ms/);
    assert.deepEqual(a.values, {});
    await probe.close();
  });

  test('a peer that answers with something other than TLS fails with reason tls', async () => {
    const http = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    after(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const a = await sampleOnce({ insecure: true }, '127.0.0.1', (http.address() as net.AddressInfo).port);
    assertFailed(a);
    assert.equal(a.reason, 'tls');
    assert.match(a.detail ?? '', /ERR_SSL_/);
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`no session reuse between samples (${version}), against a server that does resume`, async () => {
      const srv = await startTlsServer(cert, { minVersion: version, maxVersion: version });
      after(() => srv.close());

      // Control: a client that offers the previous session is resumed by this server.
      const connect = (session?: Buffer) =>
        new Promise<Buffer | undefined>((resolve, reject) => {
          let ticket: Buffer | undefined;
          const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca: cert.cert, ...(session ? { session } : {}) });
          s.on('session', (data: Buffer) => (ticket = data));
          s.on('error', reject);
          s.on('close', () => resolve(ticket));
          s.resume();
        });
      const session = await connect();
      assert.ok(session, 'the server issued a session');
      await connect(session);
      assert.deepEqual(
        srv.handshakes.map((h) => h.reused),
        [false, true],
        'the control client was resumed',
      );

      const probe = await createTlsProbe(target(), { port: srv.port, timeoutMs: TIMEOUT_MS, ca: cert.cert });
      for (let seq = 0; seq < 5; seq++) {
        const a = await probe.sample(seq);
        assert.equal(a.ok, true, JSON.stringify(a));
      }
      await eventually(() => srv.handshakes.length === 7, 'the server completed 5 more handshakes');
      await probe.close();
      const probed = srv.handshakes.slice(2);
      assert.equal(probed.length, 5);
      assert.ok(probed.every((h) => h.protocol === version));
      assert.deepEqual(
        probed.map((h) => h.reused),
        [false, false, false, false, false],
      );
    });
  }

  test('bad options are a bug, not a sample', () => {
    assert.throws(
      () => createTlsProbe(target(), { port: 443, timeoutMs: 100, serverName: '10.0.0.1' }),
      (e: unknown) =>
        e instanceof AnylatError &&
        e.code === 'ANYLAT_PROBE_OPTIONS' &&
        /serverName must be a host name/.test(e.message),
    );
    assert.throws(
      () => createTlsProbe(target(), { port: 443, timeoutMs: 100, ca: 'not a pem' }),
      /CA bundle is not usable PEM: no "-----BEGIN CERTIFICATE-----" block found/,
    );
    const broken = cert.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\n' + 'A'.repeat(20));
    assert.throws(
      () => createTlsProbe(target(), { port: 443, timeoutMs: 100, ca: cert.cert + broken }),
      /certificate 2 of 2 does not parse/,
    );
  });
});
