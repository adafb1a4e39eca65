// The reflector's HTTP part on real loopback sockets: what it answers, what it refuses, and that
// garbage, oversized headers and too many connections cost it nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { startHttpReflector } from '../agent/reflector/http.ts';
import type { ReflectorPart } from '../agent/reflector/types.ts';
import { AnylatError } from '../agent/util/errors.ts';
import { makeSelfSignedCert, type TestCert } from './support/tls-cert.ts';

const logs: string[] = [];
let reflector: ReflectorPart;
let port: number;
let cert: TestCert;
let secure: ReflectorPart;

before(async () => {
  reflector = await startHttpReflector({
    site: 'edge-test',
    binds: ['127.0.0.1', '::1'],
    port: 0,
    log: (l) => logs.push(l),
  });
  port = reflector.listening[0]!.port;
  cert = await makeSelfSignedCert({ names: ['svc.anylat.test'], ips: ['127.0.0.1'] });
  secure = await startHttpReflector({
    site: 'edge-tls',
    binds: ['127.0.0.1'],
    port: 0,
    tls: { cert: cert.cert, key: cert.key },
    log: () => {},
  });
});

after(async () => {
  await reflector?.close();
  await secure?.close();
  await cert?.cleanup();
});

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  localPort: number;
}

function get(options: {
  host?: string;
  port?: number;
  method?: string;
  path?: string;
  agent?: Agent;
  body?: string;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: options.host ?? '127.0.0.1',
        port: options.port ?? port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, localPort: req.socket?.localPort ?? 0 }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends raw bytes and collects whatever comes back until the server closes the connection. */
async function raw(
  bytes: Buffer | string,
  options: { endAfter?: boolean } = {},
): Promise<{ reply: string; closedByServer: boolean }> {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  let reply = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (reply += d));
  socket.on('error', () => {});
  const ended = new Promise<boolean>((resolve) => {
    socket.on('end', () => resolve(true));
    socket.on('close', () => resolve(true));
  });
  socket.write(bytes);
  if (options.endAfter) socket.end();
  let timer: NodeJS.Timeout | undefined;
  const closedByServer = await Promise.race([
    ended,
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 3000))),
  ]);
  clearTimeout(timer);
  socket.destroy();
  return { reply, closedByServer };
}

test('http reflector: listens on every bind address, on one port', () => {
  assert.deepEqual(
    reflector.listening.map((l) => l.address),
    ['127.0.0.1', '::1'],
  );
  assert.ok(port > 0);
  assert.equal(reflector.listening[1]!.port, port);
  assert.equal(reflector.kind, 'http');
  // Listening is reported through `listening`; only trouble is logged.
  assert.deepEqual(logs, []);
});

test('http reflector: GET on any path answers JSON with site, source, source port and path', async () => {
  const r = await get({ path: '/any/where?x=1' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-anylat-site'], 'edge-test');
  assert.match(r.headers['content-type'] ?? '', /application\/json/);
  assert.deepEqual(JSON.parse(r.body), {
    site: 'edge-test',
    source: '127.0.0.1',
    source_port: r.localPort,
    path: '/any/where?x=1',
  });

  const v6 = await get({ host: '::1', path: '/v6' });
  assert.equal(v6.status, 200);
  assert.deepEqual(JSON.parse(v6.body), { site: 'edge-test', source: '::1', source_port: v6.localPort, path: '/v6' });
});

test('http reflector: HEAD gets the headers without a body', async () => {
  const r = await get({ method: 'HEAD', path: '/h' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-anylat-site'], 'edge-test');
  assert.equal(r.body, '');
});

test('http reflector: other methods get 405 with Allow', async () => {
  const before = reflector.stats().not_allowed ?? 0;
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await get({ method, body: method === 'POST' || method === 'PUT' ? '{"a":1}' : undefined });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET, HEAD');
    assert.match(JSON.parse(r.body).error, new RegExp(`method ${method} not allowed`));
  }
  assert.equal((reflector.stats().not_allowed ?? 0) - before, 4);
});

test('http reflector: keeps the connection alive for a second request', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const connsBefore = reflector.stats().connections ?? 0;
  const a = await get({ agent, path: '/1' });
  const b = await get({ agent, path: '/2' });
  agent.destroy();
  assert.equal(JSON.parse(a.body).source_port, JSON.parse(b.body).source_port);
  assert.equal((reflector.stats().connections ?? 0) - connsBefore, 1);
});

test('http reflector: random bytes, truncated requests and huge headers are dropped, not fatal', async () => {
  const errorsBefore = reflector.stats().client_errors ?? 0;
  for (let i = 0; i < 5; i++) {
    // Leading CR/LF would be skipped as request padding; make the first byte a control byte.
    const bytes = Buffer.concat([Buffer.from([0x01]), randomBytes(2048)]);
    const { reply, closedByServer } = await raw(bytes);
    assert.ok(closedByServer, 'server should close a connection that sent garbage');
    assert.match(reply, /^(HTTP\/1\.1 400 Bad Request\r\n|$)/);
  }
  const truncated = await raw('GET /x HTTP/1.1\r\nHost: a\r\nX-Half', { endAfter: true });
  assert.ok(truncated.closedByServer);
  const huge = await raw(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`);
  assert.match(huge.reply, /^HTTP\/1\.1 431 /);
  assert.ok((reflector.stats().client_errors ?? 0) - errorsBefore >= 6);
  // Still serving.
  const r = await get({ path: '/after-garbage' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).path, '/after-garbage');
});

test('http reflector: connections past the cap are dropped', async () => {
  const capped = await startHttpReflector({
    site: 'cap',
    binds: ['127.0.0.1'],
    port: 0,
    maxConnections: 2,
    log: () => {},
  });
  const cappedPort = capped.listening[0]!.port;
  const held: Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const s = connect({ host: '127.0.0.1', port: cappedPort });
      s.on('error', () => {});
      await once(s, 'connect');
      held.push(s);
    }
    // The client sees 'connect' before the server's accept callback ran; wait for the server.
    while ((capped.stats().connections ?? 0) < 2) await new Promise((r) => setImmediate(r));
    const extra = connect({ host: '127.0.0.1', port: cappedPort });
    extra.on('error', () => {});
    held.push(extra);
    let got = '';
    extra.on('data', (d: Buffer) => (got += d.toString()));
    extra.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await once(extra, 'close');
    assert.equal(got, '', 'the connection over the cap must not be served');
    assert.equal(capped.stats().rejected_connections, 1);
    // The held ones are still served.
    const first = held[0]!;
    let answer = '';
    first.on('data', (d: Buffer) => (answer += d.toString()));
    first.write('GET /held HTTP/1.1\r\nHost: a\r\n\r\n');
    while (!answer.includes('"path":"/held"')) await once(first, 'data');
    assert.match(answer, /^HTTP\/1\.1 200 /);
  } finally {
    for (const s of held) s.destroy();
    await capped.close();
  }
});

/** Resolves when the socket closes, whatever error it met on the way (events.once would reject). */
function closed(socket: Socket): Promise<void> {
  // A paused socket never sees the server's FIN; read (and drop) what comes.
  socket.resume();
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

test(
  'http reflector: 1,100 half-open connections from 127.0.0.2 do not stop requests from 127.0.0.1',
  { timeout: 120_000 },
  async () => {
    const held: Socket[] = [];
    try {
      // Opened in waves so the test's own accept backlog never overflows; each stays open, silent.
      for (let wave = 0; wave < 11; wave++) {
        const opened = Array.from({ length: 100 }, () => {
          const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
          s.on('error', () => {});
          held.push(s);
          return new Promise<void>((resolve) => {
            s.once('connect', () => resolve());
            s.once('close', () => resolve());
          });
        });
        await Promise.all(opened);
      }
      const before = reflector.stats();
      const replies: number[] = [];
      for (let i = 0; i < 20; i++) replies.push((await get({ path: `/legit-${i}` })).status);
      assert.deepEqual(replies, new Array(20).fill(200), 'every request from 127.0.0.1 answered');
      const stats = reflector.stats();
      assert.ok((stats.per_source_refused ?? 0) >= 1100 - 32, `per-source refusals: ${JSON.stringify(stats)}`);
      assert.ok((stats.requests ?? 0) - (before.requests ?? 0) >= 20);
    } finally {
      for (const s of held) s.destroy();
    }
  },
);

test(
  'http reflector: a trickling body is cut off at the whole-request deadline; a large body is refused with 413',
  { timeout: 60_000 },
  async () => {
    const strict = await startHttpReflector({
      site: 'strict',
      binds: ['127.0.0.1'],
      port: 0,
      requestTimeoutMs: 1000,
      maxBodyBytes: 1024,
      log: () => {},
    });
    const strictPort = strict.listening[0]!.port;
    try {
      // One byte a quarter second of a chunked body: without a deadline this would last for ever.
      const trickle = connect({ host: '127.0.0.1', port: strictPort });
      trickle.on('error', () => {});
      await once(trickle, 'connect');
      trickle.write('GET /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
      const timer = setInterval(() => trickle.writable && trickle.write('1\r\nx\r\n'), 250);
      const openedAt = Date.now();
      await closed(trickle);
      clearInterval(timer);
      const heldMs = Date.now() - openedAt;
      // Generous: the deadline is 1 s; a reflector without one held it for as long as the client liked.
      assert.ok(heldMs < 20_000, `held for ${heldMs} ms`);
      assert.equal(strict.stats().request_timeouts, 1);

      // A GET declaring a 28 MB body gets 413 at once, before any of it is read.
      const big = connect({ host: '127.0.0.1', port: strictPort });
      big.on('error', () => {});
      await once(big, 'connect');
      let bigReply = '';
      big.setEncoding('latin1');
      big.on('data', (d: string) => (bigReply += d));
      big.write(`GET / HTTP/1.1\r\nHost: a\r\nContent-Length: ${28 * 1024 * 1024}\r\n\r\n${'z'.repeat(2048)}`);
      await closed(big);
      assert.match(bigReply, /^HTTP\/1\.1 413 /);

      // A chunked body that grows past the cap: the connection is cut, the reflector stays up.
      const chunked = connect({ host: '127.0.0.1', port: strictPort });
      chunked.on('error', () => {});
      await once(chunked, 'connect');
      chunked.write('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 4 && chunked.writable; i++) chunked.write(`400\r\n${'y'.repeat(1024)}\r\n`);
      await closed(chunked);
      assert.equal(strict.stats().bodies_too_large, 2);
      assert.equal((await get({ port: strictPort })).status, 200);
    } finally {
      await strict.close();
    }
  },
);

test('http reflector: serves HTTPS with the given certificate', async () => {
  const body = await new Promise<{ status: number; site: unknown; json: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: secure.listening[0]!.port,
          path: '/tls',
          servername: 'svc.anylat.test',
          ca: cert.cert,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, site: res.headers['x-anylat-site'], json: JSON.parse(text) }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
  assert.equal(body.status, 200);
  assert.equal(body.site, 'edge-tls');
  assert.equal(body.json.site, 'edge-tls');
  assert.equal(body.json.path, '/tls');
  assert.equal(body.json.source, '127.0.0.1');
});

test('http reflector: a taken port is a BindError naming the address', async () => {
  await assert.rejects(startHttpReflector({ site: 's', binds: ['127.0.0.1'], port, log: () => {} }), (err: unknown) => {
    assert.ok(err instanceof AnylatError);
    assert.equal(err.code, 'ANYLAT_BIND');
    assert.equal(err.exitCode, 2);
    assert.match(
      err.message,
      new RegExp(`^http reflector: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\)`),
    );
    assert.match(err.message, /--http-port/);
    return true;
  });
});

test(
  'a request that arrives before the reflector has seen its connection is not acknowledged on its own (Linux)',
  { skip: process.platform !== 'linux' && 'TCP_QUICKACK is Linux-only' },
  () => {
    // The client runs in another process while this one, the reflector's, is blocked in
    // execFileSync: the kernel accepts the connection and receives the request, but the
    // reflector's 'connection' callback cannot run. With the listening socket's ACKs delayed (which
    // each accepted connection inherits) the request stays unacknowledged for the delayed-ACK timer
    // (40 ms at least), so the response can carry the ACK; in quick-ACK mode, a connection's default,
    // the kernel would acknowledge it at once.
    const client = `
    import net from 'node:net';
    import { readTcpInfo } from ${JSON.stringify(new URL('../agent/net/tcp-info.ts', import.meta.url).href)};
    const request = 'GET / HTTP/1.1\\r\\nHost: svc.anylat.test\\r\\n\\r\\n';
    const s = net.connect(${port}, '127.0.0.1', () => {
      const before = readTcpInfo(s).bytesAcked;
      s.write(request);
      setTimeout(() => {
        console.log(JSON.stringify({ request: request.length, acked: readTcpInfo(s).bytesAcked - before }));
        process.exit(0);
      }, 15);
    });`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', client], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const { request, acked } = JSON.parse(out) as { request: number; acked: number };
    assert.ok(request > 0);
    assert.equal(
      acked,
      0,
      `the request (${request} bytes) was acknowledged at once: ${acked} bytes acked within 15 ms`,
    );
  },
);
